/* server: the ingress HTTP server (libmicrohttpd): routing, limits, auth, and the suspend/resume
 * machinery that lets a request wait for the broker or the database without holding a thread. */
#ifndef CALLPIPE_INGRESS_SERVER_H
#define CALLPIPE_INGRESS_SERVER_H

#include <stdbool.h>
#include <stddef.h>

struct ingress_config;
struct publish;
struct calls_read;
struct metrics;

struct server;

/* Starts listening on conf->http_listen with conf->threads threads. pub is required; reads may be
 * NULL (GET /calls answers 503). All borrowed: they must outlive the server. NULL + errstr on
 * failure (bad address, port in use). */
struct server *server_start(const struct ingress_config *conf, struct publish *pub,
                            struct calls_read *reads, struct metrics *m, char *errstr,
                            size_t errstr_size);

/* /readyz's answer (an httpd_ready_fn; opaque is the server): the broker answered the last
 * check of the readiness thread, and the server is not draining. Never blocks. */
bool server_is_ready(void *opaque);

/* The bearer check of every authenticated route, here and on the admin address: authorization is
 * the Authorization header's value (NULL: none). Constant time in the token; true when it is
 * "Bearer <INGRESS_API_TOKEN>" or no token is configured (INGRESS_ALLOW_UNAUTHENTICATED). */
bool server_bearer_ok(const struct server *s, const char *authorization);

/* The bound port (useful with port 0). */
unsigned server_port(const struct server *s);

/* Requests being handled (from headers received to response sent, waits included). */
long server_in_flight(const struct server *s);

/* Stops accepting connections; requests arriving on open connections get 503 with
 * "Connection: close"; /readyz turns 503. Then waits up to timeout_ms for in-flight requests.
 * Returns 0 when none are left, -1 on timeout. */
int server_drain(struct server *s, long timeout_ms);

/* Stops the deadline timer and the daemon (closing idle connections). Refuses (-1, logged) while
 * a connection is still suspended waiting for the broker or the database: MHD must not be stopped
 * then. The struct stays valid for late delivery reports. Returns 0 or -1; NULL ok. */
int server_stop(struct server *s);

/* server_stop, then frees. Call after the producer and the read workers are gone (their late
 * callbacks use the struct). NULL ok. */
void server_destroy(struct server *s);

#endif
