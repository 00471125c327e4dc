/* store_calls: every query on the calls table (design.md §5), parameterised, on a struct db. */
#include "store_calls.h"

#include "db.h"
#include "store_calls_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum {
	COL_ID,
	COL_CALL_SID,
	COL_CONVERSATION_ID,
	COL_DRIVER_ID,
	COL_TRIP_ID,
	COL_STATUS,
	COL_FAILURE_REASON,
	COL_CALL_START_TIME,
	COL_CALL_END_TIME,
	COL_CREATED_AT,
	COL_UPDATED_AT,
	COL_DIAL_ATTEMPTED_AT,
	COL_DIAL_ATTEMPTS,
};

static const char SQL_INSERT[] =
    "INSERT INTO calls (call_sid, driver_id, trip_id, status, call_start_time) "
    "VALUES ($1, $2, $3, 'in_progress', now()) "
    "ON CONFLICT (call_sid) DO NOTHING RETURNING id";

static const char SQL_GET[] = "SELECT " STORE_CALL_COLUMNS " FROM calls WHERE call_sid = $1";
static const char SQL_GET_BY_CONVERSATION[] =
    "SELECT " STORE_CALL_COLUMNS " FROM calls WHERE conversation_id = $1";

/* One UPDATE, so two dialers racing on the same call_sid cannot both win: the loser re-checks
 * the WHERE clause on the winner's committed row and matches nothing. */
static const char SQL_CLAIM_DIAL[] =
    "UPDATE calls SET dial_attempted_at = now(), dial_attempts = dial_attempts + 1, "
    "updated_at = now() "
    "WHERE call_sid = $1 AND dial_attempted_at IS NULL AND status = 'in_progress' "
    "RETURNING id";

static const char SQL_SET_CONVERSATION[] =
    "UPDATE calls SET conversation_id = $2, dialled_at = now(), updated_at = now() "
    "WHERE call_sid = $1 AND conversation_id IS NULL RETURNING id";

static const char SQL_SET_FAILED[] = "UPDATE calls SET status = 'failed', failure_reason = $2, "
                                     "call_end_time = now(), updated_at = now() "
                                     "WHERE call_sid = $1 AND status = 'in_progress' RETURNING id";

/* A call the sweeper gave up on as dial_outcome_unknown (the dialer crashed between claim and
 * answer, and no post-call had arrived yet) is the one failed state a post-call may overturn:
 * the post-call is proof the call happened. Every other final state stays as it is. */
static const char SQL_SET_COMPLETED[] =
    "UPDATE calls SET status = 'completed', "
    "call_end_time = COALESCE($2::timestamptz, now()), "
    "conversation_id = COALESCE(conversation_id, $3), failure_reason = NULL, updated_at = now(), "
    "dialled_at = CASE WHEN conversation_id IS NULL AND $3 IS NOT NULL THEN now() "
    "ELSE dialled_at END "
    "WHERE call_sid = $1 AND (status = 'in_progress' OR "
    "(status = 'failed' AND failure_reason = 'dial_outcome_unknown')) RETURNING id";

/* The lease is sweeper bookkeeping, not a change to the call: updated_at is left alone. SKIP
 * LOCKED makes concurrent sweepers take disjoint rows; READ COMMITTED re-checks the lease
 * condition on rows another sweeper leased and committed meanwhile. */
static const char SQL_LEASE_STUCK[] =
    "UPDATE calls SET sweep_lease_until = now() + make_interval(secs => $2::float8) "
    "WHERE id IN (SELECT id FROM calls "
    "WHERE status = 'in_progress' "
    "AND call_start_time < now() - make_interval(secs => $1::float8) "
    "AND (sweep_lease_until IS NULL OR sweep_lease_until < now()) "
    "ORDER BY call_start_time, id LIMIT $3 FOR UPDATE SKIP LOCKED) "
    "RETURNING " STORE_CALL_COLUMNS;

static const char SQL_COUNT_NULL_CONVERSATION[] =
    "SELECT count(*) FROM calls WHERE conversation_id IS NULL";

/* Copies column col of row into dst ("" for NULL), truncating to size. */
static void store_copy(const PGresult *res, int row, int col, char *dst, size_t size)
{
	snprintf(dst, size, "%s", PQgetisnull(res, row, col) ? "" : PQgetvalue(res, row, col));
}

