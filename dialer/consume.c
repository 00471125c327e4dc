/* consume: the dialer's consumer loop: intake, pauses, commits, rebalances, drain (the jobs' way
 * through claim, dial and outcome: consume_jobs.c). */
#include "consume.h"
#include "consume_int.h"

#include "backoff.h"
#include "config.h"
#include "db.h"
#include "dial.h"
#include "fault.h"
#include "job.h"
#include "kbus.h"
#include "kbus_topics.h"
#include "log.h"
#include "metrics.h"
#include "offtrack.h"
#include "shutdown.h"
#include "timeutil.h"

#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define CONSUME_INTAKE_BATCH    500 /* messages taken per loop turn at most */
#define CONSUME_IDLE_MS         100 /* longest sleep in kafka poll when there is nothing to do */
#define CONSUME_BUSY_MS         20  /* longest sleep in curl while dials are in flight */
#define CONSUME_SEEK_TIMEOUT_MS 5000
#define CONSUME_PING_EVERY_MS   1000 /* idle: how often /readyz checks the database */

static void consume_set_paused(struct consume *c, bool pause)
{
	(void)kbus_consumer_pause_all(c->consumer, pause); /* cheap when nothing changes */
	if (c->paused == pause)
		return;
	c->paused = pause;
	log_debug(pause ? "dialer: fetching paused" : "dialer: fetching resumed",
	          LOGI("backlog", c->backlog.count));
}

static void consume_commit_one(void *opaque, const char *topic, int32_t partition, int64_t next)
{
	struct consume *c = opaque;

	if (kbus_consumer_commit(c->consumer, topic, partition, next) == 0)
		offtrack_committed(c->offsets, topic, partition, next);
}

/* Commits every partition whose finished prefix grew. force: ignore the interval. */
static void consume_commit(struct consume *c, bool force)
{
	int64_t now = time_mono_ms();

	if (!force && now - c->last_commit_ms < c->conf->commit_interval_ms)
		return;
	c->last_commit_ms = now;
	offtrack_each_uncommitted(c->offsets, consume_commit_one, c);
}

/* Drops unclaimed backlog jobs of partition p (revoked): their next owner consumes them. */
static void consume_drop_backlog(struct consume *c, int32_t p, bool all)
{
	struct job_queue keep = {0};
	struct job *j;

	while ((j = job_queue_pop(&c->backlog))) {
		if (all || j->partition == p)
			job_free(j);
		else
			job_queue_push(&keep, j);
	}
	c->backlog = keep;
}

static void consume_rebalance(void *opaque, bool assigned,
                              const rd_kafka_topic_partition_list_t *parts)
{
	struct consume *c = opaque;

	for (int i = 0; i < parts->cnt; i++) {
		int32_t p = parts->elems[i].partition;
		int64_t next;

		if (strcmp(parts->elems[i].topic, c->topic) != 0)
			continue;
		if (assigned) { /* kbus pauses it while consumption is paused */
			offtrack_drop(c->offsets, c->topic, p);
			continue;
		}
		/* revoked: best-effort commit of what is done, then forget the partition */
		next = offtrack_committable(c->offsets, c->topic, p);
		if (next >= 0 && kbus_consumer_commit(c->consumer, c->topic, p, next))
			log_info(
			    "dialer: commit on revoke failed; the next owner re-reads (no redial: "
			    "claims are in the database)",
			    LOGI("partition", p));
		offtrack_drop(c->offsets, c->topic, p);
		consume_drop_backlog(c, p, false);
	}
}

