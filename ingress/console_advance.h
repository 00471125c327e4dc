/* console_advance: the periodic advance of the rolling /stats/drivers window (migration 010):
 * a thread with its own database connection runs console_driver_window_advance() every
 * interval, so a read after a quiet spell does not pay for (and make writers wait on) all the
 * calls that left the window meanwhile. Failures are rate-limited warn lines, never fatal; the
 * connection is reopened quietly on the next tick. */
#ifndef CALLPIPE_INGRESS_CONSOLE_ADVANCE_H
#define CALLPIPE_INGRESS_CONSOLE_ADVANCE_H

#include <stddef.h>

struct console_advance;

/* Starts the thread (nothing connects before the first tick). interval_s > 0. NULL + errstr on
 * failure. Caller owns; console_advance_stop wakes and joins it (promptly, but a running advance
 * finishes first) and frees it (NULL ok). */
struct console_advance *console_advance_start(const char *url, const char *schema,
                                              long long interval_s, char *errstr,
                                              size_t errstr_size);
void console_advance_stop(struct console_advance *ca);

#endif
