/* batch: one transaction per round of work; per-call blocking keeps a call's messages in order. */
#include "batch.h"

#include "db.h"
#include "log.h"
#include "postcall.h"
#include "store_transcriptions.h"
#include "strmap.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* TR_STORED: assuming every event new, the insert met a stored one (run the round again,
 * checking each event). */
enum { TR_OK = 0, TR_TRANSIENT = -1, TR_PERMANENT = -2, TR_STORED = -3 };

/* How an attempt writes: assuming every event is new, checking each event first, or message by
 * message under savepoints. Assuming new, a round of lines only (no post-call) is written whole in
 * one round trip, COMMIT included (store_transcription_write). */
enum tr_mode { TR_MODE_ASSUME_NEW, TR_MODE_CHECKED, TR_MODE_ONE_BY_ONE };

/* What the round learnt about one call so far. */
struct tr_keystate {
	bool blocked;      /* an earlier message waits: every later one waits behind it */
	enum tr_wait wait; /* what it waits for */
	enum tr_wait
	    expired; /* this wait expired in this round: later ones are dead-lettered too */
};

/* Everything one attempt allocates. */
struct tr_attempt {
	const struct tr_batch_ctx *ctx;
	struct tr_msg *const *work;
	size_t n;
	struct tr_result *res;
	int64_t now_ms;
	enum tr_mode mode;
	bool one_by_one; /* mode == TR_MODE_ONE_BY_ONE */
	bool committed;  /* written whole: the transaction is over */
	struct strmap *keys;
	struct tr_keystate *states;
	size_t nstates;
	struct store_tx_line *lines;
	struct store_tx_result *lres;
	long *line_of; /* work index -> lines index; -1 not a line, -2 duplicate event in round */
};

void tr_result_dlq(struct tr_result *r, const char *reason, const char *fmt, ...)
{
	va_list ap;

	r->kind = TR_RES_DLQ;
	r->dlq_reason = reason;
	va_start(ap, fmt);
	vsnprintf(r->error, sizeof r->error, fmt, ap);
	va_end(ap);
}

static int tr_fail(struct db *db)
{
	return db_errclass(db) == DB_ERR_PERMANENT ? TR_PERMANENT : TR_TRANSIENT;
}

static struct tr_keystate *tr_key(struct tr_attempt *a, const char *key)
{
	struct tr_keystate *ks = strmap_get(a->keys, key);

	if (ks)
		return ks;
	ks = &a->states[a->nstates];
	if (strmap_put(a->keys, key, ks) < 0)
		return NULL;
	a->nstates++;
	return ks;
}

static struct store_tx_line tr_line_of(const struct tr_msg *m)
{
	return (struct store_tx_line){
	    .call_sid = m->line.call_sid,
	    .speaker = m->line.speaker,
	    .message = m->line.message,
	    .event_id = m->line.event_id,
	    .source_partition = m->order_partition,
	    .source_offset = m->order_offset,
	};
}

/* Maps a line's store state to its result; writes an out-of-order line at its place. */
static int tr_line_result(struct tr_attempt *a, const struct tr_msg *m,
                          const struct store_tx_result *lr, struct tr_result *r)
{
	struct store_tx_result placed;
	struct store_tx_line line = tr_line_of(m);

	switch (lr->state) {
	case STORE_TX_INSERTED:
		r->inserted = true;
		break;
	case STORE_TX_PRESENT:
	case STORE_TX_RECONCILED:
		r->duplicate = true;
		break;
	case STORE_TX_OUT_OF_ORDER:
		if (store_transcription_insert_placed(a->ctx->db, lr->conversation_id, &line,
		                                      &placed) < 0)
			return tr_fail(a->ctx->db);
		r->inserted = placed.state == STORE_TX_INSERTED;
		r->duplicate = !r->inserted;
		if (r->inserted)
			log_info("late line placed by its offset", LOGS("call_sid", m->call_sid),
			         LOGI("sequence_number", placed.sequence_number),
			         LOGI("origin_offset", m->order_offset));
		break;
	case STORE_TX_CALL_FAILED:
		tr_result_dlq(r, TR_DLQ_CALL_FAILED, "call %s is failed", m->call_sid);
		break;
	case STORE_TX_UNKNOWN_CALL:
		r->kind = TR_RES_WAIT;
		r->wait = TR_WAIT_UNKNOWN_CALL;
		break;
	case STORE_TX_NO_CONVERSATION:
		r->kind = TR_RES_WAIT;
		r->wait = TR_WAIT_NO_CONVERSATION;
		break;
	}
	return TR_OK;
}

