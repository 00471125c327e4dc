/* engine: routing, parking, rounds, dead-letters and commit bookkeeping (docs/transcriber.md). */
#include "engine.h"

#include "batch.h"
#include "dlq.h"
#include "log.h"
#include "metrics.h"
#include "offsets.h"
#include "park.h"
#include "postcall.h"
#include "timeutil.h"

#include <stdlib.h>
#include <string.h>

/* How often a gated post-call re-checks its gate. */
#define TR_GATE_POLL_MS     50
#define TR_RESOLVE_RETRY_MS 1000 /* between lookups of a post-call's unknown conversation */

struct tr_dead {
	struct tr_msg *m;
	const char *reason;
	char error[256];
};

struct tr_engine {
	struct tr_engine_config conf;
	struct db *db;
	struct kbus_producer *producer;
	struct tr_metrics *tm;
	tr_caught_up_fn *caught_up;
	void *opaque;

	struct tr_offsets *offsets;
	struct tr_park *park;
	struct tr_vec fresh;  /* consumed (or retried), not routed yet: in order */
	struct tr_vec gate;   /* post-calls waiting for their call's lines to be read, or (no
	                         call_sid) for a call with their conversation_id */
	int64_t last_run_ms;  /* when tr_engine_run last ran */
	struct tr_dead *dead; /* dead-letters not acknowledged yet */
	size_t ndead, capdead;
	struct {
		char *topic;
		int32_t partition;
	} * assigned;
	size_t nassigned;
	uint64_t rng;
	struct tr_stats stats;
};

struct tr_engine *tr_engine_new(const struct tr_engine_config *conf, struct db *db,
                                struct kbus_producer *producer, struct tr_metrics *tm,
                                tr_caught_up_fn *caught_up, void *opaque)
{
	struct tr_engine *e = calloc(1, sizeof *e);

	if (!e)
		return NULL;
	e->conf = *conf;
	e->db = db;
	e->producer = producer;
	e->tm = tm;
	e->caught_up = caught_up;
	e->opaque = opaque;
	e->rng = (uint64_t)time_now_ms() ^ 0x5deece66dULL;
	e->offsets = tr_offsets_new();
	e->park = tr_park_new();
	if (!e->offsets || !e->park) {
		tr_engine_destroy(e);
		return NULL;
	}
	return e;
}

static void tr_vec_free_msgs(struct tr_vec *v)
{
	for (size_t i = 0; i < v->n; i++)
		tr_msg_free(v->v[i]);
	tr_vec_free(v);
}

void tr_engine_destroy(struct tr_engine *e)
{
	if (!e)
		return;
	tr_vec_free_msgs(&e->fresh);
	tr_vec_free_msgs(&e->gate);
	for (size_t i = 0; i < e->ndead; i++)
		tr_msg_free(e->dead[i].m);
	free(e->dead);
	for (size_t i = 0; i < e->nassigned; i++)
		free(e->assigned[i].topic);
	free(e->assigned);
	tr_park_destroy(e->park);
	tr_offsets_destroy(e->offsets);
	free(e);
}

int tr_engine_add(struct tr_engine *e, struct tr_msg *m)
{
	int64_t last, ts;

	/* Within one assignment a partition's offsets only grow; an offset at or below the last one
	 * taken is a second delivery of a message we hold or handled (librdkafka 2.0.2 re-fetches
	 * from the start now and then right after an assignment at BEGINNING). */
	if (tr_offsets_progress(e->offsets, m->topic, m->partition, &last, &ts) &&
	    m->offset <= last) {
		log_debug("message delivered twice: ignored", LOGS("topic", m->topic),
		          LOGI("partition", m->partition), LOGI("offset", m->offset));
		e->stats.redelivered++;
		tr_msg_free(m);
		return 0;
	}
	if (tr_offsets_add(e->offsets, m->topic, m->partition, m->offset, m->timestamp_ms) < 0 ||
	    tr_vec_push(&e->fresh, m) < 0) {
		log_error("out of memory taking a message", LOGS("topic", m->topic),
		          LOGI("offset", m->offset));
		tr_msg_free(m);
		return -1;
	}
	tr_msg_decode(m, e->conf.line_topic, e->conf.post_topic);
	m->added_ms = time_mono_ms();
	e->stats.read++;
	tr_metrics_consumed(e->tm, m->topic);
	return 0;
}

