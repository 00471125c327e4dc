/* publish: asynchronous, acknowledged batches on top of kbus_produce, with latency metrics. */
#include "publish.h"

#include "config.h"
#include "kbus_topics.h"
#include "log.h"
#include "metrics.h"
#include "timeutil.h"

#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>

#define PUBLISH_TOPIC_MAX 256

struct publish {
	struct kbus_producer *producer;
	struct metrics *metrics;
	size_t max_value;
	char topics[PUBLISH_NTOPICS][PUBLISH_TOPIC_MAX];
	struct metric *latency[PUBLISH_NTOPICS];
};

/* One batch in flight; freed by whoever drops the last reference (queuing loop or a report). */
struct publish_op {
	atomic_uint refs;  /* queued messages + 1 for the queuing loop */
	atomic_int result; /* enum publish_result: OK until a report says otherwise */
	publish_done_fn *done;
	void *opaque;
	struct metric *latency;
	int64_t start_ms;
};

/* How long the start waits for the cluster to say which topics exist. */
#define PUBLISH_TOPICS_CHECK_MS 3000

static const char *const publish_bases[PUBLISH_NTOPICS] = {
    [PUBLISH_CALLS_REQUESTED] = KBUS_TOPIC_CALLS_REQUESTED,
    [PUBLISH_TRANSCRIPTION] = KBUS_TOPIC_TRANSCRIPTION,
    [PUBLISH_POST_CALL] = KBUS_TOPIC_POST_CALL,
};

struct publish *publish_new(const struct ingress_config *conf, struct metrics *m, char *errstr,
                            size_t errstr_size)
{
	struct publish *pub = calloc(1, sizeof *pub);
	char linger[24], maxbytes[24];
	const char *names[PUBLISH_NTOPICS];
	long long largest;
	/* reconnect quickly after a broker outage: requests are waiting */
	const char *extra[] = {
	    "linger.ms", linger, "message.max.bytes", maxbytes, "reconnect.backoff.max.ms",
	    "1000",      NULL};
	struct kbus_config kc = {
	    .brokers = conf->kafka_brokers,
	    .topic_prefix = conf->kafka_topic_prefix,
	    .config_file = conf->kafka_config_file,
	    .client_id = "ingress",
	    .delivery_timeout_ms = (int)conf->delivery_timeout_ms,
	    .metrics = m,
	    .extra = extra,
	};

	if (pub == NULL) {
		snprintf(errstr, errstr_size, "out of memory");
		return NULL;
	}
	pub->metrics = m;
	/* Room for the largest body plus its envelope, re-encoded (compact JSON rarely grows, but
	 * numbers may be printed longer than sent). */
	largest =
	    conf->max_body > conf->max_post_call_body ? conf->max_body : conf->max_post_call_body;
	pub->max_value = (size_t)(largest * 2 + 65536);
	snprintf(linger, sizeof linger, "%.3f", (double)conf->linger_us / 1000.0);
	snprintf(maxbytes, sizeof maxbytes, "%zu", pub->max_value + 65536);
	for (int t = 0; t < PUBLISH_NTOPICS; t++) {
		if (kbus_topic(&kc, publish_bases[t], false, pub->topics[t], PUBLISH_TOPIC_MAX) !=
		    0) {
			snprintf(errstr, errstr_size, "KAFKA_TOPIC_PREFIX is too long");
			goto fail;
		}
		names[t] = pub->topics[t];
		pub->latency[t] = metrics_histogram(
		    m, "ingress_publish_latency_seconds",
		    "Time from queuing a request's messages to the broker's acknowledgement of all",
		    metrics_latency_buckets, metrics_latency_nbuckets, "topic", pub->topics[t],
		    NULL);
	}
	if (kbus_topics_require(&kc, names, PUBLISH_NTOPICS, PUBLISH_TOPICS_CHECK_MS, errstr,
	                        errstr_size))
		goto fail;
	pub->producer = kbus_producer_new(&kc, errstr, errstr_size);
	if (pub->producer == NULL)
		goto fail;
	return pub;
fail:
	free(pub);
	return NULL;
}

void publish_destroy(struct publish *pub, int flush_timeout_ms)
{
	if (pub == NULL)
		return;
	kbus_producer_destroy(pub->producer, flush_timeout_ms);
	free(pub);
}

size_t publish_max_value(const struct publish *pub)
{
	return pub->max_value;
}

const char *publish_topic_name(const struct publish *pub, enum publish_topic t)
{
	return pub->topics[t];
}

bool publish_ready(struct publish *pub, int timeout_ms)
{
	return kbus_producer_ready(pub->producer, timeout_ms);
}

int publish_flush(struct publish *pub, int timeout_ms)
{
	return kbus_producer_flush(pub->producer, timeout_ms);
}

/* Drops one reference; the last one reports the batch and frees it. */
static void publish_op_release(struct publish_op *op)
{
	enum publish_result result;

	if (atomic_fetch_sub_explicit(&op->refs, 1, memory_order_acq_rel) != 1)
		return;
	result = (enum publish_result)atomic_load_explicit(&op->result, memory_order_relaxed);
	if (result == PUBLISH_OK)
		metric_observe(op->latency, (double)(time_mono_ms() - op->start_ms) / 1000.0);
	op->done(op->opaque, result);
	free(op);
}

static void publish_delivered(void *opaque, rd_kafka_resp_err_t err, int32_t partition,
                              int64_t offset)
{
	struct publish_op *op = opaque;

	(void)partition;
	(void)offset;
	if (err == RD_KAFKA_RESP_ERR_MSG_SIZE_TOO_LARGE ||
	    err == RD_KAFKA_RESP_ERR_RECORD_LIST_TOO_LARGE) {
		atomic_store_explicit(&op->result, PUBLISH_TOO_LARGE, memory_order_relaxed);
	} else if (err != RD_KAFKA_RESP_ERR_NO_ERROR) {
		int ok = PUBLISH_OK; /* too large, once seen, stays */

		atomic_compare_exchange_strong_explicit(&op->result, &ok, PUBLISH_UNAVAILABLE,
		                                        memory_order_relaxed, memory_order_relaxed);
	}
	publish_op_release(op);
}

int publish_batch(struct publish *pub, enum publish_topic t, const struct publish_msg *msgs,
                  size_t n, publish_done_fn *done, void *opaque)
{
	struct publish_op *op = calloc(1, sizeof *op);
	size_t queued = 0;

	if (op == NULL)
		return -1;
	atomic_init(&op->refs, 1);
	atomic_init(&op->result, PUBLISH_OK);
	op->done = done;
	op->opaque = opaque;
	op->latency = pub->latency[t];
	op->start_ms = time_mono_ms();
	for (size_t i = 0; i < n; i++) {
		atomic_fetch_add_explicit(&op->refs, 1, memory_order_relaxed);
		if (kbus_produce(pub->producer, pub->topics[t], msgs[i].key, msgs[i].key_len,
		                 msgs[i].value, msgs[i].value_len, msgs[i].headers,
		                 msgs[i].nheaders, publish_delivered, op) != 0) {
			atomic_fetch_sub_explicit(&op->refs, 1, memory_order_relaxed);
			atomic_store_explicit(&op->result, PUBLISH_UNAVAILABLE,
			                      memory_order_relaxed);
			break; /* later messages would not be acknowledged as a whole either */
		}
		queued++;
	}
	if (queued == 0) {
		free(op);
		return -1;
	}
	publish_op_release(op);
	return 0;
}