static int tr_savepoint(struct db *db, enum store_tx_savepoint op)
{
	return store_transcription_savepoint(db, op) < 0 ? tr_fail(db) : TR_OK;
}

/* Runs one message (line or post-call) and sets r; in one-by-one mode under a savepoint, where a
 * permanent error dead-letters the message instead of failing the round. */
static int tr_exec_one(struct tr_attempt *a, size_t i, struct tr_result *r)
{
	struct db *db = a->ctx->db;
	const struct tr_msg *m = a->work[i];
	struct store_tx_result lr;
	struct store_tx_line line;
	int rc;

	if (a->one_by_one && (rc = tr_savepoint(db, STORE_TX_SAVEPOINT_SET)) != TR_OK)
		return rc;
	if (m->kind == TR_MSG_POST_CALL) {
		rc = tr_postcall_apply(db, m, r) < 0 ? tr_fail(db) : TR_OK;
	} else if (a->one_by_one) {
		line = tr_line_of(m);
		rc = store_transcription_insert_batch(db, &line, 1, STORE_TX_CHECK_EVENTS, &lr) < 0
		         ? tr_fail(db)
		         : TR_OK;
		if (rc == TR_OK)
			rc = tr_line_result(a, m, &lr, r);
	} else {
		rc = tr_line_result(a, m, &a->lres[a->line_of[i]], r);
	}
	if (!a->one_by_one || rc == TR_TRANSIENT)
		return rc;
	if (rc == TR_PERMANENT) {
		char error[256];

		snprintf(error, sizeof error, "%s (SQLSTATE %s)", db_errmsg(db), db_sqlstate(db));
		if ((rc = tr_savepoint(db, STORE_TX_SAVEPOINT_ROLLBACK)) != TR_OK)
			return rc;
		memset(r, 0, sizeof *r);
		tr_result_dlq(r, TR_DLQ_DB_REJECTED, "%s", error);
		log_warn("database rejected a message", LOGS("call_sid", m->call_sid),
		         LOGS("topic", m->topic), LOGI("partition", m->partition),
		         LOGI("offset", m->offset), LOGS("error", error));
	}
	return tr_savepoint(db, STORE_TX_SAVEPOINT_RELEASE);
}

/* A waiting message: dead-letter it when its call's wait expired, else it waits (and blocks). */
static void tr_decide_wait(struct tr_attempt *a, const struct tr_msg *m, struct tr_keystate *ks,
                           struct tr_result *r)
{
	int64_t since = m->wait == r->wait && m->wait_since_ms ? m->wait_since_ms : a->now_ms;

	if (ks->expired == r->wait || tr_wait_expired(a->ctx->windows, r->wait, since, a->now_ms)) {
		enum tr_wait w = r->wait;

		ks->expired = w;
		if (w == TR_WAIT_UNKNOWN_CALL)
			tr_result_dlq(r, TR_DLQ_UNKNOWN_CALL,
			              "no call with call_sid %s after %lld ms", m->call_sid,
			              (long long)(a->now_ms - since));
		else
			tr_result_dlq(r, TR_DLQ_MISSING_CONVERSATION,
			              "call %s still has no conversation_id after %lld ms",
			              m->call_sid, (long long)(a->now_ms - since));
		r->wait = w;
		return;
	}
	r->wait_since_ms = since;
	ks->blocked = true;
	ks->wait = r->wait;
}

/* Collects the round's lines for the one-statement insert; a repeated event id in the round
 * is a duplicate of the first. */
static int tr_collect_lines(struct tr_attempt *a, size_t *nlines)
{
	struct strmap *seen = strmap_new();
	int rc = -1;

	*nlines = 0;
	if (!seen)
		return -1;
	for (size_t i = 0; i < a->n; i++) {
		const struct tr_msg *m = a->work[i];

		a->line_of[i] = -1;
		if (m->kind != TR_MSG_LINE)
			continue;
		if (strmap_get(seen, m->line.event_id)) {
			a->line_of[i] = -2;
			continue;
		}
		if (strmap_put(seen, m->line.event_id, (void *)m) < 0)
			goto out;
		a->line_of[i] = (long)*nlines;
		a->lines[(*nlines)++] = tr_line_of(m);
	}
	rc = 0;
out:
	strmap_destroy(seen);
	return rc;
}

