/* store_console: the console's read queries (list, per-driver outcomes, overview), parameterised.
 *
 * Each unset filter is passed as SQL NULL and written "($n IS NULL OR col = $n)": libpq's unnamed
 * statements are planned with their parameter values, so the planner folds the unset ones away
 * and picks the index of the filters that remain (migration 008). */
#include "store_console.h"

#include "db.h"
#include "store_calls_int.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define STORE_TS_US(col) "to_char(" col " AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"')"

/* The page first (an index scan that stops after $8 rows), then each call's line count and last
 * line time: a lateral aggregate over the call's entries of the (conversation_id,
 * sequence_number) index, for the rows of the page only. */
static const char SQL_CALLS[] =
    "WITH page AS (SELECT " STORE_CALL_COLUMNS ", conversation_id AS k_conv,"
    " created_at AS k_at, id AS k_id FROM calls"
    " WHERE ($1::text IS NULL OR status = $1) AND ($2::text IS NULL OR driver_id = $2)"
    " AND ($3::text IS NULL OR trip_id = $3)"
    " AND ($4::timestamptz IS NULL OR created_at >= $4)"
    " AND ($5::timestamptz IS NULL OR created_at < $5)"
    " AND ($6::timestamptz IS NULL OR (created_at, id) < ($6, $7::bigint))"
    " ORDER BY created_at DESC, id DESC LIMIT $8)"
    " SELECT p.*, " STORE_TS_US("p.k_at") ", COALESCE(l.n, 0), " STORE_TS(
        "l.last") " FROM page p LEFT JOIN LATERAL (SELECT count(*) AS n, max(t.created_at) AS last"
                  " FROM call_transcriptions t WHERE t.conversation_id = p.k_conv) l ON p.k_conv "
                  "IS NOT NULL"
                  " ORDER BY p.k_at DESC, p.k_id DESC";

enum { CALLS_COL_CURSOR = 16, CALLS_COL_LINES, CALLS_COL_LAST };

int store_console_calls(struct db *db, const struct store_console_filter *f,
                        store_console_call_cb *cb, void *opaque)
{
	char id[32], lim[16];
#define OPT(s) ((s) != NULL && (s)[0] != '\0' ? (s) : NULL)
	const char *params[8] = {OPT(f->status),
	                         OPT(f->driver_id),
	                         OPT(f->trip_id),
	                         OPT(f->since),
	                         OPT(f->until),
	                         f->has_cursor ? f->cursor_at : NULL,
	                         f->has_cursor ? id : NULL,
	                         lim};
#undef OPT
	struct store_console_call *c = calloc(1, sizeof *c);
	PGresult *res = NULL;
	int rc = -1;

	if (c == NULL)
		return -1;
	snprintf(id, sizeof id, "%" PRId64, f->cursor_id);
	snprintf(lim, sizeof lim, "%d", f->limit);
	res = db_exec(db, SQL_CALLS, 8, params);
	if (res == NULL)
		goto out;
	rc = 0;
	for (int i = 0; i < PQntuples(res) && rc == 0; i++) {
		store_call_row(res, i, &c->call);
		snprintf(c->created_at_exact, sizeof c->created_at_exact, "%s",
		         PQgetvalue(res, i, CALLS_COL_CURSOR));
		c->line_count = strtoll(PQgetvalue(res, i, CALLS_COL_LINES), NULL, 10);
		snprintf(c->last_line_at, sizeof c->last_line_at, "%s",
		         PQgetisnull(res, i, CALLS_COL_LAST) ? ""
		                                             : PQgetvalue(res, i, CALLS_COL_LAST));
		rc = cb(opaque, c);
	}
out:
	PQclear(res);
	free(c);
	return rc;
}

/* ---- /stats/drivers ---- */

/* Runs an aggregate over a window with room for its hash table: at the default work_mem (4 MB)
 * the per-driver groups of a 30-day window spill to disk in batches (bench/console: about a
 * third slower). SET LOCAL keeps the setting to this one transaction. */
