/* console_helper: bench/console's measuring half.
 *
 *   console-bench-helper load CALLS DRIVERS LINES DAYS
 *       COPYs the data set (console_load.c), then VACUUM ANALYZE
 *   console-bench-helper measure ADMIN_URL ITERATIONS STATS_ITERATIONS NAIVE_ITERATIONS
 *       for every scenario: p50/p99 through the ingress's admin address (HTTP, keep-alive, the
 *       token from INGRESS_API_TOKEN) and directly (the store_console code the workers run, on
 *       one connection); one EXPLAIN ANALYZE of each (auto_explain); the naive form of each
 *       (OFFSET pages, a count(*) per row, one GROUP BY computing everything for every driver,
 *       and none of migration 008's indexes: dropped in a transaction rolled back afterwards);
 *       the cost of 008's indexes and 010's triggers to the workers' writes. Exit 1 when a goal is
 * missed: p99 < 100 ms over HTTP for every /calls and /stats/drivers scenario.
 *
 * DATABASE_URL and DB_SCHEMA come from the environment. */
#include "console_bench.h"
#include "console_params.h"
#include "db.h"
#include "store_calls.h"
#include "store_console.h"
#include "timeutil.h"

#include <curl/curl.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define GOAL_MS 100.0

enum kind { K_CALLS, K_DRIVERS, K_OVERVIEW };

/* since/until appended at each request, from the clock: the page's rolling window (30 days to
 * now: the rollup answers), or 30 days ending 2 minutes ago (not the rolling one: exact). */
enum { W_NONE, W_PAGE, W_EXACT };

struct scenario {
	enum kind kind;
	char name[96];
	char query[600]; /* path and query string */
	long naive_offset;
	bool goal; /* p99 < 100 ms over HTTP required: /calls, and /stats/drivers from the rollup */
	int window; /* /stats/drivers: W_* since/until written at each request */
	double http_p50, http_p99, direct_p50, direct_p99, naive_p50;
	long rows;
};

/* s's query, with its window's since/until appended when it has one. */
static void scenario_query(const struct scenario *s, char *out, size_t size)
{
	char since[CONSOLE_TIME_LEN], until[CONSOLE_TIME_LEN];
	int64_t now = time_now_ms() * 1000, end = now - (s->window == W_EXACT ? 120000000 : 0);

	if (s->window == W_NONE) {
		snprintf(out, size, "%s", s->query);
		return;
	}
	console_time_format_ms(end - INT64_C(30) * 86400000000, since);
	console_time_format_ms(end, until);
	snprintf(out, size, "%s%csince=%s&until=%s", s->query, strchr(s->query, '?') ? '&' : '?',
	         since, until);
}

static double now_ms(void)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return (double)t.tv_sec * 1e3 + (double)t.tv_nsec / 1e6;
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

static double pct(double *v, int n, double p)
{
	int i;

	qsort(v, (size_t)n, sizeof *v, cmp_double);
	i = (int)ceil(p * n) - 1;
	return v[i < 0 ? 0 : (i >= n ? n - 1 : i)];
}

static struct db *connect_db(void)
{
	const char *url = getenv("DATABASE_URL"), *schema = getenv("DB_SCHEMA");
	char errstr[256];
	struct db *db = db_open(url ? url : "", schema ? schema : "dev", errstr, sizeof errstr);

	if (!db || !db_ok(db)) {
		fprintf(stderr, "console-bench: %s\n", db ? db_errmsg(db) : errstr);
		db_close(db);
		return NULL;
	}
	return db;
}

static int sql(struct db *db, const char *q)
{
	if (db_cmd(db, q, 0, NULL) != 0) {
		fprintf(stderr, "console-bench: %s: %s\n", q, db_errmsg(db));
		return -1;
	}
	return 0;
}

/* One value of a one-row query ("" when NULL), into out. */
static int sql_value(struct db *db, const char *q, char *out, size_t size)
{
	PGresult *res = db_exec(db, q, 0, NULL);

	if (res == NULL || PQntuples(res) == 0) {
		fprintf(stderr, "console-bench: %s: %s\n", q, db_errmsg(db));
		PQclear(res);
		return -1;
	}
	snprintf(out, size, "%s", PQgetvalue(res, 0, 0));
	PQclear(res);
	return 0;
}

