/* engine_int: what engine.c (the engine's state and bookkeeping) and round.c (one round of work)
 * share. Internal. */
#ifndef CALLPIPE_TRANSCRIBER_ENGINE_INT_H
#define CALLPIPE_TRANSCRIBER_ENGINE_INT_H

#include "engine.h"
#include "msg.h"
#include "tmetrics.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct db;
struct kbus_producer;
struct offtrack;
struct tr_history;
struct tr_park;

/* A message waiting for the dead-letter topic: m is owned by the engine; reason is a static
 * string (TR_DLQ_*); error is a copy. */
struct tr_dead {
	struct tr_msg *m;
	const char *reason;
	char error[256];
};

/* The engine owns offsets, history, park and the messages in fresh, gate and dead; conf's strings,
 * db, producer and tm are borrowed (see tr_engine_new). */
struct tr_engine {
	struct tr_engine_config conf;
	struct db *db;
	struct kbus_producer *producer;
	struct tr_metrics *tm;
	tr_part_fn *assigned; /* asks the consumer (kbus owns the assignment) */
	tr_part_fn *caught_up;
	void *opaque;

	struct offtrack *offsets;   /* what is in hand: bounds the commits */
	struct tr_history *history; /* once_per_run: earlier assignments */
	struct tr_park *park;
	struct tr_vec fresh;  /* consumed (or retried), not routed yet: in order */
	struct tr_vec gate;   /* post-calls waiting for their call's lines to be read, or (no
	                         call_sid) for a call with their conversation_id */
	int64_t last_run_ms;  /* when tr_engine_run last ran */
	struct tr_dead *dead; /* dead-letters not acknowledged yet */
	size_t ndead, capdead;
	uint64_t rng;
	bool assume_new;  /* the next round writes assuming its events are new (tr_batch_ctx) */
	db_idle_fn *idle; /* tr_engine_set_idle */
	void *idle_opaque;
	struct tr_stats stats;
	size_t lost; /* messages taken but not held (out of memory): offsets still pending */
};

/* Frees every message in v, then its array (v is left empty). */
void tr_vec_free_msgs(struct tr_vec *v);

/* Drops m, which could not be held (out of memory; what says where). Its offset stays pending,
 * so no commit passes it; e->lost tells the consumer to stop so that it is read again. */
void tr_lost(struct tr_engine *e, struct tr_msg *m, const char *what);

/* True when topic/partition is assigned to us now. */
bool tr_is_assigned(const struct tr_engine *e, const char *topic, int32_t partition);

#endif
