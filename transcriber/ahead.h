/* ahead: the messages the consumer reads (and decodes) while a round's statements run on the
 * server, and the rebalances met between them, held in arrival order and handed over when the
 * round is over: the engine never changes under a round, and the reading costs the round no
 * time. Single-threaded. */
#ifndef CALLPIPE_TRANSCRIBER_AHEAD_H
#define CALLPIPE_TRANSCRIBER_AHEAD_H

#include "msg.h"

#include <librdkafka/rdkafka.h>
#include <stdbool.h>
#include <stddef.h>

struct tr_ahead;

/* NULL when out of memory. tr_ahead_destroy frees what is still held (NULL ok): messages never
 * handed over were never taken, so their offsets are never committed. */
struct tr_ahead *tr_ahead_new(void);
void tr_ahead_destroy(struct tr_ahead *a);

/* Holds m (ownership passes, also on failure: freed). Returns 0, or -1 when out of memory. */
int tr_ahead_push_msg(struct tr_ahead *a, struct tr_msg *m);

/* Holds a copy of a rebalance (parts is borrowed). Returns 0, or -1 when out of memory. */
__attribute__((warn_unused_result)) int tr_ahead_push_rebalance(
    struct tr_ahead *a, bool assigned, const rd_kafka_topic_partition_list_t *parts);

/* Messages held. */
size_t tr_ahead_messages(const struct tr_ahead *a);

/* Where tr_ahead_flush hands things over. msg NULL: the messages are freed instead (not taken);
 * msg gets ownership. rebalance's parts are borrowed for the call. */
struct tr_ahead_sink {
	void (*msg)(void *opaque, struct tr_msg *m);
	void (*rebalance)(void *opaque, bool assigned,
	                  const rd_kafka_topic_partition_list_t *parts);
	void *opaque;
};

/* Hands everything held to sink, in arrival order, and empties a. */
void tr_ahead_flush(struct tr_ahead *a, const struct tr_ahead_sink *sink);

#endif
