/* kbus_consumer: the consumer-group consumer: manual commits, rebalance handling (eager or
 * cooperative) and offset-gap detection (auto.offset.reset=error). Per-partition operations
 * (pause/resume/seek, start and end offsets, lag) are in kbus_partition.c. */
#include "kbus.h"
#include "kbus_int.h"
#include "log.h"
#include "metrics.h"
#include "timeutil.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Longest wait for a commit's answer (normally a few ms from a live coordinator). */
#define KBUS_COMMIT_TIMEOUT_MS 5000

static bool kbus_cooperative(rd_kafka_t *rk)
{
	const char *proto = rd_kafka_rebalance_protocol(rk);

	return proto && strcmp(proto, "COOPERATIVE") == 0;
}

static void kbus_log_parts(const char *msg, const rd_kafka_topic_partition_list_t *parts)
{
	char buf[512];
	size_t len = 0;

	buf[0] = '\0';
	for (int i = 0; i < parts->cnt && len < sizeof buf; i++) {
		int n = snprintf(buf + len, sizeof buf - len, "%s%s[%d]", i ? "," : "",
		                 parts->elems[i].topic, (int)parts->elems[i].partition);
		if (n < 0)
			break;
		len += (size_t)n;
	}
	log_info(msg, LOGI("count", parts->cnt), LOGS("partitions", buf));
}

/* Sets where each newly assigned partition starts: its committed offset, or the beginning when
 * the group never committed one. With auto.offset.reset=error, anything else that makes
 * librdkafka reset an offset is then a real gap (see kbus_handle_reset). If the committed
 * offsets cannot be fetched, the offsets stay unset and kbus_handle_reset resolves them. */
static void kbus_start_offsets(rd_kafka_t *rk, rd_kafka_topic_partition_list_t *parts)
{
	rd_kafka_topic_partition_list_t *committed = rd_kafka_topic_partition_list_copy(parts);
	rd_kafka_resp_err_t err = rd_kafka_committed(rk, committed, 10000);

	if (err) {
		log_warn("kafka committed offsets unknown at assignment",
		         LOGS("error", rd_kafka_err2str(err)));
		goto out;
	}
	for (int i = 0; i < parts->cnt && i < committed->cnt; i++) {
		if (committed->elems[i].err)
			continue;
		parts->elems[i].offset = committed->elems[i].offset >= 0
		                             ? committed->elems[i].offset
		                             : RD_KAFKA_OFFSET_BEGINNING;
	}
out:
	rd_kafka_topic_partition_list_destroy(committed);
}

/* The pre-fetch queue of kbus_config.fetch_queue_kb: queued.max.messages.kbytes, fetches of at
 * most as much (fetch.max.bytes, at most librdkafka's 1 MB; message.max.bytes, which must not
 * exceed it, only bounds a consumer's own requests) and an eighth of it per partition
 * (max.partition.fetch.bytes: the mock cluster answers up to that per partition whatever the
 * fetch's total, and a larger message is still fetched whole), so about twice the queue is held
 * at most. Nothing when kb <= 0. */
static int kbus_conf_prefetch(rd_kafka_conf_t *rkc, int kb, char *errstr, size_t errstr_size)
{
	char queue[32], fetch[32], part[32];
	long long bytes = (long long)kb * 1024;

	if (kb <= 0)
		return 0;
	snprintf(queue, sizeof queue, "%d", kb);
	snprintf(fetch, sizeof fetch, "%lld", bytes < 1000000 ? bytes : 1000000);
	snprintf(part, sizeof part, "%lld", bytes / 8 > 4096 ? bytes / 8 : 4096);
	return kbus_conf_set(rkc, "queued.max.messages.kbytes", queue, errstr, errstr_size) ||
	               kbus_conf_set(rkc, "message.max.bytes", fetch, errstr, errstr_size) ||
	               kbus_conf_set(rkc, "fetch.max.bytes", fetch, errstr, errstr_size) ||
	               kbus_conf_set(rkc, "max.partition.fetch.bytes", part, errstr, errstr_size)
	           ? -1
	           : 0;
}

