/* conns: connection records (libmicrohttpd's connection notifications), the per-address limit
 * (its accept policy) and the deadline reaper (run by the deadline timer). */
#include "conns.h"

#include "log.h"
#include "metrics.h"
#include "peers.h"
#include "timeutil.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdlib.h>
#include <sys/socket.h>

/* What a deadline is for. Packed with it into one word, (deadline_ms << 2) | phase, so that
 * the reaper never sees one phase's deadline with another's label; 0: none. */
enum conn_phase {
	CONN_NONE = 0,
	CONN_HEADERS,
	CONN_BODY,
};
#define CONN_DUE(ms, phase) (((ms) << 2) | (int64_t)(phase))

struct conn {
	const struct conns *owner;
	struct conn *prev, *next; /* on conns.head (guarded by conns.lock) */
	MHD_socket fd;
	bool counted; /* holds one of its address's slots in conns.peers */
	unsigned char key[PEERS_KEY_LEN];
	_Atomic int64_t due; /* CONN_DUE(deadline, phase); written by its HTTP thread */
};

struct conns {
	struct conns_limits lim;
	struct peers *peers;
	pthread_mutex_t lock; /* guards head, open; held while shutting a socket down, so that
	                       * a closed connection's descriptor is never reused under us */
	struct conn *head;
	size_t open;
	struct metric *m_refused, *m_closed_headers, *m_closed_body;
	struct log_limit log_refused, log_reaped;
};

struct conns *conns_new(const struct conns_limits *lim, struct metrics *m)
{
	struct conns *c = calloc(1, sizeof *c);
	static const char closed_help[] =
	    "Connections closed for missing a deadline: headers, or body";

	if (c == NULL)
		return NULL;
	c->lim = *lim;
	c->peers = peers_new(lim->per_address, lim->max_conns);
	if (c->peers == NULL) {
		free(c);
		return NULL;
	}
	pthread_mutex_init(&c->lock, NULL);
	c->m_refused = metrics_counter(m, "ingress_connections_refused_total",
	                               "Connections closed at once, by reason", "reason",
	                               "address_limit", NULL);
	c->m_closed_headers = metrics_counter(m, "ingress_connections_closed_total", closed_help,
	                                      "reason", "header_timeout", NULL);
	c->m_closed_body = metrics_counter(m, "ingress_connections_closed_total", closed_help,
	                                   "reason", "body_timeout", NULL);
	return c;
}

void conns_destroy(struct conns *c)
{
	if (c == NULL)
		return;
	if (c->head != NULL)
		log_error("connection records left at exit", LOGI("open", c->open));
	peers_destroy(c->peers);
	pthread_mutex_destroy(&c->lock);
	free(c);
}

/* The address as text, for a log line. */
static const char *conns_addr_str(const struct sockaddr *addr, char *buf, size_t size)
{
	const void *a = NULL;

	if (addr->sa_family == AF_INET)
		a = &((const struct sockaddr_in *)addr)->sin_addr;
	else if (addr->sa_family == AF_INET6)
		a = &((const struct sockaddr_in6 *)addr)->sin6_addr;
	if (a == NULL || inet_ntop(addr->sa_family, a, buf, (socklen_t)size) == NULL)
		return "?";
	return buf;
}

static void conns_refused(struct conns *c, const struct sockaddr *addr)
{
	char text[INET6_ADDRSTRLEN];

	metric_inc(c->m_refused);
	log_warn_limited(&c->log_refused,
	                 "connection refused: its address holds INGRESS_CONNECTIONS_PER_ADDRESS",
	                 LOGS("address", conns_addr_str(addr, text, sizeof text)),
	                 LOGI("limit", c->lim.per_address));
}

enum MHD_Result conns_accept(void *cls, const struct sockaddr *addr, socklen_t addrlen)
{
	struct conns *c = cls;
	unsigned char key[PEERS_KEY_LEN];

	if (c->lim.per_address == 0 || !peers_key(addr, addrlen, key) ||
	    peers_allowed(c->peers, key))
		return MHD_YES;
	conns_refused(c, addr);
	return MHD_NO;
}

