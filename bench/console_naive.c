/* console_naive: bench/console's baselines beside the real path: the plans of every scenario
 * (auto_explain) and the naive form of each (OFFSET pages, a count(*) per row, one GROUP BY for
 * every driver, none of migration 008's indexes). */
#include "console_bench.h"
#include "console_params.h"
#include "db.h"
#include "timeutil.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- naive forms ---- */

static const char SQL_NAIVE_CALLS[] =
    "SELECT c.*, (SELECT count(*) FROM call_transcriptions t"
    " WHERE t.conversation_id = c.conversation_id),"
    " (SELECT max(t.created_at) FROM call_transcriptions t"
    " WHERE t.conversation_id = c.conversation_id) FROM calls c"
    " WHERE ($1::text IS NULL OR status = $1) AND ($2::text IS NULL OR driver_id = $2)"
    " AND ($3::text IS NULL OR trip_id = $3) AND ($4::timestamptz IS NULL OR created_at >= $4)"
    " AND ($5::timestamptz IS NULL OR created_at < $5)"
    " ORDER BY created_at DESC, id DESC LIMIT $6 OFFSET $7";

#define SQL_NAIVE_DRIVERS                                                                        \
	"WITH per AS (SELECT driver_id, count(*) AS calls,"                                      \
	" count(*) FILTER (WHERE status = 'completed') AS completed,"                            \
	" count(*) FILTER (WHERE status = 'failed') AS failed,"                                  \
	" count(*) FILTER (WHERE status = 'in_progress') AS in_progress,"                        \
	" percentile_cont(0.5) WITHIN GROUP (ORDER BY extract(epoch FROM call_end_time -"        \
	" call_start_time)) FILTER (WHERE status = 'completed') AS median_duration_s,"           \
	" max(created_at) AS last_call_at FROM calls WHERE created_at >= $1 AND created_at < $2" \
	" AND ($3::text IS NULL OR driver_id = $3) GROUP BY driver_id),"                         \
	" reasons AS (SELECT driver_id, json_object_agg(reason, n) AS r FROM (SELECT driver_id," \
	" COALESCE(failure_reason, 'unknown') AS reason, count(*) AS n FROM calls"               \
	" WHERE created_at >= $1 AND created_at < $2 AND status = 'failed' GROUP BY 1, 2) x"     \
	" GROUP BY driver_id)"                                                                   \
	" SELECT per.*, CASE WHEN completed + failed > 0 THEN completed::float8 /"               \
	" (completed + failed) END AS success_rate, reasons.r, count(*) OVER () FROM per"        \
	" LEFT JOIN reasons USING (driver_id) ORDER BY "

static int run_naive(struct db *db, const struct scenario *s)
{
	char qs[700], full[700], off[24], lim[16], sqlbuf[2048];
	const char *q;
	struct console_args a;
	struct console_err err;
	PGresult *res;
	long rows;

	console_bench_query(s, full, sizeof full);
	q = strchr(full, '?');
	snprintf(qs, sizeof qs, "%s", q != NULL ? q + 1 : "");
	console_bench_split(qs, &a);
	if (s->kind == K_CALLS) {
		struct console_calls_req r;
#define OPT(x) ((x)[0] != '\0' ? (x) : NULL)
		const char *p[7];

		if (console_parse_calls(&a, &r, &err) != 0)
			return -1;
		snprintf(off, sizeof off, "%ld", s->naive_offset);
		snprintf(lim, sizeof lim, "%d", r.limit);
		p[0] = OPT(r.status);
		p[1] = OPT(r.driver_id);
		p[2] = OPT(r.trip_id);
		p[3] = OPT(r.since);
		p[4] = OPT(r.until);
		p[5] = lim;
		p[6] = off;
#undef OPT
		res = db_exec(db, SQL_NAIVE_CALLS, 7, p);
		PQclear(res);
		return res != NULL ? 0 : -1;
	}
	if (s->kind == K_DRIVERS) {
		struct console_drivers_req r;
		const char *p[3];

		if (console_parse_drivers(&a, time_now_ms() * 1000, &r, &err) != 0)
			return -1;
		p[0] = r.w.since;
		p[1] = r.w.until;
		p[2] = r.driver_id[0] != '\0' ? r.driver_id : NULL;
		snprintf(sqlbuf, sizeof sqlbuf, "%s%s %s NULLS LAST, driver_id LIMIT %d",
		         SQL_NAIVE_DRIVERS, console_driver_sorts[r.sort],
		         r.ascending ? "ASC" : "DESC", r.limit);
		res = db_exec(db, sqlbuf, 3, p);
		PQclear(res);
		return res != NULL ? 0 : -1;
	}
	return console_bench_direct(db, s, &rows); /* the same statements, without the indexes */
}

/* auto_explain's notice: "duration: ... plan:\nQuery Text: ...\n<plan>"; prints the plan. */
static void print_plan(void *arg, const PGresult *res)
{
	const char *m = PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY);
	const char *q = m != NULL ? strstr(m, "Query Text:") : NULL;
	const char *plan = q != NULL ? strchr(q, '\n') : NULL;

	(void)arg;
	if (plan == NULL)
		return;
	printf("  (%.*s)\n", (int)strcspn(m, "\n"), m);
	for (const char *p = plan + 1; *p != '\0'; p++) {
		if (p == plan + 1 || p[-1] == '\n')
			fputs("    ", stdout);
		putchar(*p);
	}
	putchar('\n');
}

int console_bench_explain(struct db *db, struct scenario *v, int n)
{
	PGconn *conn = db_conn(db);
	long rows;

	if (console_bench_sql(db, "LOAD 'auto_explain'") != 0 ||
	    console_bench_sql(db, "SET auto_explain.log_min_duration = 0") != 0 ||
	    console_bench_sql(db, "SET auto_explain.log_analyze = on") != 0 ||
	    console_bench_sql(db, "SET auto_explain.log_buffers = on") != 0 ||
	    console_bench_sql(db, "SET auto_explain.log_timing = off") != 0 ||
	    console_bench_sql(db, "SET auto_explain.log_level = notice") != 0 ||
	    console_bench_sql(db, "SET client_min_messages = notice") != 0)
		return -1;
	/* for good: later notices are not plans and print_plan skips them */
	(void)PQsetNoticeReceiver(conn, print_plan, NULL);
	for (int i = 0; i < n; i++) {
		printf("\n-- plan: %s (GET %s)\n", v[i].name, v[i].query);
		fflush(stdout);
		if (console_bench_direct(db, &v[i], &rows) != 0)
			return -1;
	}
	return console_bench_sql(db, "SET auto_explain.log_min_duration = -1");
}

int console_bench_naive(struct db *db, struct scenario *v, int n, int iters)
{
	double *t = calloc((size_t)iters, sizeof *t);
	int rc = -1;

	if (t == NULL || db_begin(db) != 0 || console_bench_sql(db, console_bench_drop_008) != 0)
		goto out;
	for (int i = 0; i < n; i++) {
		for (int k = 0; k < iters; k++) {
			double t0 = console_bench_now_ms();

			if (run_naive(db, &v[i]) != 0) {
				fprintf(stderr, "console-bench: naive %s: %s\n", v[i].name,
				        db_errmsg(db));
				goto out;
			}
			t[k] = console_bench_now_ms() - t0;
		}
		v[i].naive_p50 = console_bench_pct(t, iters, 0.5);
		printf("naive %-44s p50 %9.1f ms\n", v[i].name, v[i].naive_p50);
		fflush(stdout);
	}
	rc = 0;
out:
	db_rollback(db);
	free(t);
	return rc;
}