static void kbus_rebalance(rd_kafka_t *rk, rd_kafka_resp_err_t err,
                           rd_kafka_topic_partition_list_t *parts, void *opaque)
{
	struct kbus_consumer *c = opaque;
	bool coop = kbus_cooperative(rk);
	rd_kafka_error_t *error = NULL;
	rd_kafka_resp_err_t aerr = RD_KAFKA_RESP_ERR_NO_ERROR;

	switch (err) {
	case RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS:
		kbus_log_parts("kafka partitions assigned", parts);
		kbus_start_offsets(rk, parts);
		if (c->start_cb)
			c->start_cb(c->start_opaque, rk, parts);
		for (int i = 0; i < parts->cnt; i++)
			kbus_part_started(c, parts->elems[i].topic, parts->elems[i].partition,
			                  parts->elems[i].offset);
		if (coop)
			error = rd_kafka_incremental_assign(rk, parts);
		else
			aerr = rd_kafka_assign(rk, parts);
		kbus_parts_assigned(c, parts);
		if (c->rebalance_cb)
			c->rebalance_cb(c->opaque, true, parts);
		break;
	case RD_KAFKA_RESP_ERR__REVOKE_PARTITIONS:
		kbus_log_parts("kafka partitions revoked", parts);
		if (rd_kafka_assignment_lost(rk))
			log_warn("kafka assignment lost (session timed out?)");
		/* The application commits what it finished while the partitions are still ours:
		 * once unassigned (and, in consumer_close, the group left) librdkafka may never
		 * answer a commit. A commit refused for membership ends the others at once. */
		c->in_revoke = true;
		c->membership_lost = rd_kafka_assignment_lost(rk); /* its commits cannot succeed */
		if (c->rebalance_cb)
			c->rebalance_cb(c->opaque, false, parts);
		c->in_revoke = false;
		if (coop)
			error = rd_kafka_incremental_unassign(rk, parts);
		else
			aerr = rd_kafka_assign(rk, NULL);
		for (int i = 0; i < parts->cnt; i++)
			kbus_part_drop(c, parts->elems[i].topic, parts->elems[i].partition);
		break;
	default:
		log_error("kafka rebalance failed", LOGS("error", rd_kafka_err2str(err)));
		aerr = rd_kafka_assign(rk, NULL);
		break;
	}
	if (error) {
		log_error("kafka incremental (un)assign failed",
		          LOGS("error", rd_kafka_error_string(error)));
		rd_kafka_error_destroy(error);
	}
	if (aerr)
		log_error("kafka (un)assign failed", LOGS("error", rd_kafka_err2str(aerr)));
}

struct kbus_consumer *kbus_consumer_new(const struct kbus_config *conf, const char *group,
                                        const char *const *topics, size_t ntopics,
                                        kbus_rebalance_cb *rebalance_cb, void *opaque, char *errstr,
                                        size_t errstr_size)
{
	struct kbus_consumer *c = calloc(1, sizeof *c);
	rd_kafka_conf_t *rkc = rd_kafka_conf_new();
	rd_kafka_topic_partition_list_t *subs = NULL;
	rd_kafka_resp_err_t err;
	int session = conf->session_timeout_ms > 0 ? conf->session_timeout_ms : 10000;
	int heartbeat = session / 3 > 3000 ? 3000 : session / 3 < 100 ? 100 : session / 3;
	char s_session[32], s_heartbeat[32];

	if (!c || !rkc) {
		snprintf(errstr, errstr_size, "out of memory");
		goto fail;
	}
	c->metrics = conf->metrics;
	if (conf->metrics)
		c->lag = metrics_gauge(conf->metrics, "kbus_consumer_lag",
		                       "Messages behind the end of the assigned partitions", NULL);
	c->rebalance_cb = rebalance_cb;
	c->opaque = opaque;
	snprintf(s_session, sizeof s_session, "%d", session);
	snprintf(s_heartbeat, sizeof s_heartbeat, "%d", heartbeat);
	/* auto.offset.reset=error: kbus_consumer_poll sees every reset and decides (a new group
	 * starts at the beginning silently, an out-of-range offset is a gap: logged and counted).
	 */
	if (kbus_conf_common(rkc, conf, errstr, errstr_size) ||
	    kbus_conf_set(rkc, "group.id", group, errstr, errstr_size) ||
	    kbus_conf_set(rkc, "enable.auto.commit", "false", errstr, errstr_size) ||
	    kbus_conf_set(rkc, "enable.auto.offset.store", "false", errstr, errstr_size) ||
	    kbus_conf_set(rkc, "auto.offset.reset", "error", errstr, errstr_size) ||
	    kbus_conf_set(rkc, "session.timeout.ms", s_session, errstr, errstr_size) ||
	    kbus_conf_set(rkc, "heartbeat.interval.ms", s_heartbeat, errstr, errstr_size) ||
	    kbus_conf_set(rkc, "partition.assignment.strategy", "range", errstr, errstr_size) ||
	    kbus_conf_set(rkc, "fetch.wait.max.ms", "100", errstr, errstr_size))
		goto fail;
	if (kbus_conf_prefetch(rkc, conf->fetch_queue_kb, errstr, errstr_size) ||
	    kbus_conf_extra(rkc, conf, errstr, errstr_size))
		goto fail;
	rd_kafka_conf_set_rebalance_cb(rkc, kbus_rebalance);
	rd_kafka_conf_set_opaque(rkc, c);

	c->rk = rd_kafka_new(RD_KAFKA_CONSUMER, rkc, errstr, errstr_size);
	if (!c->rk)
		goto fail;
	rkc = NULL; /* owned by rk now */
	rd_kafka_poll_set_consumer(c->rk);

	subs = rd_kafka_topic_partition_list_new((int)ntopics);
	for (size_t i = 0; i < ntopics; i++)
		rd_kafka_topic_partition_list_add(subs, topics[i], RD_KAFKA_PARTITION_UA);
	err = rd_kafka_subscribe(c->rk, subs);
	rd_kafka_topic_partition_list_destroy(subs);
	if (err) {
		snprintf(errstr, errstr_size, "subscribe: %s", rd_kafka_err2str(err));
		goto fail;
	}
	if (conf->fetch_queue_kb > 0 && conf->fetch_queue_low > 0 &&
	    !(c->refill = kbus_refill_start(c->rk, (size_t)conf->fetch_queue_low, conf->metrics))) {
		snprintf(errstr, errstr_size, "cannot start the pre-fetch refill thread");
		goto fail;
	}
	return c;
fail:
	if (rkc)
		rd_kafka_conf_destroy(rkc);
	if (c && c->rk)
		rd_kafka_destroy(c->rk);
	free(c);
	return NULL;
}

