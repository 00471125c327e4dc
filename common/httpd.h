/* httpd: the libmicrohttpd parts every service shares: /healthz, /readyz, /metrics, JSON replies,
 * and a small health server for the workers' own port. */
#ifndef CALLPIPE_HTTPD_H
#define CALLPIPE_HTTPD_H

#include "log.h"

#include <jansson.h>
#include <microhttpd.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <sys/socket.h>

struct metrics;

/* Resolves a listen address "host:port", the value of setting (named in errors), into *ss: an
 * empty host is every IPv4 interface, a name or a numeric address its first address. Returns 0,
 * or -1 with errstr ("<setting>: '<listen>' is not host:port", "<setting>: cannot resolve
 * '<host>': <reason>"). */
int httpd_resolve_listen(const char *setting, const char *listen, struct sockaddr_storage *ss,
                         char *errstr, size_t errstr_size) __attribute__((warn_unused_result));

/* Readiness probe: true when the service can do its work (broker/database reachable). */
typedef bool httpd_ready_fn(void *opaque);

/* Queues a JSON reply (compact), Content-Type application/json. Takes no ownership of body.
 * Returns the MHD_queue_response result. */
enum MHD_Result httpd_reply_json(struct MHD_Connection *conn, unsigned status, const json_t *body);

/* Queues {"error": msg}. */
enum MHD_Result httpd_reply_error(struct MHD_Connection *conn, unsigned status, const char *msg);

/* Queues a text/plain reply. */
enum MHD_Result httpd_reply_text(struct MHD_Connection *conn, unsigned status, const char *ctype,
                                 const char *text);

/* Where an httpd_mhd_log logger writes: the log message, and the rate limit of its lines. Embed
 * it zeroed (limit) next to the daemon; it must outlive the daemon. */
struct httpd_mhd_logger {
	const char *msg; /* NULL: "microhttpd" */
	struct log_limit limit;
};

/* The one MHD_OPTION_EXTERNAL_LOGGER of every service: libmicrohttpd's diagnostics as warn lines
 * {msg, "detail", "suppressed"}, at most one a second (most are about one connection, and a
 * flood of clients would otherwise flood the log). cls is a struct httpd_mhd_logger *. */
__attribute__((format(printf, 2, 0))) void httpd_mhd_log(void *cls, const char *fmt, va_list ap);

/* Answers GET /healthz, /readyz and /metrics. Returns true (and sets *ret) when url was one of
 * them, false otherwise. ready may be NULL (always ready). */
bool httpd_builtin(struct MHD_Connection *conn, const char *method, const char *url,
                   struct metrics *m, httpd_ready_fn *ready, void *opaque, enum MHD_Result *ret);

/* A worker's health server on listen ("host:port"; port 0 picks a free one): builtin routes
 * only, 404 otherwise, its own thread, connection timeouts. Borrowed m/opaque must outlive it.
 * NULL + errstr on failure; httpd_stop frees (NULL ok). */
struct httpd;
struct httpd *httpd_start_health(const char *listen, struct metrics *m, httpd_ready_fn *ready,
                                 void *opaque, char *errstr, size_t errstr_size);
unsigned httpd_port(const struct httpd *h);
void httpd_stop(struct httpd *h);

#endif