static bool tr_is_assigned(const struct tr_engine *e, const char *topic, int32_t partition)
{
	for (size_t i = 0; i < e->nassigned; i++)
		if (e->assigned[i].partition == partition &&
		    strcmp(e->assigned[i].topic, topic) == 0)
			return true;
	return false;
}

/* Removes the messages of one partition from v (freeing them). */
static void tr_vec_drop(struct tr_vec *v, const char *topic, int32_t partition)
{
	size_t keep = 0;

	for (size_t i = 0; i < v->n; i++) {
		if (v->v[i]->partition == partition && strcmp(v->v[i]->topic, topic) == 0)
			tr_msg_free(v->v[i]);
		else
			v->v[keep++] = v->v[i];
	}
	v->n = keep;
}

void tr_engine_assign(struct tr_engine *e, const char *topic, int32_t partition, bool assigned)
{
	size_t keep = 0;

	if (assigned) {
		void *p;
		char *copy;

		if (tr_is_assigned(e, topic, partition))
			return;
		p = realloc(e->assigned, (e->nassigned + 1) * sizeof *e->assigned);
		copy = strdup(topic);
		if (!p || !copy) {
			free(copy);
			if (p)
				e->assigned = p;
			return; /* the gate then treats the partition as not ours: no wait */
		}
		e->assigned = p;
		e->assigned[e->nassigned].topic = copy;
		e->assigned[e->nassigned++].partition = partition;
		return;
	}
	for (size_t i = 0; i < e->nassigned; i++) {
		if (e->assigned[i].partition == partition &&
		    strcmp(e->assigned[i].topic, topic) == 0)
			free(e->assigned[i].topic);
		else
			e->assigned[keep++] = e->assigned[i];
	}
	e->nassigned = keep;
	tr_park_drop_partition(e->park, topic, partition);
	tr_vec_drop(&e->fresh, topic, partition);
	tr_vec_drop(&e->gate, topic, partition);
	keep = 0;
	for (size_t i = 0; i < e->ndead; i++) {
		if (e->dead[i].m->partition == partition && strcmp(e->dead[i].m->topic, topic) == 0)
			tr_msg_free(e->dead[i].m);
		else
			e->dead[keep++] = e->dead[i];
	}
	e->ndead = keep;
	tr_offsets_drop(e->offsets, topic, partition);
}

/* Finishes a message: its offset may be committed. */
static void tr_done(struct tr_engine *e, struct tr_msg *m)
{
	tr_offsets_done(e->offsets, m->topic, m->partition, m->offset);
	tr_msg_free(m);
}

/* Queues m for the dead-letter topic (ownership passes). On allocation failure the message is
 * dropped uncommitted, like any message we cannot hold. */
