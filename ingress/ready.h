/* ready: whether the broker answers, as /readyz reports it, refreshed by a thread of its own. The
 * HTTP threads only read the last answer: a metadata request to a broker that is down waits for
 * its whole timeout, and must never do so on a thread that serves requests. */
#ifndef CALLPIPE_INGRESS_READY_H
#define CALLPIPE_INGRESS_READY_H

#include <stdbool.h>
#include <stddef.h>

struct publish;
struct ready;

/* Starts the thread: it asks the broker (publish_ready, timeout_ms) at once and then every
 * interval_ms. pub is borrowed and must outlive ready_stop. NULL + errstr on failure. */
struct ready *ready_start(struct publish *pub, long interval_ms, int timeout_ms, char *errstr,
                          size_t errstr_size);

/* The last answer: false until the first check finished. Any thread; never blocks. */
bool ready_broker(const struct ready *r);

/* Stops the thread (waits for a check in progress, at most its timeout) and frees. NULL ok. */
void ready_stop(struct ready *r);

#endif
