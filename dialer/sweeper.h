/* sweeper: settles calls stuck in_progress (design.md §6.7). Leases old calls (FOR UPDATE SKIP
 * LOCKED, so several dialers never take the same call), asks GET /v1/convai/conversations/{id}
 * for the truth, and sets completed/failed; a call with no conversation_id past the age is
 * failed with dial_outcome_unknown. Runs on its own thread with its own connection. */
#ifndef CALLPIPE_DIALER_SWEEPER_H
#define CALLPIPE_DIALER_SWEEPER_H

#include <stddef.h>

struct dialer_config;
struct metrics;

enum sweep_action {
	SWEEP_COMPLETED, /* status done: completed, end_time when known */
	SWEEP_FAILED,    /* status failed, or the conversation does not exist: reason */
	SWEEP_RUNNING,   /* initiated / in-progress / processing: look again later */
	SWEEP_ERROR,     /* no usable answer: look again later */
};

struct sweep_verdict {
	enum sweep_action action;
	char end_time[40]; /* ISO-8601 UTC; "" = unknown (now() is stored) */
	char reason[256];  /* SWEEP_FAILED: failure_reason; SWEEP_ERROR: why */
	const char *label; /* metric label */
};

/* Classifies a GET /v1/convai/conversations/{id} answer. Pure. */
void sweeper_classify(long http_status, const char *body, size_t len, struct sweep_verdict *v);

struct sweeper;

/* Starts the thread. conf and m are borrowed and must outlive it. NULL + errstr on failure. */
struct sweeper *sweeper_start(const struct dialer_config *conf, struct metrics *m, char *errstr,
                              size_t errstr_size);

/* Stops the thread (an HTTP request in progress finishes or times out first) and frees it (NULL
 * ok). */
void sweeper_stop(struct sweeper *s);

#endif
