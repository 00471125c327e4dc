/* offsets: the transcriber's offsets: common/offtrack for the messages in hand (a commit never
 * passes one still parked or in flight), plus what a one-off run (once_per_run) remembers of a
 * partition's earlier assignments: the highest offset taken and the holes, taken but dropped
 * unhandled. */
#ifndef CALLPIPE_TRANSCRIBER_OFFSETS_H
#define CALLPIPE_TRANSCRIBER_OFFSETS_H

#include <stdbool.h>
#include <stdint.h>

struct tr_offsets;

/* NULL when out of memory; tr_offsets_destroy frees (NULL ok). */
struct tr_offsets *tr_offsets_new(void);
void tr_offsets_destroy(struct tr_offsets *o);

/* Records a consumed offset (not handled yet) and the message's timestamp. Returns 0, or -1 when
 * out of memory: then nothing is recorded (the offset does not count as consumed), and the caller
 * must not pass over the message (see tr_app_poll_batch). */
__attribute__((warn_unused_result)) int tr_offsets_add(struct tr_offsets *o, const char *topic,
                                                       int32_t partition, int64_t offset,
                                                       int64_t timestamp_ms);

/* Marks a recorded offset handled (unknown offsets are ignored). */
void tr_offsets_done(struct tr_offsets *o, const char *topic, int32_t partition, int64_t offset);

/* The offset a commit may name for the partition: the lowest unhandled offset, or the last
 * consumed + 1 when everything is handled; -1 when nothing was consumed. */
int64_t tr_offsets_committable(const struct tr_offsets *o, const char *topic, int32_t partition);

/* Unhandled offsets of the partition (0 when unknown). */
unsigned long tr_offsets_pending(const struct tr_offsets *o, const char *topic, int32_t partition);

/* The last consumed offset and its timestamp; false when nothing was consumed. */
bool tr_offsets_progress(const struct tr_offsets *o, const char *topic, int32_t partition,
                         int64_t *offset, int64_t *timestamp_ms);

/* Remembers what was committed; tr_offsets_each reports only partitions with more to commit. */
void tr_offsets_committed(struct tr_offsets *o, const char *topic, int32_t partition,
                          int64_t next_offset);

/* Calls fn for each partition whose committable offset is beyond the last committed one. */
void tr_offsets_each_uncommitted(struct tr_offsets *o,
                                 void (*fn)(void *opaque, const char *topic, int32_t partition,
                                            int64_t next_offset),
                                 void *opaque);

/* Forgets a partition's pending offsets and progress (revoked), keeping what tr_offsets_past
 * needs: the highest offset taken and the ones dropped unhandled. Returns 0, or -1 when out of
 * memory (then tr_offsets_past counts everything from the lowest dropped one up, or the whole
 * partition, as new: taken again, never passed over). */
int tr_offsets_drop(struct tr_offsets *o, const char *topic, int32_t partition);

/* What earlier (dropped) assignments of the partition did with offset. */
enum tr_offset_past {
	TR_OFFSET_NEW,     /* beyond what they took */
	TR_OFFSET_HANDLED, /* taken and handled (or passed over: not wanted) */
	TR_OFFSET_RETAKE,  /* taken, dropped unhandled: to take again (forgotten by this call) */
};
enum tr_offset_past tr_offsets_past(struct tr_offsets *o, const char *topic, int32_t partition,
                                    int64_t offset);

#endif