/* The outcome of the round's batch insert (rc the store's return). */
static int tr_inserted(struct tr_attempt *a, int rc, size_t nlines)
{
	if (rc < 0)
		return a->mode == TR_MODE_ASSUME_NEW && store_transcription_was_stored(a->ctx->db)
		           ? TR_STORED
		           : tr_fail(a->ctx->db);
	/* Assuming new, a stored event with an offset comes back as a late line: a redelivery.
	 * The checked statement tells them apart in one go (a late line costs a few statements). */
	for (size_t i = 0; a->mode == TR_MODE_ASSUME_NEW && i < nlines; i++)
		if (a->lres[i].state == STORE_TX_OUT_OF_ORDER)
			return TR_STORED;
	return TR_OK;
}

static enum store_tx_check tr_check(const struct tr_attempt *a)
{
	return a->mode == TR_MODE_ASSUME_NEW ? STORE_TX_ASSUME_NEW : STORE_TX_CHECK_EVENTS;
}

/* The common round: no post-call to heal a call with, so BEGIN, the locks and the insert go to the
 * server together (one round trip), the caller's idle work running meanwhile. */
static int tr_begin_pipelined(struct tr_attempt *a, const char *const *sids, size_t nsids)
{
	size_t nlines = 0;

	if (tr_collect_lines(a, &nlines) < 0)
		return TR_TRANSIENT;
	return tr_inserted(a,
	                   store_transcription_begin_write(a->ctx->db, sids, nsids, a->lines,
	                                                   nlines, tr_check(a), a->lres,
	                                                   a->ctx->idle, a->ctx->idle_opaque),
	                   nlines);
}

/* A round of lines only, assuming every event new: the whole transaction in one round trip. A
 * stored event fails it, a late line leaves it empty: both TR_STORED (tr_inserted), and the
 * round is written again checking each event. */
static int tr_write_whole(struct tr_attempt *a, const char *const *sids, size_t nsids)
{
	size_t nlines = 0;
	int rc;

	if (tr_collect_lines(a, &nlines) < 0)
		return TR_TRANSIENT;
	rc = store_transcription_write(a->ctx->db, sids, nsids, a->lines, nlines, a->lres,
	                               a->ctx->idle, a->ctx->idle_opaque);
	a->committed = rc == 0;
	return tr_inserted(a, rc, nlines);
}

/* Statement by statement: the locks, the heals (a post-call's conversation_id fills a call's
 * before its lines are written), then, unless one by one, the batch insert. */
static int tr_begin_stepwise(struct tr_attempt *a, const char *const *sids, size_t nsids)
{
	struct db *db = a->ctx->db;
	size_t nlines = 0;
	int rc;

	if (db_begin(db) < 0)
		return tr_fail(db);
	if (store_transcription_lock_calls(db, sids, nsids) < 0)
		return tr_fail(db);
	for (size_t i = 0; i < a->n; i++) {
		if (a->one_by_one && (rc = tr_savepoint(db, STORE_TX_SAVEPOINT_SET)) != TR_OK)
			return rc;
		if (tr_postcall_heal(db, a->work[i]) < 0) {
			rc = tr_fail(db);
			if (!a->one_by_one || rc == TR_TRANSIENT)
				return rc;
			log_warn("could not fill in conversation_id from the post-call",
			         LOGS("call_sid", a->work[i]->call_sid),
			         LOGS("error", db_errmsg(db)));
			if ((rc = tr_savepoint(db, STORE_TX_SAVEPOINT_ROLLBACK)) != TR_OK)
				return rc;
		}
		if (a->one_by_one && (rc = tr_savepoint(db, STORE_TX_SAVEPOINT_RELEASE)) != TR_OK)
			return rc;
	}
	if (a->one_by_one)
		return TR_OK;
	if (tr_collect_lines(a, &nlines) < 0)
		return TR_TRANSIENT;
	return tr_inserted(
	    a, store_transcription_insert_batch(db, a->lines, nlines, tr_check(a), a->lres),
	    nlines);
}

/* Starts the round's transaction: locks every call of the round, heals, writes the lines (not
 * one by one). Returns TR_OK inside the transaction, or after it when it was written whole
 * (a->committed); else the caller rolls back. */
