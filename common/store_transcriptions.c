/* store_transcriptions: every query on call_transcriptions: reading a transcript, the per-call
 * write lock, and the sequence-numbered writes: here the batch append; the writes of one line at
 * a time (placed insert, reconciliation, savepoint) are in store_transcriptions_line.c.
 *
 * The batch write reads calls in the same statement (the two-step lookup call_sid -> call ->
 * conversation_id) so that the lookup and the insert see one snapshot and cost one round trip;
 * it writes only call_transcriptions. */
#include "store_transcriptions.h"

#include "db.h"
#include "db_int.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* First key of the two-key advisory lock: the keyspace of "transcription writes of a call". */
#define STORE_TX_LOCK_SPACE "1951560417"

static const char SQL_LIST[] =
    "SELECT id, sequence_number, speaker, message, event_id, "
    "to_char(created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.MS\"Z\"') "
    "FROM call_transcriptions WHERE conversation_id = $1 ORDER BY sequence_number";

/* The subquery's ORDER BY fixes the order in which the locks are taken. */
static const char SQL_LOCK[] =
    "SELECT count(*) FROM (SELECT pg_advisory_xact_lock(" STORE_TX_LOCK_SPACE ", h) "
    "FROM (SELECT DISTINCT hashtext(k) AS h FROM unnest($1::text[]) AS k ORDER BY 1) s) l";

/* The batch append, in steps:
 *   resolved  each line with its call (two-step lookup call_sid -> call -> conversation_id) and
 *             whether its event is stored already;
 *   ready     every line, eligible when its call is found, not failed, with a conversation_id
 *             and its event not stored yet; those each with the newest stored line of its
 *             conversation, found from the end of the
 *             (conversation_id, sequence_number) index: one probe gives both the current maximum
 *             and, normally, the newest offset of the line's partition (a conversation's lines
 *             with offsets are in offset order by sequence number: appends only take newer
 *             offsets, placed lines go right after their predecessor). Only when the newest line
 *             has no offset of that partition (a reconciled copy, a legacy row) is the
 *             conversation walked back for one. And whether the reconciliation stored the line
 *             already (the partial index of migration 006, which holds only reconciled lines):
 *             asked only of calls no longer in progress, because the reconciliation runs in the
 *             transaction that completes the call and nothing moves a call back to in_progress;
 *   fresh     of those, the ones not older than a stored line of their partition, numbered per
 *             conversation after the current maximum in offset order. The inserted rows are not
 *             visible to the probes (one snapshot), so the numbering is max + 1, max + 2, ...
 * The result is ready joined to what was inserted, in no order (the caller places rows by ord).
 * Every probe is a LIMIT 1 index lookup per line (the lines of one conversation get the same
 * answers from the same snapshot). Measured against a version that probed once per distinct
 * conversation and joined back (a hash aggregate and hash and merge joins per round, a sort):
 * 1-2 ms less per 500-line round of ~10; the guarded reconciled probe ~0.5 ms (bench/README.md).
 * The newest offset used to be looked up per line with a filter on the partition: the planner read
 * every line of the conversation through a bitmap scan and sorted them. An EXISTS may become a
 * hashed subplan that reads the whole table once per batch. */
#define SQL_BATCH_INPUT                                                                    \
	"WITH input AS ("                                                                  \
	" SELECT * FROM unnest($1::int[], $2::text[], $3::text[], $4::text[], $5::text[]," \
	" $6::int[], $7::bigint[])"                                                        \
	" AS u(ord, call_sid, speaker, message, event_id, source_partition, source_offset)),"
#define SQL_BATCH_PRESENT                                                                \
	"COALESCE((SELECT true FROM call_transcriptions t WHERE t.event_id = i.event_id" \
	" LIMIT 1), false)"