static void conns_started(struct conns *c, struct MHD_Connection *conn, void **socket_context)
{
	const union MHD_ConnectionInfo *fd_info =
	    MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CONNECTION_FD);
	const union MHD_ConnectionInfo *addr_info =
	    MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
	const struct sockaddr *addr = addr_info != NULL ? addr_info->client_addr : NULL;
	struct conn *k = calloc(1, sizeof *k);

	*socket_context = k;
	if (k == NULL || fd_info == NULL) {
		/* no record, no deadline: do not keep a connection nothing would time out */
		log_error("cannot track a connection: closing it");
		if (fd_info != NULL)
			(void)shutdown(fd_info->connect_fd, SHUT_RDWR);
		return;
	}
	k->owner = c;
	k->fd = fd_info->connect_fd;
	atomic_init(&k->due, CONN_DUE(time_mono_ms() + c->lim.header_ms, CONN_HEADERS));
	if (c->lim.per_address > 0 && addr != NULL &&
	    peers_key(addr,
	              addr->sa_family == AF_INET6 ? sizeof(struct sockaddr_in6)
	                                          : sizeof(struct sockaddr_in),
	              k->key)) {
		/* exact here: conns_accept only looked, and the HTTP threads accept in parallel */
		k->counted = peers_acquire(c->peers, k->key);
		if (!k->counted) {
			conns_refused(c, addr);
			atomic_store(&k->due, 0);
			(void)shutdown(k->fd, SHUT_RDWR);
		}
	}
	pthread_mutex_lock(&c->lock);
	k->next = c->head;
	if (c->head != NULL)
		c->head->prev = k;
	c->head = k;
	c->open++;
	pthread_mutex_unlock(&c->lock);
}

static void conns_closed(struct conns *c, void **socket_context)
{
	struct conn *k = *socket_context;

	if (k == NULL)
		return;
	*socket_context = NULL;
	pthread_mutex_lock(&c->lock);
	if (k->prev != NULL)
		k->prev->next = k->next;
	else
		c->head = k->next;
	if (k->next != NULL)
		k->next->prev = k->prev;
	c->open--;
	pthread_mutex_unlock(&c->lock);
	if (k->counted)
		peers_release(c->peers, k->key);
	free(k);
}

void conns_notify(void *cls, struct MHD_Connection *conn, void **socket_context,
                  enum MHD_ConnectionNotificationCode toe)
{
	if (toe == MHD_CONNECTION_NOTIFY_STARTED)
		conns_started(cls, conn, socket_context);
	else if (toe == MHD_CONNECTION_NOTIFY_CLOSED)
		conns_closed(cls, socket_context);
}

struct conn *conns_get(struct MHD_Connection *conn)
{
	const union MHD_ConnectionInfo *info =
	    MHD_get_connection_info(conn, MHD_CONNECTION_INFO_SOCKET_CONTEXT);

	return info != NULL ? info->socket_context : NULL;
}

void *conns_request_line(void *cls, const char *uri, struct MHD_Connection *conn)
{
	struct conns *c = cls;
	struct conn *k = conns_get(conn);
	int64_t due, sooner;

	(void)uri;
	if (k == NULL)
		return NULL;
	due = atomic_load_explicit(&k->due, memory_order_relaxed);
	sooner = CONN_DUE(time_mono_ms() + c->lim.header_ms, CONN_HEADERS);
	/* only ever sooner: a connection's first request keeps the deadline it opened with */
	if (due != 0 && (due & 3) == CONN_HEADERS && sooner < due)
		atomic_store_explicit(&k->due, sooner, memory_order_relaxed);
	return NULL;
}

void conn_body_due(struct conn *k, int64_t deadline_ms)
{
	if (k != NULL)
		atomic_store_explicit(&k->due, CONN_DUE(deadline_ms, CONN_BODY),
		                      memory_order_relaxed);
}

void conn_busy(struct conn *k)
{
	if (k != NULL)
		atomic_store_explicit(&k->due, 0, memory_order_relaxed);
}

void conn_answered(struct conn *k, int64_t now_ms)
{
	if (k != NULL)
		atomic_store_explicit(
		    &k->due,
		    CONN_DUE(now_ms + k->owner->lim.keepalive_ms + k->owner->lim.header_ms,
		             CONN_HEADERS),
		    memory_order_relaxed);
}

size_t conns_reap(struct conns *c, int64_t now_ms)
{
	size_t headers = 0, body = 0;

	pthread_mutex_lock(&c->lock);
	for (struct conn *k = c->head; k != NULL; k = k->next) {
		int64_t due = atomic_load_explicit(&k->due, memory_order_relaxed);

		if (due == 0 || (due >> 2) > now_ms)
			continue;
		/* its HTTP thread moved it on meanwhile: judge the new phase next time */
		if (!atomic_compare_exchange_strong(&k->due, &due, 0))
			continue;
		(void)shutdown(k->fd, SHUT_RDWR);
		if ((due & 3) == CONN_BODY)
			body++;
		else
			headers++;
	}
	pthread_mutex_unlock(&c->lock);
	if (headers + body == 0)
		return 0;
	metric_add(c->m_closed_headers, (double)headers);
	metric_add(c->m_closed_body, (double)body);
	log_info_limited(&c->log_reaped, "connections closed: past their deadline",
	                 LOGI("headers", headers), LOGI("body", body),
	                 LOGI("header_timeout_ms", c->lim.header_ms));
	return headers + body;
}

size_t conns_open(struct conns *c)
{
	size_t n;

	pthread_mutex_lock(&c->lock);
	n = c->open;
	pthread_mutex_unlock(&c->lock);
	return n;
}
