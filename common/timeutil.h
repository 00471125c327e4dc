/* timeutil: clocks and ISO-8601 (RFC 3339) formatting/parsing in UTC. */
#ifndef CALLPIPE_TIMEUTIL_H
#define CALLPIPE_TIMEUTIL_H

#include <stddef.h>
#include <stdint.h>

int64_t time_now_ms(void);  /* wall clock, ms since the epoch */
int64_t time_mono_ms(void); /* monotonic clock, ms */

/* Formats ms since the epoch as "2025-11-21T10:30:00.123Z" into buf (>= 32 bytes). */
void time_format_iso_ms(int64_t ms, char *buf, size_t size);

/* Parses RFC 3339 / ISO-8601: "2025-11-21T10:30:00Z", with optional fraction and
 * "+hh:mm"/"-hh:mm" offset, or a date "2025-11-21" (midnight UTC). Returns 0 or -1. */
int time_parse_iso_ms(const char *s, int64_t *ms);

#endif
