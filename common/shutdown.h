/* shutdown: SIGINT/SIGTERM set a flag; a second signal exits at once; SIGPIPE is ignored. */
#ifndef CALLPIPE_SHUTDOWN_H
#define CALLPIPE_SHUTDOWN_H

#include <stdbool.h>

/* Installs the handlers. The flags they set are process-wide, as a signal handler needs (the
 * other process-wide state is log.c's level, output and secret list). */
void shutdown_install(void);

/* True once SIGINT or SIGTERM was received (or shutdown_request() called). */
bool shutdown_requested(void);

/* Requests shutdown from code (tests, fatal errors that want a drain). */
void shutdown_request(void);

/* Sleeps up to ms milliseconds, returning early (true) when shutdown is requested. */
bool shutdown_sleep_ms(long ms);

#endif