static PGresult *store_console_aggregate(struct db *db, const char *sql, int nparams,
                                         const char *const *params)
{
	PGresult *res;

	if (db_begin(db) != 0)
		return NULL;
	if (db_cmd(db, "SET LOCAL work_mem = '64MB'", 0, NULL) != 0) {
		db_rollback(db);
		return NULL;
	}
	res = db_exec(db, sql, nparams, params);
	if (res == NULL || db_commit(db) != 0) {
		PQclear(res);
		db_rollback(db);
		return NULL;
	}
	return res;
}

/* Two steps in one statement. "w" counts every driver of the window from the covering index
 * (created_at) INCLUDE (status, driver_id): one index-only pass, no heap; "page" sorts and keeps
 * the requested drivers; then each page driver's median duration and failure reasons are read
 * through its own (driver_id, created_at) index range. Sorting by the median needs it for every
 * driver, so that sort computes every one in "w" (a heap visit per completed call of the window:
 * the slowest sort; numbering the durations in one window sort instead of an ordered-set
 * aggregate per driver measured no faster). */
#define SQL_DRIVERS_W(median)                                                   \
	"WITH w AS (SELECT driver_id, count(*) AS calls,"                       \
	" count(*) FILTER (WHERE status = 'completed') AS completed,"           \
	" count(*) FILTER (WHERE status = 'failed') AS failed,"                 \
	" count(*) FILTER (WHERE status = 'in_progress') AS in_progress,"       \
	" max(created_at) AS last_call_at" median " FROM calls"                 \
	" WHERE created_at >= $1 AND created_at < $2 AND driver_id IS NOT NULL" \
	" AND ($3::text IS NULL OR driver_id = $3) GROUP BY driver_id),"        \
	" page AS (SELECT w.*, CASE WHEN completed + failed > 0"                \
	" THEN completed::float8 / (completed + failed) END AS success_rate,"   \
	" count(*) OVER () AS total FROM w ORDER BY "
#define SQL_MEDIAN_EXPR                                                                     \
	"percentile_cont(0.5) WITHIN GROUP (ORDER BY extract(epoch FROM c.call_end_time - " \
	"c.call_start_time))"
#define SQL_DRIVERS_TAIL(median_join)                                                              \
	" LIMIT $4)"                                                                               \
	" SELECT p.driver_id, p.calls, p.completed, p.failed, p.in_progress, p.success_rate,"      \
	" m.median, " STORE_TS(                                                                    \
	    "p.last_call_at") ", COALESCE(r.reasons, '{}'), p.total"                               \
	                      " FROM page p" median_join                                           \
	                      " LEFT JOIN LATERAL (SELECT json_object_agg(reason, n ORDER BY "     \
	                      "reason)::text AS reasons"                                           \
	                      " FROM (SELECT COALESCE(c.failure_reason, 'unknown') AS reason, "    \
	                      "count(*) AS n"                                                      \
	                      " FROM calls c WHERE c.driver_id = p.driver_id AND c.created_at >= " \
	                      "$1"                                                                 \
	                      " AND c.created_at < $2 AND c.status = 'failed' GROUP BY 1) x) r "   \
	                      "ON p.failed > 0"                                                    \
	                      " ORDER BY "
#define SQL_MEDIAN_LATERAL                                                              \
	" LEFT JOIN LATERAL (SELECT " SQL_MEDIAN_EXPR " AS median FROM calls c"         \
	" WHERE c.driver_id = p.driver_id AND c.created_at >= $1 AND c.created_at < $2" \
	" AND c.status = 'completed' AND c.call_end_time IS NOT NULL"                   \
	" AND c.call_start_time IS NOT NULL) m ON p.completed > 0"
#define SQL_MEDIAN_IN_W ", " SQL_MEDIAN_EXPR " FILTER (WHERE c.status = 'completed') AS median"

