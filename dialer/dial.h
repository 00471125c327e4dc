/* dial: the outbound-call engine. Many requests in flight on one curl multi handle, capped by a
 * concurrency limit and a calls/s token bucket, with bounded retries (backoff + jitter,
 * Retry-After) for answers that prove nothing was placed. Single-threaded: call every function
 * from the thread that runs dial_engine_run. */
#ifndef CALLPIPE_DIALER_DIAL_H
#define CALLPIPE_DIALER_DIAL_H

#include <stdbool.h>
#include <stddef.h>

struct metrics;

struct dial_engine_config {
	const char *base_url; /* ELEVENLABS_BASE_URL, borrowed for the engine's life */
	const char *api_key;  /* sent as xi-api-key */
	int concurrency;
	double rate_per_sec; /* <= 0: unlimited */
	int max_attempts;
	long request_timeout_ms, connect_timeout_ms;
	long retry_base_ms, retry_max_ms, retry_after_max_ms;
	struct metrics *metrics; /* dialer_* series; borrowed */
};

enum dial_status {
	DIAL_OK,      /* accepted: conversation_id (may be "") */
	DIAL_FAILED,  /* refused, or never placed: reason */
	DIAL_UNKNOWN, /* may have been placed (timeout or reset after sending, 502, 504): reason is
	                 "dial_outcome_unknown"; the call row is left for the webhook or sweeper */
};

/* A finished dial. Strings are borrowed for the duration of the callback. */
struct dial_outcome {
	enum dial_status status;
	const char *conversation_id;
	const char *reason; /* failure_reason to store (FAILED/UNKNOWN) */
	const char *label;  /* metric label of the reason */
	int attempts;
	long http_status; /* last HTTP status, 0 when none */
};

/* Called from dial_engine_run/dial_engine_abort_all once per submitted job. */
typedef void dial_done_fn(void *opaque, void *job, const struct dial_outcome *out);

struct dial_engine;

/* NULL + errstr on failure. conf is copied (its strings are borrowed). dial_engine_destroy frees
 * (NULL ok) without calling done for jobs still inside: abort them first. */
struct dial_engine *dial_engine_new(const struct dial_engine_config *conf, dial_done_fn *done,
                                    void *opaque, char *errstr, size_t errstr_size);
void dial_engine_destroy(struct dial_engine *e);

/* True when a new dial would start right now (a free slot, a rate token, and no retry that is
 * due and waiting for one). The caller claims a call only then, so no claimed call waits. */
bool dial_engine_can_start(struct dial_engine *e);

/* Starts the outbound-call request for call_sid with body (JSON text, copied). job is returned
 * to done. Returns 0, or -1 when the request could not be set up (done is not called). */
__attribute__((warn_unused_result)) int dial_engine_submit(struct dial_engine *e,
                                                           const char *call_sid, const char *body,
                                                           void *job);

/* Waits up to timeout_ms for network activity or a due retry, then moves every transfer along,
 * calling done for finished jobs. Returns the number of jobs finished. */
int dial_engine_run(struct dial_engine *e, int timeout_ms);

/* Jobs inside the engine: requests in flight plus jobs waiting to retry. */
size_t dial_engine_active(const struct dial_engine *e);

/* Ends every job now (shutdown past the drain timeout): a request that may have left finishes as
 * DIAL_UNKNOWN, one that provably did not (waiting to retry, still connecting) as DIAL_FAILED
 * "shutdown before dial". */
void dial_engine_abort_all(struct dial_engine *e);

#endif
