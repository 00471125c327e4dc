/* store_console: the operations console's reads (docs/console.md): the call list with each call's
 * line count, per-driver outcomes and the overview of a window. Same conventions as store_calls.h:
 * a connected struct db, parameterised SQL, 0 or -1 with db_errclass(db). Times in and out are
 * ISO-8601 UTC text; inputs must be valid (the caller parsed them). Migration 008's indexes keep
 * every one of them an index scan (bench/console). */
#ifndef CALLPIPE_STORE_CONSOLE_H
#define CALLPIPE_STORE_CONSOLE_H

#include "store_calls.h"

#include <stdbool.h>
#include <stdint.h>

struct db;

/* GET /calls: "" = no filter. Newest first; after the cursor (created_at, id) when has_cursor. */
struct store_console_filter {
	const char *status;
	const char *driver_id;
	const char *trip_id;
	const char *since; /* created_at >= since */
	const char *until; /* created_at < until */
	bool has_cursor;
	const char *cursor_at; /* microsecond ISO-8601 */
	int64_t cursor_id;
	int limit;
};

struct store_console_call {
	struct store_call call;
	int64_t line_count;
	char last_line_at[40];     /* "" when no line */
	char created_at_exact[40]; /* created_at to the microsecond: the cursor */
};

typedef int store_console_call_cb(void *opaque, const struct store_console_call *c);

/* Calls cb for each call of the page in order; a non-zero return stops and is returned. */
__attribute__((warn_unused_result)) int store_console_calls(struct db *db,
                                                            const struct store_console_filter *f,
                                                            store_console_call_cb *cb,
                                                            void *opaque);

/* /stats/drivers: sort keys (STORE_CONSOLE_SORT_*), direction, page size, optional driver. */
enum store_console_sort {
	STORE_CONSOLE_SORT_CALLS,
	STORE_CONSOLE_SORT_COMPLETED,
	STORE_CONSOLE_SORT_FAILED,
	STORE_CONSOLE_SORT_IN_PROGRESS,
	STORE_CONSOLE_SORT_SUCCESS_RATE,
	STORE_CONSOLE_SORT_MEDIAN,
	STORE_CONSOLE_SORT_LAST_CALL,
	STORE_CONSOLE_SORT_DRIVER,
};

struct store_console_drivers_q {
	const char *since, *until;
	enum store_console_sort sort;
	bool ascending;
	int limit;
	const char *driver_id; /* "" = every driver */
};

/* One driver of the page. Borrowed for the callback. */
struct store_console_driver {
	const char *driver_id;
	int64_t calls, completed, failed, in_progress;
	bool has_success_rate;
	double success_rate;
	bool has_median;
	double median_duration_s;
	const char *last_call_at;
	const char *failure_reasons; /* a JSON object {"reason": n} */
};

typedef int store_console_driver_cb(void *opaque, const struct store_console_driver *d);

/* Calls cb for each driver of the page; *total_drivers is set (0 when the window is empty). */
__attribute__((warn_unused_result)) int store_console_drivers(
    struct db *db, const struct store_console_drivers_q *q, store_console_driver_cb *cb,
    void *opaque, int64_t *total_drivers);

/* The rolling 30-day window from migration 010's maintained rollup (store_console_window.c):
 * advances the window to now() first, then reads the page through the sort key's index; q's
 * since/until are ignored and the window actually used is set in since/until (ISO-8601 UTC,
 * milliseconds). Not for STORE_CONSOLE_SORT_MEDIAN (every driver's median: the exact path). */
#define STORE_CONSOLE_TS_LEN 40
__attribute__((warn_unused_result)) int store_console_drivers_rolling(
    struct db *db, const struct store_console_drivers_q *q, store_console_driver_cb *cb,
    void *opaque, int64_t *total_drivers, char since[STORE_CONSOLE_TS_LEN],
    char until[STORE_CONSOLE_TS_LEN]);

/* Moves the rolling window's cutoff to now() - 30 days (what store_console_drivers_rolling does
 * first); *cutoff_out (may be NULL) gets the new cutoff. 0 or -1. */
__attribute__((warn_unused_result)) int store_console_window_advance(
    struct db *db, char cutoff_out[STORE_CONSOLE_TS_LEN]);

/* /stats/overview. bucket is "hour" or "day". */
struct store_console_bucket {
	const char *start;
	int64_t in_progress, completed, failed;
};
struct store_console_reason {
	const char *reason;
	int64_t count;
};
struct store_console_latency {
	int64_t count;
	double p50, p90, p99; /* milliseconds; meaningless when count is 0 */
};

typedef int store_console_bucket_cb(void *opaque, const struct store_console_bucket *b);
typedef int store_console_reason_cb(void *opaque, const struct store_console_reason *r);

/* Every bucket of [since, until) oldest first (zeros included), the top 10 failure reasons, and
 * the dial latency percentiles of the window. */
__attribute__((warn_unused_result)) int store_console_overview(
    struct db *db, const char *since, const char *until, const char *bucket,
    store_console_bucket_cb *bucket_cb, store_console_reason_cb *reason_cb, void *opaque,
    struct store_console_latency *latency);

#endif
