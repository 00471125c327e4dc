/* admin: the admin address's daemon: route table, bearer check, replies, waits for the reads. */
#include "admin.h"

#include "admin_int.h"
#include "calls_read.h"
#include "config.h"
#include "console_files.h"
#include "httpd.h"
#include "log.h"
#include "metrics.h"
#include "server.h"
#include "timeutil.h"
#include "webhook.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#ifndef CALLPIPE_CONSOLE_DIR
#define CALLPIPE_CONSOLE_DIR "console"
#endif
#ifndef CALLPIPE_CONSOLE_INSTALL_DIR
#define CALLPIPE_CONSOLE_INSTALL_DIR "/usr/local/share/callpipe/console"
#endif

struct admin {
	struct admin_deps deps;
	struct MHD_Daemon *daemon;
	unsigned port;
	const char *console_dir;
	struct httpd_mhd_logger log_mhd;
};

/* ---- replies ---- */

static enum MHD_Result admin_queue(struct MHD_Connection *conn, unsigned status,
                                   struct MHD_Response *resp, const char *const *extra)
{
	enum MHD_Result ret = MHD_NO;

	if (resp == NULL)
		return MHD_NO;
	if (MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, "application/json") !=
	        MHD_YES ||
	    MHD_add_response_header(resp, "X-Content-Type-Options", "nosniff") != MHD_YES ||
	    MHD_add_response_header(resp, "Cache-Control", "no-store") != MHD_YES)
		goto out;
	for (; extra != NULL && extra[0] != NULL; extra += 2)
		if (MHD_add_response_header(resp, extra[0], extra[1]) != MHD_YES)
			goto out;
	ret = MHD_queue_response(conn, status, resp);
out:
	MHD_destroy_response(resp);
	return ret;
}

static enum MHD_Result admin_reply_extra(struct MHD_Connection *conn, unsigned status,
                                         const json_t *body, const char *const *extra)
{
	char *text = json_dumps(body, JSON_COMPACT);
	struct MHD_Response *resp;

	if (text == NULL)
		return MHD_NO;
	resp = MHD_create_response_from_buffer(strlen(text), text, MHD_RESPMEM_MUST_FREE);
	if (resp == NULL) {
		free(text);
		return MHD_NO;
	}
	return admin_queue(conn, status, resp, extra);
}

enum MHD_Result admin_reply_json(struct MHD_Connection *conn, unsigned status, const json_t *body)
{
	return admin_reply_extra(conn, status, body, NULL);
}

enum MHD_Result admin_reply_error(struct MHD_Connection *conn, unsigned status, const char *msg,
                                  const char *field)
{
	const char *extra[3] = {NULL};
	json_t *body = json_pack("{s:s}", "error", msg != NULL ? msg : "error");
	enum MHD_Result ret;

	if (body == NULL)
		body = json_pack("{s:s}", "error", "error");
	if (body != NULL && field != NULL)
		json_object_set_new(body, "field", json_string(field));
	if (status == MHD_HTTP_UNAUTHORIZED) {
		extra[0] = MHD_HTTP_HEADER_WWW_AUTHENTICATE;
		extra[1] = "Bearer";
	} else if (status == MHD_HTTP_SERVICE_UNAVAILABLE) {
		extra[0] = MHD_HTTP_HEADER_RETRY_AFTER;
		extra[1] = "5";
	}
	ret = admin_reply_extra(conn, status, body, extra);
	json_decref(body);
	return ret;
}

const char *admin_console_dir(const struct ingress_config *conf)
{
	struct stat st;

	if (conf->console_dir != NULL && conf->console_dir[0] != '\0')
		return conf->console_dir;
	if (stat(CALLPIPE_CONSOLE_DIR, &st) == 0 && S_ISDIR(st.st_mode))
		return CALLPIPE_CONSOLE_DIR;
	return CALLPIPE_CONSOLE_INSTALL_DIR;
}

/* ---- waiting for a read on the calls_read workers ---- */

/* Shared by the connection's thread and the worker: whichever lets go last frees it, so a wait
 * that timed out never leaves the worker writing into a finished stack frame. */
