/* kbus: the idempotent producer with its delivery-report thread (the shared configuration is in
 * kbus_conf.c, the consumer in kbus_consumer.c). */
#include "kbus.h"
#include "kbus_int.h"
#include "kbus_topics.h"
#include "log.h"
#include "metrics.h"
#include "timeutil.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* The delivery metrics of one topic, looked up once: a label lookup in the registry (formatting
 * and its lock) for every delivery report showed in the ingress's profile. */
struct kbus_topic_metrics {
	char *topic;
	struct metric *ok, *error, *latency;
};

#define KBUS_TOPIC_METRICS_MAX 16

struct kbus_producer {
	rd_kafka_t *rk;
	struct metrics *metrics;
	pthread_t thread;
	bool thread_started;
	atomic_bool stop;
	/* Delivery reports run on the poll thread, and on a flushing thread at shutdown: mu. */
	pthread_mutex_t mu;
	/* during an outage every queued message fails: one line a second, with the count */
	struct log_limit fail_log;
	struct kbus_topic_metrics tm[KBUS_TOPIC_METRICS_MAX];
	size_t ntm;
};

/* What travels with each message as its opaque; freed by the delivery report. */
struct kbus_inflight {
	kbus_delivery_cb *cb;
	void *opaque;
	long long start_ms;
};

/* Fills tm with the series of topic. */
static void kbus_topic_metrics_lookup(struct metrics *m, const char *topic,
                                      struct kbus_topic_metrics *tm)
{
	static const char produced[] = "kbus_produced_total";
	static const char produced_help[] = "Messages produced, by delivery result";

	tm->ok = metrics_counter(m, produced, produced_help, "topic", topic, "result", "ok", NULL);
	tm->error =
	    metrics_counter(m, produced, produced_help, "topic", topic, "result", "error", NULL);
	tm->latency = metrics_histogram(
	    m, "kbus_produce_latency_seconds", "Time from produce to delivery report",
	    metrics_latency_buckets, metrics_latency_nbuckets, "topic", topic, NULL);
}

/* Records one delivery in the topic's cached series (looked up on first use; past
 * KBUS_TOPIC_METRICS_MAX topics, looked up every time). */
static void kbus_record_delivery(struct kbus_producer *p, const char *topic, bool ok, double secs)
{
	struct kbus_topic_metrics *tm = NULL, once;

	pthread_mutex_lock(&p->mu);
	for (size_t i = 0; i < p->ntm && !tm; i++)
		if (strcmp(p->tm[i].topic, topic) == 0)
			tm = &p->tm[i];
	if (!tm && p->ntm < KBUS_TOPIC_METRICS_MAX && (p->tm[p->ntm].topic = strdup(topic))) {
		tm = &p->tm[p->ntm++];
		kbus_topic_metrics_lookup(p->metrics, topic, tm);
	}
	if (tm)
		once = *tm;
	pthread_mutex_unlock(&p->mu);
	if (!tm)
		kbus_topic_metrics_lookup(p->metrics, topic, &once);
	metric_inc(ok ? once.ok : once.error);
	metric_observe(once.latency, secs);
}

static void kbus_dr_cb(rd_kafka_t *rk, const rd_kafka_message_t *rkm, void *conf_opaque)
{
	struct kbus_producer *p = conf_opaque;
	struct kbus_inflight *fl = rkm->_private;
	const char *topic = rd_kafka_topic_name(rkm->rkt);

	(void)rk;
	if (p->metrics)
		kbus_record_delivery(p, topic, !rkm->err,
		                     (double)(time_mono_ms() - fl->start_ms) / 1000.0);
	if (rkm->err)
		log_warn_limited(&p->fail_log, "kafka delivery failed", LOGS("topic", topic),
		                 LOGS("error", rd_kafka_err2str(rkm->err)));
	if (fl->cb)
		fl->cb(fl->opaque, rkm->err, rkm->partition, rkm->offset);
	free(fl);
}

static void *kbus_poll_thread(void *arg)
{
	struct kbus_producer *p = arg;

	while (!atomic_load(&p->stop))
		rd_kafka_poll(p->rk, 100);
	return NULL;
}

