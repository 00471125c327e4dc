/* store_console_window: GET /stats/drivers over the rolling 30-day window, from migration 010's
 * maintained per-driver rollup (console_driver_window; its header explains why concurrent
 * writers and the advance neither double- nor under-count).
 *
 * A read first advances the window to now() (console_driver_window_advance(): subtracts the
 * calls that left the window since the previous advance, an index range on calls.created_at),
 * in its own short transaction, then reads the cutoff and the page in one statement (one
 * snapshot): the page is an index scan of the sort key's index that stops after `limit` rows,
 * then each page driver's median duration and failure reasons are read from calls through its
 * (driver_id, created_at) index range, one pass for both (a page of 1,000 drivers measured
 * p50 49 ms with two passes, one for each). */
#include "store_console.h"

#include "db.h"
#include "store_calls_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char SQL_ADVANCE[] =
    "SELECT " STORE_TS("c") " FROM console_driver_window_advance() AS c";

/* The rate's expression is the one 010 indexes (console_driver_window_rate). Each order below is
 * written to match an index exactly: the counts are NOT NULL, so "ASC" (nulls last) sorts them
 * as the exact path's "ASC NULLS FIRST" does. */
#define SQL_RATE "console_driver_window_rate(w.completed, w.failed)"
static const char *const store_window_order[][2] = {
    /* {descending, ascending} by enum store_console_sort */
    {"w.calls DESC, w.driver_id", "w.calls, w.driver_id"},
    {"w.completed DESC, w.driver_id", "w.completed, w.driver_id"},
    {"w.failed DESC, w.driver_id", "w.failed, w.driver_id"},
    {"w.in_progress DESC, w.driver_id", "w.in_progress, w.driver_id"},
    {SQL_RATE " DESC NULLS LAST, w.driver_id", SQL_RATE " ASC NULLS FIRST, w.driver_id"},
    {NULL, NULL}, /* median: the exact path */
    {"w.last_call_at DESC, w.driver_id", "w.last_call_at, w.driver_id"},
    {"w.driver_id DESC", "w.driver_id"},
};

/* The same orders over the page's output columns (p.*), for the final ordering of the rows. */
static const char *const store_window_order_out[][2] = {
    {"p.calls DESC, p.driver_id", "p.calls, p.driver_id"},
    {"p.completed DESC, p.driver_id", "p.completed, p.driver_id"},
    {"p.failed DESC, p.driver_id", "p.failed, p.driver_id"},
    {"p.in_progress DESC, p.driver_id", "p.in_progress, p.driver_id"},
    {"p.success_rate DESC NULLS LAST, p.driver_id", "p.success_rate ASC NULLS FIRST, p.driver_id"},
    {NULL, NULL},
    {"p.last_call_at DESC, p.driver_id", "p.last_call_at, p.driver_id"},
    {"p.driver_id DESC", "p.driver_id"},
};

/* $1 driver_id or NULL, $2 limit. The state is read with LIMIT 1: its one row is updated by every
 * advance and rarely analyzed, and an estimate of the default thousand rows made the plan's cost
 * high enough to be JIT-compiled (measured: 260 ms of compilation for a 3 ms query). One row
 * with a NULL driver when the window has no driver (the cutoff is still returned). */
static const char SQL_ROLLING_HEAD[] =
    "WITH s AS (SELECT cutoff, now() AS until FROM console_driver_window_state LIMIT 1),"
    " page AS (SELECT w.driver_id, w.calls, w.completed, w.failed, w.in_progress,"
    " " SQL_RATE " AS success_rate, w.last_call_at FROM console_driver_window w"
    " WHERE ($1::text IS NULL OR w.driver_id = $1) ORDER BY ";
