/* consume: the consumer loop: a consumer group on the webhook topics, batches into the engine,
 * pause while the database is away or too much is parked, commits after each round, and a
 * bounded drain at the end. */
#include "consume.h"

#include "ahead.h"
#include "backoff.h"
#include "db.h"
#include "log.h"
#include "metrics.h"
#include "shutdown.h"
#include "timeutil.h"

#include <stdlib.h>
#include <string.h>

/* Longest single poll, so timers (retries, lag, shutdown) are looked at often enough. */
#define TR_POLL_MAX_MS 100
/* Longest wait for the broker to report a partition's end (the post-call gate). */
#define TR_END_QUERY_MS 1000
/* How often an idle consumer checks that the database answers (for /readyz). */
#define TR_PING_EVERY_MS 2000
/* Messages read ahead per call of the idle work (a few hundred microseconds). */
#define TR_AHEAD_SLICE 32

struct tr_consumer {
	struct tr_app *app;
	const struct tr_loop_hooks *hooks;
	struct kbus_consumer *kc;
	struct tr_engine *engine;
	bool paused;  /* fetching paused (kbus_consumer_pause_all) */
	bool blocked; /* the last round failed: database (or broker) away */
	int64_t blocked_since, retry_at;
	int64_t hold_until;          /* a message could not be taken: paused until then */
	struct backoff hold_backoff; /* how long, growing while it keeps happening */
	bool failed;                 /* stopped on an error: tr_loop_run returns -1 */
	int64_t next_commit;         /* commits are spaced by commit_interval_ms */
	int64_t next_ping;           /* idle: next database check */
	struct backoff backoff;
	/* Reading ahead (the service only): messages read and decoded while a round's statements
	 * run, and the rebalances met meanwhile, handed over after the round (ahead.h). */
	struct tr_ahead *ahead;
	bool read_ahead;    /* reading ahead is on */
	bool in_round;      /* a round runs: rebalances wait in ahead */
	size_t ahead_taken; /* messages the last round read ahead (counted into the next batch) */
	/* a message read ahead could not be taken: TR_POLL_REFUSED or _STUCK (tr_app_refetch),
	 * reading ahead stopped there for the round; handled with the next poll batch's end */
	enum tr_poll_end ahead_end;
	/* a message read ahead could not be held by the engine (never tracked): no commit from
	 * now on, the loop stops and the next run reads it again */
	bool ahead_lost;
};

static void tr_consumer_apply_rebalance(void *opaque, bool assigned,
                                        const rd_kafka_topic_partition_list_t *parts)
{
	struct tr_consumer *c = opaque;

	for (int i = 0; !assigned && i < parts->cnt; i++)
		tr_engine_revoke(c->engine, parts->elems[i].topic, parts->elems[i].partition);
	if (c->hooks->rebalanced)
		c->hooks->rebalanced(c->hooks->opaque, assigned, parts);
}

/* kbus' rebalance callback. During a round (reading ahead) the engine's part waits until the
 * round is over, in order with the messages read before and after it; kbus has (un)assigned the
 * partitions already, and a revoked partition's offsets then simply cannot be committed. */
static void tr_consumer_rebalance(void *opaque, bool assigned,
                                  const rd_kafka_topic_partition_list_t *parts)
{
	struct tr_consumer *c = opaque;

	if (c->in_round && tr_ahead_push_rebalance(c->ahead, assigned, parts) == 0)
		return;
	tr_consumer_apply_rebalance(c, assigned, parts);
}

/* The rounds' idle work: reads and decodes the next messages while the server works, up to one
 * batch. Returns whether it read any. */
static bool tr_consumer_read_ahead(void *opaque)
{
	struct tr_consumer *c = opaque;
	size_t max = (size_t)c->app->conf->batch_max;
	int got = 0;

	while (c->read_ahead && c->ahead_end == TR_POLL_OK && got < TR_AHEAD_SLICE &&
	       tr_ahead_messages(c->ahead) < max) {
		rd_kafka_message_t *rkm = kbus_consumer_poll(c->kc, 0);
		struct tr_msg *m;

		if (!rkm)
			break;
		got++;
		m = tr_msg_from_kafka(rkm);
		if (m)
			tr_engine_decode(c->engine, m);
		/* never passed over: its partition moves back to it (nothing after it was read) */
		if (!m || tr_ahead_push_msg(c->ahead, m) < 0) /* push freed m */
			c->ahead_end = tr_app_refetch(c->kc, rkm);
		rd_kafka_message_destroy(rkm);
	}
	return got > 0;
}