#define SQL_BATCH_STEPS(present, guard, on_conflict)                                               \
	"resolved AS ("                                                                            \
	" SELECT i.*, c.id AS call_id, c.conversation_id, c.status, " present " AS present"        \
	" FROM input i LEFT JOIN calls c ON c.call_sid = i.call_sid),"                             \
	"ready AS ("                                                                               \
	" SELECT r.*,"                                                                             \
	" (NOT r.present AND r.conversation_id IS NOT NULL AND r.status <> 'failed') AS eligible," \
	" COALESCE(l.sequence_number, 0) AS max_seq,"                                              \
	" CASE WHEN l.sequence_number IS NULL THEN NULL"                                           \
	" WHEN l.source_partition = r.source_partition AND l.source_offset IS NOT NULL"            \
	" THEN l.source_offset"                                                                    \
	" ELSE (SELECT t.source_offset FROM call_transcriptions t"                                 \
	" WHERE t.conversation_id = r.conversation_id AND t.source_partition = r.source_partition" \
	" AND t.source_offset IS NOT NULL ORDER BY t.sequence_number DESC LIMIT 1) END"            \
	" AS max_offset,"                                                                          \
	" CASE WHEN r.status = 'in_progress' OR r.conversation_id IS NULL THEN false"              \
	" ELSE COALESCE((SELECT true FROM call_transcriptions t"                                   \
	" WHERE t.conversation_id = r.conversation_id AND t.event_id LIKE 'postcall:%'"            \
	" AND t.speaker = r.speaker AND t.message = r.message LIMIT 1), false) END AS reconciled"  \
	" FROM resolved r LEFT JOIN LATERAL (SELECT t.sequence_number, t.source_partition,"        \
	" t.source_offset FROM call_transcriptions t WHERE t.conversation_id = r.conversation_id"  \
	" AND NOT r.present AND r.status <> 'failed'"                                              \
	" ORDER BY t.sequence_number DESC LIMIT 1) l ON true),"                                    \
	"fresh AS ("                                                                               \
	" SELECT r.*, row_number() OVER (PARTITION BY r.conversation_id"                           \
	" ORDER BY r.source_offset NULLS LAST, r.ord) AS rn"                                       \
	" FROM ready r WHERE r.eligible AND NOT r.reconciled"                                      \
	" AND (r.max_offset IS NULL OR r.source_offset IS NULL"                                    \
	" OR r.source_offset > r.max_offset)),"                                                    \
	"ins AS ("                                                                                 \
	" INSERT INTO call_transcriptions (conversation_id, speaker, message, sequence_number,"    \
	" event_id, source_partition, source_offset)"                                              \
	" SELECT f.conversation_id, f.speaker, f.message, f.max_seq + f.rn,"                       \
	" f.event_id, f.source_partition, f.source_offset FROM fresh f" guard on_conflict          \
	" RETURNING event_id, id, sequence_number)"                                                \
	"SELECT r.ord, r.call_id IS NOT NULL, r.status, r.conversation_id, r.present,"             \
	" r.eligible AND r.reconciled, ins.id, ins.sequence_number"                                \
	" FROM ready r LEFT JOIN ins ON ins.event_id = r.event_id"

/* A line older than a stored line of its partition (not a reconciled copy): OUT_OF_ORDER. */
#define SQL_BATCH_LATE                                                                   \
	" WHERE NOT EXISTS (SELECT 1 FROM ready r WHERE r.eligible AND NOT r.reconciled" \
	" AND r.max_offset IS NOT NULL AND r.source_offset IS NOT NULL"                  \
	" AND r.source_offset <= r.max_offset)"

/* STORE_TX_CHECK_EVENTS looks each event up, and keeps ON CONFLICT for a writer that did not take
 * the lock; STORE_TX_ASSUME_NEW lets the insert's own unique check find a stored event (an error:
 * numbers were handed out assuming every line is new). SQL_INSERT_WHOLE (store_transcription_write,
 * committed in the same round trip) writes nothing when a line is late, so that the round can be
 * written again checking each event. */
static const char SQL_INSERT_CHECKED[] =
    SQL_BATCH_INPUT SQL_BATCH_STEPS(SQL_BATCH_PRESENT, "", " ON CONFLICT (event_id) DO NOTHING");
static const char SQL_INSERT_NEW[] = SQL_BATCH_INPUT SQL_BATCH_STEPS("false", "", "");
static const char SQL_INSERT_WHOLE[] = SQL_BATCH_INPUT SQL_BATCH_STEPS("false", SQL_BATCH_LATE, "");

/* The round's statements run prepared: parsing and planning the batch insert cost ~1 ms, a tenth
 * of a 500-line round. The generic plan the server settles on after five runs is as fast as the
 * custom ones (measured). */
static const struct db_stmt STMT_LOCK = {"store_tx_lock", SQL_LOCK, 1};
static const struct db_stmt STMT_INSERT_CHECKED = {"store_tx_insert_checked", SQL_INSERT_CHECKED,
                                                   7};
static const struct db_stmt STMT_INSERT_NEW = {"store_tx_insert_new", SQL_INSERT_NEW, 7};
static const struct db_stmt STMT_INSERT_WHOLE = {"store_tx_insert_whole", SQL_INSERT_WHOLE, 7};

#define STORE_TX_EVENT_ID_CONSTRAINT "uq_call_transcriptions_event_id" /* migration 005 */