static void tr_dead(struct tr_engine *e, struct tr_msg *m, const char *reason, const char *error)
{
	if (e->ndead == e->capdead) {
		size_t cap = e->capdead ? e->capdead * 2 : 16;
		struct tr_dead *d = realloc(e->dead, cap * sizeof *d);

		if (!d) {
			log_error("out of memory queueing a dead-letter", LOGS("topic", m->topic),
			          LOGI("offset", m->offset));
			tr_msg_free(m);
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
	    tr_offsets_progress(e->offsets, e->conf.line_topic, m->partition, &offset, &ts) &&
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
			                     m->wait_since_ms, now_ms) &&
			    tr_vec_push(&e->gate, m) == 0)
				return;
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
			log_error("out of memory parking a message: dropped until restart",
			          LOGS("call_sid", m->call_sid), LOGI("offset", m->offset));
			tr_msg_free(m); /* its offset stays uncommitted */
			return;
		}
		/* A post-call carrying the conversation_id unblocks a call waiting for it. */
		if (m->kind == TR_MSG_POST_CALL && m->pc.conversation_id)
			tr_park_wake(e->park, m->call_sid, now_ms);
		return;
	}
	if (tr_vec_push(work, m) < 0) {
		log_error("out of memory routing a message: dropped until restart",
		          LOGS("call_sid", m->call_sid), LOGI("offset", m->offset));
		tr_msg_free(m);
	}
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
		                                            &e->rng)) < 0) {
			log_error("out of memory parking a message: dropped until restart",
			          LOGS("call_sid", m->call_sid), LOGI("offset", m->offset));
			tr_msg_free(m);
		}
		break;
	case TR_RES_DLQ:
		tr_dead(e, m, r->dlq_reason, r->error);
		break;
	}
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
	struct tr_batch_ctx ctx = {e->db, &e->conf.windows};
	struct tr_result *res = NULL;
	struct tr_msg **work = NULL;
	size_t n;
	int64_t t0;
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
		/* The messages are lost until a restart: their offsets stay uncommitted. */
		log_error("out of memory running a round", LOGI("messages", n));
		tr_vec_free_msgs(&lines);
		tr_vec_free_msgs(&posts);
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
	for (size_t i = 0; i < n; i++)
		tr_apply(e, work[i], &res[i], now_ms);
	rc = tr_flush_dead(e);
out:
	tr_vec_free(&lines);
	tr_vec_free(&posts);
	free(work);
	free(res);
	return rc;
}

int64_t tr_engine_next_wake(const struct tr_engine *e)
{
	int64_t wake = tr_park_next_due(e->park);

	if (e->fresh.n || e->ndead)
		return 0;
	if (e->gate.n) {
		/* from the last round, not from now: else a held post-call would wait for the
		 * next consumed message before its gate or its window is looked at again */
		int64_t gate = e->last_run_ms + TR_GATE_POLL_MS;
		if (gate < wake)
			wake = gate;
	}
	return wake;
}

size_t tr_engine_waiting(const struct tr_engine *e)
{
	return tr_park_count(e->park) + e->gate.n;
}

bool tr_engine_idle(const struct tr_engine *e)
{
	return e->fresh.n == 0 && e->gate.n == 0 && e->ndead == 0 && tr_park_count(e->park) == 0;
}

static void tr_extend_one(void *opaque, struct tr_msg *m)
{
	if (m->wait_since_ms)
		m->wait_since_ms += *(const int64_t *)opaque;
}

void tr_engine_extend_waits(struct tr_engine *e, int64_t ms)
{
	tr_park_each(e->park, tr_extend_one, &ms);
	for (size_t i = 0; i < e->gate.n; i++)
		tr_extend_one(&ms, e->gate.v[i]);
	for (size_t i = 0; i < e->fresh.n; i++)
		tr_extend_one(&ms, e->fresh.v[i]);
}

struct tr_commit_walk {
	struct tr_engine *e;
	int (*commit)(void *opaque, const char *topic, int32_t partition, int64_t next_offset);
	void *opaque;
};

static void tr_commit_one(void *opaque, const char *topic, int32_t partition, int64_t next)
{
	struct tr_commit_walk *w = opaque;

	if (w->commit(w->opaque, topic, partition, next) == 0)
		tr_offsets_committed(w->e->offsets, topic, partition, next);
}

void tr_engine_commits(struct tr_engine *e,
                       int (*commit)(void *opaque, const char *topic, int32_t partition,
                                     int64_t next_offset),
                       void *opaque)
{
	struct tr_commit_walk w = {e, commit, opaque};

	tr_offsets_each_uncommitted(e->offsets, tr_commit_one, &w);
}

const struct tr_stats *tr_engine_stats(const struct tr_engine *e)
{
	return &e->stats;
}
