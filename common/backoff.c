/* backoff: exponential backoff with equal jitter (xorshift64*), for retries against databases and
 * APIs. */
#include "backoff.h"

#include "timeutil.h"

#include <stddef.h>

uint64_t backoff_rand(uint64_t *state)
{
	uint64_t x = *state ? *state : 0x9E3779B97F4A7C15ULL;

	x ^= x >> 12;
	x ^= x << 25;
	x ^= x >> 27;
	*state = x;
	return x * 0x2545F4914F6CDD1DULL;
}

long backoff_ceil_ms(long base_ms, long max_ms, unsigned attempt)
{
	long ceil = base_ms;

	/* doubling with an overflow guard */
	for (unsigned i = 0; i < attempt && ceil < max_ms; i++)
		ceil = ceil > max_ms / 2 ? max_ms : ceil * 2;
	return ceil > max_ms ? max_ms : ceil;
}

void backoff_init(struct backoff *b, long base_ms, long max_ms)
{
	/* Seeded from the clock and the struct's address so that instances started together
	 * do not retry in lock step. */
	uint64_t seed = (uint64_t)time_mono_ms() ^ ((uint64_t)(uintptr_t)b << 16) ^
	                ((uint64_t)time_now_ms() * 0x9E3779B97F4A7C15ULL);

	b->base_ms = base_ms > 0 ? base_ms : 0;
	b->max_ms = max_ms > 0 ? max_ms : 0;
	b->attempt = 0;
	b->rng = seed != 0 ? seed : 0x9E3779B97F4A7C15ULL;
}

long backoff_next(struct backoff *b)
{
	long ceil = backoff_ceil_ms(b->base_ms, b->max_ms, b->attempt);
	long floor_ms;

	if (b->attempt < 64)
		b->attempt++;
	if (ceil <= 0)
		return 0;
	floor_ms = (ceil + 1) / 2;
	return floor_ms + (long)(backoff_rand(&b->rng) % (uint64_t)(ceil - floor_ms + 1));
}

void backoff_reset(struct backoff *b)
{
	b->attempt = 0;
}
