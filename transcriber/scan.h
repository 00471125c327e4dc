/* scan: progress of a one-off read of whole topics (replay, redrive): the partitions assigned,
 * where each starts and the end (high watermark) it must reach, so the run knows when it is
 * done. */
#ifndef CALLPIPE_TRANSCRIBER_SCAN_H
#define CALLPIPE_TRANSCRIBER_SCAN_H

#include <librdkafka/rdkafka.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* One partition. start/hi are -1 until resolved. */
struct tr_scan_part {
	char *topic;
	int32_t partition;
	int64_t lo, hi;  /* watermarks when resolved: hi is the end this run reads to */
	int64_t start;   /* first offset this run reads */
	int64_t last;    /* last offset seen in the run (kept across a revoke), -1 none */
	int64_t reached; /* last offset delivered in this assignment, repeats too; -1 none */
	bool resolved;
};

struct kbus_consumer;
struct tr_scan;

struct tr_scan *tr_scan_new(void); /* NULL when out of memory */
void tr_scan_destroy(struct tr_scan *s);

/* Records (assigned) or forgets (revoked) the partitions of a rebalance; a partition assigned
 * again keeps the last offset seen before (tr_scan_seen is run-wide). */
void tr_scan_update(struct tr_scan *s, bool assigned, const rd_kafka_topic_partition_list_t *parts);

/* Resolves new partitions through kc: watermarks, and start = the group's committed offset when
 * use_committed (else lo). Returns the number resolved now, -1 on a broker error (retry). */
int tr_scan_resolve(struct tr_scan *s, struct kbus_consumer *kc, bool use_committed);

/* Calls fn for each partition resolved by the last tr_scan_resolve (fn may change start). */
void tr_scan_each_new(struct tr_scan *s, void (*fn)(void *opaque, struct tr_scan_part *p),
                      void *opaque);

/* A message was seen at offset. Returns false when that offset was seen before in this run (a
 * second delivery of the same message, also after a rebalance), true otherwise. */
bool tr_scan_seen(struct tr_scan *s, const char *topic, int32_t partition, int64_t offset);

/* True once at least one partition is assigned and every one is resolved and read to its end
 * in its current assignment (what an earlier one read may have been dropped unhandled). */
bool tr_scan_done(const struct tr_scan *s);

size_t tr_scan_count(const struct tr_scan *s);

#endif
