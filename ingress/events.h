/* events: GET /events, the console's live event stream (docs/console.md "Live events"): the
 * hub (events_hub.h), its LISTEN thread (events_listen.h) and the Server-Sent Events writer,
 * plugged into the admin address (admin.h's events hook). */
#ifndef CALLPIPE_INGRESS_EVENTS_H
#define CALLPIPE_INGRESS_EVENTS_H

#include <microhttpd.h>
#include <stddef.h>

struct ingress_config;
struct metrics;
struct events;

/* Starts the hub and the LISTEN thread on conf->database_url / db_schema (unset: NULL is
 * returned without an error, and events_serve answers 503). conf and m are borrowed and must
 * outlive it. NULL + errstr on failure. */
struct events *events_start(const struct ingress_config *conf, struct metrics *m, char *errstr,
                            size_t errstr_size);

/* admin_stream_fn for GET /events (opaque: a struct events *, may be NULL), called after the
 * bearer check on the connection's own thread: queues the stream (200 text/event-stream), or
 * 503 with Retry-After while the listener is down or INGRESS_EVENTS_MAX_SUBSCRIBERS streams
 * are open. Resumes after the Last-Event-ID request header when it can. */
enum MHD_Result events_serve(void *opaque, struct MHD_Connection *conn);

/* Ends every stream and stops the LISTEN thread: before the admin daemon stops (its connection
 * threads would wait for the streams otherwise). NULL ok. */
void events_close(struct events *ev);

/* Frees: after the admin daemon stopped (a finished stream's response still points into it).
 * NULL ok. */
void events_destroy(struct events *ev);

#endif
