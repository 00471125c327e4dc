/* store_calls_int: the calls row as the store modules select and read it (store_calls.c,
 * store_console*.c). Internal to common/store_*.c. */
#ifndef CALLPIPE_STORE_CALLS_INT_H
#define CALLPIPE_STORE_CALLS_INT_H

#include "store_calls.h"

#include <libpq-fe.h>

/* Timestamps as ISO-8601 UTC with milliseconds, like timeutil's time_format_iso_ms(). */
#define STORE_TS(col) "to_char(" col " AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.MS\"Z\"')"

/* The column list every row-returning statement uses, in the order store_call_row() reads. */
#define STORE_CALL_COLUMNS                                                                         \
	"id, call_sid, conversation_id, driver_id, trip_id, status, failure_reason, "              \
	"" STORE_TS("call_start_time") ", " STORE_TS("call_end_time") ", " STORE_TS(               \
	    "created_at") ", " STORE_TS("updated_at") ", " STORE_TS("dial_attempted_at") ", "      \
	                                                                                 "dial_"   \
	                                                                                 "attempt" \
	                                                                                 "s"

/* Reads the STORE_CALL_COLUMNS of row (the first columns of res) into *out. */
void store_call_row(const PGresult *res, int row, struct store_call *out);

struct store_console_driver;

/* Reads one /stats/drivers row (driver_id, calls, completed, failed, in_progress, success_rate,
 * median_duration_s, last_call_at, failure_reasons: columns 0-8, as both the exact and the rollup
 * statements select them) into *out; strings point into res (store_console.c). */
void store_console_driver_row(const PGresult *res, int row, struct store_console_driver *out);

#endif
