/* kbus: the Kafka bus. An idempotent producer (acks=all) with async and sync produce, and a
 * consumer-group consumer with manual commits, pause/resume and gap detection. Topic names
 * come from design.md §4 with a configurable prefix. */
#ifndef CALLPIPE_KBUS_H
#define CALLPIPE_KBUS_H

#include <librdkafka/rdkafka.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define KBUS_TOPIC_CALLS_REQUESTED "calls.requested"
#define KBUS_TOPIC_TRANSCRIPTION   "webhooks.transcription"
#define KBUS_TOPIC_POST_CALL       "webhooks.post_call"
#define KBUS_DLQ_SUFFIX            ".dlq"

struct metric;
struct metrics;

struct kbus_config {
	const char *brokers;      /* KAFKA_BROKERS */
	const char *topic_prefix; /* KAFKA_TOPIC_PREFIX, may be NULL/"" */
	const char *client_id;    /* e.g. "ingress" */
	int delivery_timeout_ms;  /* producer: message.timeout.ms (default 10000 if 0) */
	int session_timeout_ms;   /* consumer: session.timeout.ms (default 10000 if 0) */
	struct metrics *metrics;  /* optional: kbus_* metrics go here (borrowed) */
	const char *config_file;  /* KAFKA_CONFIG_FILE: librdkafka "key=value" lines, may be NULL */
	const char *const *extra; /* optional "key", "value", ... NULL: extra librdkafka props */
	/* consumer: the pre-fetch queue. fetch_queue_kb > 0 caps what librdkafka fetches ahead
	 * (queued.max.messages.kbytes, and fetches of at most as much: about twice it is held);
	 * 0: librdkafka's defaults (64 MiB). fetch_queue_low > 0 (with fetch_queue_kb) starts a
	 * thread that keeps the queue filled while a backlog lasts, whenever fewer than that many
	 * messages are queued (kbus_refill.c: librdkafka 2.0.2 would wait up to a second). */
	int fetch_queue_kb;
	int fetch_queue_low;
};

/* Writes prefix + base (+ ".dlq" when dlq) into out. Returns 0, or -1 if it does not fit. */
int kbus_topic(const struct kbus_config *conf, const char *base, bool dlq, char *out, size_t size);

struct kbus_header {
	const char *name;
	const char *value; /* NUL-terminated */
};

/* ---- producer ---- */
struct kbus_producer;

/* Creates the producer and its delivery-report thread. Caller owns; destroy with
 * kbus_producer_destroy (flushes up to flush_timeout_ms first). NULL + errstr on failure. */
struct kbus_producer *kbus_producer_new(const struct kbus_config *conf, char *errstr,
                                        size_t errstr_size);
void kbus_producer_destroy(struct kbus_producer *p, int flush_timeout_ms);

/* Called once per message from the producer's thread: err is RD_KAFKA_RESP_ERR_NO_ERROR when the
 * broker acknowledged it (acks=all), else the reason; partition/offset valid on success. */
typedef void kbus_delivery_cb(void *opaque, rd_kafka_resp_err_t err, int32_t partition,
                              int64_t offset);

/* Enqueues a copy of key/value/headers. topic is the full name (see kbus_topic). Returns 0 when
 * queued (cb will be called exactly once), -1 when it could not be queued (cb not called). */
__attribute__((warn_unused_result)) int kbus_produce(struct kbus_producer *p, const char *topic,
                                                     const void *key, size_t key_len,
                                                     const void *value, size_t value_len,
                                                     const struct kbus_header *headers,
                                                     size_t nheaders, kbus_delivery_cb *cb,
                                                     void *opaque);

/* Produces and waits for the delivery report, at most timeout_ms. Returns 0 when acknowledged,
 * -1 otherwise (errstr says why). */
__attribute__((warn_unused_result)) int kbus_produce_sync(
    struct kbus_producer *p, const char *topic, const void *key, size_t key_len, const void *value,
    size_t value_len, const struct kbus_header *headers, size_t nheaders, int timeout_ms,
    char *errstr, size_t errstr_size);

/* Flushes outstanding messages. Returns 0 when all were delivered or failed, -1 on timeout. */
int kbus_producer_flush(struct kbus_producer *p, int timeout_ms);

/* True when the cluster answered a metadata request within timeout_ms (for /readyz). */
bool kbus_producer_ready(struct kbus_producer *p, int timeout_ms);

/* ---- consumer ---- */
struct kbus_consumer;

/* Rebalance notification, called from kbus_consumer_poll's thread after the assignment changed:
 * assigned=true for new partitions, false for revoked ones (drop per-partition state then). */
typedef void kbus_rebalance_cb(void *opaque, bool assigned,
                               const rd_kafka_topic_partition_list_t *parts);

/* Joins group and subscribes to the topics (full names). enable.auto.commit=false,
 * enable.auto.offset.store=false; a new group starts at the earliest offset; an out-of-range
 * committed offset (data deleted) is never skipped silently: it is logged as an error and
 * counted (kbus_offset_gap_total) before resuming at the earliest available offset.
 * Caller owns; kbus_consumer_close leaves the group and frees (NULL ok). */
struct kbus_consumer *kbus_consumer_new(const struct kbus_config *conf, const char *group,
                                        const char *const *topics, size_t ntopics,
                                        kbus_rebalance_cb *rebalance_cb, void *opaque, char *errstr,
                                        size_t errstr_size);
