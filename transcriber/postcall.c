/* postcall: final call status from post-call webhooks, and reconciliation with the final
 * transcript. Runs inside the batch transaction, holding the call's write lock. */
#include "postcall.h"

#include "db.h"
#include "log.h"
#include "store_calls.h"
#include "store_transcriptions.h"

#include <stdlib.h>
#include <string.h>

int tr_postcall_resolve(struct db *db, struct tr_msg *m)
{
	struct store_call call;
	bool found = false;

	if (m->kind != TR_MSG_POST_CALL || m->call_sid || !m->pc.conversation_id ||
	    (m->pc.type != TR_PC_TRANSCRIPTION && m->pc.type != TR_PC_INITIATION_FAILURE))
		return 0;
	if (store_call_get_by_conversation(db, m->pc.conversation_id, &call, &found) < 0)
		return -1;
	if (!found)
		return 0;
	if (tr_msg_resolve_call(m, call.call_sid) < 0)
		return -1;
	m->wait = TR_WAIT_NONE; /* held while its conversation was unknown: no longer */
	/* Keyed by conversation_id, it sits on another partition than its call's lines: the gate
	 * (which watches the partition of the same number) would watch the wrong one. */
	m->gate_passed = true;
	log_info("post-call without call_sid matched by its conversation_id",
	         LOGS("conversation_id", m->pc.conversation_id), LOGS("call_sid", m->call_sid),
	         LOGI("offset", m->offset));
	return 0;
}

bool tr_postcall_may_heal(const struct tr_msg *m)
{
	return m->kind == TR_MSG_POST_CALL && m->pc.type == TR_PC_TRANSCRIPTION && m->call_sid &&
	       m->pc.conversation_id;
}

int tr_postcall_heal(struct db *db, const struct tr_msg *m)
{
	struct store_call call;
	bool found = false, changed = false;

	if (!tr_postcall_may_heal(m))
		return 0;
	if (store_call_get(db, m->call_sid, &call, &found) < 0)
		return -1;
	if (!found || call.has_conversation_id || strcmp(call.status, STORE_CALL_FAILED) == 0)
		return 0;
	if (store_call_set_conversation(db, m->call_sid, m->pc.conversation_id, &changed) < 0)
		return -1;
	if (changed)
		log_info("conversation_id filled in from the post-call webhook",
		         LOGS("call_sid", m->call_sid),
		         LOGS("conversation_id", m->pc.conversation_id));
	return 0;
}

/* The stored transcript, copied (the list callback's strings are borrowed). */
struct tr_transcript {
	struct tr_stored *lines;
	size_t n, cap;
};

static char *tr_dup(const char *s)
{
	return s ? strdup(s) : NULL;
}

static int tr_transcript_add(void *opaque, const struct store_line *line)
{
	struct tr_transcript *t = opaque;
	struct tr_stored *s;

	if (t->n == t->cap) {
		size_t cap = t->cap ? t->cap * 2 : 64;
		struct tr_stored *lines = realloc(t->lines, cap * sizeof *lines);

		if (!lines)
			return -1;
		t->lines = lines;
		t->cap = cap;
	}
	s = &t->lines[t->n];
	s->speaker = tr_dup(line->speaker);
	s->message = tr_dup(line->message);
	s->event_id = tr_dup(line->event_id);
	t->n++;
	if (!s->speaker || !s->message || (line->event_id && !s->event_id))
		return -1;
	return 0;
}

static void tr_transcript_free(struct tr_transcript *t)
{
	for (size_t i = 0; i < t->n; i++) {
		free((char *)t->lines[i].speaker);
		free((char *)t->lines[i].message);
		free((char *)t->lines[i].event_id);
	}
	free(t->lines);
}

/* Appends the final-transcript turns the per-turn webhooks missed. Returns 0 or -1 (database
 * error; an out-of-memory list is reported as a transient error by the caller's retry). */