static const char SQL_DRIVERS_HEAD[] = SQL_DRIVERS_W("");
static const char SQL_DRIVERS_HEAD_MEDIAN[] =
    "WITH w AS (SELECT c.driver_id, count(*) AS calls,"
    " count(*) FILTER (WHERE c.status = 'completed') AS completed,"
    " count(*) FILTER (WHERE c.status = 'failed') AS failed,"
    " count(*) FILTER (WHERE c.status = 'in_progress') AS in_progress,"
    " max(c.created_at) AS last_call_at" SQL_MEDIAN_IN_W " FROM calls c"
    " WHERE c.created_at >= $1 AND c.created_at < $2 AND c.driver_id IS NOT NULL"
    " AND ($3::text IS NULL OR c.driver_id = $3) GROUP BY c.driver_id),"
    " page AS (SELECT w.*, CASE WHEN completed + failed > 0"
    " THEN completed::float8 / (completed + failed) END AS success_rate,"
    " count(*) OVER () AS total FROM w ORDER BY ";
static const char SQL_DRIVERS_MID[] = SQL_DRIVERS_TAIL(SQL_MEDIAN_LATERAL);
static const char SQL_DRIVERS_MID_MEDIAN[] =
    SQL_DRIVERS_TAIL(" CROSS JOIN LATERAL (SELECT p.median) m");

/* The sort keys, by enum store_console_sort: fixed text, never the request's. */
static const char *const store_sort_cols[] = {
    "calls",        "completed", "failed",       "in_progress",
    "success_rate", "median",    "last_call_at", "driver_id",
};

void store_console_driver_row(const PGresult *res, int row, struct store_console_driver *out)
{
	*out = (struct store_console_driver){
	    .driver_id = PQgetvalue(res, row, 0),
	    .calls = strtoll(PQgetvalue(res, row, 1), NULL, 10),
	    .completed = strtoll(PQgetvalue(res, row, 2), NULL, 10),
	    .failed = strtoll(PQgetvalue(res, row, 3), NULL, 10),
	    .in_progress = strtoll(PQgetvalue(res, row, 4), NULL, 10),
	    .has_success_rate = !PQgetisnull(res, row, 5),
	    .success_rate = strtod(PQgetvalue(res, row, 5), NULL),
	    .has_median = !PQgetisnull(res, row, 6),
	    .median_duration_s = strtod(PQgetvalue(res, row, 6), NULL),
	    .last_call_at = PQgetvalue(res, row, 7),
	    .failure_reasons = PQgetvalue(res, row, 8),
	};
}

int store_console_drivers(struct db *db, const struct store_console_drivers_q *q,
                          store_console_driver_cb *cb, void *opaque, int64_t *total)
{
	bool median = q->sort == STORE_CONSOLE_SORT_MEDIAN;
	const char *col = store_sort_cols[q->sort];
	const char *dir = q->ascending ? "ASC NULLS FIRST" : "DESC NULLS LAST";
	char order[128], lim[16], *sql = NULL;
	const char *params[4] = {
	    q->since, q->until,
	    q->driver_id != NULL && q->driver_id[0] != '\0' ? q->driver_id : NULL, lim};
	PGresult *res = NULL;
	size_t size;
	int rc = -1;

	*total = 0;
	snprintf(lim, sizeof lim, "%d", q->limit);
	/* ties (and the driver_id sort itself) in driver_id order */
	if (q->sort == STORE_CONSOLE_SORT_DRIVER)
		snprintf(order, sizeof order, "%s %s", col, q->ascending ? "ASC" : "DESC");
	else
		snprintf(order, sizeof order, "%s %s, driver_id ASC", col, dir);
	size = sizeof SQL_DRIVERS_HEAD_MEDIAN + sizeof SQL_DRIVERS_MID + 2 * sizeof order + 64;
	sql = malloc(size);
	if (sql == NULL)
		return -1;
	snprintf(sql, size, "%s%s%s%s", median ? SQL_DRIVERS_HEAD_MEDIAN : SQL_DRIVERS_HEAD, order,
	         median ? SQL_DRIVERS_MID_MEDIAN : SQL_DRIVERS_MID, order);
	res = store_console_aggregate(db, sql, 4, params);
	if (res == NULL)
		goto out;
	rc = 0;
	for (int i = 0; i < PQntuples(res) && rc == 0; i++) {
		struct store_console_driver d;

		store_console_driver_row(res, i, &d);
		*total = strtoll(PQgetvalue(res, i, 9), NULL, 10);
		rc = cb(opaque, &d);
	}
out:
	PQclear(res);
	free(sql);
	return rc;
}

