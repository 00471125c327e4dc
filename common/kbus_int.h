/* kbus_int: what kbus.c (producer), kbus_consumer.c and kbus_partition.c share; not for services.
 */
#ifndef CALLPIPE_KBUS_INT_H
#define CALLPIPE_KBUS_INT_H

#include "kbus.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Sets one property; on failure writes "name: reason" into errstr and returns -1. */
int kbus_conf_set(rd_kafka_conf_t *rkc, const char *name, const char *value, char *errstr,
                  size_t errstr_size) __attribute__((warn_unused_result));

/* Sets bootstrap.servers, client.id and the log/error callbacks (into common/log). */
int kbus_conf_common(rd_kafka_conf_t *rkc, const struct kbus_config *conf, char *errstr,
                     size_t errstr_size) __attribute__((warn_unused_result));

/* Applies conf->config_file (librdkafka "key=value" lines; '#' comments and blank lines skipped),
 * then conf->extra ("key", "value", ..., NULL), last, so they override kbus' defaults. errstr
 * names the file, line and property, never a value. */
int kbus_conf_extra(rd_kafka_conf_t *rkc, const struct kbus_config *conf, char *errstr,
                    size_t errstr_size) __attribute__((warn_unused_result));

/* What kbus remembers of one partition while it is assigned (or paused). */
struct kbus_part {
	char *topic;
	int32_t partition;
	bool paused;       /* by the application: a re-assignment (kbus_restart) restores it */
	int64_t start;     /* the committed offset it was assigned at; -1 unknown */
	int64_t end;       /* its end as the broker last reported it; -1 not asked yet */
	int64_t end_at_ms; /* when (time_mono_ms) */
};

struct kbus_consumer {
	rd_kafka_t *rk;
	struct metrics *metrics;
	kbus_rebalance_cb *rebalance_cb;
	void *opaque;
	kbus_start_cb *start_cb; /* optional: moves where new partitions start */
	void *start_opaque;
	struct kbus_part *parts; /* the assigned partitions; touched only from the polling thread */
	size_t nparts;
	bool paused_all;      /* kbus_consumer_pause_all: new assignments start paused too */
	struct metric *lag;   /* kbus_consumer_lag, with a metrics registry; else NULL */
	int64_t lag_next_ms;  /* when kbus_consumer_poll sets it next */
	bool in_revoke;       /* inside the application's revoke callback */
	bool membership_lost; /* a commit in this revoke failed for good: skip the others */
	int64_t commit_quiet_until_ms; /* after an unanswered commit: fail the next ones at once */
	struct kbus_refill *refill;    /* with fetch_queue_kb: keeps the small queue filled */
};

/* kbus_refill.c: a thread that wakes the leaders' broker threads while fewer than low messages
 * are queued and the partitions have more (librdkafka 2.0.2 otherwise waits up to a second
 * before fetching again once a small pre-fetch queue was full). NULL when it cannot start. */
struct kbus_refill *kbus_refill_start(rd_kafka_t *rk, size_t low, struct metrics *metrics);
/* Stops and frees it (NULL ok); before the consumer is closed. */
void kbus_refill_stop(struct kbus_refill *r);

/* The record of topic/partition; created (unpaused, offsets unknown) when create is set: at
 * assignment only, so a record means the partition is assigned. NULL when absent or out of
 * memory. Polling thread only. */
struct kbus_part *kbus_part_get(struct kbus_consumer *c, const char *topic, int32_t partition,
                                bool create);

/* Records that topic/partition (re)starts at offset (a logical offset: start unknown); its end
 * is asked again. */
void kbus_part_started(struct kbus_consumer *c, const char *topic, int32_t partition,
                       int64_t offset);

/* Forgets topic/partition (revoked). */
void kbus_part_drop(struct kbus_consumer *c, const char *topic, int32_t partition);

/* Pauses the newly assigned parts when the consumer is paused as a whole (kbus_consumer_pause_all),
 * after they were assigned. */
void kbus_parts_assigned(struct kbus_consumer *c, const rd_kafka_topic_partition_list_t *parts);

/* Sets the lag gauge at most once a second (from kbus_consumer_poll). */
void kbus_lag_tick(struct kbus_consumer *c);

/* One partition as a list (caller destroys). */
rd_kafka_topic_partition_list_t *kbus_one(const char *topic, int32_t partition, int64_t offset);

#endif