static void tr_consumer_take(void *opaque, struct tr_msg *m)
{
	struct tr_consumer *c = opaque;

	if (c->ahead_lost) { /* the loop stops without committing: all of it is read again */
		tr_msg_free(m);
		return;
	}
	if (tr_engine_add(c->engine, m) < 0) /* freed there */
		c->ahead_lost = true;
}

/* Hands what was read ahead to the engine (take false: frees the messages, applies only the
 * rebalances). Returns the messages handed over. */
static size_t tr_consumer_flush_ahead(struct tr_consumer *c, bool take)
{
	size_t n = tr_ahead_messages(c->ahead);
	struct tr_ahead_sink sink = {take ? tr_consumer_take : NULL, tr_consumer_apply_rebalance,
	                             c};

	tr_ahead_flush(c->ahead, &sink);
	return take ? n : 0;
}

static bool tr_consumer_caught_up(void *opaque, const char *topic, int32_t partition)
{
	struct tr_consumer *c = opaque;

	return kbus_consumer_caught_up(c->kc, topic, partition, TR_END_QUERY_MS);
}

static bool tr_consumer_assigned(void *opaque, const char *topic, int32_t partition)
{
	struct tr_consumer *c = opaque;

	return c->kc && kbus_consumer_assigned(c->kc, topic, partition);
}

static int tr_consumer_commit(void *opaque, const char *topic, int32_t partition, int64_t next)
{
	struct tr_consumer *c = opaque;

	return kbus_consumer_commit(c->kc, topic, partition, next);
}

/* Pauses fetching while the database is away or too much waits in memory; resumes after. */
static void tr_consumer_pause(struct tr_consumer *c)
{
	const struct tr_config *conf = c->app->conf;
	size_t waiting = tr_engine_waiting(c->engine);
	bool full = c->paused ? waiting >= (size_t)(conf->park_max * 9 / 10)
	                      : waiting >= (size_t)conf->park_max;
	bool held = time_mono_ms() < c->hold_until;
	bool want = c->blocked || full || held;

	metric_set(c->app->tm.parked, (double)waiting);
	/* every turn: a partition paused alone to read a message again (tr_app_refetch) resumes
	 * here too, even when its hold ended before this turn looked */
	(void)kbus_consumer_pause_all(c->kc, want);
	if (want == c->paused)
		return;
	log_warn(want ? "consumption paused" : "consumption resumed",
	         LOGS("cause", c->blocked ? "database"
	                       : held     ? "memory"
	                       : full     ? "parked"
	                                  : "none"),
	         LOGI("parked", waiting));
	c->paused = want;
	metric_set(c->app->tm.paused, want ? 1 : 0);
}

/* Commits what is safe to commit, at most every commit_interval_ms. */
static void tr_consumer_commit_due(struct tr_consumer *c)
{
	if (!c->hooks->commit || c->blocked || time_mono_ms() < c->next_commit)
		return;
	tr_engine_commits(c->engine, tr_consumer_commit, c);
	c->next_commit = time_mono_ms() + c->app->conf->commit_interval_ms;
}

/* Idle and not blocked: readiness follows a cheap database check every TR_PING_EVERY_MS, so
 * /readyz is right before the first message and while nothing arrives. */
static void tr_consumer_ping(struct tr_consumer *c)
{
	struct db *db = c->app->db;
	bool ok;

	if (c->blocked || time_mono_ms() < c->next_ping)
		return;
	ok = db_ping(db) == 0;
	if (!ok && atomic_load(&c->app->ready))
		log_warn("database unavailable while idle", LOGS("error", db_errmsg(db)));
	atomic_store(&c->app->ready, ok);
	c->next_ping = time_mono_ms() + TR_PING_EVERY_MS;
}

