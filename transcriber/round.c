/* round: one round of the engine: conversation lookups, routing (the post-call gate, parked calls),
 * the batch, its results and the dead-letters. */
#include "engine.h"
#include "engine_int.h"

#include "batch.h"
#include "dlq.h"
#include "log.h"
#include "metrics.h"
#include "offtrack.h"
#include "park.h"
#include "postcall.h"
#include "timeutil.h"

#include <stdlib.h>
#include <string.h>

#define TR_RESOLVE_RETRY_MS 1000 /* between lookups of a post-call's unknown conversation */

/* Finishes a message: its offset may be committed. */
static void tr_done(struct tr_engine *e, struct tr_msg *m)
{
	offtrack_done(e->offsets, m->topic, m->partition, m->offset);
	tr_msg_free(m);
}

/* Queues m for the dead-letter topic (ownership passes). On allocation failure the message is
 * lost (tr_lost), like any message we cannot hold. */
static void tr_dead(struct tr_engine *e, struct tr_msg *m, const char *reason, const char *error)
{
	if (e->ndead == e->capdead) {
		size_t cap = e->capdead ? e->capdead * 2 : 16;
		struct tr_dead *d = realloc(e->dead, cap * sizeof *d);

		if (!d) {
			tr_lost(e, m, "dead-letter queue");
			return;
		}
		e->dead = d;
		e->capdead = cap;
	}
	e->dead[e->ndead].m = m;
	e->dead[e->ndead].reason = reason;
	snprintf(e->dead[e->ndead].error, sizeof e->dead[e->ndead].error, "%s", error);
	e->ndead++;
}

/* Produces the pending dead-letters in order. Returns 0, or -1 when the broker failed (the rest
 * stay pending). */
static int tr_flush_dead(struct tr_engine *e)
{
	size_t i = 0;
	int rc = 0;

	for (; i < e->ndead; i++) {
		struct tr_dead *d = &e->dead[i];
		char err[256];
		unsigned attempts = d->m->attempts ? d->m->attempts : 1;

		if (e->conf.keep_dead) {
			log_info("message not stored (not dead-lettered: --no-dead-letter)",
			         LOGS("reason", d->reason), LOGS("error", d->error),
			         LOGS("call_sid", d->m->call_sid), LOGS("topic", d->m->topic),
			         LOGI("partition", d->m->partition), LOGI("offset", d->m->offset));
			e->stats.not_stored++;
			tr_done(e, d->m);
			continue;
		}
		if (tr_dlq_send(e->producer, d->m, d->reason, d->error, attempts,
		                e->conf.dlq_timeout_ms, err, sizeof err) < 0) {
			log_warn("dead-letter produce failed: will retry",
			         LOGS("topic", d->m->topic), LOGI("offset", d->m->offset),
			         LOGS("error", err));
			tr_metrics_retry(e->tm, "dlq_produce");
			rc = -1;
			break;
		}
		log_warn("message dead-lettered", LOGS("reason", d->reason),
		         LOGS("error", d->error), LOGS("call_sid", d->m->call_sid),
		         LOGS("topic", d->m->topic), LOGI("partition", d->m->partition),
		         LOGI("offset", d->m->offset), LOGI("attempts", attempts));
		tr_metrics_dead_lettered(e->tm, d->reason);
		e->stats.dead_lettered++;
		tr_done(e, d->m);
	}
	if (i > 0 && i < e->ndead)
		memmove(e->dead, e->dead + i, (e->ndead - i) * sizeof *e->dead);
	e->ndead -= i;
	return rc;
}

/* The post-call gate: a post-call transcription goes once the consumer has read its call's
 * partition of webhooks.transcription past the post-call's timestamp (or to its end), so the
 * per-turn lines the ingress accepted before it are in hand (parked or processed). */
static bool tr_gate_open(struct tr_engine *e, struct tr_msg *m, int64_t now_ms)
{
	int64_t offset, ts;

	if (m->pc.type != TR_PC_TRANSCRIPTION || m->gate_passed)
		return true;
	if (!tr_is_assigned(e, e->conf.line_topic, m->partition))
		return true; /* not co-partitioned with us: nothing to wait for */
	if (m->timestamp_ms >= 0 &&
	    offtrack_last(e->offsets, e->conf.line_topic, m->partition, &offset, &ts) &&
	    ts >= m->timestamp_ms)
		return true;
	if (e->caught_up && e->caught_up(e->opaque, e->conf.line_topic, m->partition))
		return true;
	if (m->wait == TR_WAIT_GATE &&
	    tr_wait_expired(&e->conf.windows, TR_WAIT_GATE, m->wait_since_ms, now_ms)) {
		log_warn("post-call gate timed out: applying the post-call before its call's lines "
		         "were all read",
		         LOGS("call_sid", m->call_sid), LOGI("partition", m->partition));
		return true;
	}
	return false;
}

