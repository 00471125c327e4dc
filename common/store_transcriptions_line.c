/* store_transcriptions_line: the writes of one line at a time: a late line placed by its offset,
 * the reconciliation's appends, and the per-message savepoint (store_transcriptions.h). */
#include "store_transcriptions.h"

#include "db.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char SQL_PRESENT[] =
    "SELECT EXISTS (SELECT 1 FROM call_transcriptions WHERE event_id = $1),"
    " EXISTS (SELECT 1 FROM call_transcriptions WHERE conversation_id = $2"
    " AND event_id LIKE 'postcall:%' AND speaker = $3 AND message = $4)";

/* The place of a line: after its predecessor by offset in the same partition, else first. */
static const char SQL_PLACE[] =
    "WITH p AS (SELECT COALESCE((SELECT sequence_number FROM call_transcriptions"
    " WHERE conversation_id = $1 AND source_partition = $2 AND source_offset < $3"
    " ORDER BY source_offset DESC LIMIT 1), 0) + 1 AS seq)"
    " SELECT p.seq, EXISTS (SELECT 1 FROM call_transcriptions"
    " WHERE conversation_id = $1 AND sequence_number = p.seq) FROM p";

/* Moving lines up by one in two steps, through negative numbers, because the unique constraint
 * is checked row by row: a direct "+ 1" would collide with the next row half-way. */
static const char SQL_SHIFT_OUT[] =
    "UPDATE call_transcriptions SET sequence_number = -(sequence_number + 1)"
    " WHERE conversation_id = $1 AND sequence_number >= $2";
static const char SQL_SHIFT_BACK[] =
    "UPDATE call_transcriptions SET sequence_number = -sequence_number"
    " WHERE conversation_id = $1 AND sequence_number < 0";

static const char SQL_INSERT_AT[] =
    "INSERT INTO call_transcriptions (conversation_id, speaker, message, sequence_number,"
    " event_id, source_partition, source_offset)"
    " VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING id";

static const char SQL_APPEND[] =
    "INSERT INTO call_transcriptions (conversation_id, speaker, message, sequence_number,"
    " event_id)"
    " SELECT $1::text, $2, $3, COALESCE(max(sequence_number), 0) + 1, $4"
    " FROM call_transcriptions WHERE conversation_id = $1::text"
    " ON CONFLICT (event_id) DO NOTHING RETURNING id";

static bool store_line_bool(const PGresult *res, int row, int col)
{
	return !PQgetisnull(res, row, col) && PQgetvalue(res, row, col)[0] == 't';
}

/* Checks whether the line is stored already; sets out->state and *done when it is. */
static int store_check_present(struct db *db, const char *conversation_id,
                               const struct store_tx_line *line, struct store_tx_result *out,
                               bool *done)
{
	const char *params[4] = {line->event_id, conversation_id, line->speaker, line->message};
	PGresult *res = db_exec(db, SQL_PRESENT, 4, params);

	if (!res)
		return -1;
	*done = true;
	if (store_line_bool(res, 0, 0))
		out->state = STORE_TX_PRESENT;
	else if (store_line_bool(res, 0, 1))
		out->state = STORE_TX_RECONCILED;
	else
		*done = false;
	PQclear(res);
	return 0;
}

int store_transcription_insert_placed(struct db *db, const char *conversation_id,
                                      const struct store_tx_line *line, struct store_tx_result *out)
{
	char part[16], off[32], seq[16];
	const char *pp[3] = {conversation_id, part, off};
	const char *ps[2] = {conversation_id, seq};
	const char *pi[7] = {
	    conversation_id, line->speaker, line->message, seq, line->event_id, part, off};
	PGresult *res = NULL;
	bool done = false, taken;
	int rc = -1;

	memset(out, 0, sizeof *out);
	snprintf(out->conversation_id, sizeof out->conversation_id, "%s", conversation_id);
	if (store_check_present(db, conversation_id, line, out, &done) < 0)
		goto out;
	if (done)
		return 0;
	snprintf(part, sizeof part, "%d", (int)line->source_partition);
	snprintf(off, sizeof off, "%" PRId64, line->source_offset);
	res = db_exec(db, SQL_PLACE, 3, pp);
	if (!res)
		goto out;
	out->sequence_number = atoi(PQgetvalue(res, 0, 0));
	taken = store_line_bool(res, 0, 1);
	PQclear(res);
	res = NULL;
	snprintf(seq, sizeof seq, "%d", out->sequence_number);
	if (taken &&
	    (db_cmd(db, SQL_SHIFT_OUT, 2, ps) < 0 || db_cmd(db, SQL_SHIFT_BACK, 1, ps) < 0))
		goto out;
	res = db_exec(db, SQL_INSERT_AT, 7, pi);
	if (!res)
		goto out;
	out->state = STORE_TX_INSERTED;
	out->id = strtoll(PQgetvalue(res, 0, 0), NULL, 10);
	rc = 0;
out:
	PQclear(res);
	return rc;
}

int store_transcription_append(struct db *db, const char *conversation_id, const char *speaker,
                               const char *message, const char *event_id, bool *inserted)
{
	const char *params[4] = {conversation_id, speaker, message, event_id};
	PGresult *res = db_exec(db, SQL_APPEND, 4, params);

	if (!res)
		return -1;
	*inserted = PQntuples(res) == 1;
	PQclear(res);
	return 0;
}

int store_transcription_savepoint(struct db *db, enum store_tx_savepoint op)
{
	static const char *const sql[] = {
	    [STORE_TX_SAVEPOINT_SET] = "SAVEPOINT store_tx_msg",
	    [STORE_TX_SAVEPOINT_ROLLBACK] = "ROLLBACK TO SAVEPOINT store_tx_msg",
	    [STORE_TX_SAVEPOINT_RELEASE] = "RELEASE SAVEPOINT store_tx_msg",
	};

	return db_cmd(db, sql[op], 0, NULL);
}