/* One round; tracks the blocked state and its backoff. */
static void tr_consumer_round(struct tr_consumer *c)
{
	int64_t now = time_mono_ms();
	int rc;

	c->in_round = true;
	rc = tr_app_round(c->app, c->engine);
	c->in_round = false;
	c->ahead_taken = tr_consumer_flush_ahead(c, true);
	if (c->ahead_lost)
		return; /* no commit: tr_loop_run stops */
	if (rc < 0) {
		long delay = backoff_next(&c->backoff);

		if (!c->blocked) {
			c->blocked_since = now;
			log_warn(
			    "round failed (database or broker unavailable): pausing and retrying",
			    LOGS("error", db_errmsg(c->app->db)), LOGI("retry_in_ms", delay));
		}
		c->blocked = true;
		c->retry_at = now + delay;
		atomic_store(&c->app->ready, false);
		return;
	}
	if (c->blocked) {
		log_info("round succeeded again: resuming",
		         LOGI("blocked_ms", time_mono_ms() - c->blocked_since));
		tr_engine_extend_waits(c->engine, time_mono_ms() - c->blocked_since);
		c->blocked = false;
		backoff_reset(&c->backoff);
	}
	atomic_store(&c->app->ready, true);
	tr_consumer_commit_due(c);
}

/* Ends the poll loop on an error: it drains, and tr_loop_run returns -1 (exit 1: restarted, the
 * service reads what it could not handle again from its committed offsets). */
static void tr_consumer_fail(struct tr_consumer *c, const char *why)
{
	log_error(why);
	c->failed = true;
}

/* After a poll batch: a message that could not be taken (out of memory) holds consumption for a
 * backoff, then it is read again (its partition was moved back to it). A run that ends by itself
 * (replay) could end before reading it again, and a failed seek leaves nothing to read it again:
 * those stop. Returns false when the loop must stop. */
static bool tr_consumer_polled(struct tr_consumer *c, size_t got, enum tr_poll_end end)
{
	if (end == TR_POLL_STUCK || (end == TR_POLL_REFUSED && c->hooks->finished)) {
		tr_consumer_fail(c, "stopping: a consumed message could not be taken (out of "
		                    "memory); it is read again by the next run");
		return false;
	}
	if (end == TR_POLL_REFUSED)
		c->hold_until = time_mono_ms() + backoff_next(&c->hold_backoff);
	else if (got > 0)
		backoff_reset(&c->hold_backoff);
	return true;
}

/* The poll timeout: until the next retry or due parked call, at most TR_POLL_MAX_MS. */
static int tr_consumer_wait_ms(const struct tr_consumer *c)
{
	int64_t now = time_mono_ms();
	int64_t wake = c->blocked ? c->retry_at : tr_engine_next_wake(c->engine);
	int64_t wait = wake - now;

	return wait < 0 ? 0 : wait > TR_POLL_MAX_MS ? TR_POLL_MAX_MS : (int)wait;
}

/* SIGTERM: finish what was consumed (parked calls stay uncommitted), commit, within the drain
 * timeout. */
static void tr_consumer_drain(struct tr_consumer *c)
{
	int64_t deadline = time_mono_ms() + c->app->conf->drain_timeout_ms;

	log_info("draining", LOGI("parked", tr_engine_waiting(c->engine)));
	c->read_ahead =
	    false; /* no new work: what was read ahead is read again by the next owner */
	tr_consumer_flush_ahead(c, false);
	while (tr_engine_next_wake(c->engine) == 0 && time_mono_ms() < deadline) {
		if (c->blocked && time_mono_ms() < c->retry_at) {
			rd_kafka_message_t *rkm = kbus_consumer_poll(c->kc, 50);

			if (rkm) /* paused: should not happen; it is read again later */
				rd_kafka_message_destroy(rkm);
			continue;
		}
		tr_consumer_round(c);
	}
	if (tr_engine_next_wake(c->engine) == 0)
		log_warn("drain timed out: unfinished messages will be read again",
		         LOGI("drain_timeout_ms", c->app->conf->drain_timeout_ms));
	if (c->hooks->commit && !c->ahead_lost)
		tr_engine_commits(c->engine, tr_consumer_commit, c);
}