struct admin_wait {
	pthread_mutex_t lock;
	pthread_cond_t cond;
	int refs;
	bool done;
	unsigned status;
	json_t *body;
	char error[256];
	void *arg;
	void (*arg_free)(void *arg);
};

static void admin_wait_unref(struct admin_wait *w)
{
	bool last;

	pthread_mutex_lock(&w->lock);
	last = --w->refs == 0;
	pthread_mutex_unlock(&w->lock);
	if (!last)
		return;
	json_decref(w->body);
	if (w->arg_free != NULL)
		w->arg_free(w->arg);
	pthread_cond_destroy(&w->cond);
	pthread_mutex_destroy(&w->lock);
	free(w);
}

static void admin_wait_done(void *opaque, unsigned status, json_t *body, const char *error)
{
	struct admin_wait *w = opaque;

	pthread_mutex_lock(&w->lock);
	w->done = true;
	w->status = status;
	w->body = body;
	snprintf(w->error, sizeof w->error, "%s", error != NULL ? error : "");
	pthread_cond_signal(&w->cond);
	pthread_mutex_unlock(&w->lock);
	admin_wait_unref(w);
}

/* Waits up to timeout_ms for w; answers what it got, or 503. */
static enum MHD_Result admin_wait_reply(struct MHD_Connection *conn, struct admin_wait *w,
                                        long timeout_ms)
{
	struct timespec until;
	enum MHD_Result ret;
	int64_t ns;
	bool done;
	unsigned status;
	json_t *body;
	char error[256];

	clock_gettime(CLOCK_MONOTONIC, &until);
	ns = (int64_t)until.tv_nsec + (int64_t)(timeout_ms % 1000) * 1000000;
	until.tv_sec += timeout_ms / 1000 + ns / 1000000000;
	until.tv_nsec = (long)(ns % 1000000000);
	pthread_mutex_lock(&w->lock);
	while (!w->done && pthread_cond_timedwait(&w->cond, &w->lock, &until) == 0)
		;
	/* what the worker left, taken under the lock: after a timeout it may still write */
	done = w->done;
	status = w->status;
	body = w->body;
	w->body = NULL;
	memcpy(error, w->error, sizeof error);
	pthread_mutex_unlock(&w->lock);
	if (!done)
		ret = admin_reply_error(conn, MHD_HTTP_SERVICE_UNAVAILABLE,
		                        "database too slow, retry later", NULL);
	else if (status == MHD_HTTP_OK && body != NULL)
		ret = admin_reply_json(conn, MHD_HTTP_OK, body);
	else if (status == MHD_HTTP_SERVICE_UNAVAILABLE || status == MHD_HTTP_OK)
		ret = admin_reply_error(conn, MHD_HTTP_SERVICE_UNAVAILABLE,
		                        "database unavailable, retry later", NULL);
	else
		ret = admin_reply_error(conn, status, error, NULL);
	json_decref(body);
	admin_wait_unref(w);
	return ret;
}

enum MHD_Result admin_run_read(struct admin *a, struct MHD_Connection *conn, calls_read_fn *fn,
                               void *arg, void (*arg_free)(void *arg), const char *call_sid)
{
	struct admin_wait *w = calloc(1, sizeof *w);
	pthread_condattr_t attr;
	int rc;

	if (w == NULL) {
		if (arg_free != NULL)
			arg_free(arg);
		return MHD_NO;
	}
	pthread_mutex_init(&w->lock, NULL);
	pthread_condattr_init(&attr);
	pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
	pthread_cond_init(&w->cond, &attr);
	pthread_condattr_destroy(&attr);
	w->refs = 2; /* ours and the worker's */
	w->arg = arg;
	w->arg_free = arg_free;
	if (a->deps.reads == NULL) {
		w->refs = 1;
		admin_wait_unref(w);
		return admin_reply_error(conn, MHD_HTTP_SERVICE_UNAVAILABLE,
		                         "no database configured (DATABASE_URL)", NULL);
	}
	rc = call_sid != NULL ? calls_read_submit(a->deps.reads, call_sid, admin_wait_done, w)
	                      : calls_read_submit_fn(a->deps.reads, fn, arg, admin_wait_done, w);
	if (rc != 0) {
		w->refs = 1;
		admin_wait_unref(w);
		return admin_reply_error(conn, MHD_HTTP_SERVICE_UNAVAILABLE, "database busy", NULL);
	}
	return admin_wait_reply(conn, w, (long)a->deps.conf->delivery_timeout_ms);
}