void kbus_consumer_set_start_cb(struct kbus_consumer *c, kbus_start_cb *cb, void *opaque)
{
	c->start_cb = cb;
	c->start_opaque = opaque;
}

void kbus_consumer_close(struct kbus_consumer *c)
{
	rd_kafka_resp_err_t err;

	if (!c)
		return;
	kbus_refill_stop(c->refill);
	err = rd_kafka_consumer_close(c->rk);
	if (err)
		log_warn("kafka consumer close", LOGS("error", rd_kafka_err2str(err)));
	rd_kafka_destroy(c->rk);
	for (size_t i = 0; i < c->nparts; i++)
		free(c->parts[i].topic);
	free(c->parts);
	free(c);
}

/* After an offset reset error librdkafka stops fetching the partition (a seek is refused), so
 * it is assigned again at offset: alone with the cooperative protocol; with the eager one the
 * whole assignment, every other partition at its current position (nothing is re-read). */
static int kbus_restart(struct kbus_consumer *c, const char *topic, int32_t partition,
                        int64_t offset)
{
	rd_kafka_topic_partition_list_t *parts = NULL;
	rd_kafka_topic_partition_t *tp;
	rd_kafka_error_t *error = NULL;
	rd_kafka_resp_err_t err;
	int ret = -1;

	if (kbus_cooperative(c->rk)) {
		parts = kbus_one(topic, partition, offset);
		error = rd_kafka_incremental_unassign(c->rk, parts);
		if (!error)
			error = rd_kafka_incremental_assign(c->rk, parts);
		if (error) {
			log_warn("kafka incremental (un)assign failed",
			         LOGS("error", rd_kafka_error_string(error)));
			rd_kafka_error_destroy(error);
			goto out;
		}
		goto restarted;
	}
	err = rd_kafka_assignment(c->rk, &parts);
	if (!err)
		err = rd_kafka_position(c->rk, parts);
	if (err) {
		log_warn("kafka assignment unknown", LOGS("error", rd_kafka_err2str(err)));
		goto out;
	}
	tp = rd_kafka_topic_partition_list_find(parts, topic, partition);
	if (!tp) {
		ret = 0; /* no longer ours: its next owner resolves it */
		goto out;
	}
	tp->offset = offset;
	err = rd_kafka_assign(c->rk, parts);
	if (err) {
		log_warn("kafka assign failed", LOGS("error", rd_kafka_err2str(err)));
		goto out;
	}
	for (size_t i = 0; i < c->nparts; i++) /* assign() forgets pauses: restore them */
		if (c->parts[i].paused)
			(void)kbus_consumer_pause(c, c->parts[i].topic, c->parts[i].partition);
restarted:
	kbus_part_started(c, topic, partition, offset);
	{ /* incremental_assign forgets its pause too */
		const struct kbus_part *p = kbus_part_get(c, topic, partition, false);

		if (p && p->paused)
			(void)kbus_consumer_pause(c, topic, partition);
	}
	ret = 0;
out:
	if (parts)
		rd_kafka_topic_partition_list_destroy(parts);
	return ret;
}