static void tr_post_call_counted(struct tr_engine *e, const struct tr_msg *m, const char *outcome)
{
	static const char *const known[] = {"post_call_transcription", "call_initiation_failure",
	                                    "post_call_audio"};
	const char *type = "other";

	for (size_t i = 0; i < sizeof known / sizeof known[0]; i++)
		if (strcmp(m->pc.type_name, known[i]) == 0)
			type = known[i];
	tr_metrics_post_call(e->tm, type, outcome);
	e->stats.post_calls++;
}

/* Decides where a message goes this round: dead-letter, done, the gate, its call's parked queue,
 * or work (lines and post-calls kept apart: a round writes lines before post-calls). */
static void tr_route(struct tr_engine *e, struct tr_msg *m, struct tr_vec *lines,
                     struct tr_vec *posts, int64_t now_ms)
{
	char error[300];
	struct tr_vec *work = m->kind == TR_MSG_LINE ? lines : posts;

	if (m->kind == TR_MSG_BAD) {
		tr_dead(e, m, TR_DLQ_BAD_MESSAGE, m->error);
		return;
	}
	if (m->kind == TR_MSG_POST_CALL) {
		if (m->pc.type == TR_PC_AUDIO || m->pc.type == TR_PC_UNKNOWN) {
			tr_post_call_counted(e, m, "ignored");
			e->stats.ignored++;
			tr_done(e, m);
			return;
		}
		if (!m->call_sid) {
			/* No call has its conversation_id (yet): held with the gated post-calls and
			 * matched again every round, for as long as an unknown call_sid waits. */
			if (m->wait != TR_WAIT_UNKNOWN_CALL) {
				m->wait = TR_WAIT_UNKNOWN_CALL;
				m->wait_since_ms = now_ms;
				tr_metrics_retry(e->tm, tr_wait_reason(TR_WAIT_UNKNOWN_CALL));
			}
			if (m->pc.conversation_id &&
			    !tr_wait_expired(&e->conf.windows, TR_WAIT_UNKNOWN_CALL,
			                     m->wait_since_ms, now_ms)) {
				if (tr_vec_push(&e->gate, m) < 0)
					tr_lost(e, m, "post-call waiting for its call");
				return;
			}
			snprintf(
			    error, sizeof error,
			    "%s webhook carries no call_sid and no call has its conversation %s",
			    m->pc.type_name,
			    m->pc.conversation_id ? m->pc.conversation_id : "(none)");
			tr_dead(e, m, TR_DLQ_UNKNOWN_CALL, error);
			return;
		}
		if (!tr_gate_open(e, m, now_ms)) {
			if (m->wait != TR_WAIT_GATE) {
				m->wait = TR_WAIT_GATE;
				m->wait_since_ms = now_ms;
				tr_metrics_retry(e->tm, tr_wait_reason(TR_WAIT_GATE));
			}
			if (tr_vec_push(&e->gate, m) == 0)
				return;
		}
		m->gate_passed = true;
	}
	if (tr_park_holds(e->park, m->call_sid)) {
		if (tr_park_push(e->park, m->call_sid, m, INT64_MAX) < 0) {
			tr_lost(e, m, "parking behind its call");
			return;
		}
		/* A post-call carrying the conversation_id unblocks a call waiting for it. */
		if (m->kind == TR_MSG_POST_CALL && m->pc.conversation_id)
			tr_park_wake(e->park, m->call_sid, now_ms);
		return;
	}
	if (tr_vec_push(work, m) < 0)
		tr_lost(e, m, "routing");
}

/* Gathers this round's work: due parked calls first, then opened gates, then new messages. */
static void tr_gather(struct tr_engine *e, struct tr_vec *lines, struct tr_vec *posts,
                      int64_t now_ms)
{
	struct tr_vec due = {0}, gated = e->gate, fresh = e->fresh;

	if (tr_park_take_due(e->park, now_ms, &due) < 0)
		log_error("out of memory taking due parked calls: retried next round");
	memset(&e->gate, 0, sizeof e->gate);
	memset(&e->fresh, 0, sizeof e->fresh);
	for (size_t i = 0; i < due.n; i++)
		tr_route(e, due.v[i], lines, posts, now_ms);
	for (size_t i = 0; i < gated.n; i++)
		tr_route(e, gated.v[i], lines, posts, now_ms);
	for (size_t i = 0; i < fresh.n; i++)
		tr_route(e, fresh.v[i], lines, posts, now_ms);
	tr_vec_free(&due);
	tr_vec_free(&gated);
	tr_vec_free(&fresh);
}

