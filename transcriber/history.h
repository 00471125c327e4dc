/* history: what a one-off run (replay, redrive: once_per_run) remembers of a partition's
 * earlier assignments, so that it takes each message once across rebalances: the highest offset
 * taken, and the holes, taken but dropped unhandled. Built on common/offtrack, which keeps what
 * is in hand now. Not thread-safe. */
#ifndef CALLPIPE_TRANSCRIBER_HISTORY_H
#define CALLPIPE_TRANSCRIBER_HISTORY_H

#include <stdint.h>

struct offtrack;
struct tr_history;

/* NULL when out of memory; tr_history_destroy frees (NULL ok). */
struct tr_history *tr_history_new(void);
void tr_history_destroy(struct tr_history *h);

/* Remembers what the ending assignment of topic/partition took, from t (call it before
 * offtrack_drop): its highest offset, and its unfinished ones as holes. Returns 0, or -1 when
 * out of memory: then tr_history_past counts everything from the lowest unfinished one up (or
 * the whole partition) as new: taken again, never passed over. */
int tr_history_keep(struct tr_history *h, const struct offtrack *t, const char *topic,
                    int32_t partition);

/* What earlier assignments of the partition did with offset. */
enum tr_past {
	TR_PAST_NEW,     /* beyond what they took */
	TR_PAST_HANDLED, /* taken and handled (or passed over: not wanted) */
	TR_PAST_RETAKE,  /* taken, dropped unhandled: to take again (forgotten by this call) */
};
enum tr_past tr_history_past(struct tr_history *h, const char *topic, int32_t partition,
                             int64_t offset);

#endif
