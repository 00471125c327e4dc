/* server: the ingress's libmicrohttpd daemon: start, dispatch by route, body limits, drain. */
#include "server.h"

#include "calls_read.h"
#include "calltoken.h"
#include "config.h"
#include "conns.h"
#include "httpd.h"
#include "listen.h"
#include "log.h"
#include "metrics.h"
#include "ready.h"
#include "server_int.h"
#include "timeutil.h"
#include "webhook.h"

#include <openssl/evp.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <unistd.h>

#define SERVER_CALLS_PREFIX     "/calls/"
#define SERVER_READY_EVERY_MS   1000 /* the readiness thread asks the broker once a second */
#define SERVER_READY_TIMEOUT_MS 500  /* ... and waits this long for its answer */

static enum route server_route(const char *url)
{
	if (strcmp(url, "/driver_data/call-elevenlabs") == 0)
		return ROUTE_CALL_REQUEST;
	if (strcmp(url, "/webhooks/elevenlabs/transcription") == 0)
		return ROUTE_TRANSCRIPTION;
	if (strcmp(url, "/webhooks/elevenlabs/post-call") == 0)
		return ROUTE_POST_CALL;
	if (strncmp(url, SERVER_CALLS_PREFIX, strlen(SERVER_CALLS_PREFIX)) == 0)
		return ROUTE_CALLS_READ;
	if (strcmp(url, "/healthz") == 0)
		return ROUTE_HEALTHZ;
	if (strcmp(url, "/readyz") == 0)
		return ROUTE_READYZ;
	if (strcmp(url, "/metrics") == 0)
		return ROUTE_METRICS;
	return ROUTE_OTHER;
}

static bool server_is_get(const char *method)
{
	return strcmp(method, MHD_HTTP_METHOD_GET) == 0 ||
	       strcmp(method, MHD_HTTP_METHOD_HEAD) == 0;
}

/* The readiness thread's last answer (ready.c: never a broker round trip on an HTTP thread). */
bool server_is_ready(void *opaque)
{
	struct server *s = opaque;

	return !atomic_load(&s->draining) && ready_broker(s->probe);
}

/* A readiness already judged: opaque non-NULL means ready. */
static bool server_ready_decided(void *opaque)
{
	return opaque != NULL;
}

/* Answers the built-in GET routes through the shared httpd helpers. */
static enum MHD_Result server_builtin(struct req *rq, const char *method, const char *url)
{
	struct server *s = rq->srv;
	enum MHD_Result ret = MHD_NO;
	unsigned status = 200;
	bool ready = server_is_ready(s); /* judged once: the answer counted is the one given */

	if (!httpd_builtin(rq->conn, method, url, s->metrics, server_ready_decided,
	                   ready ? (void *)s : NULL, &ret))
		return server_reply_error(rq, MHD_HTTP_NOT_FOUND, "not found", "not_found");
	if (rq->route == ROUTE_READYZ && !ready)
		status = 503;
	server_count_request(s, rq->route, status);
	return ret;
}

/* GET /calls/{call_sid}: auth, then a lookup on the read workers. */
static enum MHD_Result server_calls_read(struct req *rq, const char *url)
{
	const char *sid = url + strlen(SERVER_CALLS_PREFIX);

	if (!routes_authorized(rq))
		return server_reply_error(rq, MHD_HTTP_UNAUTHORIZED, "Unauthorized",
		                          "unauthorized");
	if (!webhook_id_ok(sid, 255) || strchr(sid, '/') != NULL)
		return server_reply_error(rq, MHD_HTTP_NOT_FOUND, "no call with this call_sid",
		                          NULL);
	return server_read_call(rq, sid);
}

static enum MHD_Result server_reply_405(struct req *rq, const char *const *allow)
{
	json_t *body = json_pack("{s:s}", "error", "method not allowed");
	enum MHD_Result ret;