/* ---- the direct path: the query string parsed as the ingress does, then store_console ---- */

static int count_call(void *opaque, const struct store_console_call *c)
{
	(void)c;
	(*(long *)opaque)++;
	return 0;
}
static int count_driver(void *opaque, const struct store_console_driver *d)
{
	(void)d;
	(*(long *)opaque)++;
	return 0;
}
static int count_bucket(void *opaque, const struct store_console_bucket *b)
{
	(void)b;
	(*(long *)opaque)++;
	return 0;
}
static int count_reason(void *opaque, const struct store_console_reason *r)
{
	(void)r;
	return opaque == NULL;
}

static void split_args(char *qs, struct console_args *a)
{
	memset(a, 0, sizeof *a);
	for (char *tok = strtok(qs, "&"); tok != NULL && a->n < CONSOLE_ARGS_MAX;
	     tok = strtok(NULL, "&")) {
		char *eq = strchr(tok, '=');

		if (eq != NULL)
			*eq = '\0';
		a->name[a->n] = tok;
		a->value[a->n] = eq != NULL ? eq + 1 : "";
		a->n++;
	}
}

/* Runs s once directly; -1 on a failure. *rows: what came back. */
static int run_direct(struct db *db, const struct scenario *s, long *rows)
{
	char qs[700], full[700];
	const char *q;
	struct console_args a;
	struct console_err err;
	int64_t now = time_now_ms() * 1000, total;
	struct store_console_latency lat;

	scenario_query(s, full, sizeof full);
	q = strchr(full, '?');
	snprintf(qs, sizeof qs, "%s", q != NULL ? q + 1 : "");
	split_args(qs, &a);
	*rows = 0;
	if (s->kind == K_CALLS) {
		struct console_calls_req r;
		struct store_console_filter f;

		if (console_parse_calls(&a, &r, &err) != 0)
			goto bad;
		f = (struct store_console_filter){r.status,    r.driver_id, r.trip_id,
		                                  r.since,     r.until,     r.has_cursor,
		                                  r.cursor_at, r.cursor_id, r.limit};
		return store_console_calls(db, &f, count_call, rows);
	}
	if (s->kind == K_DRIVERS) {
		struct console_drivers_req r;
		struct store_console_drivers_q dq;
		char since[STORE_CONSOLE_TS_LEN], until[STORE_CONSOLE_TS_LEN];

		if (console_parse_drivers(&a, now, &r, &err) != 0)
			goto bad;
		dq = (struct store_console_drivers_q){r.w.since,   r.w.until, r.sort,
		                                      r.ascending, r.limit,   r.driver_id};
		if (r.rolling)
			return store_console_drivers_rolling(db, &dq, count_driver, rows, &total,
			                                     since, until);
		return store_console_drivers(db, &dq, count_driver, rows, &total);
	}
	{
		struct console_overview_req r;

		if (console_parse_overview(&a, now, &r, &err) != 0)
			goto bad;
		return store_console_overview(db, r.w.since, r.w.until, r.bucket, count_bucket,
		                              count_reason, rows, &lat);
	}
bad:
	fprintf(stderr, "console-bench: %s: %s\n", s->query, err.msg);
	return -1;
}

/* ---- HTTP ---- */

static size_t sink(char *p, size_t size, size_t n, void *opaque)
{
	(void)p;
	*(size_t *)opaque += size * n;
	return size * n;
}

static int run_http(CURL *curl, const char *base, const struct scenario *s)
{
	char url[800], q[700];
	size_t got = 0;
	long status = 0;

	scenario_query(s, q, sizeof q);
	snprintf(url, sizeof url, "%s%s", base, q);
	curl_easy_setopt(curl, CURLOPT_URL, url);
	curl_easy_setopt(curl, CURLOPT_WRITEDATA, &got);
	if (curl_easy_perform(curl) != CURLE_OK)
		return -1;
	curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &status);
	if (status != 200) {
		fprintf(stderr, "console-bench: GET %s: %ld\n", s->query, status);
		return -1;
	}
	return 0;
}

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

	scenario_query(s, full, sizeof full);
	q = strchr(full, '?');
	snprintf(qs, sizeof qs, "%s", q != NULL ? q + 1 : "");
	split_args(qs, &a);
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
	return run_direct(db, s, &rows); /* the same statements, without the indexes */
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

/* ---- scenarios ---- */

