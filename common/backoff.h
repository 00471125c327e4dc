/* backoff: exponential backoff with equal jitter (each delay random in its upper half), for
 * retries against the database and APIs. */
#ifndef CALLPIPE_BACKOFF_H
#define CALLPIPE_BACKOFF_H

#include <stdint.h>

struct backoff {
	long base_ms; /* first delay's upper bound */
	long max_ms;  /* cap on any delay */
	unsigned attempt;
	uint64_t rng; /* xorshift state; seeded by backoff_init */
};

void backoff_init(struct backoff *b, long base_ms, long max_ms);

/* Returns the next delay in ms (random in [ceil/2, ceil], ceil = min(max, base * 2^attempt))
 * and advances the attempt counter. */
long backoff_next(struct backoff *b);

void backoff_reset(struct backoff *b);

/* The delay's ceiling before jitter: min(max, base * 2^attempt), without overflow. Pure. */
long backoff_ceil_ms(long base_ms, long max_ms, unsigned attempt);

/* One xorshift64* step on *state (a zero state is replaced by a fixed seed): the random source
 * of every jittered delay, for callers that keep their own state. */
uint64_t backoff_rand(uint64_t *state);

#endif