	metric_inc(metrics_counter(rq->srv->metrics, "ingress_rejected_total",
	                           "Requests refused, by reason", "reason", "method_not_allowed",
	                           NULL));
	ret = server_reply(rq, MHD_HTTP_METHOD_NOT_ALLOWED, body, allow);
	json_decref(body);
	return ret;
}

/* First call for a request: headers are in, no body yet. */
static enum MHD_Result server_headers(struct req *rq, const char *url, const char *method)
{
	struct server *s = rq->srv;
	static const char *const allow_post[] = {MHD_HTTP_HEADER_ALLOW, "POST", NULL};
	static const char *const allow_get[] = {MHD_HTTP_HEADER_ALLOW, "GET, HEAD", NULL};
	enum MHD_Result ret;

	if (atomic_load(&s->draining) && rq->route != ROUTE_HEALTHZ && rq->route != ROUTE_METRICS &&
	    rq->route != ROUTE_READYZ)
		return server_reply_error(rq, MHD_HTTP_SERVICE_UNAVAILABLE, "shutting down",
		                          "draining");
	switch (rq->route) {
	case ROUTE_CALL_REQUEST:
	case ROUTE_TRANSCRIPTION:
	case ROUTE_POST_CALL:
		if (strcmp(method, MHD_HTTP_METHOD_POST) != 0)
			return server_reply_405(rq, allow_post);
		if (!routes_admit(rq, &ret))
			return ret;
		return MHD_YES; /* wait for the body */
	case ROUTE_METRICS:
		/* with an admin address (INGRESS_ADMIN_LISTEN) metrics are served there only */
		if (s->conf->admin_listen != NULL && s->conf->admin_listen[0] != '\0')
			return server_reply_error(rq, MHD_HTTP_NOT_FOUND, "not found", "not_found");
		/* fall through */
	case ROUTE_CALLS_READ:
	case ROUTE_HEALTHZ:
	case ROUTE_READYZ:
		if (!server_is_get(method))
			return server_reply_405(rq, allow_get);
		if (rq->route == ROUTE_CALLS_READ)
			return server_calls_read(rq, url);
		return server_builtin(rq, method, url);
	case ROUTE_OTHER:
	default:
		return server_reply_error(rq, MHD_HTTP_NOT_FOUND, "not found", "not_found");
	}
}

static enum MHD_Result server_access(void *cls, struct MHD_Connection *conn, const char *url,
                                     const char *method, const char *version,
                                     const char *upload_data, size_t *upload_data_size,
                                     void **req_cls)
{
	struct server *s = cls;
	struct req *rq = *req_cls;
	enum MHD_Result ret;

	(void)version;
	if (rq == NULL) {
		rq = req_new(s, conn);
		if (rq == NULL)
			return MHD_NO;
		*req_cls = rq;
		rq->route = server_route(url);
		return server_headers(rq, url, method);
	}
	if (*upload_data_size > 0) {
		ret = admit_body(rq, upload_data, *upload_data_size);
		*upload_data_size = 0;
		return ret;
	}
	if (rq->waiting)
		return server_answer_done(rq);
	conn_busy(rq->edge); /* the body is in */
	if (admit_refused(rq, &ret))
		return ret;
	switch (rq->route) {
	case ROUTE_CALL_REQUEST:
		return routes_call_request(rq);
	case ROUTE_TRANSCRIPTION:
		return routes_transcription(rq);
	case ROUTE_POST_CALL:
		return routes_post_call(rq);
	default:
		return server_reply_error(rq, MHD_HTTP_NOT_FOUND, "not found", "not_found");
	}
}

/* One single-threaded daemon per HTTP thread, each with its own listening socket on the same
 * address (SO_REUSEPORT): the kernel hashes new connections over the sockets. With one socket
 * shared by a thread pool, whichever thread woke first accepted, and a burst of keep-alive
 * connections could all land on one thread, leaving the others idle for the connections' life
 * (bench/README.md: 2026-11-26, evening). */