void store_call_row(const PGresult *res, int row, struct store_call *out)
{
	memset(out, 0, sizeof *out);
	out->id = strtoll(PQgetvalue(res, row, COL_ID), NULL, 10);
	store_copy(res, row, COL_CALL_SID, out->call_sid, sizeof out->call_sid);
	out->has_conversation_id = !PQgetisnull(res, row, COL_CONVERSATION_ID);
	store_copy(res, row, COL_CONVERSATION_ID, out->conversation_id,
	           sizeof out->conversation_id);
	store_copy(res, row, COL_DRIVER_ID, out->driver_id, sizeof out->driver_id);
	store_copy(res, row, COL_TRIP_ID, out->trip_id, sizeof out->trip_id);
	store_copy(res, row, COL_STATUS, out->status, sizeof out->status);
	store_copy(res, row, COL_FAILURE_REASON, out->failure_reason, sizeof out->failure_reason);
	store_copy(res, row, COL_CALL_START_TIME, out->call_start_time,
	           sizeof out->call_start_time);
	store_copy(res, row, COL_CALL_END_TIME, out->call_end_time, sizeof out->call_end_time);
	store_copy(res, row, COL_CREATED_AT, out->created_at, sizeof out->created_at);
	store_copy(res, row, COL_UPDATED_AT, out->updated_at, sizeof out->updated_at);
	store_copy(res, row, COL_DIAL_ATTEMPTED_AT, out->dial_attempted_at,
	           sizeof out->dial_attempted_at);
	out->dial_attempts = atoi(PQgetvalue(res, row, COL_DIAL_ATTEMPTS));
}

/* Runs a statement that RETURNs at most one row; *hit says whether it did. */
static int store_call_exec_hit(struct db *db, const char *sql, int nparams,
                               const char *const *params, bool *hit)
{
	PGresult *res = db_exec(db, sql, nparams, params);

	if (!res)
		return -1;
	*hit = PQntuples(res) > 0;
	PQclear(res);
	return 0;
}

int store_call_insert(struct db *db, const char *call_sid, const char *driver_id,
                      const char *trip_id, bool *created)
{
	const char *params[] = {call_sid, driver_id, trip_id};

	return store_call_exec_hit(db, SQL_INSERT, 3, params, created);
}

/* Runs a one-parameter SELECT of at most one call row into *out. */
static int store_call_get_one(struct db *db, const char *sql, const char *param,
                              struct store_call *out, bool *found)
{
	const char *params[] = {param};
	PGresult *res = db_exec(db, sql, 1, params);

	if (!res)
		return -1;
	*found = PQntuples(res) > 0;
	if (*found)
		store_call_row(res, 0, out);
	PQclear(res);
	return 0;
}

int store_call_get(struct db *db, const char *call_sid, struct store_call *out, bool *found)
{
	return store_call_get_one(db, SQL_GET, call_sid, out, found);
}

int store_call_get_by_conversation(struct db *db, const char *conversation_id,
                                   struct store_call *out, bool *found)
{
	return store_call_get_one(db, SQL_GET_BY_CONVERSATION, conversation_id, out, found);
}

int store_call_claim_dial(struct db *db, const char *call_sid, bool *claimed)
{
	const char *params[] = {call_sid};

	return store_call_exec_hit(db, SQL_CLAIM_DIAL, 1, params, claimed);
}

int store_call_set_conversation(struct db *db, const char *call_sid, const char *conversation_id,
                                bool *changed)
{
	const char *params[] = {call_sid, conversation_id};

	return store_call_exec_hit(db, SQL_SET_CONVERSATION, 2, params, changed);
}

int store_call_set_failed(struct db *db, const char *call_sid, const char *reason, bool *changed)
{
	const char *params[] = {call_sid, reason};

	return store_call_exec_hit(db, SQL_SET_FAILED, 2, params, changed);
}

int store_call_set_completed(struct db *db, const char *call_sid, const char *end_time,
                             const char *conversation_id, bool *changed)
{
	const char *params[] = {call_sid, end_time, conversation_id};

	return store_call_exec_hit(db, SQL_SET_COMPLETED, 3, params, changed);
}

int store_call_lease_stuck(struct db *db, long age_s, long lease_s, struct store_call *out,
                           int limit, int *n)
{
	char age[32], lease[32], lim[32];
	const char *params[] = {age, lease, lim};
	PGresult *res;
	int rows;

	*n = 0;
	if (limit <= 0)
		return 0;
	snprintf(age, sizeof age, "%ld", age_s);
	snprintf(lease, sizeof lease, "%ld", lease_s);
	snprintf(lim, sizeof lim, "%d", limit);
	res = db_exec(db, SQL_LEASE_STUCK, 3, params);
	if (!res)
		return -1;
	rows = PQntuples(res);
	for (int i = 0; i < rows && i < limit; i++)
		store_call_row(res, i, &out[i]);
	*n = rows < limit ? rows : limit;
	PQclear(res);
	return 0;
}

int store_call_count_null_conversation(struct db *db, int64_t *count)
{
	PGresult *res = db_exec(db, SQL_COUNT_NULL_CONVERSATION, 0, NULL);

	if (!res)
		return -1;
	*count = strtoll(PQgetvalue(res, 0, 0), NULL, 10);
	PQclear(res);
	return 0;
}
