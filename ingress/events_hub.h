/* events_hub: the live events' fan-out (GET /events): event ids "<epoch>-<n>", a bounded ring of
 * recent events for Last-Event-ID resume, and one bounded queue per subscriber, so a subscriber
 * that falls behind is dropped (a last `resync`) instead of slowing the others or the producer.
 * Thread-safe (one mutex; a reader waits on its subscriber's condition variable); no I/O: the
 * SSE writer and the LISTEN loop are elsewhere. */
#ifndef CALLPIPE_INGRESS_EVENTS_HUB_H
#define CALLPIPE_INGRESS_EVENTS_HUB_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

struct events_hub;
struct events_sub;

struct events_hub_limits {
	size_t max_subscribers; /* streams open at once */
	size_t ring_events;     /* recent events kept for resume ... */
	size_t ring_bytes;      /* ... and their bytes at most */
	size_t queue_events;    /* per subscriber: events waiting to be written ... */
	size_t queue_bytes; /* ... and their bytes; one more and it is dropped (slow_consumer) */
};

/* Resync reasons (the data of the last event of a stream the server ends). */
#define EVENTS_RESYNC_SLOW     "slow_consumer"
#define EVENTS_RESYNC_RESUME   "cannot_resume"
#define EVENTS_RESYNC_LISTENER "listener_lost"

/* A hub whose ids start "<epoch>-1". NULL on OOM or zero limits. events_hub_destroy frees it and
 * every subscriber still registered (NULL ok). */
struct events_hub *events_hub_new(const struct events_hub_limits *lim, uint64_t epoch);
void events_hub_destroy(struct events_hub *hub);

/* Appends one event: data is one line of JSON (copied). Assigns the next id, keeps it in the
 * ring and queues it for every open subscriber (dropping those whose queue would overflow).
 * Returns 0, or -1 when out of memory (then every subscriber is ended as with
 * events_hub_resync_all, so nobody silently misses it). */
__attribute__((warn_unused_result)) int events_hub_publish(struct events_hub *hub, const char *type,
                                                           const char *data);

/* Ends every open subscriber with a last resync {"reason": reason} and empties the ring, so no
 * Last-Event-ID from before can resume (events may have been missed). */
void events_hub_resync_all(struct events_hub *hub, const char *reason);

/* Queues the comment ": ping" for every open subscriber with room for it (kept-alive proxies,
 * and a dead client is noticed at the write). */
void events_hub_ping(struct events_hub *hub);

/* Ends every stream (no resync: the process is stopping) and refuses new subscribers. */
void events_hub_close(struct events_hub *hub);

/* Opens a subscriber. last_event_id (NULL: none) resumes after that event when it is still in
 * the ring; otherwise the stream holds only resync {"reason": "cannot_resume"}. NULL when
 * max_subscribers streams are open, the hub is closed, or out of memory. */
struct events_sub *events_hub_subscribe(struct events_hub *hub, const char *last_event_id);

/* Copies up to max bytes of the stream into buf, waiting up to wait_ms for some. Returns the
 * count (> 0); 0 when nothing came in time; -1 once the stream is over and all of it, its
 * resync included, was copied. One reader per subscriber. */
ssize_t events_sub_read(struct events_sub *sub, char *buf, size_t max, long wait_ms);

/* Unregisters and frees sub (its client is gone). NULL ok. */
void events_sub_close(struct events_sub *sub);

/* Parses "<epoch>-<n>" (decimal, no sign, no spaces). Returns 0 or -1. */
__attribute__((warn_unused_result)) int events_id_parse(const char *id, uint64_t *epoch,
                                                        uint64_t *n);

/* Counters for /metrics and tests. */
struct events_hub_stats {
	size_t subscribers;    /* open now */
	uint64_t last_id;      /* n of the newest event (0: none) */
	size_t ring_events;    /* events in the ring now */
	size_t ring_bytes;     /* their bytes */
	uint64_t dropped_slow; /* subscribers ended as slow_consumer, since start */
	uint64_t resumed;      /* subscriptions resumed from Last-Event-ID */
	uint64_t not_resumed;  /* ... refused (cannot_resume) */
};
void events_hub_stats(struct events_hub *hub, struct events_hub_stats *out);

#endif