static int server_start_daemons(struct server *s, unsigned int flags, struct sockaddr_storage *ss,
                                char *errstr, size_t errstr_size)
{
	const struct ingress_config *conf = s->conf;
	unsigned n = (unsigned)conf->threads;
	unsigned total = (unsigned)conf->connection_limit;

	if (n < 1 || n > INGRESS_THREADS_MAX) {
		snprintf(errstr, errstr_size, "INGRESS_THREADS must be 1-%d", INGRESS_THREADS_MAX);
		return -1;
	}
	for (unsigned i = 0; i < n; i++) {
		/* each daemon gets its share, the remainder spread as libmicrohttpd's own thread
		 * pool does (one at least, should the limit be below the thread count) */
		unsigned limit = total / n + (i < total % n ? 1u : 0u);
		const union MHD_DaemonInfo *info;
		struct MHD_Daemon *d = MHD_start_daemon(
		    flags, 0, conns_accept, s->conns, server_access, s, MHD_OPTION_EXTERNAL_LOGGER,
		    httpd_mhd_log, &s->log_mhd, MHD_OPTION_SOCK_ADDR, (struct sockaddr *)ss,
		    MHD_OPTION_LISTENING_ADDRESS_REUSE, 1u, MHD_OPTION_CONNECTION_TIMEOUT,
		    (unsigned int)conf->connection_timeout_s, MHD_OPTION_CONNECTION_LIMIT,
		    limit > 0 ? limit : 1u, MHD_OPTION_LISTEN_BACKLOG_SIZE, 1024u,
		    MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)conf->connection_memory,
		    MHD_OPTION_NOTIFY_COMPLETED, server_completed, s, MHD_OPTION_NOTIFY_CONNECTION,
		    conns_notify, s->conns, MHD_OPTION_URI_LOG_CALLBACK, conns_request_line,
		    s->conns, MHD_OPTION_END);

		if (d == NULL) {
			snprintf(errstr, errstr_size,
			         "cannot listen on %s (address in use or not available?)",
			         conf->http_listen);
			return -1;
		}
		s->daemons[s->ndaemons++] = d;
		if (i > 0)
			continue;
		/* HTTP_LISTEN's port may be 0 (any): the others join the port the first one got */
		info = MHD_get_daemon_info(d, MHD_DAEMON_INFO_BIND_PORT);
		s->port = info != NULL ? info->port : 0;
		if (s->port == 0) {
			snprintf(errstr, errstr_size, "cannot learn the port of %s",
			         conf->http_listen);
			return -1;
		}
		listen_set_port(ss, s->port);
	}
	return 0;
}

/* The connection registry: INGRESS_CONNECTIONS_PER_ADDRESS and the deadlines. */
static int server_conns_new(struct server *s, char *errstr, size_t errstr_size)
{
	const struct ingress_config *conf = s->conf;
	struct conns_limits lim = {
	    .per_address = (unsigned)conf->connections_per_address,
	    .max_conns = (size_t)conf->connection_limit,
	    .header_ms = conf->header_timeout_ms,
	    .keepalive_ms = conf->connection_timeout_s * 1000,
	};

	s->conns = conns_new(&lim, s->metrics);
	if (s->conns == NULL) {
		snprintf(errstr, errstr_size, "out of memory");
		return -1;
	}
	return 0;
}

