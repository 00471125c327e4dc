/* park: per-call waiting queues. When a call is not ready (unknown call_sid, no conversation_id
 * yet), its message and every later message of the same call wait here, in arrival order, while
 * other calls go on; the queue is retried as a whole when it is due. Owns parked messages. */
#ifndef CALLPIPE_TRANSCRIBER_PARK_H
#define CALLPIPE_TRANSCRIBER_PARK_H

#include "msg.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct tr_park;

/* NULL when out of memory. tr_park_destroy frees every parked message (NULL ok). */
struct tr_park *tr_park_new(void);
void tr_park_destroy(struct tr_park *p);

/* True when call key has a queue (later messages of the call must join it). */
bool tr_park_holds(const struct tr_park *p, const char *key);

/* Appends m (ownership passes on success) to key's queue; a new queue is due at due_ms, an
 * existing one keeps its due time (its head decides). Returns 0 or -1 (out of memory: m not
 * taken). */
__attribute__((warn_unused_result)) int tr_park_push(struct tr_park *p, const char *key,
                                                     struct tr_msg *m, int64_t due_ms);

/* Makes key's queue due at due_ms if that is earlier than its due time (no queue: nothing). */
void tr_park_wake(struct tr_park *p, const char *key, int64_t due_ms);

/* Moves the messages of every queue due at now_ms into out (queue order kept, queues in no
 * particular order) and forgets those queues: ownership passes to the caller. Returns the number
 * moved, or -1 when out of memory (nothing moved). */
long tr_park_take_due(struct tr_park *p, int64_t now_ms, struct tr_vec *out);

/* Total parked messages. */
size_t tr_park_count(const struct tr_park *p);

/* Earliest due time of any queue, INT64_MAX when empty. */
int64_t tr_park_next_due(const struct tr_park *p);

/* Calls fn for every parked message (fn must not change the park). */
void tr_park_each(const struct tr_park *p, void (*fn)(void *opaque, struct tr_msg *m),
                  void *opaque);

/* Frees the parked messages of one partition (revoked: they will be read again from the
 * committed offset by whoever owns it now). Returns how many were dropped. */
size_t tr_park_drop_partition(struct tr_park *p, const char *topic, int32_t partition);

#endif