struct consume *consume_new(const struct dialer_config *conf, struct metrics *m, char *errstr,
                            size_t errstr_size)
{
	struct consume *c = calloc(1, sizeof *c);
	struct dial_engine_config dconf;
	const char *topics[1], *need[2];

	if (!c) {
		snprintf(errstr, errstr_size, "out of memory");
		return NULL;
	}
	c->conf = conf;
	c->m = m;
	c->kconf = (struct kbus_config){
	    .brokers = conf->kafka_brokers,
	    .topic_prefix = conf->topic_prefix,
	    .config_file = conf->kafka_config_file,
	    .client_id = "dialer",
	    .session_timeout_ms = (int)conf->session_timeout_ms,
	    .metrics = m,
	};
	if (kbus_topic(&c->kconf, KBUS_TOPIC_CALLS_REQUESTED, false, c->topic, sizeof c->topic) ||
	    kbus_topic(&c->kconf, KBUS_TOPIC_CALLS_REQUESTED, true, c->dlq_topic,
	               sizeof c->dlq_topic)) {
		snprintf(errstr, errstr_size, "KAFKA_TOPIC_PREFIX is too long");
		goto fail;
	}
	topics[0] = c->topic;
	need[0] = c->topic;
	need[1] = c->dlq_topic;
	if (kbus_topics_require(&c->kconf, need, 2, 3000, errstr, errstr_size))
		goto fail;
	backoff_init(&c->stall_backoff, 100, conf->db_retry_max_ms);
	backoff_init(&c->hold_backoff, 100, conf->db_retry_max_ms);
	c->offsets = offtrack_new();
	c->db = db_open(conf->database_url, conf->db_schema, errstr, errstr_size);
	if (!c->offsets || !c->db)
		goto fail;
	db_require_version(c->db, DB_SCHEMA_MIN_VERSION);
	dconf = (struct dial_engine_config){
	    .base_url = conf->el_base_url,
	    .api_key = conf->el_api_key,
	    .concurrency = (int)conf->concurrency,
	    .rate_per_sec = (double)conf->rate_per_sec,
	    .max_attempts = (int)conf->max_attempts,
	    .request_timeout_ms = (long)conf->request_timeout_ms,
	    .connect_timeout_ms = (long)conf->connect_timeout_ms,
	    .retry_base_ms = (long)conf->retry_base_ms,
	    .retry_max_ms = (long)conf->retry_max_ms,
	    .retry_after_max_ms = (long)conf->retry_after_max_s * 1000,
	    .metrics = m,
	};
	c->engine = dial_engine_new(&dconf, consume_dial_done, c, errstr, errstr_size);
	if (!c->engine)
		goto fail;
	c->producer = kbus_producer_new(&c->kconf, errstr, errstr_size);
	if (!c->producer)
		goto fail;
	c->consumer = kbus_consumer_new(&c->kconf, conf->group, topics, 1, consume_rebalance, c,
	                                errstr, errstr_size);
	if (!c->consumer)
		goto fail;
	c->m_backlog =
	    metrics_gauge(m, "dialer_backlog", "Consumed messages waiting for a dial slot", NULL);
	c->m_db_up = metrics_gauge(m, "dialer_db_up", "1 when the database is reachable", NULL);
	c->m_dialled = metrics_counter(m, "dialer_messages_total", "Messages handled, by result",
	                               "result", "dialled", NULL);
	c->m_duplicate = metrics_counter(m, "dialer_messages_total", "Messages handled, by result",
	                                 "result", "already_dialled", NULL);
	c->m_dlq = metrics_counter(m, "dialer_messages_total", "Messages handled, by result",
	                           "result", "dlq", NULL);
	c->m_db_errors =
	    metrics_counter(m, "dialer_db_errors_total",
	                    "Database statements that failed (the work is retried)", NULL);
	return c;
fail:
	consume_destroy(c);
	return NULL;
}

void consume_destroy(struct consume *c)
{
	struct job *j;

	if (!c)
		return;
	kbus_consumer_close(c->consumer);
	if (c->engine)
		dial_engine_abort_all(c->engine); /* callbacks only queue outcomes */
	dial_engine_destroy(c->engine);
	kbus_producer_destroy(c->producer, 5000);
	while ((j = job_queue_pop(&c->backlog)))
		job_free(j);
	while ((j = job_queue_pop(&c->outcomes)))
		job_free(j);
	db_close(c->db);
	offtrack_destroy(c->offsets);
	free(c);
}

bool consume_ready(void *opaque)
{
	struct consume *c = opaque;

	return atomic_load(&c->ready);
}

void consume_stall(struct consume *c)
{
	long delay = backoff_next(&c->stall_backoff);

	metric_inc(c->m_db_errors);
	if (!c->stalled)
		log_warn("dialer: pausing consumption until the database is back",
		         LOGI("retry_ms", delay), LOGS("error", db_errmsg(c->db)));
	c->stalled = true;
	c->retry_at_ms = time_mono_ms() + delay;
	atomic_store(&c->ready, false);
	metric_set(c->m_db_up, 0);
	consume_set_paused(c, true);
}

/* While stalled: reconnects when the backoff expired. Returns true when no longer stalled. */
static bool consume_unstall(struct consume *c)
{
	if (!c->stalled)
		return true;
	if (time_mono_ms() < c->retry_at_ms)
		return false;
	if (db_ensure(c->db)) {
		c->retry_at_ms = time_mono_ms() + backoff_next(&c->stall_backoff);
		return false;
	}
	log_info("dialer: database is back, resuming");
	c->stalled = false;
	backoff_reset(&c->stall_backoff);
	atomic_store(&c->ready, true);
	metric_set(c->m_db_up, 1);
	return true;
}

/* Idle: a database that went away is otherwise noticed only by the next failing statement, so
 * /readyz would stay 200 while nothing arrives. Asks the server every CONSUME_PING_EVERY_MS,
 * on this thread (never the HTTP server's), and stalls like a failed statement would. */
static void consume_ping(struct consume *c)
{
	if (c->stalled || time_mono_ms() < c->next_ping_ms)
		return;
	c->next_ping_ms = time_mono_ms() + CONSUME_PING_EVERY_MS;
	if (db_ping(c->db) == 0)
		return;
	log_warn("dialer: database unavailable while idle", LOGS("error", db_errmsg(c->db)));
	consume_stall(c);
}

/* A consumed message could not be taken (out of memory: no job, or the offsets tracker refused
 * it). Passing over it would let the next message of its partition carry the committed offset
 * past it, so the partition is paused and moved back to it, and fetching holds for a backoff
 * (the work already taken goes on): it is read again then. If even the seek fails, the worker
 * stops (its drain commits nothing at or past the message, so it is read again after the
 * restart). */