/* Applies one message's result (ownership of m passes on). */
static void tr_apply(struct tr_engine *e, struct tr_msg *m, const struct tr_result *r,
                     int64_t now_ms)
{
	m->attempts++;
	switch (r->kind) {
	case TR_RES_DONE:
		e->stats.inserted += r->inserted + r->reconciled;
		e->stats.duplicates += r->duplicate;
		e->stats.reconciled += r->reconciled;
		metric_add(e->tm->inserted, r->inserted + r->reconciled);
		metric_add(e->tm->duplicates, r->duplicate);
		metric_add(e->tm->reconciled, r->reconciled);
		metric_add(e->tm->gaps, r->gaps);
		if (m->kind == TR_MSG_POST_CALL)
			tr_post_call_counted(e, m, r->post_call ? r->post_call : "unchanged");
		tr_done(e, m);
		break;
	case TR_RES_WAIT:
		if (m->wait != r->wait)
			log_debug("call not ready: waiting", LOGS("call_sid", m->call_sid),
			          LOGS("reason", tr_wait_reason(r->wait)), LOGS("topic", m->topic),
			          LOGI("offset", m->offset));
		m->wait = r->wait;
		m->wait_since_ms = r->wait_since_ms;
		e->stats.waits++;
		tr_metrics_retry(e->tm, tr_wait_reason(r->wait));
		if (tr_park_push(e->park, m->call_sid, m,
		                 now_ms + tr_retry_delay_ms(e->conf.retry_base_ms,
		                                            e->conf.retry_max_ms, m->attempts,
		                                            &e->rng)) < 0)
			tr_lost(e, m, "parking to wait");
		break;
	case TR_RES_DLQ:
		tr_dead(e, m, r->dlq_reason, r->error);
		break;
	}
}

/* transcriber_line_delay_seconds: from the ingress's received_at of a stored line to now (just
 * after the commit that made it visible). */
static void tr_observe_delay(struct tr_engine *e, const struct tr_msg *m, int64_t wall_ms)
{
	int64_t received_ms;

	if (m->kind == TR_MSG_LINE && m->line.received_at &&
	    time_parse_iso_ms(m->line.received_at, &received_ms) == 0 && wall_ms >= received_ms)
		metric_observe(e->tm->line_delay, (double)(wall_ms - received_ms) / 1000.0);
}

/* Post-calls without a call_sid get theirs from the conversation_id (tr_postcall_resolve): new
 * ones, and held ones whose call was not known yet (looked up again at most every second). */
static int tr_resolve_by_conversation(struct tr_engine *e, int64_t now_ms)
{
	struct tr_vec *v[] = {&e->fresh, &e->gate};

	for (size_t k = 0; k < 2; k++) {
		for (size_t i = 0; i < v[k]->n; i++) {
			struct tr_msg *m = v[k]->v[i];

			if (m->call_sid || now_ms < m->retry_at_ms)
				continue;
			m->retry_at_ms = now_ms + TR_RESOLVE_RETRY_MS;
			if (tr_postcall_resolve(e->db, m) < 0)
				return -1;
		}
	}
	return 0;
}

int tr_engine_run(struct tr_engine *e, int64_t now_ms)
{
	struct tr_vec lines = {0}, posts = {0};
	struct tr_batch_ctx ctx = {e->db, &e->conf.windows, e->assume_new, e->idle, e->idle_opaque};
	struct tr_result *res = NULL;
	struct tr_msg **work = NULL;
	size_t n;
	int64_t t0, wall_ms;
	int rc = -1;

	e->last_run_ms = now_ms;
	if (e->ndead && tr_flush_dead(e) < 0)
		return -1;
	if (tr_resolve_by_conversation(e, now_ms) < 0) {
		tr_metrics_retry(e->tm, "database");
		return -1;
	}
	tr_gather(e, &lines, &posts, now_ms);
	n = lines.n + posts.n;
	if (n == 0)
		return tr_flush_dead(e);
	work = malloc(n * sizeof *work);
	res = calloc(n, sizeof *res);
	if (!work || !res) {
		for (size_t i = 0; i < lines.n; i++)
			tr_lost(e, lines.v[i], "running a round");
		for (size_t i = 0; i < posts.n; i++)
			tr_lost(e, posts.v[i], "running a round");
		lines.n = posts.n = 0;
		goto out;
	}
	/* A round writes its lines before its post-calls (the same call's lines first). */
	if (lines.n)
		memcpy(work, lines.v, lines.n * sizeof *work);
	if (posts.n)
		memcpy(work + lines.n, posts.v, posts.n * sizeof *work);
	t0 = time_mono_ms();
	if (tr_batch_run(&ctx, work, n, res, now_ms) < 0) {
		/* Nothing happened: the same messages, in the same order, are the next round's. */
		tr_metrics_retry(e->tm, "database");
		e->fresh = (struct tr_vec){work, n, n};
		work = NULL;
		goto out;
	}
	metric_observe(e->tm->batch_size, (double)n);
	metric_observe(e->tm->tx_seconds, (double)(time_mono_ms() - t0) / 1000.0);
	/* Stored events come in runs (a redelivery after a restart or a rebalance re-reads up to
	 * the commit interval): check each event until a round meets none. */
	e->assume_new = !e->conf.once_per_run;
	wall_ms = time_now_ms();
	for (size_t i = 0; i < n; i++) {
		if (res[i].duplicate)
			e->assume_new = false;
		if (res[i].inserted)
			tr_observe_delay(e, work[i], wall_ms);
		tr_apply(e, work[i], &res[i], now_ms);
	}
	rc = tr_flush_dead(e);
out:
	tr_vec_free(&lines);
	tr_vec_free(&posts);
	free(work);
	free(res);
	return rc;
}
