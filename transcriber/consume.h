/* consume: the consumer loop shared by the transcriber's default mode and replay: a consumer
 * group on the webhook topics feeding the engine, paused while the database is away or too much
 * is parked, committing (when asked to) after each round, with a bounded drain at the end. */
#ifndef CALLPIPE_TRANSCRIBER_CONSUME_H
#define CALLPIPE_TRANSCRIBER_CONSUME_H

#include "app.h"

#include <stdbool.h>

struct kbus_consumer;

/* What differs between the modes. Every hook is optional (NULL). */
struct tr_loop_hooks {
	const char *group; /* consumer group id */
	bool commit;       /* commit offsets after rounds (replay does not) */
	bool replay;       /* replay settings: TRANSCRIBER_REPLAY_WAIT_MS, --no-dead-letter */
	/* decides per consumed message whether it goes to the engine */
	bool (*keep)(void *opaque, const rd_kafka_message_t *rkm);
	/* called from the rebalance callback, after the engine saw the change */
	void (*rebalanced)(void *opaque, bool assigned,
	                   const rd_kafka_topic_partition_list_t *parts);
	/* called inside an assignment before fetching: may move where new partitions start */
	kbus_start_cb *start;
	/* called after each poll, outside any callback (e.g. to seek new partitions) */
	void (*after_poll)(void *opaque, struct kbus_consumer *kc);
	/* true ends the loop (then it drains like on SIGTERM) */
	bool (*finished)(void *opaque, const struct tr_engine *e);
	void *opaque;
};

/* Runs the loop until shutdown is requested or hooks->finished says so, then drains. Copies the
 * engine's counts into stats (may be NULL). Returns 0 after a drain, -1 when it could not start or
 * stopped on an error: a message it could neither take nor hold (out of memory), whose offset no
 * commit passed (logged). */
__attribute__((warn_unused_result)) int tr_loop_run(struct tr_app *app,
                                                    const struct tr_loop_hooks *hooks,
                                                    struct tr_stats *stats);

/* The default mode: consume in app->conf->group, committing. */
__attribute__((warn_unused_result)) int tr_consume_run(struct tr_app *app);

#endif