/* auto.offset.reset=error fired for one partition. rkm->offset is the offset that could not be
 * used: a real offset (>= 0) means it is out of range (deleted by retention, or beyond the end):
 * a gap. RD_KAFKA_OFFSET_INVALID means the group has no committed offset yet: start at the
 * beginning. Either way fetching resumes at the earliest available offset. */
static void kbus_handle_reset(struct kbus_consumer *c, const rd_kafka_message_t *rkm)
{
	const char *topic = rkm->rkt ? rd_kafka_topic_name(rkm->rkt) : "";
	int64_t lo = -1, hi = -1;
	rd_kafka_resp_err_t err;

	err = rd_kafka_query_watermark_offsets(c->rk, topic, rkm->partition, &lo, &hi, 5000);
	if (err)
		log_warn("kafka watermarks unknown", LOGS("topic", topic),
		         LOGI("partition", rkm->partition), LOGS("error", rd_kafka_err2str(err)));
	if (rkm->offset >= 0) {
		log_error("kafka offset out of range: messages were skipped (deleted before being "
		          "consumed?); resuming at the earliest available offset",
		          LOGS("topic", topic), LOGI("partition", rkm->partition),
		          LOGI("offset", rkm->offset), LOGI("earliest", lo), LOGI("end", hi),
		          LOGI("skipped", lo > rkm->offset ? lo - rkm->offset : 0));
		if (c->metrics) {
			metric_inc(
			    metrics_counter(c->metrics, "kbus_offset_gap_total",
			                    "Committed/fetch offsets found out of range (data "
			                    "skipped)",
			                    "topic", topic, NULL));
			if (lo > rkm->offset)
				metric_add(
				    metrics_counter(c->metrics, "kbus_offset_gap_messages_total",
				                    "Messages skipped because of offset gaps",
				                    "topic", topic, NULL),
				    (double)(lo - rkm->offset));
		}
	} else {
		log_info("kafka partition has no committed offset: starting at the earliest",
		         LOGS("topic", topic), LOGI("partition", rkm->partition),
		         LOGI("earliest", lo));
	}
	if (kbus_restart(c, topic, rkm->partition, lo >= 0 ? lo : RD_KAFKA_OFFSET_BEGINNING))
		log_error("kafka partition could not be restarted after an offset reset",
		          LOGS("topic", topic), LOGI("partition", rkm->partition));
}

static void kbus_handle_error(struct kbus_consumer *c, const rd_kafka_message_t *rkm)
{
	const char *topic = rkm->rkt ? rd_kafka_topic_name(rkm->rkt) : "";

	switch (rkm->err) {
	case RD_KAFKA_RESP_ERR__PARTITION_EOF:
		break;
	case RD_KAFKA_RESP_ERR__AUTO_OFFSET_RESET:
		kbus_handle_reset(c, rkm);
		break;
	case RD_KAFKA_RESP_ERR__FATAL:
		log_error("kafka consumer fatal error",
		          LOGS("error", rd_kafka_message_errstr(rkm)));
		break;
	default:
		log_warn("kafka consumer error", LOGS("topic", topic),
		         LOGI("partition", rkm->partition),
		         LOGS("error", rd_kafka_err2name(rkm->err)),
		         LOGS("reason", rd_kafka_message_errstr(rkm)));
		break;
	}
}

rd_kafka_message_t *kbus_consumer_poll(struct kbus_consumer *c, int timeout_ms)
{
	long long deadline = time_mono_ms() + timeout_ms;

	for (;;) {
		long long left = deadline - time_mono_ms();
		rd_kafka_message_t *rkm = rd_kafka_consumer_poll(c->rk, left > 0 ? (int)left : 0);

		kbus_lag_tick(c);
		if (!rkm)
			return NULL;
		if (!rkm->err)
			return rkm;
		kbus_handle_error(c, rkm);
		rd_kafka_message_destroy(rkm);
		if (time_mono_ms() >= deadline)
			return NULL;
	}
}