static struct scenario *add(struct scenario *v, int *n, enum kind k, const char *name,
                            const char *query, long naive_offset)
{
	struct scenario *s = &v[(*n)++];

	memset(s, 0, sizeof *s);
	s->kind = k;
	snprintf(s->name, sizeof s->name, "%s", name);
	snprintf(s->query, sizeof s->query, "%s", query);
	s->naive_offset = naive_offset;
	s->goal = k == K_CALLS;
	return s;
}

/* The cursor of the row depth rows into the list that where selects (newest first). */
static int cursor_at(struct db *db, const char *where, long depth, char out[CONSOLE_CURSOR_LEN])
{
	char q[600], v[80];
	long long at, id;

	snprintf(q, sizeof q,
	         "SELECT ((extract(epoch FROM created_at) * 1000000)::bigint)::text || ' ' || id "
	         "FROM calls WHERE %s ORDER BY created_at DESC, id DESC OFFSET %ld LIMIT 1",
	         where, depth);
	if (sql_value(db, q, v, sizeof v) != 0 || sscanf(v, "%lld %lld", &at, &id) != 2)
		return -1;
	console_cursor_encode((int64_t)at, (int64_t)id, out);
	return 0;
}

static int scenarios(struct db *db, struct scenario *v, int *n)
{
	char q[600], c[CONSOLE_CURSOR_LEN], drv[64], trip[64], since[CONSOLE_TIME_LEN],
	    until[CONSOLE_TIME_LEN], d30[CONSOLE_TIME_LEN];
	long total, failed, deep, deep_failed, in_window;
	int64_t now = time_now_ms() * 1000, day = INT64_C(86400000000);

	if (sql_value(db, "SELECT count(*) FROM calls", q, sizeof q) != 0)
		return -1;
	total = atol(q);
	if (sql_value(db, "SELECT count(*) FROM calls WHERE status = 'failed'", q, sizeof q) != 0 ||
	    sql_value(db, "SELECT driver_id FROM calls ORDER BY id DESC LIMIT 1 OFFSET 1000", drv,
	              sizeof drv) != 0 ||
	    sql_value(db, "SELECT trip_id FROM calls ORDER BY id LIMIT 1 OFFSET 1000", trip,
	              sizeof trip) != 0)
		return -1;
	failed = atol(q);
	deep = total / 2;
	deep_failed = failed / 2;
	console_time_format_ms(now - 8 * day, since);
	console_time_format_ms(now - 1 * day, until);
	console_time_format_ms(now - 30 * day, d30);
	add(v, n, K_CALLS, "calls: first page", "/calls", 0);
	if (cursor_at(db, "true", deep, c) != 0)
		return -1;
	snprintf(q, sizeof q, "/calls?cursor=%s", c);
	add(v, n, K_CALLS, "calls: deep page (half-way)", q, deep + 1);
	add(v, n, K_CALLS, "calls: status=failed", "/calls?status=failed", 0);
	if (cursor_at(db, "status = 'failed'", deep_failed, c) != 0)
		return -1;
	snprintf(q, sizeof q, "/calls?status=failed&cursor=%s", c);
	add(v, n, K_CALLS, "calls: status=failed, deep page", q, deep_failed + 1);
	add(v, n, K_CALLS, "calls: status=in_progress", "/calls?status=in_progress", 0);
	snprintf(q, sizeof q, "/calls?driver_id=%s", drv);
	add(v, n, K_CALLS, "calls: driver_id", q, 0);
	snprintf(q, sizeof q, "/calls?driver_id=%s&status=completed", drv);
	add(v, n, K_CALLS, "calls: driver_id + status", q, 0);
	snprintf(q, sizeof q, "/calls?trip_id=%s", trip);
	add(v, n, K_CALLS, "calls: trip_id", q, 0);
	snprintf(q, sizeof q, "/calls?since=%s&until=%s", since, until);
	add(v, n, K_CALLS, "calls: 7-day window", q, 0);
	snprintf(q, sizeof q,
	         "SELECT count(*) FROM calls WHERE created_at >= '%s' AND created_at < '%s'", since,
	         until);
	if (sql_value(db, q, q, sizeof q) != 0)
		return -1;
	in_window = atol(q) / 2;
	snprintf(q, sizeof q, "created_at >= '%s' AND created_at < '%s'", since, until);
	if (cursor_at(db, q, in_window, c) != 0)
		return -1;
	snprintf(q, sizeof q, "/calls?since=%s&until=%s&status=completed&cursor=%s", since, until,
	         c);
	add(v, n, K_CALLS, "calls: 7-day window + status, deep page", q, in_window + 1);
	add(v, n, K_CALLS, "calls: limit=200", "/calls?limit=200", 0);
	/* the rolling window, from 010's rollup (the goal applies) */
	add(v, n, K_DRIVERS, "drivers rollup: 30 days, sort=calls (default)", "/stats/drivers", 0);
	add(v, n, K_DRIVERS, "drivers rollup: page's since/until", "/stats/drivers", 0)->window =
	    W_PAGE;
	add(v, n, K_DRIVERS, "drivers rollup: sort=success_rate asc",
	    "/stats/drivers?sort=success_rate&order=asc", 0);
	add(v, n, K_DRIVERS, "drivers rollup: sort=failed", "/stats/drivers?sort=failed", 0);
	add(v, n, K_DRIVERS, "drivers rollup: sort=in_progress asc",
	    "/stats/drivers?sort=in_progress&order=asc", 0);
	add(v, n, K_DRIVERS, "drivers rollup: sort=driver_id",
	    "/stats/drivers?sort=driver_id&order=asc", 0);
	add(v, n, K_DRIVERS, "drivers rollup: sort=last_call_at",
	    "/stats/drivers?sort=last_call_at", 0);
	add(v, n, K_DRIVERS, "drivers rollup: limit=200", "/stats/drivers?limit=200", 0);
	snprintf(q, sizeof q, "/stats/drivers?driver_id=%s", drv);
	add(v, n, K_DRIVERS, "drivers rollup: one driver", q, 0);
	for (int i = *n - 9; i < *n; i++)
		v[i].goal = true;
	/* any other window, and the median sort: the exact aggregation (reported, no goal) */
	add(v, n, K_DRIVERS, "drivers exact: 30 d to 2 min ago, sort=calls", "/stats/drivers", 0)
	    ->window = W_EXACT;
	add(v, n, K_DRIVERS, "drivers exact: 30 d to 2 min ago, success asc",
	    "/stats/drivers?sort=success_rate&order=asc", 0)
	    ->window = W_EXACT;
	add(v, n, K_DRIVERS, "drivers exact: sort=median_duration_s",
	    "/stats/drivers?sort=median_duration_s", 0);
	snprintf(q, sizeof q, "/stats/drivers?driver_id=%s", drv);
	add(v, n, K_DRIVERS, "drivers exact: one driver, 2 min ago", q, 0)->window = W_EXACT;
	add(v, n, K_OVERVIEW, "overview: 24 h by hour", "/stats/overview", 0);
	snprintf(q, sizeof q, "/stats/overview?bucket=day&since=%s", d30);
	add(v, n, K_OVERVIEW, "overview: 30 days by day", q, 0);
	return 0;
}