static int tr_begin(struct tr_attempt *a)
{
	const char **sids = calloc(a->n + 1, sizeof *sids);
	bool heals = false, posts = false;
	int rc = TR_TRANSIENT;

	if (!sids)
		return rc;
	for (size_t i = 0; i < a->n; i++) {
		sids[i] = a->work[i]->call_sid;
		heals = heals || tr_postcall_may_heal(a->work[i]);
		posts = posts || a->work[i]->kind == TR_MSG_POST_CALL;
	}
	if (a->one_by_one || heals)
		rc = tr_begin_stepwise(a, sids, a->n);
	else if (a->mode == TR_MODE_ASSUME_NEW && !posts)
		rc = tr_write_whole(a, sids, a->n);
	else
		rc = tr_begin_pipelined(a, sids, a->n);
	free(sids);
	return rc;
}

static int tr_attempt_run(struct tr_attempt *a)
{
	struct db *db = a->ctx->db;
	int rc;

	if ((rc = tr_begin(a)) != TR_OK)
		goto fail;
	for (size_t i = 0; i < a->n; i++) {
		const struct tr_msg *m = a->work[i];
		struct tr_result *r = &a->res[i];
		struct tr_keystate *ks = tr_key(a, m->call_sid);

		memset(r, 0, sizeof *r);
		if (!ks) {
			rc = TR_TRANSIENT;
			goto fail;
		}
		if (ks->blocked) {
			r->kind = TR_RES_WAIT;
			r->wait = ks->wait;
			r->wait_since_ms =
			    m->wait == ks->wait && m->wait_since_ms ? m->wait_since_ms : a->now_ms;
			continue;
		}
		if (!a->one_by_one && a->line_of[i] == -2) {
			r->duplicate = true;
			continue;
		}
		if ((rc = tr_exec_one(a, i, r)) != TR_OK)
			goto fail;
		if (r->kind == TR_RES_WAIT)
			tr_decide_wait(a, m, ks, r);
	}
	if (!a->committed && db_commit(db) < 0)
		return tr_fail(db);
	return TR_OK;
fail:
	db_rollback(db);
	return rc;
}

static int tr_attempt(const struct tr_batch_ctx *ctx, struct tr_msg *const *work, size_t n,
                      struct tr_result *res, int64_t now_ms, enum tr_mode mode)
{
	struct tr_attempt a = {
	    ctx, work, n, res, now_ms, mode, mode == TR_MODE_ONE_BY_ONE, .keys = strmap_new()};
	int rc = TR_TRANSIENT;

	a.states = calloc(n + 1, sizeof *a.states);
	a.lines = calloc(n + 1, sizeof *a.lines);
	a.lres = calloc(n + 1, sizeof *a.lres);
	a.line_of = calloc(n + 1, sizeof *a.line_of);
	if (a.keys && a.states && a.lines && a.lres && a.line_of)
		rc = tr_attempt_run(&a);
	else
		log_error("out of memory running a batch", LOGI("messages", n));
	strmap_destroy(a.keys);
	free(a.states);
	free(a.lines);
	free(a.lres);
	free(a.line_of);
	return rc;
}

int tr_batch_run(const struct tr_batch_ctx *ctx, struct tr_msg *const *work, size_t n,
                 struct tr_result *res, int64_t now_ms)
{
	int rc;

	if (n == 0)
		return 0;
	rc = tr_attempt(ctx, work, n, res, now_ms,
	                ctx->assume_new ? TR_MODE_ASSUME_NEW : TR_MODE_CHECKED);
	if (rc == TR_STORED) {
		log_debug("an event of the round is stored already: writing it again checking each "
		          "event",
		          LOGI("messages", n));
		rc = tr_attempt(ctx, work, n, res, now_ms, TR_MODE_CHECKED);
	}
	if (rc == TR_PERMANENT) {
		log_warn("batch failed with a permanent database error: retrying it message by "
		         "message",
		         LOGI("messages", n), LOGS("error", db_errmsg(ctx->db)),
		         LOGS("sqlstate", db_sqlstate(ctx->db)));
		rc = tr_attempt(ctx, work, n, res, now_ms, TR_MODE_ONE_BY_ONE);
	}
	if (rc == TR_PERMANENT)
		log_error("permanent database error outside any one message: retrying later",
		          LOGS("error", db_errmsg(ctx->db)),
		          LOGS("sqlstate", db_sqlstate(ctx->db)));
	return rc == TR_OK ? 0 : -1;
}
