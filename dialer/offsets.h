/* offsets: per-partition in-order tracking of consumed messages, so offsets are committed only
 * up to the highest contiguous fully-handled offset while later messages finish first. */
#ifndef CALLPIPE_DIALER_OFFSETS_H
#define CALLPIPE_DIALER_OFFSETS_H

#include <stddef.h>
#include <stdint.h>

struct offsets;

/* Tracks the partitions of one topic. NULL on allocation failure; offsets_destroy frees (NULL
 * ok). Not thread-safe. */
struct offsets *offsets_new(void);
void offsets_destroy(struct offsets *o);

/* Records a consumed, not yet handled message. Offsets of a partition must arrive increasing; a
 * lower or equal one means the partition was re-fetched (rebalance, seek): its old state is
 * dropped first. Returns 0, or -1 on allocation failure (nothing recorded: the caller must not
 * pass over the message, see consume.c). */
__attribute__((warn_unused_result)) int offsets_add(struct offsets *o, int32_t partition,
                                                    int64_t offset);

/* Marks a recorded message handled. Unknown offsets (dropped partition) are ignored. */
void offsets_done(struct offsets *o, int32_t partition, int64_t offset);

/* The offset to commit for partition (last contiguous handled offset + 1), or -1 when nothing
 * new is committable. Does not change state: call offsets_committed after the commit. */
int64_t offsets_committable(const struct offsets *o, int32_t partition);

/* Forgets the handled prefix up to next_offset (exclusive) after a successful commit. */
void offsets_committed(struct offsets *o, int32_t partition, int64_t next_offset);

/* Forgets a partition (revoked). */
void offsets_drop(struct offsets *o, int32_t partition);

/* Messages recorded and not yet committed for partition (handled or not). */
size_t offsets_pending(const struct offsets *o, int32_t partition);

/* Highest partition number ever seen + 1 (to iterate partitions). */
int32_t offsets_npartitions(const struct offsets *o);

#endif