struct kbus_producer *kbus_producer_new(const struct kbus_config *conf, char *errstr,
                                        size_t errstr_size)
{
	struct kbus_producer *p = calloc(1, sizeof *p);
	rd_kafka_conf_t *rkc = rd_kafka_conf_new();
	char num[32];

	if (!p || !rkc) {
		snprintf(errstr, errstr_size, "out of memory");
		goto fail;
	}
	pthread_mutex_init(&p->mu, NULL);
	p->metrics = conf->metrics;
	atomic_init(&p->stop, false);
	snprintf(num, sizeof num, "%d",
	         conf->delivery_timeout_ms > 0 ? conf->delivery_timeout_ms : 10000);
	if (kbus_conf_common(rkc, conf, errstr, errstr_size) ||
	    kbus_conf_set(rkc, "enable.idempotence", "true", errstr, errstr_size) ||
	    kbus_conf_set(rkc, "acks", "all", errstr, errstr_size) ||
	    kbus_conf_set(rkc, "compression.codec", "lz4", errstr, errstr_size) ||
	    kbus_conf_set(rkc, "linger.ms", "2", errstr, errstr_size) ||
	    kbus_conf_set(rkc, "message.max.bytes", KBUS_TOPICS_TEXT(KBUS_TOPICS_MAX_MESSAGE_BYTES),
	                  errstr, errstr_size) ||
	    kbus_conf_set(rkc, "message.timeout.ms", num, errstr, errstr_size) ||
	    kbus_conf_extra(rkc, conf, errstr, errstr_size))
		goto fail;
	rd_kafka_conf_set_dr_msg_cb(rkc, kbus_dr_cb);
	rd_kafka_conf_set_opaque(rkc, p);

	p->rk = rd_kafka_new(RD_KAFKA_PRODUCER, rkc, errstr, errstr_size);
	if (!p->rk)
		goto fail;
	rkc = NULL; /* owned by rk now */
	if (pthread_create(&p->thread, NULL, kbus_poll_thread, p) != 0) {
		snprintf(errstr, errstr_size, "cannot start the delivery-report thread");
		goto fail;
	}
	p->thread_started = true;
	return p;
fail:
	if (rkc)
		rd_kafka_conf_destroy(rkc);
	if (p && p->rk)
		rd_kafka_destroy(p->rk);
	if (p)
		pthread_mutex_destroy(&p->mu);
	free(p);
	return NULL;
}

void kbus_producer_destroy(struct kbus_producer *p, int flush_timeout_ms)
{
	if (!p)
		return;
	if (kbus_producer_flush(p, flush_timeout_ms) != 0) {
		log_warn("kafka producer: messages still queued at shutdown, purging",
		         LOGI("queued", rd_kafka_outq_len(p->rk)));
		/* Purged messages get their delivery report (err __PURGE_*), so every callback
		 * still runs exactly once. */
		rd_kafka_purge(p->rk, RD_KAFKA_PURGE_F_QUEUE | RD_KAFKA_PURGE_F_INFLIGHT);
		rd_kafka_flush(p->rk, 1000);
	}
	if (p->thread_started) {
		atomic_store(&p->stop, true);
		pthread_join(p->thread, NULL);
	}
	rd_kafka_destroy(p->rk);
	for (size_t i = 0; i < p->ntm; i++)
		free(p->tm[i].topic);
	pthread_mutex_destroy(&p->mu);
	free(p);
}

int kbus_produce(struct kbus_producer *p, const char *topic, const void *key, size_t key_len,
                 const void *value, size_t value_len, const struct kbus_header *headers,
                 size_t nheaders, kbus_delivery_cb *cb, void *opaque)
{
	struct kbus_inflight *fl = malloc(sizeof *fl);
	rd_kafka_headers_t *hdrs = NULL;
	rd_kafka_resp_err_t err;

	if (!fl)
		return -1;
	fl->cb = cb;
	fl->opaque = opaque;
	fl->start_ms = time_mono_ms();
	if (nheaders > 0) {
		hdrs = rd_kafka_headers_new(nheaders);
		for (size_t i = 0; i < nheaders; i++) {
			const char *v = headers[i].value ? headers[i].value : "";
			rd_kafka_header_add(hdrs, headers[i].name, -1, v, -1);
		}
	}
	err = rd_kafka_producev(
	    p->rk, RD_KAFKA_V_TOPIC(topic), RD_KAFKA_V_KEY((void *)key, key ? key_len : 0),
	    RD_KAFKA_V_VALUE((void *)value, value_len), RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
	    RD_KAFKA_V_HEADERS(hdrs), RD_KAFKA_V_OPAQUE(fl), RD_KAFKA_V_END);
	if (err) {
		log_warn("kafka produce refused", LOGS("topic", topic),
		         LOGS("error", rd_kafka_err2str(err)));
		if (p->metrics)
			metric_inc(metrics_counter(p->metrics, "kbus_produced_total",
			                           "Messages produced, by delivery result", "topic",
			                           topic, "result", "refused", NULL));
		if (hdrs)
			rd_kafka_headers_destroy(hdrs);
		free(fl);
		return -1;
	}
	return 0;
}