/* Errors after which no commit of this generation can succeed. */
static bool kbus_membership_error(rd_kafka_resp_err_t err)
{
	return err == RD_KAFKA_RESP_ERR_UNKNOWN_MEMBER_ID ||
	       err == RD_KAFKA_RESP_ERR_ILLEGAL_GENERATION ||
	       err == RD_KAFKA_RESP_ERR_REBALANCE_IN_PROGRESS ||
	       err == RD_KAFKA_RESP_ERR_FENCED_INSTANCE_ID || err == RD_KAFKA_RESP_ERR__STATE;
}

/* Commits parts and waits at most KBUS_COMMIT_TIMEOUT_MS for the answer: a plain synchronous
 * rd_kafka_commit can wait forever when the group is being left (seen with 2.0.2 in
 * consumer_close). Returns the first error, RD_KAFKA_RESP_ERR__TIMED_OUT when unanswered. */
static rd_kafka_resp_err_t kbus_commit_wait(rd_kafka_t *rk, rd_kafka_topic_partition_list_t *parts)
{
	rd_kafka_queue_t *q = rd_kafka_queue_new(rk);
	rd_kafka_event_t *ev = NULL;
	const rd_kafka_topic_partition_list_t *done;
	rd_kafka_resp_err_t err;

	if (!q)
		return RD_KAFKA_RESP_ERR__CRIT_SYS_RESOURCE;
	err = rd_kafka_commit_queue(rk, parts, q, NULL, NULL);
	if (err)
		goto out;
	ev = rd_kafka_queue_poll(q, KBUS_COMMIT_TIMEOUT_MS);
	if (!ev) {
		err = RD_KAFKA_RESP_ERR__TIMED_OUT;
		goto out;
	}
	err = rd_kafka_event_error(ev);
	done = rd_kafka_event_topic_partition_list(ev);
	for (int i = 0; !err && done && i < done->cnt; i++)
		err = done->elems[i].err;
out:
	if (ev)
		rd_kafka_event_destroy(ev);
	rd_kafka_queue_destroy(q); /* an answer arriving later is dropped with the queue */
	return err;
}

int kbus_consumer_commit(struct kbus_consumer *c, const char *topic, int32_t partition,
                         int64_t next_offset)
{
	rd_kafka_topic_partition_list_t *parts;
	rd_kafka_resp_err_t err;

	if (c->in_revoke && c->membership_lost)
		return -1; /* logged (failure or lost assignment); the next owner re-reads */
	if (time_mono_ms() < c->commit_quiet_until_ms)
		return -1; /* logged with the timeout; the caller keeps its offset and retries */
	parts = kbus_one(topic, partition, next_offset);
	err = kbus_commit_wait(c->rk, parts);
	rd_kafka_topic_partition_list_destroy(parts);
	if (!err)
		return 0;
	if (kbus_membership_error(err) || err == RD_KAFKA_RESP_ERR__TIMED_OUT)
		c->membership_lost = true;
	/* A coordinator that left one commit unanswered (failing over, overloaded) would leave
	 * the next ones unanswered too: a sweep over every partition would then stall for
	 * partitions x the timeout. Fail commits at once for one timeout's length instead. */
	if (err == RD_KAFKA_RESP_ERR__TIMED_OUT)
		c->commit_quiet_until_ms = time_mono_ms() + KBUS_COMMIT_TIMEOUT_MS;
	log_warn("kafka commit failed", LOGS("topic", topic), LOGI("partition", partition),
	         LOGI("offset", next_offset), LOGS("error", rd_kafka_err2str(err)));
	return -1;
}

int kbus_message_header(const rd_kafka_message_t *rkm, const char *name, char *out, size_t size)
{
	rd_kafka_headers_t *hdrs = NULL;
	const void *val = NULL;
	size_t len = 0;

	if (rd_kafka_message_headers(rkm, &hdrs) || !hdrs)
		return -1;
	if (rd_kafka_header_get_last(hdrs, name, &val, &len))
		return -1;
	if (len >= size)
		return -1;
	if (len)
		memcpy(out, val, len);
	out[len] = '\0';
	return 0;
}
