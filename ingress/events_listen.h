/* events_listen: the live events' source: ONE dedicated Postgres connection LISTENing on
 * migration 009's channel, on a thread of its own. Each notification of our schema becomes
 * events in the hub (the lines of a "lines" notification are read on the same connection); a
 * ping goes out every ping_ms. A lost connection (or a failed read) ends every stream with
 * resync {"reason": "listener_lost"}, and the thread reconnects with backoff. */
#ifndef CALLPIPE_INGRESS_EVENTS_LISTEN_H
#define CALLPIPE_INGRESS_EVENTS_LISTEN_H

#include <stdbool.h>
#include <stddef.h>

struct events_hub;
struct metrics;

/* Resync reason when a change was too large to announce row by row (a bulk load). */
#define EVENTS_RESYNC_BULK "bulk_change"

struct events_listen_opts {
	const char *url;    /* libpq URL (borrowed for the call) */
	const char *schema; /* whose notifications are ours (borrowed for the call) */
	long ping_ms;       /* ": ping" period */
	size_t max_lines;   /* lines one notification may name; more: resync bulk_change */
};

/* Starts the thread (connecting is its business: the ingress starts without Postgres). hub and
 * m are borrowed and must outlive it. NULL + errstr on failure. */
struct events_listen *events_listen_start(const struct events_listen_opts *opts,
                                          struct events_hub *hub, struct metrics *m, char *errstr,
                                          size_t errstr_size);

/* True while the LISTEN is in place: events are flowing. */
bool events_listen_up(struct events_listen *el);

/* Stops the thread and closes the connection (NULL ok). */
void events_listen_stop(struct events_listen *el);

#endif