/* ---- the measurements ---- */

static int measure_one(struct db *db, CURL *curl, const char *base, struct scenario *s, int iters)
{
	double *h = calloc((size_t)iters, sizeof *h), *d = calloc((size_t)iters, sizeof *d);
	int rc = -1;

	if (h == NULL || d == NULL)
		goto out;
	/* warm both paths once (caches, the workers' connections) */
	if (run_http(curl, base, s) != 0 || run_direct(db, s, &s->rows) != 0)
		goto out;
	for (int i = 0; i < iters; i++) {
		double t0 = now_ms();

		if (run_http(curl, base, s) != 0)
			goto out;
		h[i] = now_ms() - t0;
		t0 = now_ms();
		if (run_direct(db, s, &s->rows) != 0)
			goto out;
		d[i] = now_ms() - t0;
	}
	s->http_p50 = pct(h, iters, 0.5);
	s->http_p99 = pct(h, iters, 0.99);
	s->direct_p50 = pct(d, iters, 0.5);
	s->direct_p99 = pct(d, iters, 0.99);
	rc = 0;
out:
	free(h);
	free(d);
	return rc;
}

static int explain_all(struct db *db, struct scenario *v, int n)
{
	PGconn *conn = db_conn(db);
	long rows;

	if (sql(db, "LOAD 'auto_explain'") != 0 ||
	    sql(db, "SET auto_explain.log_min_duration = 0") != 0 ||
	    sql(db, "SET auto_explain.log_analyze = on") != 0 ||
	    sql(db, "SET auto_explain.log_buffers = on") != 0 ||
	    sql(db, "SET auto_explain.log_timing = off") != 0 ||
	    sql(db, "SET auto_explain.log_level = notice") != 0 ||
	    sql(db, "SET client_min_messages = notice") != 0)
		return -1;
	/* for good: later notices are not plans and print_plan skips them */
	(void)PQsetNoticeReceiver(conn, print_plan, NULL);
	for (int i = 0; i < n; i++) {
		printf("\n-- plan: %s (GET %s)\n", v[i].name, v[i].query);
		fflush(stdout);
		if (run_direct(db, &v[i], &rows) != 0)
			return -1;
	}
	return sql(db, "SET auto_explain.log_min_duration = -1");
}

