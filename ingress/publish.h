/* publish: the ingress side of Kafka. Queues a request's messages with kbus_produce and reports
 * once, from the producer's thread, when the broker acknowledged (or refused) all of them, so an
 * HTTP request can wait suspended instead of holding a thread. */
#ifndef CALLPIPE_INGRESS_PUBLISH_H
#define CALLPIPE_INGRESS_PUBLISH_H

#include "kbus.h"

#include <stdbool.h>
#include <stddef.h>

struct ingress_config;
struct metrics;

enum publish_topic {
	PUBLISH_CALLS_REQUESTED = 0,
	PUBLISH_TRANSCRIPTION,
	PUBLISH_POST_CALL,
	PUBLISH_NTOPICS,
};

enum publish_result {
	PUBLISH_OK = 0,      /* every message acknowledged (acks=all) */
	PUBLISH_UNAVAILABLE, /* at least one not acknowledged in time: broker down or refusing */
	PUBLISH_TOO_LARGE,   /* the broker refused a message as too large: retrying won't help */
};

/* One message: key, value and headers are copied by publish_batch. */
struct publish_msg {
	const char *key;
	size_t key_len;
	const char *value;
	size_t value_len;
	const struct kbus_header *headers;
	size_t nheaders;
};

/* Called exactly once per accepted batch, from the producer's delivery thread. */
typedef void publish_done_fn(void *opaque, enum publish_result result);

struct publish;

/* Creates the idempotent producer (acks=all, message.timeout.ms = INGRESS_DELIVERY_TIMEOUT_MS).
 * It connects lazily: a broker that is down does not fail this. NULL + errstr on bad settings.
 * Caller owns; publish_destroy flushes for up to flush_timeout_ms and frees (NULL ok). */
struct publish *publish_new(const struct ingress_config *conf, struct metrics *m, char *errstr,
                            size_t errstr_size);
void publish_destroy(struct publish *pub, int flush_timeout_ms);

/* Largest value the producer accepts; the server answers 413 above it. */
size_t publish_max_value(const struct publish *pub);

/* Full topic name (prefix included); borrowed for pub's lifetime. */
const char *publish_topic_name(const struct publish *pub, enum publish_topic t);

/* Queues n >= 1 messages to topic t. Returns 0 when at least one was queued: done will be called
 * once all queued messages have a delivery report (with PUBLISH_UNAVAILABLE if any was not queued
 * or not acknowledged). Returns -1 when none could be queued: done is not called. */
__attribute__((warn_unused_result)) int publish_batch(struct publish *pub, enum publish_topic t,
                                                      const struct publish_msg *msgs, size_t n,
                                                      publish_done_fn *done, void *opaque);

/* True when the broker answered a metadata request within timeout_ms (/readyz). */
bool publish_ready(struct publish *pub, int timeout_ms);

/* Waits up to timeout_ms for queued messages. Returns 0 when none are left, -1 otherwise. */
int publish_flush(struct publish *pub, int timeout_ms);

#endif
