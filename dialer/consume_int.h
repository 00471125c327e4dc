/* consume_int: what consume.c (the loop) and consume_jobs.c (the jobs' way through claim, dial
 * and outcome) share. Internal to the dialer's consume module. */
#ifndef CALLPIPE_DIALER_CONSUME_INT_H
#define CALLPIPE_DIALER_CONSUME_INT_H

#include "backoff.h"
#include "job.h"
#include "kbus.h"

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

struct dial_outcome;

struct consume {
	const struct dialer_config *conf;
	struct metrics *m;
	struct kbus_config kconf;
	char topic[256], dlq_topic[256];
	struct db *db;
	struct kbus_consumer *consumer;
	struct kbus_producer *producer; /* dead letters */
	struct dial_engine *engine;
	struct offtrack *offsets;    /* messages taken, not yet finished */
	bool paused;                 /* fetching paused (kbus_consumer_pause_all) */
	struct job_queue backlog;    /* consumed, not yet claimed */
	struct job_queue outcomes;   /* dialled, outcome not yet stored */
	bool stalled;                /* database (or DLQ broker) unavailable: stop taking work */
	int64_t hold_until_ms;       /* a message could not be taken: fetching paused until then */
	struct backoff hold_backoff; /* how long, growing while it keeps happening */
	bool failed;                 /* stopped on an error (exit status 1) */
	int64_t retry_at_ms;
	struct backoff stall_backoff;
	int64_t last_commit_ms;
	int64_t next_ping_ms; /* idle: next database check */
	atomic_bool ready;
	struct metric *m_backlog, *m_db_up, *m_dialled, *m_duplicate, *m_dlq, *m_db_errors;
};

/* The database (or the broker, for the DLQ) failed transiently: stop taking work until the
 * backoff expires and the connection is back. */
void consume_stall(struct consume *c);

/* Moves backlog jobs into the dial engine while it can start dials: insert + claim first, and
 * only a successful claim dials (dead-letter jobs are published). Returns how many jobs left the
 * backlog. */
int consume_start(struct consume *c);

/* Stores finished dials' outcomes; stops at the first transient failure. Returns how many. */
int consume_record(struct consume *c);

/* Dial engine callback: the dial ended; its outcome waits in c->outcomes to be stored. */
void consume_dial_done(void *opaque, void *user, const struct dial_outcome *out);

#endif
