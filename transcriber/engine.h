/* engine: the processing shared by the consumer and replay: routes consumed messages (to work,
 * to their call's parked queue, to the post-call gate, to the dead-letter topics), runs rounds of
 * work through batch, and keeps the offsets that are safe to commit. Single-threaded. */
#ifndef CALLPIPE_TRANSCRIBER_ENGINE_H
#define CALLPIPE_TRANSCRIBER_ENGINE_H

#include "db.h"
#include "msg.h"
#include "process.h"
#include "tmetrics.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct kbus_producer;

struct tr_engine_config {
	const char *line_topic; /* full name of webhooks.transcription (with prefix) */
	const char *post_topic; /* full name of webhooks.post_call */
	struct tr_windows windows;
	long retry_base_ms, retry_max_ms; /* parked calls: backoff between retries */
	int dlq_timeout_ms;               /* wait for the broker's ack of a dead-letter */
	bool keep_dead;                   /* count what would be dead-lettered, produce nothing */
	/* one-off runs (replay): an offset handled under an earlier assignment of the partition
	 * is not taken again after a rebalance, and one taken again is not counted as read twice
	 * (not for the service: a recreated topic starts its offsets again at 0) */
	bool once_per_run;
};

/* What the engine asks its consumer about a partition, for the post-call gate: whether it is
 * assigned now, and whether it was read up to its end. */
typedef bool tr_part_fn(void *opaque, const char *topic, int32_t partition);

/* Counts for logs, tests and the replay summary. */
struct tr_stats {
	uint64_t read, inserted, duplicates, reconciled, dead_lettered, waits, post_calls, ignored;
	uint64_t not_stored; /* keep_dead: what would have been dead-lettered */
	/* an offset delivered again (in one assignment; once_per_run: in the run): ignored */
	uint64_t redelivered;
};

/* Borrows conf's strings, db, producer, tm (all must outlive it). assigned and caught_up may be
 * NULL: no partition is then ours (the gate lets post-calls through), or the gate only uses
 * timestamps and its time limit. NULL when out of memory. */
struct tr_engine *tr_engine_new(const struct tr_engine_config *conf, struct db *db,
                                struct kbus_producer *producer, struct tr_metrics *tm,
                                tr_part_fn *assigned, tr_part_fn *caught_up, void *opaque);
/* Frees everything, unprocessed messages included (their offsets were never committed). */
void tr_engine_destroy(struct tr_engine *e);

/* Takes a consumed message (ownership passes, also on failure). A second delivery of an offset
 * already taken in this assignment is dropped. Returns 0, or -1 when out of memory: the message
 * is freed and nothing about it recorded, so the caller must read it again before any later
 * message of its partition (tr_app_poll_batch seeks back to it). */
__attribute__((warn_unused_result)) int tr_engine_add(struct tr_engine *e, struct tr_msg *m);

/* Decodes m as tr_engine_add would (for a caller that reads ahead of the engine; tr_engine_add
 * then does not decode it again). */
void tr_engine_decode(const struct tr_engine *e, struct tr_msg *m);

/* Work for the rounds' idle time: idle(opaque) runs while the server works on a round's first
 * statements (see db_idle_fn). It must not touch the engine. NULL: none. */
void tr_engine_set_idle(struct tr_engine *e, db_idle_fn *idle, void *opaque);

/* A revoked partition: its messages and offsets are forgotten; they will be read again from the
 * committed offset by whoever owns it now. */
void tr_engine_revoke(struct tr_engine *e, const char *topic, int32_t partition);

/* Runs one round at now_ms (monotonic): the pending dead-letters, then the due parked calls,
 * the post-calls whose gate opened and the new messages, in one transaction. Returns 0, or -1
 * when the database or the broker failed transiently: the round's messages are kept and the
 * next call retries them (back off first). */
__attribute__((warn_unused_result)) int tr_engine_run(struct tr_engine *e, int64_t now_ms);

/* When the next round has something to do even without new messages (INT64_MAX: never). */
int64_t tr_engine_next_wake(const struct tr_engine *e);

/* Messages held in memory waiting (parked calls and gated post-calls). */
size_t tr_engine_waiting(const struct tr_engine *e);

/* True when nothing is pending, waiting or undelivered. */
bool tr_engine_idle(const struct tr_engine *e);

/* True once a message the engine took could not be held through a round (out of memory): no
 * commit passes its offset, but only reading it again (a restart) handles it, so the consumer
 * stops. */
bool tr_engine_lost(const struct tr_engine *e);

/* Moves every waiting message's wait start later by ms (time the database was away must not
 * count against the unknown-call and missing-conversation windows). */
void tr_engine_extend_waits(struct tr_engine *e, int64_t ms);

/* Calls commit for every partition whose safe offset advanced; a 0 return records it. */
void tr_engine_commits(struct tr_engine *e,
                       int (*commit)(void *opaque, const char *topic, int32_t partition,
                                     int64_t next_offset),
                       void *opaque);

const struct tr_stats *tr_engine_stats(const struct tr_engine *e);

#endif
