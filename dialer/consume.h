/* consume: the dialer's worker loop. Consumes calls.requested in a consumer group, writes the
 * call row and a durable dial claim before each dial, hands claimed calls to the dial engine,
 * stores outcomes, and commits per partition only below the oldest message whose database work
 * is not done (common/offtrack). Database down: fetching pauses and resumes when it is back. */
#ifndef CALLPIPE_DIALER_CONSUME_H
#define CALLPIPE_DIALER_CONSUME_H

#include <stdbool.h>
#include <stddef.h>

struct dialer_config;
struct metrics;
struct consume;

/* Connects to Postgres (a database that is down is waited for by consume_run, not an error),
 * joins the consumer group and sets up the dial engine and the DLQ producer. conf and m are
 * borrowed and must outlive it. NULL + errstr on a configuration/setup failure. */
struct consume *consume_new(const struct dialer_config *conf, struct metrics *m, char *errstr,
                            size_t errstr_size);

/* Runs until shutdown is requested, then drains: stops fetching, lets in-flight dials finish for
 * up to the drain timeout (the rest end with an unknown outcome), stores outcomes and commits.
 * Returns 0 after a clean drain, -1 when outcomes could not all be stored or it stopped on an
 * error (a message it could neither take nor read again). */
int consume_run(struct consume *c);

/* Leaves the group and frees everything (NULL ok). */
void consume_destroy(struct consume *c);

/* /readyz: the database is reachable and the consumer runs. Thread-safe; opaque is the consume. */
bool consume_ready(void *opaque);

#endif
