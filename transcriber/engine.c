/* engine: the engine's state: taking messages, revoked partitions, waits and commit bookkeeping
 * (docs/transcriber.md); what one round does is in round.c. */
#include "engine.h"
#include "engine_int.h"

#include "fault.h"
#include "history.h"
#include "log.h"
#include "offtrack.h"
#include "park.h"
#include "timeutil.h"

#include <stdlib.h>
#include <string.h>

/* How often a gated post-call re-checks its gate. */
#define TR_GATE_POLL_MS 50

struct tr_engine *tr_engine_new(const struct tr_engine_config *conf, struct db *db,
                                struct kbus_producer *producer, struct tr_metrics *tm,
                                tr_part_fn *assigned, tr_part_fn *caught_up, void *opaque)
{
	struct tr_engine *e = calloc(1, sizeof *e);

	if (!e)
		return NULL;
	e->conf = *conf;
	e->db = db;
	e->producer = producer;
	e->tm = tm;
	e->assigned = assigned;
	e->caught_up = caught_up;
	e->opaque = opaque;
	e->rng = (uint64_t)time_now_ms() ^ 0x5deece66dULL;
	e->assume_new = !conf->once_per_run; /* a replay mostly meets stored events */
	e->offsets = offtrack_new();
	e->history = conf->once_per_run ? tr_history_new() : NULL;
	e->park = tr_park_new();
	if (!e->offsets || (conf->once_per_run && !e->history) || !e->park) {
		tr_engine_destroy(e);
		return NULL;
	}
	return e;
}

void tr_vec_free_msgs(struct tr_vec *v)
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
	tr_park_destroy(e->park);
	tr_history_destroy(e->history);
	offtrack_destroy(e->offsets);
	free(e);
}

int tr_engine_add(struct tr_engine *e, struct tr_msg *m)
{
	enum tr_past past = TR_PAST_NEW;
	int64_t last, ts;

	/* Within one assignment a partition's offsets only grow; an offset at or below the last one
	 * taken is a second delivery of a message we hold or handled (librdkafka 2.0.2 re-fetches
	 * from the start now and then right after an assignment at BEGINNING). In a one-off run,
	 * so is one an earlier assignment handled. */
	if ((offtrack_last(e->offsets, m->topic, m->partition, &last, &ts) && m->offset <= last) ||
	    (e->history && (past = tr_history_past(e->history, m->topic, m->partition,
	                                           m->offset)) == TR_PAST_HANDLED)) {
		log_debug("message delivered twice: ignored", LOGS("topic", m->topic),
		          LOGI("partition", m->partition), LOGI("offset", m->offset));
		e->stats.redelivered++;
		tr_msg_free(m);
		return 0;
	}
	/* Held and tracked, or neither: a message tracked but not held would block its partition's
	 * commits for good, one held but not tracked would let them pass it. */
	if (tr_vec_push(&e->fresh, m) < 0) {
		tr_msg_free(m);
		return -1;
	}
	if (fault_track_refuse(m->topic, m->partition, m->offset) ||
	    offtrack_add(e->offsets, m->topic, m->partition, m->offset, m->timestamp_ms) < 0) {
		e->fresh.n--;
		tr_msg_free(m);
		return -1;
	}
	if (!m->decoded)
		tr_engine_decode(e, m);
	m->added_ms = time_mono_ms();
	if (past == TR_PAST_NEW) /* a retaken one was counted when first read */
		e->stats.read++;
	tr_metrics_consumed(e->tm, m->topic);
	return 0;
}

void tr_lost(struct tr_engine *e, struct tr_msg *m, const char *what)
{
	log_error("out of memory: a message could not be held; its offset is not committed",
	          LOGS("step", what), LOGS("call_sid", m->call_sid), LOGS("topic", m->topic),
	          LOGI("partition", m->partition), LOGI("offset", m->offset));
	e->lost++;
	tr_msg_free(m);
}

bool tr_engine_lost(const struct tr_engine *e)
{
	return e->lost > 0;
}

void tr_engine_decode(const struct tr_engine *e, struct tr_msg *m)
{
	tr_msg_decode(m, e->conf.line_topic, e->conf.post_topic);
}

void tr_engine_set_idle(struct tr_engine *e, db_idle_fn *idle, void *opaque)
{
	e->idle = idle;
	e->idle_opaque = opaque;
}

bool tr_is_assigned(const struct tr_engine *e, const char *topic, int32_t partition)
{
	return e->assigned && e->assigned(e->opaque, topic, partition);
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

void tr_engine_revoke(struct tr_engine *e, const char *topic, int32_t partition)
{
	size_t keep = 0;

	tr_park_drop_partition(e->park, topic, partition);
	tr_vec_drop(&e->fresh, topic, partition);
	tr_vec_drop(&e->gate, topic, partition);
	for (size_t i = 0; i < e->ndead; i++) {
		if (e->dead[i].m->partition == partition && strcmp(e->dead[i].m->topic, topic) == 0)
			tr_msg_free(e->dead[i].m);
		else
			e->dead[keep++] = e->dead[i];
	}
	e->ndead = keep;
	if (e->history && tr_history_keep(e->history, e->offsets, topic, partition) < 0)
		log_error("out of memory keeping a revoked partition's unhandled offsets: a replay "
		          "takes them again, and may count some messages twice",
		          LOGS("topic", topic), LOGI("partition", partition));
	offtrack_drop(e->offsets, topic, partition);
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
		offtrack_committed(w->e->offsets, topic, partition, next);
}

void tr_engine_commits(struct tr_engine *e,
                       int (*commit)(void *opaque, const char *topic, int32_t partition,
                                     int64_t next_offset),
                       void *opaque)
{
	struct tr_commit_walk w = {e, commit, opaque};

	offtrack_each_uncommitted(e->offsets, tr_commit_one, &w);
}

const struct tr_stats *tr_engine_stats(const struct tr_engine *e)
{
	return &e->stats;
}
