/* kbus_partition: the consumer's per-partition operations (pause/resume, seek, where a partition
 * started and where it ends, whether it was read to its end, lag) and the record kbus keeps of
 * each assigned partition. */
#include "kbus.h"
#include "kbus_int.h"
#include "log.h"
#include "metrics.h"
#include "timeutil.h"

#include <stdlib.h>
#include <string.h>

/* How long kbus_consumer_end_offset reuses the end the broker reported. */
#define KBUS_END_MAX_AGE_MS 1000
/* How often kbus_consumer_poll sets the lag gauge. */
#define KBUS_LAG_EVERY_MS 1000

struct kbus_part *kbus_part_get(struct kbus_consumer *c, const char *topic, int32_t partition,
                                bool create)
{
	struct kbus_part *grown;

	for (size_t i = 0; i < c->nparts; i++)
		if (c->parts[i].partition == partition && strcmp(c->parts[i].topic, topic) == 0)
			return &c->parts[i];
	if (!create)
		return NULL;
	grown = realloc(c->parts, (c->nparts + 1) * sizeof *grown);
	if (!grown)
		return NULL;
	c->parts = grown;
	grown[c->nparts] = (struct kbus_part){
	    .topic = strdup(topic), .partition = partition, .start = -1, .end = -1};
	if (!grown[c->nparts].topic)
		return NULL;
	return &c->parts[c->nparts++];
}

void kbus_part_started(struct kbus_consumer *c, const char *topic, int32_t partition,
                       int64_t offset)
{
	struct kbus_part *p = kbus_part_get(c, topic, partition, true);

	if (!p)
		return;
	p->start = offset >= 0 ? offset : -1;
	p->end = -1;
	p->end_at_ms = 0;
}

void kbus_part_drop(struct kbus_consumer *c, const char *topic, int32_t partition)
{
	struct kbus_part *p = kbus_part_get(c, topic, partition, false);

	if (!p)
		return;
	free(p->topic);
	*p = c->parts[--c->nparts];
}

rd_kafka_topic_partition_list_t *kbus_one(const char *topic, int32_t partition, int64_t offset)
{
	rd_kafka_topic_partition_list_t *parts = rd_kafka_topic_partition_list_new(1);

	rd_kafka_topic_partition_list_add(parts, topic, partition)->offset = offset;
	return parts;
}

static int kbus_pause_resume(struct kbus_consumer *c, const char *topic, int32_t partition,
                             bool pause)
{
	rd_kafka_topic_partition_list_t *parts =
	    kbus_one(topic, partition, RD_KAFKA_OFFSET_INVALID);
	rd_kafka_resp_err_t err = pause ? rd_kafka_pause_partitions(c->rk, parts)
	                                : rd_kafka_resume_partitions(c->rk, parts);

	if (!err)
		err = parts->elems[0].err;
	rd_kafka_topic_partition_list_destroy(parts);
	if (err) {
		log_warn(pause ? "kafka pause failed" : "kafka resume failed", LOGS("topic", topic),
		         LOGI("partition", partition), LOGS("error", rd_kafka_err2str(err)));
		return -1;
	}
	{
		struct kbus_part *p = kbus_part_get(c, topic, partition, false);

		if (p)
			p->paused = pause;
	}
	return 0;
}

int kbus_consumer_pause_all(struct kbus_consumer *c, bool pause)
{
	int ret = 0;

	c->paused_all = pause;
	for (size_t i = 0; i < c->nparts; i++)
		if (c->parts[i].paused != pause &&
		    kbus_pause_resume(c, c->parts[i].topic, c->parts[i].partition, pause) < 0)
			ret = -1;
	return ret;
}

void kbus_parts_assigned(struct kbus_consumer *c, const rd_kafka_topic_partition_list_t *parts)
{
	if (!c->paused_all)
		return;
	for (int i = 0; i < parts->cnt; i++)
		(void)kbus_pause_resume(c, parts->elems[i].topic, parts->elems[i].partition, true);
}

bool kbus_consumer_assigned(struct kbus_consumer *c, const char *topic, int32_t partition)
{
	return kbus_part_get(c, topic, partition, false) != NULL;
}

int64_t kbus_consumer_start_offset(struct kbus_consumer *c, const char *topic, int32_t partition)
{
	const struct kbus_part *p = kbus_part_get(c, topic, partition, false);

	return p ? p->start : -1;
}

int64_t kbus_consumer_end_offset(struct kbus_consumer *c, const char *topic, int32_t partition,
                                 int timeout_ms)
{
	struct kbus_part *p = kbus_part_get(c, topic, partition, false);
	int64_t lo = -1, hi = -1;

	if (!p)
		return -1;
	if (p->end_at_ms > 0 && time_mono_ms() - p->end_at_ms < KBUS_END_MAX_AGE_MS)
		return p->end; /* an unanswered question too: not asked again within the second */
	p->end = rd_kafka_query_watermark_offsets(c->rk, topic, partition, &lo, &hi, timeout_ms) ==
	                 RD_KAFKA_RESP_ERR_NO_ERROR
	             ? hi
	             : -1;
	p->end_at_ms = time_mono_ms();
	return p->end;
}

int kbus_consumer_watermarks(struct kbus_consumer *c, const char *topic, int32_t partition,
                             int64_t *lo, int64_t *hi, int timeout_ms)
{
	rd_kafka_resp_err_t err =
	    rd_kafka_query_watermark_offsets(c->rk, topic, partition, lo, hi, timeout_ms);

	if (err) {
		log_warn("kafka watermarks unknown", LOGS("topic", topic),
		         LOGI("partition", partition), LOGS("error", rd_kafka_err2str(err)));
		return -1;
	}
	return 0;
}

