/* timeutil: clocks and ISO-8601 (RFC 3339) formatting/parsing in UTC. */
#ifndef CALLPIPE_TIMEUTIL_H
#define CALLPIPE_TIMEUTIL_H

#include <pthread.h>
#include <stddef.h>
#include <stdint.h>

/* 9999-12-31T23:59:59Z: the last second ISO-8601 writes with a four-digit year. */
#define TIME_UNIX_MAX_S 253402300799LL

int64_t time_now_ms(void);  /* wall clock, ms since the epoch */
int64_t time_mono_ms(void); /* monotonic clock, ms */

/* Initialises cv to time its waits on CLOCK_MONOTONIC, so a wall-clock step (NTP, an operator)
 * neither stalls nor hurries a timed wait. Returns 0 or -1 (cv is not initialised). */
__attribute__((warn_unused_result)) int time_cond_init(pthread_cond_t *cv);

/* The CLOCK_MONOTONIC deadline ms from now, for pthread_cond_timedwait on a time_cond_init cv. */
struct timespec time_mono_deadline(long ms);

/* Waits on cv (initialised by time_cond_init; mu held) until signalled or ms elapsed. Returns
 * pthread_cond_timedwait's result (0, ETIMEDOUT, ...); spurious wake-ups return 0. */
int time_cond_wait_ms(pthread_cond_t *cv, pthread_mutex_t *mu, long ms);

/* Formats ms since the epoch as "2025-11-21T10:30:00.123Z" into buf (>= 32 bytes). */
void time_format_iso_ms(int64_t ms, char *buf, size_t size);

/* Seconds since the epoch, as a JSON number may carry them, to ms: 0, or -1 when secs is not
 * finite or outside 0..TIME_UNIX_MAX_S (so no out-of-range float-to-integer conversion, which
 * is undefined behaviour, ever happens). */
__attribute__((warn_unused_result)) int time_secs_to_ms(double secs, int64_t *ms);

/* Parses RFC 3339 / ISO-8601: "2025-11-21T10:30:00Z", with optional fraction and
 * "+hh:mm"/"-hh:mm" offset, or a date "2025-11-21" (midnight UTC). Returns 0 or -1. */
int time_parse_iso_ms(const char *s, int64_t *ms);

#endif