static int tr_postcall_reconcile(struct db *db, const struct tr_msg *m, struct tr_result *res)
{
	const struct tr_post_call *pc = &m->pc;
	struct tr_transcript t = {0};
	size_t *append = NULL, n, gaps = 0;
	int rc = -1, lrc;

	if (pc->nturns == 0)
		return 0;
	/* A callback failure (out of memory) also ends here: the batch is retried as transient. */
	lrc = store_transcription_list(db, pc->conversation_id, tr_transcript_add, &t);
	if (lrc != 0)
		goto out;
	append = calloc(pc->nturns, sizeof *append);
	if (!append)
		goto out;
	n = tr_reconcile_plan(t.lines, t.n, pc->turns, pc->nturns, pc->conversation_id, append,
	                      &gaps);
	for (size_t i = 0; i < n; i++) {
		const struct tr_turn *turn = &pc->turns[append[i]];
		char event_id[320];
		bool inserted = false;

		tr_reconciled_event_id(pc->conversation_id, turn->index, event_id, sizeof event_id);
		if (store_transcription_append(db, pc->conversation_id, turn->speaker,
		                               turn->message, event_id, &inserted) < 0)
			goto out;
		res->reconciled += inserted ? 1 : 0;
	}
	res->gaps = (unsigned)gaps;
	if (res->reconciled || gaps)
		log_info("transcript reconciled with the post-call transcript",
		         LOGS("call_sid", m->call_sid),
		         LOGS("conversation_id", pc->conversation_id), LOGI("stored", t.n),
		         LOGI("final_turns", pc->nturns), LOGI("appended", res->reconciled),
		         LOGI("missed_in_middle", gaps));
	rc = 0;
out:
	free(append);
	tr_transcript_free(&t);
	return rc;
}

int tr_postcall_apply(struct db *db, const struct tr_msg *m, struct tr_result *res)
{
	const struct tr_post_call *pc = &m->pc;
	struct store_call call;
	bool found = false, changed = false;

	memset(res, 0, sizeof *res);
	res->kind = TR_RES_DONE;
	if (pc->type == TR_PC_AUDIO || pc->type == TR_PC_UNKNOWN) {
		res->post_call = "ignored";
		return 0;
	}
	if (store_call_get(db, m->call_sid, &call, &found) < 0)
		return -1;
	if (!found) {
		res->kind = TR_RES_WAIT;
		res->wait = TR_WAIT_UNKNOWN_CALL;
		return 0;
	}
	if (pc->type == TR_PC_INITIATION_FAILURE) {
		if (store_call_set_failed(db, m->call_sid, pc->failure_reason, &changed) < 0)
			return -1;
		res->post_call = changed ? "failed" : "unchanged";
		return 0;
	}
	/* A call failed as dial_outcome_unknown (no answer and no post-call for longer than the
	 * sweeper waits) is completed by its post-call: the proof the call happened. Every other
	 * failed call stays failed. */
	if (strcmp(call.status, STORE_CALL_FAILED) == 0 &&
	    strcmp(call.failure_reason, STORE_CALL_REASON_UNKNOWN) != 0) {
		tr_result_dlq(res, TR_DLQ_CALL_FAILED, "call is failed (%s): post-call not applied",
		              call.failure_reason);
		return 0;
	}
	if (call.has_conversation_id && strcmp(call.conversation_id, pc->conversation_id) != 0) {
		tr_result_dlq(res, TR_DLQ_CONVERSATION_MISMATCH,
		              "post-call conversation_id %s, the call has %s", pc->conversation_id,
		              call.conversation_id);
		return 0;
	}
	if (store_call_set_completed(db, m->call_sid, pc->end_time[0] ? pc->end_time : NULL,
	                             pc->conversation_id, &changed) < 0)
		return -1;
	res->post_call = changed ? "completed" : "unchanged";
	return tr_postcall_reconcile(db, m, res);
}