struct server *server_start(const struct ingress_config *conf, struct publish *pub,
                            struct calls_read *reads, struct metrics *m, char *errstr,
                            size_t errstr_size)
{
	struct server *s = calloc(1, sizeof *s);
	struct sockaddr_storage ss = {0};
	/* poll, not epoll: every acknowledged publish suspends and resumes its connection, which
	 * with epoll costs two epoll_ctl calls per request; poll rebuilds its set each round
	 * instead, and suspended connections are simply not in it (bench/README.md: ~10% less
	 * CPU per webhook). */
	unsigned int flags =
	    MHD_USE_POLL_INTERNAL_THREAD | MHD_ALLOW_SUSPEND_RESUME | MHD_USE_ERROR_LOG;

	if (s == NULL) {
		snprintf(errstr, errstr_size, "out of memory");
		return NULL;
	}
	s->conf = conf;
	s->pub = pub;
	s->reads = reads;
	s->metrics = m;
	for (unsigned i = 0; i < INGRESS_THREADS_MAX; i++)
		s->listen_fds[i] = MHD_INVALID_SOCKET;
	atomic_init(&s->draining, false);
	atomic_init(&s->in_flight, 0);
	atomic_init(&s->suspended, 0);
	atomic_init(&s->body_bytes, 0);
	atomic_init(&s->request_seq, 0);
	if (getrandom(&s->request_id_base, sizeof s->request_id_base, 0) !=
	    (ssize_t)sizeof s->request_id_base)
		s->request_id_base = (uint64_t)time_now_ms() << 20;
	pthread_mutex_init(&s->wait_lock, NULL);
	s->m_in_flight =
	    metrics_gauge(m, "ingress_in_flight",
	                  "Requests being handled (waiting for the broker included)", NULL);
	s->m_audio_dropped =
	    metrics_counter(m, "ingress_post_call_audio_dropped_total",
	                    "post_call_audio webhooks answered 200 and dropped", NULL);
	s->m_ignored = metrics_counter(m, "ingress_post_call_ignored_total",
	                               "post-call webhooks of an unknown type, answered 200 and "
	                               "dropped",
	                               NULL);
	s->m_connections = metrics_gauge(m, "ingress_connections", "Open connections", NULL);
	s->m_body_bytes = metrics_gauge(
	    m, "ingress_body_bytes", "Bytes of request bodies held (of INGRESS_BODY_BUDGET)", NULL);
	if (server_conns_new(s, errstr, errstr_size) != 0)
		goto fail;
	s->sha256 = EVP_MD_fetch(NULL, "SHA256", NULL);
	if (s->sha256 == NULL) {
		snprintf(errstr, errstr_size, "OpenSSL has no SHA-256");
		goto fail;
	}
	if (conf->api_token != NULL && conf->api_token[0] != '\0') {
		s->has_token = true;
		if (EVP_Digest(conf->api_token, strlen(conf->api_token), s->token_hash, NULL,
		               s->sha256, NULL) != 1) {
			snprintf(errstr, errstr_size, "cannot hash the API token");
			goto fail;
		}
	}
	if (conf->tool_secret != NULL && conf->tool_secret[0] != '\0') {
		s->has_tool_secret = true;
		if (EVP_Digest(conf->tool_secret, strlen(conf->tool_secret), s->tool_hash, NULL,
		               s->sha256, NULL) != 1) {
			snprintf(errstr, errstr_size, "cannot hash the tool secret");
			goto fail;
		}
	}
	if (conf->call_token_secret != NULL && conf->call_token_secret[0] != '\0') {
		s->call_token_key = calltoken_key_new(conf->call_token_secret);
		if (s->call_token_key == NULL) {
			snprintf(errstr, errstr_size, "cannot prepare the call token secret");
			goto fail;
		}
	}
	if (conf->webhook_secret != NULL && conf->webhook_secret[0] != '\0') {
		s->webhook_key = sig_key_new(conf->webhook_secret);
		if (s->webhook_key == NULL) {
			snprintf(errstr, errstr_size, "cannot prepare the webhook secret");
			goto fail;
		}
	}
	if (httpd_resolve_listen("HTTP_LISTEN", conf->http_listen, &ss, errstr, errstr_size) != 0)
		goto fail;
	if (listen_check_free(&ss, conf->http_listen, errstr, errstr_size) != 0)
		goto fail;
	if (ss.ss_family == AF_INET6)
		flags |= MHD_USE_IPv6;
	s->probe =
	    ready_start(pub, SERVER_READY_EVERY_MS, SERVER_READY_TIMEOUT_MS, errstr, errstr_size);
	if (s->probe == NULL)
		goto fail;
	if (server_timer_start(s) != 0) {
		snprintf(errstr, errstr_size, "cannot start the deadline timer");
		goto fail;
	}
	/* Until every thread listens, requests reaching a daemon already started are answered 503
	 * at once: none may be waiting (suspended) should a later one fail and the started ones be
	 * stopped. */
	atomic_store(&s->draining, true);
	if (server_start_daemons(s, flags, &ss, errstr, errstr_size) != 0)
		goto fail;
	atomic_store(&s->draining, false);
	return s;
fail:
	ready_stop(s->probe);
	server_timer_stop(s);
	for (unsigned i = 0; i < s->ndaemons; i++)
		MHD_stop_daemon(s->daemons[i]);
	conns_destroy(s->conns);
	sig_key_free(s->webhook_key);
	calltoken_key_free(s->call_token_key);
	EVP_MD_free(s->sha256);
	pthread_mutex_destroy(&s->wait_lock);
	free(s);
	return NULL;
}