/* ---- routes ---- */

static enum MHD_Result admin_builtin(struct admin *a, struct MHD_Connection *conn, const char *url,
                                     const char *rest)
{
	enum MHD_Result ret = MHD_NO;

	(void)rest;
	if (!httpd_builtin(conn, MHD_HTTP_METHOD_GET, url, a->deps.m, server_is_ready, a->deps.srv,
	                   &ret))
		return admin_reply_error(conn, MHD_HTTP_NOT_FOUND, "not found", NULL);
	return ret;
}

static enum MHD_Result admin_console(struct admin *a, struct MHD_Connection *conn, const char *url,
                                     const char *rest)
{
	(void)url;
	return console_files_reply(conn, a->console_dir, rest);
}

static enum MHD_Result admin_call(struct admin *a, struct MHD_Connection *conn, const char *url,
                                  const char *sid)
{
	(void)url;
	if (!webhook_id_ok(sid, 255) || strchr(sid, '/') != NULL)
		return admin_reply_error(conn, MHD_HTTP_NOT_FOUND, "no call with this call_sid",
		                         NULL);
	return admin_run_read(a, conn, NULL, NULL, NULL, sid);
}

static enum MHD_Result admin_events(struct admin *a, struct MHD_Connection *conn, const char *url,
                                    const char *rest)
{
	(void)url;
	(void)rest;
	if (a->deps.events == NULL)
		return admin_reply_error(conn, MHD_HTTP_NOT_FOUND, "not found", NULL);
	return a->deps.events(a->deps.events_opaque, conn);
}

typedef enum MHD_Result admin_handler_fn(struct admin *a, struct MHD_Connection *conn,
                                         const char *url, const char *rest);

/* Every route of the admin address: GET (and HEAD) only. A prefix route gets the rest of the
 * path after it. */
static const struct admin_route {
	const char *path;
	bool prefix;
	bool auth;
	const char *name; /* the metric's route label */
	admin_handler_fn *handler;
} admin_routes[] = {
    {"/healthz", false, false, "healthz", admin_builtin},
    {"/readyz", false, false, "readyz", admin_builtin},
    {"/metrics", false, false, "metrics", admin_builtin}, /* scrapers: as before */
    {"/console", false, false, "console", admin_console},
    {"/console/", true, false, "console", admin_console},
    {"/calls/", true, true, "call", admin_call},
    {"/calls", false, true, "calls", admin_calls_list},
    {"/stats/drivers", false, true, "stats_drivers", admin_stats_drivers},
    {"/stats/overview", false, true, "stats_overview", admin_stats_overview},
    {"/events", false, true, "events", admin_events}, /* console-events: admin_deps.events */
};

static const struct admin_route *admin_find(const char *url, const char **rest)
{
	for (size_t i = 0; i < sizeof admin_routes / sizeof admin_routes[0]; i++) {
		const struct admin_route *r = &admin_routes[i];
		size_t n = strlen(r->path);

		if (r->prefix ? strncmp(url, r->path, n) == 0 : strcmp(url, r->path) == 0) {
			*rest = url + (r->prefix ? n : strlen(url));
			return r;
		}
	}
	return NULL;
}