/* ---- /stats/overview ---- */

/* Every bucket from the one holding since to the one holding until's last instant, with the
 * window's calls counted by the bucket of their created_at (index-only, covering index). */
static const char SQL_BUCKETS[] = "SELECT " STORE_TS(
    "b.t") ", COALESCE(x.in_progress, 0), COALESCE(x.completed, 0),"
           " COALESCE(x.failed, 0)"
           " FROM generate_series(date_trunc($3, $1::timestamptz, 'UTC'),"
           " $2::timestamptz - interval '1 microsecond', ('1 ' || $3)::interval) AS b(t)"
           " LEFT JOIN (SELECT date_trunc($3, created_at, 'UTC') AS t,"
           " count(*) FILTER (WHERE status = 'in_progress') AS in_progress,"
           " count(*) FILTER (WHERE status = 'completed') AS completed,"
           " count(*) FILTER (WHERE status = 'failed') AS failed"
           " FROM calls WHERE created_at >= $1 AND created_at < $2 GROUP BY 1) x ON x.t = b.t"
           " WHERE $1::timestamptz < $2::timestamptz ORDER BY b.t";

static const char SQL_REASONS[] =
    "SELECT COALESCE(failure_reason, 'unknown'), count(*) FROM calls"
    " WHERE status = 'failed' AND created_at >= $1 AND created_at < $2"
    " GROUP BY 1 ORDER BY 2 DESC, 1 LIMIT 10";

static const char SQL_LATENCY[] =
    "SELECT n, p[1], p[2], p[3] FROM (SELECT count(*) AS n,"
    " percentile_cont(ARRAY[0.5, 0.9, 0.99]) WITHIN GROUP"
    " (ORDER BY extract(epoch FROM dialled_at - created_at) * 1000) AS p"
    " FROM calls WHERE created_at >= $1 AND created_at < $2 AND dialled_at IS NOT NULL) s";

int store_console_overview(struct db *db, const char *since, const char *until, const char *bucket,
                           store_console_bucket_cb *bucket_cb, store_console_reason_cb *reason_cb,
                           void *opaque, struct store_console_latency *latency)
{
	const char *params[3] = {since, until, bucket};
	PGresult *res;
	int rc = 0;

	memset(latency, 0, sizeof *latency);
	res = db_exec(db, SQL_BUCKETS, 3, params);
	if (res == NULL)
		return -1;
	for (int i = 0; i < PQntuples(res) && rc == 0; i++) {
		struct store_console_bucket b = {
		    .start = PQgetvalue(res, i, 0),
		    .in_progress = strtoll(PQgetvalue(res, i, 1), NULL, 10),
		    .completed = strtoll(PQgetvalue(res, i, 2), NULL, 10),
		    .failed = strtoll(PQgetvalue(res, i, 3), NULL, 10),
		};

		rc = bucket_cb(opaque, &b);
	}
	PQclear(res);
	if (rc != 0)
		return rc;
	res = db_exec(db, SQL_REASONS, 2, params);
	if (res == NULL)
		return -1;
	for (int i = 0; i < PQntuples(res) && rc == 0; i++) {
		struct store_console_reason r = {
		    .reason = PQgetvalue(res, i, 0),
		    .count = strtoll(PQgetvalue(res, i, 1), NULL, 10),
		};

		rc = reason_cb(opaque, &r);
	}
	PQclear(res);
	if (rc != 0)
		return rc;
	res = db_exec(db, SQL_LATENCY, 2, params);
	if (res == NULL)
		return -1;
	latency->count = strtoll(PQgetvalue(res, 0, 0), NULL, 10);
	latency->p50 = strtod(PQgetvalue(res, 0, 1), NULL);
	latency->p90 = strtod(PQgetvalue(res, 0, 2), NULL);
	latency->p99 = strtod(PQgetvalue(res, 0, 3), NULL);
	PQclear(res);
	return 0;
}
