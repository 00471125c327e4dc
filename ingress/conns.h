/* conns: the ingress's open connections: at most INGRESS_CONNECTIONS_PER_ADDRESS from one
 * client address, and absolute deadlines for a request's headers and body (and the pause before
 * the next request on a kept-alive connection). libmicrohttpd's own timeout is an idle one: a
 * client sending a byte every few seconds never trips it. An overdue connection is shut down
 * (shutdown(2)) from the deadline timer; its HTTP thread then reads the end of the stream and
 * closes it. */
#ifndef CALLPIPE_INGRESS_CONNS_H
#define CALLPIPE_INGRESS_CONNS_H

#include <microhttpd.h>
#include <stddef.h>
#include <stdint.h>

struct metrics;
struct conns;
struct conn; /* one connection's record, owned by conns */

struct conns_limits {
	unsigned per_address; /* 0: no limit */
	size_t max_conns;     /* INGRESS_CONNECTION_LIMIT: sizes the address table */
	int64_t header_ms;    /* a request's line and headers */
	int64_t
	    keepalive_ms; /* the pause a kept-alive connection may take before its next request */
};

/* The registry (limits copied). NULL on OOM. Counts in m: ingress_connections_refused_total and
 * ingress_connections_closed_total. */
struct conns *conns_new(const struct conns_limits *lim, struct metrics *m);
/* Frees it; only after every daemon using it stopped (their connections are gone). NULL ok. */
void conns_destroy(struct conns *c);

/* MHD_AcceptPolicyCallback (cls: the conns): refuses a client address that holds its limit. */
enum MHD_Result conns_accept(void *cls, const struct sockaddr *addr, socklen_t addrlen);
/* MHD_NotifyConnectionCallback (cls: the conns): records a new connection (its first request's
 * headers are due within header_ms) and forgets a closed one. */
void conns_notify(void *cls, struct MHD_Connection *conn, void **socket_context,
                  enum MHD_ConnectionNotificationCode toe);

/* MHD_OPTION_URI_LOG_CALLBACK (cls: the conns): a request line is in; on a kept-alive
 * connection its headers are now due within header_ms (the window conn_answered opened is
 * longer). Returns NULL (the request's context starts empty). */
void *conns_request_line(void *cls, const char *uri, struct MHD_Connection *conn);

/* The record of conn, NULL when it has none (no memory when it opened). Lives until conn closes.
 */
struct conn *conns_get(struct MHD_Connection *conn);
/* Phase changes, from the connection's HTTP thread; k may be NULL. */
/* Headers in, the body expected by deadline_ms (monotonic). */
void conn_body_due(struct conn *k, int64_t deadline_ms);
/* Headers (and body) in: no deadline while the request is answered or waits (wait.c has its
 * own). */
void conn_busy(struct conn *k);
/* The request was answered at now_ms: the next one's headers are due within keepalive_ms +
 * header_ms. */
void conn_answered(struct conn *k, int64_t now_ms);

/* Shuts down every connection past its deadline. From the deadline timer. Returns how many. */
size_t conns_reap(struct conns *c, int64_t now_ms);
/* Open connections (for the ingress_connections gauge). */
size_t conns_open(struct conns *c);

#endif
