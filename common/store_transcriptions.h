/* store_transcriptions: every query on the call_transcriptions table. Same conventions as
 * store_calls.h: a connected struct db, parameterised SQL, 0 or -1 with db_errclass(db).
 *
 * Writers must hold the per-call lock (store_transcription_lock_calls) in the transaction that
 * writes, so sequence numbers stay 1..N without gaps or duplicates under concurrent writers;
 * UNIQUE (conversation_id, sequence_number) turns any slip into a loud error. */
#ifndef CALLPIPE_STORE_TRANSCRIPTIONS_H
#define CALLPIPE_STORE_TRANSCRIPTIONS_H

#include "db.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* One stored line, as handed to the list callback. Strings are borrowed for the call only. */
struct store_line {
	int64_t id;
	int sequence_number;
	const char *speaker;
	const char *message;
	const char *event_id;   /* NULL for legacy rows */
	const char *created_at; /* ISO-8601 UTC */
};

typedef int store_line_cb(void *opaque, const struct store_line *line);

/* Calls cb for each line of conversation_id in sequence order; a non-zero return from cb stops
 * the walk and is returned. Returns 0, or -1 on a database error. */
__attribute__((warn_unused_result)) int store_transcription_list(struct db *db,
                                                                 const char *conversation_id,
                                                                 store_line_cb *cb, void *opaque);

/* Event ids of lines the post-call reconciliation adds start with this prefix. */
#define STORE_TRANSCRIPTION_RECONCILED_PREFIX "postcall:"

/* A line to write, found by call_sid (two-step lookup in the same statement). Strings are
 * borrowed. source_partition/source_offset (-1 = none) are where the ingress's message sits in
 * webhooks.transcription: they order a conversation's lines. */
struct store_tx_line {
	const char *call_sid;
	const char *speaker;
	const char *message;
	const char *event_id; /* required */
	int32_t source_partition;
	int64_t source_offset;
};

enum store_tx_state {
	STORE_TX_INSERTED,        /* written: id and sequence_number are set */
	STORE_TX_PRESENT,         /* the event is stored already: nothing written */
	STORE_TX_RECONCILED,      /* the post-call reconciliation stored this line already */
	STORE_TX_UNKNOWN_CALL,    /* no call with this call_sid */
	STORE_TX_CALL_FAILED,     /* the call is failed */
	STORE_TX_NO_CONVERSATION, /* the call has no conversation_id yet */
	STORE_TX_OUT_OF_ORDER,    /* older than a stored line of its conversation: not written by
	                             the batch; write it with store_transcription_insert_placed */
};

struct store_tx_result {
	enum store_tx_state state;
	char conversation_id[256]; /* "" when the call has none */
	int64_t id;                /* INSERTED only */
	int sequence_number;       /* INSERTED only */
};

/* Takes the transaction-scoped write lock of each call (pg_advisory_xact_lock on the call_sid,
 * in a fixed order so two writers cannot deadlock). Must run inside a transaction, as its own
 * statement before the writes (so they see every line committed by the previous holder). */
__attribute__((warn_unused_result)) int store_transcription_lock_calls(struct db *db,
                                                                       const char *const *call_sids,
                                                                       size_t n);

/* How store_transcription_insert_batch finds events that are stored already. */
enum store_tx_check {
	STORE_TX_CHECK_EVENTS, /* each event id is looked up first: stored ones come back PRESENT */
	STORE_TX_ASSUME_NEW,   /* no look-up (one index probe per line less). A stored event comes
	                          back OUT_OF_ORDER when it has an offset (it is not newer than its
	                          conversation's newest line: a redelivery always is), else the
	                          unique index on event_id fails the whole statement
	                          (store_transcription_was_stored() is then true and the
	                          transaction is aborted). Either way: run it again with
	                          STORE_TX_CHECK_EVENTS to tell stored events from late ones. */
};

/* Writes lines[0..n) in one statement: looks each call up, and appends the lines that are ready
 * (call found, not failed, conversation_id set, event not stored, not older than a stored line)
 * at max(sequence_number)+1.. per conversation, ordered by source offset. Fills out[0..n).
 * event_ids must be distinct. Hold the locks of the calls first. */
__attribute__((warn_unused_result)) int store_transcription_insert_batch(
    struct db *db, const struct store_tx_line *lines, size_t n, enum store_tx_check check,
    struct store_tx_result *out);

/* The start of a round in one round trip: BEGIN, the calls' locks (store_transcription_lock_calls)
 * and the batch insert of lines[0..n) (store_transcription_insert_batch; n may be 0), sent
 * together; idle (may be NULL) runs while the server works. Returns 0 inside the transaction with
 * the locks held and out[0..n) filled; -1 with the error as insert_batch reports it, the
 * transaction to be rolled back (db_rollback). */
__attribute__((warn_unused_result)) int store_transcription_begin_write(
    struct db *db, const char *const *call_sids, size_t ncalls, const struct store_tx_line *lines,
    size_t n, enum store_tx_check check, struct store_tx_result *out, db_idle_fn *idle,
    void *opaque);

/* A whole round in one round trip: BEGIN, the locks, the batch insert of lines[0..n) assuming
 * every event new (STORE_TX_ASSUME_NEW) and COMMIT. Returns 0 committed, out[0..n) filled; when
 * a line comes back OUT_OF_ORDER, nothing was written (the transaction committed no line): write
 * the round again with store_transcription_begin_write and STORE_TX_CHECK_EVENTS, which tells a
 * stored event from a late line. -1: as store_transcription_begin_write (a stored event: the
 * unique index failed the insert, nothing committed); call db_rollback. Only for rounds that need
 * no other statement in their transaction. */
__attribute__((warn_unused_result)) int store_transcription_write(
    struct db *db, const char *const *call_sids, size_t ncalls, const struct store_tx_line *lines,
    size_t n, struct store_tx_result *out, db_idle_fn *idle, void *opaque);

/* The savepoint a writer sets around one message so that a permanent error undoes that message
 * only (store_transcription_savepoint). */
enum store_tx_savepoint {
	STORE_TX_SAVEPOINT_SET,
	STORE_TX_SAVEPOINT_ROLLBACK, /* undo back to it (it stays set) */
	STORE_TX_SAVEPOINT_RELEASE,
};

/* Sets, rolls back to or releases the per-message savepoint. Returns 0 or -1. */
__attribute__((warn_unused_result)) int store_transcription_savepoint(struct db *db,
                                                                      enum store_tx_savepoint op);

/* True when the last failed statement failed because an event was stored already (the unique
 * constraint on event_id): what STORE_TX_ASSUME_NEW reports. */
bool store_transcription_was_stored(const struct db *db);

/* Writes one line of conversation_id at its place by source offset: right after the stored line
 * of the same partition with the greatest smaller offset (or first), moving later lines up by one
 * when that number is taken. Sets out->state INSERTED, PRESENT or RECONCILED. Hold the lock. */
__attribute__((warn_unused_result)) int store_transcription_insert_placed(
    struct db *db, const char *conversation_id, const struct store_tx_line *line,
    struct store_tx_result *out);

/* Appends one line at max+1 with no source position (the post-call reconciliation). *inserted is
 * false when event_id is stored already. Hold the lock. */
__attribute__((warn_unused_result)) int store_transcription_append(
    struct db *db, const char *conversation_id, const char *speaker, const char *message,
    const char *event_id, bool *inserted);

#endif