int store_transcription_list(struct db *db, const char *conversation_id, store_line_cb *cb,
                             void *opaque)
{
	const char *params[1] = {conversation_id};
	PGresult *res = db_exec(db, SQL_LIST, 1, params);
	int rc = -1;

	if (!res)
		goto out;
	rc = 0;
	for (int i = 0; i < PQntuples(res) && rc == 0; i++) {
		struct store_line line = {
		    .id = strtoll(PQgetvalue(res, i, 0), NULL, 10),
		    .sequence_number = atoi(PQgetvalue(res, i, 1)),
		    .speaker = PQgetvalue(res, i, 2),
		    .message = PQgetvalue(res, i, 3),
		    .event_id = PQgetisnull(res, i, 4) ? NULL : PQgetvalue(res, i, 4),
		    .created_at = PQgetvalue(res, i, 5),
		};
		rc = cb(opaque, &line);
	}
out:
	PQclear(res);
	return rc;
}

/* A growing buffer for Postgres array literals. */
struct store_arr {
	char *buf;
	size_t len, cap;
	bool oom;
	size_t count;
};

static void store_arr_put(struct store_arr *a, const char *s, size_t n)
{
	if (a->oom)
		return;
	if (a->len + n + 2 > a->cap) {
		size_t cap = a->cap ? a->cap : 256;
		char *p;

		while (a->len + n + 2 > cap)
			cap *= 2;
		p = realloc(a->buf, cap);
		if (!p) {
			a->oom = true;
			return;
		}
		a->buf = p;
		a->cap = cap;
	}
	memcpy(a->buf + a->len, s, n);
	a->len += n;
	a->buf[a->len] = '\0';
}

/* Appends one element: NULL, or the text double-quoted with " and \ escaped. */
static void store_arr_add(struct store_arr *a, const char *s)
{
	store_arr_put(a, a->count++ ? "," : "{", 1);
	if (!s) {
		store_arr_put(a, "NULL", 4);
		return;
	}
	store_arr_put(a, "\"", 1);
	for (const char *p = s; *p; p++) {
		const char *run = p;

		while (*p && *p != '"' && *p != '\\')
			p++;
		store_arr_put(a, run, (size_t)(p - run));
		if (!*p)
			break;
		store_arr_put(a, "\\", 1);
		store_arr_put(a, p, 1);
	}
	store_arr_put(a, "\"", 1);
}

static void store_arr_add_int(struct store_arr *a, int64_t v, bool null)
{
	char num[32];

	snprintf(num, sizeof num, "%" PRId64, v);
	store_arr_add(a, null ? NULL : num);
}

/* Closes the literal; returns the text or NULL when out of memory. */
static const char *store_arr_end(struct store_arr *a)
{
	store_arr_put(a, a->count ? "}" : "{}", a->count ? 1 : 2);
	return a->oom ? NULL : a->buf;
}

int store_transcription_lock_calls(struct db *db, const char *const *call_sids, size_t n)
{
	struct store_arr keys = {0};
	const char *params[1];
	PGresult *res = NULL;
	int rc = -1;

	for (size_t i = 0; i < n; i++)
		store_arr_add(&keys, call_sids[i]);
	params[0] = store_arr_end(&keys);
	if (!params[0] || !(res = db_exec_stmt(db, &STMT_LOCK, params)))
		goto out;
	rc = 0;
out:
	PQclear(res);
	free(keys.buf);
	return rc;
}

static bool store_bool(const PGresult *res, int row, int col)
{
	return !PQgetisnull(res, row, col) && PQgetvalue(res, row, col)[0] == 't';
}

/* Maps one result row of the batch insert to a state. */
static void store_batch_row(const PGresult *res, int row, struct store_tx_result *r)
{
	memset(r, 0, sizeof *r);
	if (!PQgetisnull(res, row, 3))
		snprintf(r->conversation_id, sizeof r->conversation_id, "%s",
		         PQgetvalue(res, row, 3));
	if (!store_bool(res, row, 1))
		r->state = STORE_TX_UNKNOWN_CALL;
	else if (store_bool(res, row, 4))
		r->state = STORE_TX_PRESENT;
	else if (strcmp(PQgetvalue(res, row, 2), "failed") == 0)
		r->state = STORE_TX_CALL_FAILED;
	else if (PQgetisnull(res, row, 3))
		r->state = STORE_TX_NO_CONVERSATION;
	else if (store_bool(res, row, 5))
		r->state = STORE_TX_RECONCILED;
	else if (!PQgetisnull(res, row, 6)) {
		r->state = STORE_TX_INSERTED;
		r->id = strtoll(PQgetvalue(res, row, 6), NULL, 10);
		r->sequence_number = atoi(PQgetvalue(res, row, 7));
	} else
		r->state = STORE_TX_OUT_OF_ORDER;
}