static void consume_refetch(struct consume *c, int32_t partition, int64_t offset)
{
	log_error("dialer: out of memory taking a message: reading it again after a pause",
	          LOGI("partition", partition), LOGI("offset", offset));
	(void)kbus_consumer_pause(c->consumer, c->topic, partition);
	if (kbus_consumer_seek(c->consumer, c->topic, partition, offset, CONSUME_SEEK_TIMEOUT_MS)) {
		log_error("dialer: cannot move back to a message it could not take: stopping",
		          LOGI("partition", partition), LOGI("offset", offset));
		c->failed = true;
		shutdown_request();
		return;
	}
	c->hold_until_ms = time_mono_ms() + backoff_next(&c->hold_backoff);
	consume_set_paused(c, true);
}

/* Takes up to a batch of messages; waits up to timeout_ms for the first. A message is tracked
 * only together with its job: either both exist or neither does. */
static int consume_intake(struct consume *c, int timeout_ms)
{
	int n = 0;
	rd_kafka_message_t *rkm;

	while (n < CONSUME_INTAKE_BATCH &&
	       (rkm = kbus_consumer_poll(c->consumer, n ? 0 : timeout_ms))) {
		struct job *j = job_from_message(rkm, c->conf);

		if (!j || fault_track_refuse(c->topic, rkm->partition, rkm->offset) ||
		    offtrack_add(c->offsets, c->topic, rkm->partition, rkm->offset,
		                 rd_kafka_message_timestamp(rkm, NULL))) {
			job_free(j);
			consume_refetch(c, rkm->partition, rkm->offset);
			rd_kafka_message_destroy(rkm);
			break;
		}
		backoff_reset(&c->hold_backoff);
		rd_kafka_message_destroy(rkm);
		job_queue_push(&c->backlog, j);
		n++;
		if (c->backlog.count >= (size_t)c->conf->backlog)
			break;
	}
	return n;
}

/* After shutdown: no new work; in-flight dials get until the deadline, then are ended;
 * outcomes are stored (the database gets 3 more seconds if it is down) and committed. */
static int consume_drain(struct consume *c)
{
	int64_t deadline = time_mono_ms() + c->conf->drain_timeout_ms;
	int64_t store_deadline;

	log_info("dialer: draining", LOGI("in_flight", dial_engine_active(c->engine)),
	         LOGI("unclaimed_dropped", c->backlog.count));
	consume_set_paused(c, true);
	consume_drop_backlog(c, 0, true);
	while (dial_engine_active(c->engine) > 0 && time_mono_ms() < deadline) {
		dial_engine_run(c->engine, CONSUME_BUSY_MS);
		if (consume_unstall(c))
			consume_record(c);
	}
	if (dial_engine_active(c->engine) > 0) {
		log_warn("dialer: drain timeout: ending in-flight dials",
		         LOGI("in_flight", dial_engine_active(c->engine)));
		dial_engine_abort_all(c->engine);
	}
	store_deadline = time_mono_ms() + 3000;
	while (c->outcomes.count > 0 && time_mono_ms() < store_deadline) {
		if (consume_unstall(c))
			consume_record(c);
		if (c->outcomes.count > 0)
			shutdown_sleep_ms(50);
	}
	consume_commit(c, true);
	if (c->outcomes.count > 0) {
		log_error(
		    "dialer: outcomes not stored at exit (database down); those calls stay "
		    "in_progress with their dial claimed, for the post-call webhook or the sweeper",
		    LOGI("count", c->outcomes.count));
		return -1;
	}
	log_info("dialer: drained");
	return 0;
}

int consume_run(struct consume *c)
{
	if (db_ensure(c->db)) {
		log_warn("dialer: database not reachable at start; waiting before consuming");
		consume_stall(c);
	} else {
		atomic_store(&c->ready, true);
		metric_set(c->m_db_up, 1);
	}
	while (!shutdown_requested()) {
		bool can_start, idle;
		int progress = 0;

		consume_unstall(c);
		consume_set_paused(c, c->stalled || time_mono_ms() < c->hold_until_ms ||
		                          c->backlog.count >= (size_t)c->conf->backlog);
		can_start = !c->stalled && c->backlog.count > 0 && dial_engine_can_start(c->engine);
		idle = !can_start && c->outcomes.count == 0;
		if (idle && dial_engine_active(c->engine) == 0)
			consume_ping(c);
		progress += consume_intake(
		    c, idle && dial_engine_active(c->engine) == 0 ? CONSUME_IDLE_MS : 0);
		progress += consume_start(c);
		progress += dial_engine_run(c->engine, progress || !idle ? 0 : CONSUME_BUSY_MS);
		progress += consume_record(c);
		consume_commit(c, false);
		metric_set(c->m_backlog, (double)c->backlog.count);
	}
	return consume_drain(c) == 0 && !c->failed ? 0 : -1;
}