static const char SQL_DROP_008[] =
    "DROP INDEX idx_calls_console_created, idx_calls_console_status, idx_calls_console_driver,"
    " idx_calls_console_trip";

static int naive_all(struct db *db, struct scenario *v, int n, int iters)
{
	double *t = calloc((size_t)iters, sizeof *t);
	int rc = -1;

	if (t == NULL || db_begin(db) != 0 || sql(db, SQL_DROP_008) != 0)
		goto out;
	for (int i = 0; i < n; i++) {
		for (int k = 0; k < iters; k++) {
			double t0 = now_ms();

			if (run_naive(db, &v[i]) != 0) {
				fprintf(stderr, "console-bench: naive %s: %s\n", v[i].name,
				        db_errmsg(db));
				goto out;
			}
			t[k] = now_ms() - t0;
		}
		v[i].naive_p50 = pct(t, iters, 0.5);
		printf("naive %-44s p50 %9.1f ms\n", v[i].name, v[i].naive_p50);
		fflush(stdout);
	}
	rc = 0;
out:
	db_rollback(db);
	free(t);
	return rc;
}

/* What an advance pays `minutes` after the previous one (the ingress's period, or a read after a
 * pause): 010's console_driver_window_advance over the calls that left the window meanwhile, in a
 * transaction rolled back. *ms and *gone are set. */
static int advance_cost(struct db *db, int minutes, double *ms, long *gone)
{
	char q[200], v[32];
	double t0;

	snprintf(q, sizeof q,
	         "UPDATE console_driver_window_state SET span = span - interval '%d minutes'",
	         minutes);
	if (db_begin(db) != 0 || sql(db, q) != 0 ||
	    sql_value(
	        db,
	        "SELECT count(*) FROM calls, console_driver_window_state s WHERE created_at >="
	        " s.cutoff AND created_at < now() - s.span",
	        v, sizeof v) != 0)
		goto fail;
	*gone = atol(v);
	t0 = now_ms();
	if (sql(db, "SELECT console_driver_window_advance()") != 0)
		goto fail;
	*ms = now_ms() - t0;
	db_rollback(db);
	return 0;
fail:
	db_rollback(db);
	return -1;
}