/* The batch insert's seven parameters: arrays of the lines' fields. NULL when out of memory. */
static const char *const *store_batch_params(struct store_arr arr[7], const char *params[7],
                                             const struct store_tx_line *lines, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		const struct store_tx_line *l = &lines[i];

		store_arr_add_int(&arr[0], (int64_t)i, false);
		store_arr_add(&arr[1], l->call_sid);
		store_arr_add(&arr[2], l->speaker);
		store_arr_add(&arr[3], l->message);
		store_arr_add(&arr[4], l->event_id);
		store_arr_add_int(&arr[5], l->source_partition, l->source_partition < 0);
		store_arr_add_int(&arr[6], l->source_offset, l->source_offset < 0);
	}
	for (int k = 0; k < 7; k++)
		if (!(params[k] = store_arr_end(&arr[k])))
			return NULL;
	return params;
}

/* Fills out[0..n) from the batch insert's result. Returns 0, or -1 (recorded as a permanent
 * error) when the rows do not match the lines. */
static int store_batch_results(struct db *db, const PGresult *res, size_t n,
                               struct store_tx_result *out)
{
	if ((size_t)PQntuples(res) != n) { /* one row per line: cannot happen */
		db_set_error(db, DB_ERR_PERMANENT, NULL,
		             "batch insert: one result row per line expected");
		return -1;
	}
	for (int row = 0; row < PQntuples(res); row++) {
		long ord = strtol(PQgetvalue(res, row, 0), NULL, 10);

		if (ord >= 0 && (size_t)ord < n)
			store_batch_row(res, row, &out[ord]);
	}
	return 0;
}

static const struct db_stmt *store_batch_stmt(enum store_tx_check check)
{
	return check == STORE_TX_ASSUME_NEW ? &STMT_INSERT_NEW : &STMT_INSERT_CHECKED;
}

int store_transcription_insert_batch(struct db *db, const struct store_tx_line *lines, size_t n,
                                     enum store_tx_check check, struct store_tx_result *out)
{
	struct store_arr arr[7] = {{0}};
	const char *params[7];
	PGresult *res = NULL;
	int rc = -1;

	if (n == 0)
		return 0;
	if (!store_batch_params(arr, params, lines, n) ||
	    !(res = db_exec_stmt(db, store_batch_stmt(check), params)))
		goto out;
	rc = store_batch_results(db, res, n, out);
out:
	PQclear(res);
	for (int k = 0; k < 7; k++)
		free(arr[k].buf);
	return rc;
}

/* BEGIN, the locks and the batch insert (insert), in one round trip; COMMIT too when commit. */
static int store_write_round(struct db *db, const char *const *call_sids, size_t ncalls,
                             const struct store_tx_line *lines, size_t n,
                             const struct db_stmt *insert_stmt, bool commit,
                             struct store_tx_result *out, db_idle_fn *idle, void *opaque)
{
	const struct db_stmt *stmts[2] = {&STMT_LOCK, insert_stmt};
	struct store_arr keys = {0}, arr[7] = {{0}};
	const char *lock[1], *insert[7];
	const char *const *params[2] = {lock, insert};
	PGresult *res[2] = {NULL, NULL};
	int rc = -1;

	for (size_t i = 0; i < ncalls; i++)
		store_arr_add(&keys, call_sids[i]);
	if (!(lock[0] = store_arr_end(&keys)) ||
	    (n > 0 && !store_batch_params(arr, insert, lines, n))) {
		db_set_error(db, DB_ERR_TRANSIENT, NULL, "out of memory building a batch");
		goto out;
	}
	if ((commit ? db_write_pipeline : db_begin_pipeline)(db, stmts, params, n > 0 ? 2 : 1, res,
	                                                     idle, opaque) < 0)
		goto out;
	rc = n > 0 ? store_batch_results(db, res[1], n, out) : 0;
out:
	PQclear(res[0]);
	PQclear(res[1]);
	free(keys.buf);
	for (int k = 0; k < 7; k++)
		free(arr[k].buf);
	return rc;
}

int store_transcription_begin_write(struct db *db, const char *const *call_sids, size_t ncalls,
                                    const struct store_tx_line *lines, size_t n,
                                    enum store_tx_check check, struct store_tx_result *out,
                                    db_idle_fn *idle, void *opaque)
{
	return store_write_round(db, call_sids, ncalls, lines, n, store_batch_stmt(check), false,
	                         out, idle, opaque);
}

int store_transcription_write(struct db *db, const char *const *call_sids, size_t ncalls,
                              const struct store_tx_line *lines, size_t n,
                              struct store_tx_result *out, db_idle_fn *idle, void *opaque)
{
	return store_write_round(db, call_sids, ncalls, lines, n, &STMT_INSERT_WHOLE, true, out,
	                         idle, opaque);
}

bool store_transcription_was_stored(const struct db *db)
{
	return strcmp(db_sqlstate(db), "23505") == 0 &&
	       strcmp(db_constraint(db), STORE_TX_EVENT_ID_CONSTRAINT) == 0;
}
