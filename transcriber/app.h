/* app: what the transcriber's modes (consume, replay, redrive) share: config, metrics, the
 * database connection, the producer and the topic names. One per process (tr_app_open). */
#ifndef CALLPIPE_TRANSCRIBER_APP_H
#define CALLPIPE_TRANSCRIBER_APP_H

#include "config.h"
#include "engine.h"
#include "kbus.h"
#include "tmetrics.h"

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

struct db;
struct metrics;

struct tr_app {
	const struct tr_config *conf;
	struct metrics *metrics;
	struct tr_metrics tm;
	struct db *db;
	struct kbus_producer *producer;
	struct kbus_config kconf;
	char line_topic[256], post_topic[256];
	atomic_bool ready; /* /readyz: database reachable and consuming */
};

/* Builds app (zeroed by the caller) from conf and metrics (both borrowed, outliving app): kconf,
 * the topic names (checked on the cluster), tm, the database handle and the producer. Returns 0;
 * -1 with errstr for a setting that cannot work (exit 2: missing topics, a bad DATABASE_URL);
 * -2 with errstr when the producer cannot start. tr_app_close releases what was built. */
__attribute__((warn_unused_result)) int tr_app_open(struct tr_app *app,
                                                    const struct tr_config *conf,
                                                    struct metrics *metrics, char *errstr,
                                                    size_t errstr_size);

/* Flushes the producer (bounded) and closes the database; the app may be half-built. */
void tr_app_close(struct tr_app *app);

/* The engine configuration of conf (borrows app's topic names). */
struct tr_engine_config tr_app_engine_config(const struct tr_app *app);

/* Runs one engine round, reconnecting to the database first when needed. 0 or -1 (transient). */
__attribute__((warn_unused_result)) int tr_app_round(struct tr_app *app, struct tr_engine *e);

/* How a poll batch ended (tr_app_poll_batch). */
enum tr_poll_end {
	TR_POLL_OK,
	/* a message could not be taken (out of memory): its partition is paused and moved back to
	 * it, and the batch ended there; hold consumption for a while, it is read again after */
	TR_POLL_REFUSED,
	/* the same, but moving back failed: only a restart reads it again; stop the worker */
	TR_POLL_STUCK,
};

/* A consumed message could not be taken: passing over it would let the next message of its
 * partition carry the committed offset past it, so the partition is paused and moved back to it.
 * Returns TR_POLL_REFUSED, or TR_POLL_STUCK when the seek failed. */
enum tr_poll_end tr_app_refetch(struct kbus_consumer *kc, const rd_kafka_message_t *rkm);

/* Polls up to batch_max - have messages into e (have: taken already for this batch): waits up
 * to first_wait_ms for the first, then at most batch_wait_ms (from the first, or from now when
 * have > 0) for the rest. keep decides per message (NULL: all); a rejected message is
 * destroyed. A message that cannot be taken is never passed over: see enum tr_poll_end (*end).
 * Returns the number added. */
size_t tr_app_poll_batch(const struct tr_app *app, struct kbus_consumer *kc, struct tr_engine *e,
                         int first_wait_ms, size_t have,
                         bool (*keep)(void *opaque, const rd_kafka_message_t *rkm), void *opaque,
                         enum tr_poll_end *end);

#endif