/* A synchronous produce's meeting point; shared with the delivery report, freed by whichever
 * side lets go last (the report may arrive after the caller gave up waiting). */
struct kbus_waiter {
	pthread_mutex_t mu;
	pthread_cond_t cv;
	int refs;
	bool done;
	rd_kafka_resp_err_t err;
};

static void kbus_waiter_release(struct kbus_waiter *w)
{
	bool last;

	pthread_mutex_lock(&w->mu);
	last = --w->refs == 0;
	pthread_mutex_unlock(&w->mu);
	if (last) {
		pthread_cond_destroy(&w->cv);
		pthread_mutex_destroy(&w->mu);
		free(w);
	}
}

static void kbus_waiter_cb(void *opaque, rd_kafka_resp_err_t err, int32_t partition, int64_t offset)
{
	struct kbus_waiter *w = opaque;

	(void)partition;
	(void)offset;
	pthread_mutex_lock(&w->mu);
	w->done = true;
	w->err = err;
	pthread_cond_signal(&w->cv);
	pthread_mutex_unlock(&w->mu);
	kbus_waiter_release(w);
}

int kbus_produce_sync(struct kbus_producer *p, const char *topic, const void *key, size_t key_len,
                      const void *value, size_t value_len, const struct kbus_header *headers,
                      size_t nheaders, int timeout_ms, char *errstr, size_t errstr_size)
{
	struct kbus_waiter *w = calloc(1, sizeof *w);
	struct timespec deadline;
	int ret = -1;

	if (!w) {
		snprintf(errstr, errstr_size, "out of memory");
		return -1;
	}
	if (time_cond_init(&w->cv)) {
		snprintf(errstr, errstr_size, "cannot initialise a condition variable");
		free(w);
		return -1;
	}
	pthread_mutex_init(&w->mu, NULL);
	w->refs = 2;
	if (kbus_produce(p, topic, key, key_len, value, value_len, headers, nheaders,
	                 kbus_waiter_cb, w) != 0) {
		snprintf(errstr, errstr_size, "could not enqueue (local queue full or bad topic)");
		w->refs = 1;
		goto out;
	}
	deadline = time_mono_deadline(timeout_ms);
	pthread_mutex_lock(&w->mu);
	while (!w->done) {
		if (pthread_cond_timedwait(&w->cv, &w->mu, &deadline) == ETIMEDOUT)
			break;
	}
	if (!w->done)
		snprintf(errstr, errstr_size, "no delivery report within %d ms", timeout_ms);
	else if (w->err)
		snprintf(errstr, errstr_size, "delivery failed: %s", rd_kafka_err2str(w->err));
	else
		ret = 0;
	pthread_mutex_unlock(&w->mu);
out:
	kbus_waiter_release(w);
	return ret;
}

int kbus_producer_flush(struct kbus_producer *p, int timeout_ms)
{
	return rd_kafka_flush(p->rk, timeout_ms) == RD_KAFKA_RESP_ERR_NO_ERROR ? 0 : -1;
}

bool kbus_producer_ready(struct kbus_producer *p, int timeout_ms)
{
	const struct rd_kafka_metadata *md = NULL;
	rd_kafka_resp_err_t err = rd_kafka_metadata(p->rk, 0, NULL, &md, timeout_ms);
	bool ok = err == RD_KAFKA_RESP_ERR_NO_ERROR && md && md->broker_cnt > 0;

	if (md)
		rd_kafka_metadata_destroy(md);
	return ok;
}