int tr_loop_run(struct tr_app *app, const struct tr_loop_hooks *hooks, struct tr_stats *stats)
{
	const struct tr_config *conf = app->conf;
	struct tr_consumer c = {.app = app, .hooks = hooks};
	struct tr_engine_config ec = tr_app_engine_config(app);
	const char *topics[2] = {app->line_topic, app->post_topic};
	char errstr[512];
	int rc = -1;

	if (hooks->replay) {
		ec.windows.unknown_call_ms = conf->replay_wait_ms;
		ec.windows.no_conversation_ms = conf->replay_wait_ms;
		ec.keep_dead = conf->no_dead_letter;
		ec.once_per_run = true;
	}
	backoff_init(&c.backoff, 200, (long)conf->db_retry_max_ms);
	backoff_init(&c.hold_backoff, 100, (long)conf->db_retry_max_ms);
	c.engine = tr_engine_new(&ec, app->db, app->producer, &app->tm, tr_consumer_assigned,
	                         tr_consumer_caught_up, &c);
	if (!c.engine) {
		log_error("out of memory creating the engine");
		goto out;
	}
	c.ahead = tr_ahead_new();
	if (!c.ahead) {
		log_error("out of memory creating the engine");
		goto out;
	}
	/* The service reads ahead during its rounds; replay and redrive (their own filters and
	 * bookkeeping of what was read) do not. */
	c.read_ahead = !hooks->replay && !hooks->keep;
	if (c.read_ahead)
		tr_engine_set_idle(c.engine, tr_consumer_read_ahead, &c);
	c.kc = kbus_consumer_new(&app->kconf, hooks->group, topics, 2, tr_consumer_rebalance, &c,
	                         errstr, sizeof errstr);
	if (!c.kc) {
		log_error("kafka consumer", LOGS("error", errstr));
		goto out;
	}
	if (hooks->start)
		kbus_consumer_set_start_cb(c.kc, hooks->start, hooks->opaque);
	log_info("consuming", LOGS("group", hooks->group), LOGS("topic", app->line_topic),
	         LOGS("post_call_topic", app->post_topic));
	while (!shutdown_requested() &&
	       !(hooks->finished && hooks->finished(hooks->opaque, c.engine))) {
		enum tr_poll_end end;
		size_t got;

		tr_consumer_pause(&c);
		got = c.ahead_taken;
		c.ahead_taken = 0;
		got += tr_app_poll_batch(app, c.kc, c.engine, got ? 0 : tr_consumer_wait_ms(&c),
		                         got, hooks->keep, hooks->opaque, &end);
		if (c.ahead_end > end)
			end = c.ahead_end;
		c.ahead_end = TR_POLL_OK;
		if (!tr_consumer_polled(&c, got, end))
			break;
		if (hooks->after_poll)
			hooks->after_poll(hooks->opaque, c.kc);
		if (c.blocked ? time_mono_ms() < c.retry_at
		              : got == 0 && tr_engine_next_wake(c.engine) > time_mono_ms()) {
			tr_consumer_commit_due(&c);
			tr_consumer_ping(&c);
		} else {
			tr_consumer_round(&c);
			c.next_ping = time_mono_ms() + TR_PING_EVERY_MS;
		}
		if (c.ahead_lost) {
			tr_consumer_fail(&c,
			                 "stopping: a message read ahead could not be held (out "
			                 "of memory); nothing is committed, the next run reads it "
			                 "again");
			break;
		}
		if (tr_engine_lost(c.engine)) {
			tr_consumer_fail(&c,
			                 "stopping: messages could not be held (out of memory); "
			                 "no commit passes them, they are read again by the next "
			                 "run");
			break;
		}
	}
	tr_consumer_drain(&c);
	if (stats)
		*stats = *tr_engine_stats(c.engine);
	rc = c.failed ? -1 : 0;
out:
	kbus_consumer_close(c.kc);
	tr_ahead_destroy(c.ahead); /* after close: its revoke may still land here */
	tr_engine_destroy(c.engine);
	return rc;
}

int tr_consume_run(struct tr_app *app)
{
	struct tr_loop_hooks hooks = {.group = app->conf->group, .commit = true};

	return tr_loop_run(app, &hooks, NULL);
}
