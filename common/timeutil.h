/* timeutil: clocks and ISO-8601 (RFC 3339) formatting/parsing in UTC. */
#ifndef CALLPIPE_TIMEUTIL_H
#define CALLPIPE_TIMEUTIL_H

#include <stddef.h>
#include <stdint.h>

/* 9999-12-31T23:59:59Z: the last second ISO-8601 writes with a four-digit year. */
#define TIME_UNIX_MAX_S 253402300799LL

int64_t time_now_ms(void);  /* wall clock, ms since the epoch */
int64_t time_mono_ms(void); /* monotonic clock, ms */

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
