/* offtrack: the consumed messages of each partition that are not finished yet, so that a worker
 * commits only below the oldest unfinished one. A crash then re-delivers every message that was
 * not finished, and a message that finishes early never carries the commit past one still in
 * hand. One tracker per consumer, keyed by topic and partition; not thread-safe. */
#ifndef CALLPIPE_OFFTRACK_H
#define CALLPIPE_OFFTRACK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct offtrack;

/* NULL when out of memory; offtrack_destroy frees (NULL ok). */
struct offtrack *offtrack_new(void);
void offtrack_destroy(struct offtrack *t);

/* Records a consumed message as unfinished, with its timestamp. Offsets of a partition normally
 * grow; a lower one (delivered again) is kept in order too, and the same offset twice is one
 * entry. Returns 0, or -1 when out of memory: then nothing is recorded (the offset does not
 * count as consumed) and the caller must not pass over the message. */
__attribute__((warn_unused_result)) int offtrack_add(struct offtrack *t, const char *topic,
                                                     int32_t partition, int64_t offset,
                                                     int64_t timestamp_ms);

/* Marks a recorded message finished. Offsets not recorded (or dropped) are ignored. */
void offtrack_done(struct offtrack *t, const char *topic, int32_t partition, int64_t offset);

/* The offset a commit may name: the oldest unfinished one, or the highest consumed + 1 when all
 * are finished; -1 when nothing was consumed since the partition was new or dropped. */
int64_t offtrack_committable(const struct offtrack *t, const char *topic, int32_t partition);

/* Unfinished messages of the partition (0 when unknown). */
size_t offtrack_pending(const struct offtrack *t, const char *topic, int32_t partition);

/* Copies the partition's oldest unfinished offsets, ascending, into out (at most max of them).
 * Returns how many are unfinished in all (like offtrack_pending). */
size_t offtrack_unfinished(const struct offtrack *t, const char *topic, int32_t partition,
                           int64_t *out, size_t max);

/* The highest offset consumed and its timestamp; false when nothing was consumed since the
 * partition was new or dropped. */
bool offtrack_last(const struct offtrack *t, const char *topic, int32_t partition, int64_t *offset,
                   int64_t *timestamp_ms);

/* Remembers a successful commit, so offtrack_each_uncommitted passes over the partition until
 * its committable offset moves beyond next_offset. */
void offtrack_committed(struct offtrack *t, const char *topic, int32_t partition,
                        int64_t next_offset);

/* Calls fn for each partition whose committable offset is beyond the last one committed. The
 * topic passed to fn lives until the tracker is destroyed. */
void offtrack_each_uncommitted(struct offtrack *t,
                               void (*fn)(void *opaque, const char *topic, int32_t partition,
                                          int64_t next_offset),
                               void *opaque);

/* Forgets the partition (revoked, or read again from elsewhere): its unfinished messages, its
 * last offset and its last commit. */
void offtrack_drop(struct offtrack *t, const char *topic, int32_t partition);

#endif