void kbus_consumer_close(struct kbus_consumer *c);

/* Where newly assigned partitions start: called from kbus_consumer_poll's thread inside the
 * assignment, after each partition's offset was set to the group's committed one (or the
 * beginning) and before anything is fetched; it may set parts->elems[i].offset (e.g. looked up by
 * time with rd_kafka_offsets_for_times on rk) to start elsewhere. */
typedef void kbus_start_cb(void *opaque, rd_kafka_t *rk, rd_kafka_topic_partition_list_t *parts);

/* Installs cb (NULL: none) for the assignments that follow; call before the first poll. */
void kbus_consumer_set_start_cb(struct kbus_consumer *c, kbus_start_cb *cb, void *opaque);

/* Returns the next message, or NULL after timeout_ms with nothing to return. Errors that are not
 * messages (EOF, transient broker errors) are handled and logged inside. Caller destroys the
 * message with rd_kafka_message_destroy. */
rd_kafka_message_t *kbus_consumer_poll(struct kbus_consumer *c, int timeout_ms);

/* Commits next_offset (= last handled offset + 1) for one partition, synchronously, waiting at
 * most 5 s for the answer; for 5 s after an unanswered commit, commits fail at once (a sweep over
 * many partitions stalls once, not once per partition). Returns 0 or -1: keep the offset and
 * retry later. Call only after the database transaction that used the messages committed. */
__attribute__((warn_unused_result)) int kbus_consumer_commit(struct kbus_consumer *c,
                                                             const char *topic, int32_t partition,
                                                             int64_t next_offset);

/* Pauses/resumes fetching of one assigned partition (messages already returned are not
 * affected). */
int kbus_consumer_pause(struct kbus_consumer *c, const char *topic, int32_t partition);
int kbus_consumer_resume(struct kbus_consumer *c, const char *topic, int32_t partition);

/* Pauses (pause true) or resumes fetching of every assigned partition not so yet (one paused
 * alone with kbus_consumer_pause is resumed too), and of every partition assigned later until
 * called again: the workers' one switch for "take no more work". Cheap when nothing changes:
 * call it every loop turn. Returns 0, or -1 when a partition refused (logged; tried again by
 * the next call). From the polling thread only. */
int kbus_consumer_pause_all(struct kbus_consumer *c, bool pause);

/* True when topic/partition is assigned to this consumer now. From the polling thread only. */
bool kbus_consumer_assigned(struct kbus_consumer *c, const char *topic, int32_t partition);

/* True when the consumer has read topic/partition up to its end, as far as is known: from its
 * position and the watermarks of its fetches, or, before its first fetch, from the offset it
 * was assigned at and the end the broker reports (kbus_consumer_end_offset, which may block up
 * to timeout_ms once a second). False when unknown. From the polling thread only. */
bool kbus_consumer_caught_up(struct kbus_consumer *c, const char *topic, int32_t partition,
                             int timeout_ms);

/* The offset partition started at when this consumer was assigned it: the group's committed
 * offset, or -1 when unknown (never committed, not assigned, or unreadable). From the polling
 * thread only. */
int64_t kbus_consumer_start_offset(struct kbus_consumer *c, const char *topic, int32_t partition);

/* The end (next offset to be written) of an assigned partition as the broker reports it: asked
 * at most once a second (blocking up to timeout_ms; librdkafka's cached watermarks come with
 * fetches, so they may predate the assignment). -1 when not assigned or no answer. */
int64_t kbus_consumer_end_offset(struct kbus_consumer *c, const char *topic, int32_t partition,
                                 int timeout_ms);

/* The low and high watermarks (earliest offset, end) of topic/partition as the broker reports
 * them now, waiting up to timeout_ms. Returns 0, or -1 (logged) without an answer. */
int kbus_consumer_watermarks(struct kbus_consumer *c, const char *topic, int32_t partition,
                             int64_t *lo, int64_t *hi, int timeout_ms);

/* The group's committed offset of topic/partition as the coordinator reports it now (-1: none),
 * waiting up to timeout_ms. Returns 0, or -1 (logged) without an answer. */
int kbus_consumer_committed(struct kbus_consumer *c, const char *topic, int32_t partition,
                            int64_t *offset, int timeout_ms);

/* Moves the fetch position of an assigned partition (e.g. back to an uncommitted message). */
int kbus_consumer_seek(struct kbus_consumer *c, const char *topic, int32_t partition,
                       int64_t offset, int timeout_ms);

/* Sum over assigned partitions of (high watermark - current consume position; the committed
 * offset is not read), from the watermarks cached by the last fetch, so it never blocks.
 * Partitions with no position or watermark yet are skipped; -1 when partitions are assigned
 * but none is known yet (or the assignment cannot be read), 0 with none assigned. With a
 * metrics registry in its kbus_config, kbus_consumer_poll publishes it as the gauge
 * kbus_consumer_lag at most once a second (both workers: the same name), keeping the last known
 * value while it is -1 (right after a rebalance, before the first fetch). */
int64_t kbus_consumer_lag(struct kbus_consumer *c);

/* Header value of a consumed message as a NUL-terminated copy in out; -1 if absent/too long. */
int kbus_message_header(const rd_kafka_message_t *rkm, const char *name, char *out, size_t size);

#endif