static int measure(const char *base, int iters, int stats_iters, int naive_iters)
{
	struct scenario v[32];
	struct db *db = connect_db();
	CURL *curl = curl_easy_init();
	struct curl_slist *hdr = NULL;
	char auth[300];
	double w[3], adv_ms[3];
	long adv_gone[3];
	int n = 0, missed = 0;

	if (db == NULL || curl == NULL)
		return 2;
	snprintf(auth, sizeof auth, "Authorization: Bearer %s",
	         getenv("INGRESS_API_TOKEN") ? getenv("INGRESS_API_TOKEN") : "");
	hdr = curl_slist_append(hdr, auth);
	curl_easy_setopt(curl, CURLOPT_HTTPHEADER, hdr);
	curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, sink);
	curl_easy_setopt(curl, CURLOPT_TIMEOUT_MS, 30000L);
	if (scenarios(db, v, &n) != 0)
		return 2;
	printf("%-44s %8s %8s %8s %8s %6s\n", "scenario", "http p50", "http p99", "sql p50",
	       "sql p99", "rows");
	for (int i = 0; i < n; i++) {
		if (measure_one(db, curl, base, &v[i],
		                v[i].kind == K_CALLS ? iters : stats_iters) != 0)
			return 2;
		printf("%-44s %8.2f %8.2f %8.2f %8.2f %6ld\n", v[i].name, v[i].http_p50,
		       v[i].http_p99, v[i].direct_p50, v[i].direct_p99, v[i].rows);
		fflush(stdout);
	}
	if (explain_all(db, v, n) != 0)
		return 2;
	printf("\n");
	if (naive_iters > 0 && naive_all(db, v, n, naive_iters) != 0)
		return 2;
	if (console_bench_writes(db, 1000, 3, w) != 0 ||
	    advance_cost(db, 1, &adv_ms[0], &adv_gone[0]) != 0 ||
	    advance_cost(db, 60, &adv_ms[1], &adv_gone[1]) != 0 ||
	    advance_cost(db, 24 * 60, &adv_ms[2], &adv_gone[2]) != 0)
		return 2;
	printf("\n%-44s %8s %8s %8s %9s %7s\n", "summary (ms)", "http p50", "http p99", "sql p50",
	       "naive p50", "ratio");
	for (int i = 0; i < n; i++) {
		bool miss = v[i].goal && v[i].http_p99 >= GOAL_MS;

		missed += miss;
		printf("%-44s %8.2f %8.2f %8.2f %9.1f %6.0fx%s\n", v[i].name, v[i].http_p50,
		       v[i].http_p99, v[i].direct_p50, v[i].naive_p50,
		       v[i].direct_p50 > 0 ? v[i].naive_p50 / v[i].direct_p50 : 0,
		       miss ? "  GOAL MISSED (p99 >= 100 ms)" : (v[i].goal ? "" : "  (no goal)"));
	}
	printf(
	    "\nworkers' writes per call (insert, claim, conversation, completion; fastest of 3 x "
	    "1000 calls):\n  %.1f us with 008's indexes and 010's triggers, %.1f us without the "
	    "triggers (x%.2f), %.1f us without either (008's indexes: x%.2f)\n",
	    w[0], w[1], w[1] > 0 ? w[0] / w[1] : 0, w[2], w[2] > 0 ? w[1] / w[2] : 0);
	printf("the rolling window's advance 1 minute after the previous one (the ingress's "
	       "period): %.2f ms (%ld calls left the window); after 1 hour: %.1f ms (%ld calls); "
	       "after 24 hours: %.1f ms (%ld calls)\n",
	       adv_ms[0], adv_gone[0], adv_ms[1], adv_gone[1], adv_ms[2], adv_gone[2]);
	printf("%s\n", missed ? "RESULT: goal missed" : "RESULT: every goal met");
	curl_slist_free_all(hdr);
	curl_easy_cleanup(curl);
	db_close(db);
	return missed ? 1 : 0;
}

int main(int argc, char **argv)
{
	if (argc == 6 && strcmp(argv[1], "load") == 0) {
		struct console_bench_load o = {atol(argv[2]), atol(argv[3]), atoi(argv[4]),
		                               atoi(argv[5])};
		struct db *db = connect_db();
		double t0 = now_ms();
		int rc;

		if (db == NULL || o.calls <= 0 || o.drivers <= 0 || o.days <= 0)
			return 2;
		rc = sql(db, "SET statement_timeout = 0");
		if (rc == 0)
			rc = console_bench_load(db, &o);
		if (rc == 0)
			rc = sql(db, "VACUUM ANALYZE calls") ||
			     sql(db, "VACUUM ANALYZE console_driver_window") ||
			     sql(db, "VACUUM ANALYZE call_transcriptions");
		if (rc == 0)
			printf(
			    "loaded %ld calls, %ld drivers, %d lines a call over %d days in %.1f "
			    "s\n",
			    o.calls, o.drivers, o.lines, o.days, (now_ms() - t0) / 1000.0);
		db_close(db);
		return rc == 0 ? 0 : 1;
	}
	if (argc == 6 && strcmp(argv[1], "measure") == 0)
		return measure(argv[2], atoi(argv[3]), atoi(argv[4]), atoi(argv[5]));
	fprintf(stderr, "usage: console-bench-helper load CALLS DRIVERS LINES DAYS\n"
	                "       console-bench-helper measure ADMIN_URL ITERATIONS STATS_ITERATIONS "
	                "NAIVE_ITERATIONS\n");
	return 2;
}