static enum MHD_Result admin_access(void *cls, struct MHD_Connection *conn, const char *url,
                                    const char *method, const char *version,
                                    const char *upload_data, size_t *upload_data_size,
                                    void **req_cls)
{
	static int answered;
	struct admin *a = cls;
	const struct admin_route *r;
	const char *rest = "";
	enum MHD_Result ret;

	(void)version;
	(void)upload_data;
	if (*req_cls != NULL) { /* a body we refused at its headers: drop it */
		*upload_data_size = 0;
		return MHD_YES;
	}
	*req_cls = &answered;
	r = admin_find(url, &rest);
	if (r == NULL) {
		ret = admin_reply_error(conn, MHD_HTTP_NOT_FOUND, "not found", NULL);
	} else if (strcmp(method, MHD_HTTP_METHOD_GET) != 0 &&
	           strcmp(method, MHD_HTTP_METHOD_HEAD) != 0) {
		const char *allow[] = {MHD_HTTP_HEADER_ALLOW, "GET, HEAD", NULL};
		json_t *body = json_pack("{s:s}", "error", "method not allowed");

		ret = admin_reply_extra(conn, MHD_HTTP_METHOD_NOT_ALLOWED, body, allow);
		json_decref(body);
	} else if (r->auth && !server_bearer_ok(a->deps.srv, MHD_lookup_connection_value(
	                                                         conn, MHD_HEADER_KIND,
	                                                         MHD_HTTP_HEADER_AUTHORIZATION))) {
		ret = admin_reply_error(conn, MHD_HTTP_UNAUTHORIZED, "unauthorized", NULL);
	} else {
		ret = r->handler(a, conn, url, rest);
	}
	metric_inc(metrics_counter(a->deps.m, "ingress_admin_requests_total",
	                           "Requests to the admin address, by route", "route",
	                           r != NULL ? r->name : "other", NULL));
	return ret;
}

/* libmicrohttpd's own decoding, except that a path or parameter with an encoded NUL (%00) is
 * left encoded: decoded, it would cut the C string short ("/console/console.js%00.txt" would be
 * served as console.js). Left as is, it names nothing. */
static size_t admin_unescape(void *cls, struct MHD_Connection *conn, char *uri)
{
	(void)cls;
	(void)conn;
	for (const char *p = uri; *p != '\0'; p++)
		if (p[0] == '%' && p[1] == '0' && p[2] == '0')
			return strlen(uri);
	return MHD_http_unescape(uri);
}

struct admin *admin_start(const struct admin_deps *deps, char *errstr, size_t errstr_size)
{
	const struct ingress_config *conf = deps->conf;
	struct admin *a = calloc(1, sizeof *a);
	struct sockaddr_storage ss;
	const union MHD_DaemonInfo *info;
	unsigned flags = MHD_USE_THREAD_PER_CONNECTION | MHD_USE_INTERNAL_POLLING_THREAD |
	                 MHD_USE_POLL | MHD_USE_ERROR_LOG;
	unsigned limit = (unsigned)conf->admin_connection_limit;

	if (a == NULL) {
		snprintf(errstr, errstr_size, "out of memory");
		return NULL;
	}
	a->deps = *deps;
	a->console_dir = admin_console_dir(conf);
	a->log_mhd.msg = "microhttpd (admin)";
	if (httpd_resolve_listen("INGRESS_ADMIN_LISTEN", conf->admin_listen, &ss, errstr,
	                         errstr_size) != 0)
		goto fail;
	if (ss.ss_family == AF_INET6)
		flags |= MHD_USE_IPv6;
	a->daemon = MHD_start_daemon(
	    flags, 0, NULL, NULL, admin_access, a, MHD_OPTION_EXTERNAL_LOGGER, httpd_mhd_log,
	    &a->log_mhd, MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&ss,
	    MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)ADMIN_IDLE_TIMEOUT_S,
	    MHD_OPTION_CONNECTION_LIMIT, limit, MHD_OPTION_PER_IP_CONNECTION_LIMIT,
	    limit / 4 > 0 ? limit / 4 : 1u, MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)16384,
	    MHD_OPTION_THREAD_STACK_SIZE, (size_t)256 * 1024, MHD_OPTION_UNESCAPE_CALLBACK,
	    admin_unescape, NULL, MHD_OPTION_END);
	if (a->daemon == NULL) {
		snprintf(errstr, errstr_size,
		         "INGRESS_ADMIN_LISTEN: cannot listen on %s (address in use or not local?)",
		         conf->admin_listen);
		goto fail;
	}
	info = MHD_get_daemon_info(a->daemon, MHD_DAEMON_INFO_BIND_PORT);
	a->port = info != NULL ? info->port : 0;
	return a;
fail:
	admin_stop(a);
	return NULL;
}

unsigned admin_port(const struct admin *a)
{
	return a != NULL ? a->port : 0;
}

void admin_stop(struct admin *a)
{
	if (a == NULL)
		return;
	if (a->daemon != NULL)
		MHD_stop_daemon(a->daemon);
	free(a);
}