int kbus_consumer_committed(struct kbus_consumer *c, const char *topic, int32_t partition,
                            int64_t *offset, int timeout_ms)
{
	rd_kafka_topic_partition_list_t *parts =
	    kbus_one(topic, partition, RD_KAFKA_OFFSET_INVALID);
	rd_kafka_resp_err_t err = rd_kafka_committed(c->rk, parts, timeout_ms);

	if (!err)
		err = parts->elems[0].err;
	*offset = !err && parts->elems[0].offset >= 0 ? parts->elems[0].offset : -1;
	rd_kafka_topic_partition_list_destroy(parts);
	if (err) {
		log_warn("kafka committed offset unknown", LOGS("topic", topic),
		         LOGI("partition", partition), LOGS("error", rd_kafka_err2str(err)));
		return -1;
	}
	return 0;
}

int kbus_consumer_pause(struct kbus_consumer *c, const char *topic, int32_t partition)
{
	return kbus_pause_resume(c, topic, partition, true);
}

int kbus_consumer_resume(struct kbus_consumer *c, const char *topic, int32_t partition)
{
	return kbus_pause_resume(c, topic, partition, false);
}

int kbus_consumer_seek(struct kbus_consumer *c, const char *topic, int32_t partition,
                       int64_t offset, int timeout_ms)
{
	rd_kafka_topic_partition_list_t *parts = kbus_one(topic, partition, offset);
	rd_kafka_error_t *error = rd_kafka_seek_partitions(c->rk, parts, timeout_ms);
	/* the call's own error, else the partition's */
	const char *why = error                 ? rd_kafka_error_string(error)
	                  : parts->elems[0].err ? rd_kafka_err2str(parts->elems[0].err)
	                                        : NULL;
	int ret = 0;

	if (why) {
		log_warn("kafka seek failed", LOGS("topic", topic), LOGI("partition", partition),
		         LOGI("offset", offset), LOGS("error", why));
		ret = -1;
	}
	if (error)
		rd_kafka_error_destroy(error);
	rd_kafka_topic_partition_list_destroy(parts);
	return ret;
}

int64_t kbus_consumer_lag(struct kbus_consumer *c)
{
	rd_kafka_topic_partition_list_t *parts = NULL;
	int64_t lag = 0;
	int known = 0;

	if (rd_kafka_assignment(c->rk, &parts) || !parts)
		return -1;
	if (parts->cnt > 0 && rd_kafka_position(c->rk, parts) == RD_KAFKA_RESP_ERR_NO_ERROR) {
		for (int i = 0; i < parts->cnt; i++) {
			const rd_kafka_topic_partition_t *tp = &parts->elems[i];
			int64_t lo, hi;

			/* Cached from the last fetch response: never blocks. */
			if (rd_kafka_get_watermark_offsets(c->rk, tp->topic, tp->partition, &lo,
			                                   &hi) ||
			    hi < 0 || tp->offset < 0)
				continue;
			lag += hi > tp->offset ? hi - tp->offset : 0;
			known++;
		}
	}
	if (parts->cnt > 0 && known == 0)
		lag = -1;
	rd_kafka_topic_partition_list_destroy(parts);
	return lag;
}

void kbus_lag_tick(struct kbus_consumer *c)
{
	int64_t now = time_mono_ms(), lag;

	if (!c->lag || now < c->lag_next_ms)
		return;
	c->lag_next_ms = now + KBUS_LAG_EVERY_MS;
	lag = kbus_consumer_lag(c);
	if (lag >= 0) /* unknown right after a rebalance: the last known value stays */
		metric_set(c->lag, (double)lag);
}

bool kbus_consumer_caught_up(struct kbus_consumer *c, const char *topic, int32_t partition,
                             int timeout_ms)
{
	rd_kafka_topic_partition_list_t *parts =
	    kbus_one(topic, partition, RD_KAFKA_OFFSET_INVALID);
	int64_t lo = -1, hi = -1, pos = -1, end = -1;

	if (rd_kafka_position(c->rk, parts) == RD_KAFKA_RESP_ERR_NO_ERROR && !parts->elems[0].err)
		pos = parts->elems[0].offset;
	rd_kafka_topic_partition_list_destroy(parts);
	/* Nothing read yet (no position): the broker's answer decides, not librdkafka's cached
	 * watermarks alone (they come with fetches, so they may predate this assignment). Caught up
	 * when the offset it was assigned at (what the group had committed) is the end; never
	 * committed: when the partition holds nothing (never written, or the cache, agreeing with
	 * the broker's end, says all of it expired). No answer: not yet. */
	if (pos < 0) {
		int64_t start = kbus_consumer_start_offset(c, topic, partition);

		end = kbus_consumer_end_offset(c, topic, partition, timeout_ms);
		if (end < 0)
			return false;
		if (start >= 0)
			return start >= end;
		if (end == 0)
			return true;
	}
	/* Reading: the watermarks come with this partition's own fetches. Not yet reading: they
	 * count only when they agree with the broker's end. */
	if (rd_kafka_get_watermark_offsets(c->rk, topic, partition, &lo, &hi) !=
	        RD_KAFKA_RESP_ERR_NO_ERROR ||
	    hi < 0)
		return false;
	return pos >= 0 ? pos >= hi : hi == end && lo == hi;
}
