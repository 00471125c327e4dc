/* batch: one round of work in one database transaction: the call locks, the two-step lookup and
 * sequence-numbered insert of every line in one statement, then the post-calls; per-message
 * outcomes (done, wait, dead-letter). A permanent error in the batch re-runs it message by
 * message under savepoints, so one bad message cannot poison the others. */
#ifndef CALLPIPE_TRANSCRIBER_BATCH_H
#define CALLPIPE_TRANSCRIBER_BATCH_H

#include "db.h"
#include "msg.h"
#include "process.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Dead-letter reasons (the DLQ "reason" header). */
#define TR_DLQ_BAD_MESSAGE           "bad_message"
#define TR_DLQ_UNKNOWN_CALL          "unknown_call_sid"
#define TR_DLQ_CALL_FAILED           "call_failed"
#define TR_DLQ_MISSING_CONVERSATION  "missing_conversation_id"
#define TR_DLQ_DB_REJECTED           "db_rejected"
#define TR_DLQ_CONVERSATION_MISMATCH "conversation_mismatch"

enum tr_result_kind {
	TR_RES_DONE, /* handled: its offset may be committed */
	TR_RES_WAIT, /* not ready: park it (wait, wait_since_ms say for what, since when) */
	TR_RES_DLQ,  /* dead-letter with dlq_reason and error */
};

struct tr_result {
	enum tr_result_kind kind;
	enum tr_wait wait;
	int64_t wait_since_ms;
	const char *dlq_reason; /* static string */
	char error[256];
	/* what happened, for metrics and the replay summary */
	bool inserted;       /* a line was written */
	bool duplicate;      /* the line was stored already (event id or reconciled copy) */
	unsigned reconciled; /* lines the post-call reconciliation appended */
	unsigned gaps;       /* final-transcript turns missed in the middle (not appendable) */
	const char
	    *post_call; /* post-call outcome: "completed", "failed", "unchanged", "ignored" */
};

struct tr_batch_ctx {
	struct db *db;
	const struct tr_windows *windows;
	/* Write assuming no event of the round is stored yet (the unique index on event_id is the
	 * check; when it finds one, the round is rolled back and written again checking each
	 * event). Worth it while redeliveries are rare: the engine turns it off after a round that
	 * met a stored event, and for replays. */
	bool assume_new;
	/* Work to do while the server runs the round's first statements (may be NULL). */
	db_idle_fn *idle;
	void *idle_opaque;
};

/* Runs work[0..n) (messages of TR_MSG_LINE/TR_MSG_POST_CALL kinds, with a call_sid, in arrival
 * order; a call's messages keep their order) in one transaction at time now_ms (monotonic).
 * Returns 0 when it committed, res[0..n) filled; -1 on a transient database error: rolled back,
 * nothing happened, retry the same work later. */
__attribute__((warn_unused_result)) int tr_batch_run(const struct tr_batch_ctx *ctx,
                                                     struct tr_msg *const *work, size_t n,
                                                     struct tr_result *res, int64_t now_ms);

/* Sets the result to dead-letter with a printf-style error. */
void tr_result_dlq(struct tr_result *r, const char *reason, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

#endif
