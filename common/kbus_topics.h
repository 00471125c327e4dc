/* kbus_topics: the one definition of callpipe's topics (names and partition counts), and their
 * creation and check through the Kafka admin API. The devbroker, tools/topics (scripts/kafka,
 * tests, the compose stack's topic job) all take their topics from here. */
#ifndef CALLPIPE_KBUS_TOPICS_H
#define CALLPIPE_KBUS_TOPICS_H

#include "kbus.h"

#include <stdbool.h>
#include <stddef.h>

/* Partitions of calls.requested and webhooks.* (the workers' parallelism) and of each .dlq. */
#define KBUS_TOPICS_PARTITIONS     6
#define KBUS_TOPICS_DLQ_PARTITIONS 1
#define KBUS_TOPICS_COUNT          6 /* three topics, each with its .dlq */
/* Largest message (record batch) every topic takes, set as its max.message.bytes: Kafka's default
 * (~1 MiB) is below a post-call webhook at the ingress's default limit once wrapped (up to twice
 * its size plus the envelope) and below its dead-letter copy. kbus producers allow the same. */
#define KBUS_TOPICS_MAX_MESSAGE_BYTES 4194304
/* A count as the text of a cfg default: KBUS_TOPICS_TEXT(KBUS_TOPICS_PARTITIONS) is "6". */
#define KBUS_TOPICS_TEXT_(n) #n
#define KBUS_TOPICS_TEXT(n)  KBUS_TOPICS_TEXT_(n)

struct kbus_topics_plan {
	const char *prefix;     /* KAFKA_TOPIC_PREFIX; NULL = "" */
	int partitions;         /* 0: KBUS_TOPICS_PARTITIONS */
	int dlq_partitions;     /* 0: KBUS_TOPICS_DLQ_PARTITIONS */
	int replication_factor; /* -1 or 0: the broker's default.replication.factor */
};

/* The i-th topic (0 <= i < KBUS_TOPICS_COUNT) of plan: its full name into name and its partition
 * count into *partitions. Returns 0, or -1 when i is out of range or the name does not fit. */
int kbus_topics_get(const struct kbus_topics_plan *plan, size_t i, char *name, size_t size,
                    int *partitions);

/* Creates every topic of plan on the cluster conf names (conf->extra applies: SASL, TLS, ...),
 * waiting at most timeout_ms. A topic that exists already is left as it is when it has at least
 * the planned partitions (created[i] false), an error otherwise. created (may be NULL) gets one
 * flag per topic. Returns 0, or -1 with errstr naming the topic and the broker's reason. */
__attribute__((warn_unused_result)) int kbus_topics_create(const struct kbus_config *conf,
                                                           const struct kbus_topics_plan *plan,
                                                           int timeout_ms, bool *created,
                                                           char *errstr, size_t errstr_size);

/* Checks that every topic of plan exists with at least its planned partitions. Returns 0, or -1
 * with errstr naming the first topic that is missing or too small (or why the cluster did not
 * answer within timeout_ms). */
__attribute__((warn_unused_result)) int kbus_topics_check(const struct kbus_config *conf,
                                                          const struct kbus_topics_plan *plan,
                                                          int timeout_ms, char *errstr,
                                                          size_t errstr_size);

/* For a service at start: checks that each of topics (full names, n of them) exists. A broker
 * that does not answer within timeout_ms is not an error (an outage at start is survived the
 * usual way): 0, with a warning logged. Returns -1 with errstr naming the first missing topic
 * (topic auto-creation is off on a properly run cluster, so a typo'd prefix or an uncreated
 * topic is said at once instead of surfacing as timeouts). */
__attribute__((warn_unused_result)) int kbus_topics_require(const struct kbus_config *conf,
                                                            const char *const *topics, size_t n,
                                                            int timeout_ms, char *errstr,
                                                            size_t errstr_size);

#endif
