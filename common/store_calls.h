/* store_calls: every query on the calls table (design.md §5, migrations 000-005+). All functions
 * take a connected struct db, run parameterised SQL, and return 0 on success or -1 with the
 * error class in db_errclass(db). They work inside or outside a transaction the caller opened. */
#ifndef CALLPIPE_STORE_CALLS_H
#define CALLPIPE_STORE_CALLS_H

#include <stdbool.h>
#include <stdint.h>

struct db;

#define STORE_CALL_IN_PROGRESS "in_progress"
#define STORE_CALL_COMPLETED   "completed"
#define STORE_CALL_FAILED      "failed"

/* The failure_reason of a call whose dial may have placed it (the sweeper's verdict when no
 * answer and no post-call came): the one failed state a post-call may still complete. */
#define STORE_CALL_REASON_UNKNOWN "dial_outcome_unknown"

/* A call row. Strings are copies owned by the struct (fixed buffers); "" means SQL NULL unless a
 * has_* flag says otherwise. Times are ISO-8601 UTC text ("" when NULL). */
struct store_call {
	int64_t id;
	char call_sid[256];
	char conversation_id[256];
	bool has_conversation_id;
	char driver_id[256];
	char trip_id[256];
	char status[16];
	char failure_reason[512];
	char call_start_time[40];
	char call_end_time[40];
	char created_at[40];
	char updated_at[40];
	char dial_attempted_at[40]; /* "" = never attempted */
	int dial_attempts;
};

/* INSERT in_progress with conversation_id NULL and call_start_time now(). An existing row with
 * the same call_sid is left untouched: *created tells which happened. */
__attribute__((warn_unused_result)) int store_call_insert(struct db *db, const char *call_sid,
                                                          const char *driver_id,
                                                          const char *trip_id, bool *created);

/* Fetches by call_sid; *found false (return 0) when there is no such row. */
__attribute__((warn_unused_result)) int store_call_get(struct db *db, const char *call_sid,
                                                       struct store_call *out, bool *found);

/* Fetches by conversation_id (unique where set); *found false (return 0) when none has it. */
__attribute__((warn_unused_result)) int store_call_get_by_conversation(struct db *db,
                                                                       const char *conversation_id,
                                                                       struct store_call *out,
                                                                       bool *found);

/* The dialer's exactly-once guard: atomically records that a dial is being attempted, only if
 * none was recorded before and the call is in_progress. *claimed true means "dial now"; false
 * means a dial was already attempted (outcome unknown or known): never dial again. */
__attribute__((warn_unused_result)) int store_call_claim_dial(struct db *db, const char *call_sid,
                                                              bool *claimed);

/* Sets conversation_id where it is still NULL (idempotent; a different existing value is kept and
 * *changed is false). */
__attribute__((warn_unused_result)) int store_call_set_conversation(struct db *db,
                                                                    const char *call_sid,
                                                                    const char *conversation_id,
                                                                    bool *changed);

/* in_progress -> failed with reason (and call_end_time now()). Final states are not changed. */
__attribute__((warn_unused_result)) int store_call_set_failed(struct db *db, const char *call_sid,
                                                              const char *reason, bool *changed);

/* in_progress -> completed with call_end_time (ISO-8601 text, NULL = now()), filling
 * conversation_id when it is NULL (conversation_id may be NULL). Final states are not changed,
 * except failed with reason dial_outcome_unknown: a post-call proves the call happened. */
__attribute__((warn_unused_result)) int store_call_set_completed(struct db *db,
                                                                 const char *call_sid,
                                                                 const char *end_time,
                                                                 const char *conversation_id,
                                                                 bool *changed);

/* Sweeper: leases up to limit calls in_progress whose call_start_time is older than age_s and
 * whose lease is free, for lease_s seconds (FOR UPDATE SKIP LOCKED, so concurrent sweepers never
 * take the same row). Fills out[0..*n). */
__attribute__((warn_unused_result)) int store_call_lease_stuck(struct db *db, long age_s,
                                                               long lease_s, struct store_call *out,
                                                               int limit, int *n);

/* Row count of calls with conversation_id NULL (migration checks, metrics). */
__attribute__((warn_unused_result)) int store_call_count_null_conversation(struct db *db,
                                                                           int64_t *count);

#endif
