/* admin: the ingress's admin address (INGRESS_ADMIN_LISTEN): /healthz, /readyz, /metrics, the
 * console's static files and its read APIs (docs/console.md). Staff only: every route but the
 * health probes and the page files needs the bearer token.
 *
 * One thread per connection (libmicrohttpd's MHD_USE_THREAD_PER_CONNECTION), bounded by
 * INGRESS_ADMIN_CONNECTION_LIMIT (a quarter per client address), idle connections closed after
 * ADMIN_IDLE_TIMEOUT_S: a handler may block its own thread, which is what a long-lived streaming
 * response (Server-Sent Events) needs. Database reads still run on the calls_read workers (one
 * bounded pool of connections); the connection's thread waits for their answer.
 *
 * Hook for GET /events (console-events): set admin_deps.events; the route is in admin.c's table
 * (search "/events"). It is called on the connection's own thread after the bearer check, with
 * GET or HEAD, and must queue a response (e.g. MHD_create_response_from_callback, whose reader
 * may block on this thread; write at least every ADMIN_IDLE_TIMEOUT_S / 2 or the idle timeout
 * closes the stream). Unset: /events answers 404. admin_stop waits for every connection's
 * thread: a stream's reader must end (MHD_CONTENT_READER_END_OF_STREAM) within about a second of
 * being told to stop, which its owner does before admin_stop. */
#ifndef CALLPIPE_INGRESS_ADMIN_H
#define CALLPIPE_INGRESS_ADMIN_H

#include <jansson.h>
#include <microhttpd.h>
#include <stddef.h>

struct ingress_config;
struct server;
struct calls_read;
struct metrics;

#define ADMIN_IDLE_TIMEOUT_S 45 /* a stream sends a comment every 15 s */

typedef enum MHD_Result admin_stream_fn(void *opaque, struct MHD_Connection *conn);

struct admin_deps {
	const struct ingress_config *conf; /* admin_listen, console_dir, limits, timeouts */
	struct server *srv;                /* the bearer check and /readyz */
	struct calls_read *reads;          /* NULL: the read APIs answer 503 */
	struct metrics *m;
	admin_stream_fn *events; /* GET /events; NULL: 404 */
	void *events_opaque;
};

/* Starts listening on conf->admin_listen. Borrowed deps must outlive it. NULL + errstr on
 * failure. admin_stop closes every connection and waits for their threads (NULL ok). */
struct admin *admin_start(const struct admin_deps *deps, char *errstr, size_t errstr_size);
unsigned admin_port(const struct admin *a);
void admin_stop(struct admin *a);

/* Replies every admin route uses: JSON with nosniff and no caching. */
enum MHD_Result admin_reply_json(struct MHD_Connection *conn, unsigned status, const json_t *body);
/* {"error": msg, "field": field} (field NULL: left out); 401 adds WWW-Authenticate: Bearer, 503
 * Retry-After. */
enum MHD_Result admin_reply_error(struct MHD_Connection *conn, unsigned status, const char *msg,
                                  const char *field);

/* The directory the console's files are served from: conf's INGRESS_CONSOLE_DIR, else the
 * source tree's console/ when it exists, else the installed one. */
const char *admin_console_dir(const struct ingress_config *conf);

#endif