static const char SQL_ROLLING_TAIL[] =
    " LIMIT $2)"
    " SELECT p.driver_id, p.calls, p.completed, p.failed, p.in_progress, p.success_rate,"
    " x.median, " STORE_TS(
        "p.last_call_at") ", COALESCE((SELECT json_object_agg(y.r, y.n"
                          " ORDER BY y.r)::text FROM (SELECT r, count(*) AS n FROM "
                          "unnest(x.reasons) AS r GROUP BY r)"
                          " y), '{}'),"
                          " (SELECT count(*) FROM console_driver_window w WHERE $1::text IS NULL "
                          "OR w.driver_id = $1),"
                          " " STORE_TS("s.cutoff") ", " STORE_TS(
                              "s.until") " FROM s LEFT JOIN page p ON true"
                                         " LEFT JOIN LATERAL (SELECT percentile_cont(0.5) WITHIN "
                                         "GROUP (ORDER BY extract(epoch FROM"
                                         " c.call_end_time - c.call_start_time)) FILTER (WHERE "
                                         "c.status = 'completed'"
                                         " AND c.call_end_time IS NOT NULL AND c.call_start_time "
                                         "IS NOT NULL) AS median,"
                                         " array_agg(COALESCE(c.failure_reason, 'unknown')) FILTER "
                                         "(WHERE c.status = 'failed')"
                                         " AS reasons FROM calls c WHERE c.driver_id = p.driver_id "
                                         "AND c.created_at >= s.cutoff) x"
                                         " ON p.driver_id IS NOT NULL"
                                         " ORDER BY ";

int store_console_window_advance(struct db *db, char cutoff_out[STORE_CONSOLE_TS_LEN])
{
	PGresult *res = db_exec(db, SQL_ADVANCE, 0, NULL);

	if (res == NULL || PQntuples(res) != 1) {
		PQclear(res);
		return -1;
	}
	if (cutoff_out != NULL)
		snprintf(cutoff_out, STORE_CONSOLE_TS_LEN, "%s", PQgetvalue(res, 0, 0));
	PQclear(res);
	return 0;
}

int store_console_drivers_rolling(struct db *db, const struct store_console_drivers_q *q,
                                  store_console_driver_cb *cb, void *opaque, int64_t *total_drivers,
                                  char since[STORE_CONSOLE_TS_LEN],
                                  char until[STORE_CONSOLE_TS_LEN])
{
	char lim[16], sql[sizeof SQL_ROLLING_HEAD + sizeof SQL_ROLLING_TAIL + 256];
	const char *params[2] = {
	    q->driver_id != NULL && q->driver_id[0] != '\0' ? q->driver_id : NULL, lim};
	int dir = q->ascending ? 1 : 0;
	PGresult *res = NULL;
	int rc = -1;

	*total_drivers = 0;
	since[0] = until[0] = '\0';
	if ((unsigned)q->sort >= sizeof store_window_order / sizeof store_window_order[0] ||
	    store_window_order[q->sort][dir] == NULL)
		return -1;
	if (store_console_window_advance(db, NULL) != 0)
		return -1;
	snprintf(lim, sizeof lim, "%d", q->limit);
	snprintf(sql, sizeof sql, "%s%s%s%s", SQL_ROLLING_HEAD, store_window_order[q->sort][dir],
	         SQL_ROLLING_TAIL, store_window_order_out[q->sort][dir]);
	res = db_exec(db, sql, 2, params);
	if (res == NULL || PQntuples(res) < 1)
		goto out;
	snprintf(since, STORE_CONSOLE_TS_LEN, "%s", PQgetvalue(res, 0, 10));
	snprintf(until, STORE_CONSOLE_TS_LEN, "%s", PQgetvalue(res, 0, 11));
	rc = 0;
	for (int i = 0; i < PQntuples(res) && rc == 0; i++) {
		struct store_console_driver d;

		if (PQgetisnull(res, i, 0))
			continue; /* the window has no driver */
		store_console_driver_row(res, i, &d);
		*total_drivers = strtoll(PQgetvalue(res, i, 9), NULL, 10);
		rc = cb(opaque, &d);
	}
out:
	PQclear(res);
	return rc;
}