unsigned server_port(const struct server *s)
{
	return s->port;
}

long server_in_flight(const struct server *s)
{
	return atomic_load(&((struct server *)s)->in_flight);
}

int server_drain(struct server *s, long timeout_ms)
{
	int64_t deadline = time_mono_ms() + timeout_ms;

	atomic_store(&s->draining, true);
	for (unsigned i = 0; i < s->ndaemons; i++) {
		if (s->listen_fds[i] != MHD_INVALID_SOCKET)
			continue;
		s->listen_fds[i] = MHD_quiesce_daemon(s->daemons[i]);
		if (s->listen_fds[i] == MHD_INVALID_SOCKET)
			log_warn("HTTP thread still accepting: cannot quiesce it",
			         LOGI("thread", i));
		/* MHD no longer accepts, but the kernel would keep completing handshakes into the
		 * backlog until the socket is closed (only after MHD_stop_daemon): shut it down so
		 * new clients are refused at once instead of hanging. */
		if (s->listen_fds[i] != MHD_INVALID_SOCKET)
			(void)shutdown(s->listen_fds[i], SHUT_RDWR);
	}
	while (atomic_load(&s->in_flight) > 0 && time_mono_ms() < deadline)
		usleep(10000);
	return atomic_load(&s->in_flight) > 0 ? -1 : 0;
}

int server_stop(struct server *s)
{
	if (s == NULL)
		return 0;
	/* first, whatever else happens: the probe uses the producer, which goes next */
	ready_stop(s->probe);
	s->probe = NULL;
	if (s->ndaemons == 0)
		return 0;
	if (atomic_load(&s->suspended) > 0) {
		log_error("HTTP server not stopped: requests are still waiting",
		          LOGI("waiting", atomic_load(&s->suspended)));
		return -1;
	}
	server_timer_stop(s);
	for (unsigned i = 0; i < s->ndaemons; i++) {
		MHD_stop_daemon(s->daemons[i]);
		s->daemons[i] = NULL;
		if (s->listen_fds[i] != MHD_INVALID_SOCKET)
			close(s->listen_fds[i]);
		s->listen_fds[i] = MHD_INVALID_SOCKET;
	}
	s->ndaemons = 0;
	return 0;
}

void server_destroy(struct server *s)
{
	if (s == NULL)
		return;
	if (server_stop(s) != 0)
		return; /* leaked on purpose: suspended connections still point into it */
	conns_destroy(s->conns);
	sig_key_free(s->webhook_key);
	calltoken_key_free(s->call_token_key);
	EVP_MD_free(s->sha256);
	pthread_mutex_destroy(&s->wait_lock);
	free(s);
}
