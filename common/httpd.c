/* httpd: libmicrohttpd reply helpers, the builtin /healthz /readyz /metrics, a health server. */
#include "httpd.h"

#include "cfg.h"
#include "log.h"
#include "metrics.h"

#include <arpa/inet.h>
#include <netdb.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#define HTTPD_CONN_TIMEOUT_S 10
#define HTTPD_CONN_LIMIT     64

struct httpd {
	struct MHD_Daemon *daemon;
	struct metrics *m;
	httpd_ready_fn *ready;
	void *opaque;
	unsigned port;
	struct httpd_mhd_logger mhd_log;
};

static enum MHD_Result httpd_queue(struct MHD_Connection *conn, unsigned status,
                                   struct MHD_Response *resp, const char *ctype)
{
	enum MHD_Result ret;

	if (resp == NULL)
		return MHD_NO;
	if (MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, ctype) != MHD_YES) {
		MHD_destroy_response(resp);
		return MHD_NO;
	}
	ret = MHD_queue_response(conn, status, resp);
	MHD_destroy_response(resp);
	return ret;
}

enum MHD_Result httpd_reply_json(struct MHD_Connection *conn, unsigned status, const json_t *body)
{
	char *text = body != NULL ? json_dumps(body, JSON_COMPACT) : NULL;
	struct MHD_Response *resp;

	if (text == NULL)
		return MHD_NO;
	/* MHD frees the buffer with free(), which is what json_dumps allocated with. */
	resp = MHD_create_response_from_buffer(strlen(text), text, MHD_RESPMEM_MUST_FREE);
	if (resp == NULL) {
		free(text);
		return MHD_NO;
	}
	return httpd_queue(conn, status, resp, "application/json");
}

enum MHD_Result httpd_reply_error(struct MHD_Connection *conn, unsigned status, const char *msg)
{
	json_t *body = json_pack("{s:s}", "error", msg != NULL ? msg : "error");
	enum MHD_Result ret;

	if (body == NULL)
		body = json_pack("{s:s}", "error", "error"); /* msg was not valid UTF-8 */
	ret = httpd_reply_json(conn, status, body);
	json_decref(body);
	return ret;
}

enum MHD_Result httpd_reply_text(struct MHD_Connection *conn, unsigned status, const char *ctype,
                                 const char *text)
{
	const char *t = text != NULL ? text : "";
	struct MHD_Response *resp =
	    MHD_create_response_from_buffer(strlen(t), (void *)t, MHD_RESPMEM_MUST_COPY);

	return httpd_queue(conn, status, resp, ctype != NULL ? ctype : "text/plain; charset=utf-8");
}

static enum MHD_Result httpd_reply_status(struct MHD_Connection *conn, unsigned status,
                                          const char *value)
{
	json_t *body = json_pack("{s:s}", "status", value);
	enum MHD_Result ret = httpd_reply_json(conn, status, body);

	json_decref(body);
	return ret;
}

static enum MHD_Result httpd_reply_405(struct MHD_Connection *conn)
{
	json_t *body = json_pack("{s:s}", "error", "Method not allowed");
	char *text = body != NULL ? json_dumps(body, JSON_COMPACT) : NULL;
	struct MHD_Response *resp = NULL;
	enum MHD_Result ret = MHD_NO;

	json_decref(body);
	if (text == NULL)
		goto out;
	resp = MHD_create_response_from_buffer(strlen(text), text, MHD_RESPMEM_MUST_FREE);
	if (resp == NULL) {
		free(text);
		goto out;
	}
	if (MHD_add_response_header(resp, MHD_HTTP_HEADER_ALLOW, "GET, HEAD") != MHD_YES)
		goto out;
	ret = httpd_queue(conn, MHD_HTTP_METHOD_NOT_ALLOWED, resp, "application/json");
	resp = NULL; /* httpd_queue destroyed it */
out:
	if (resp != NULL)
		MHD_destroy_response(resp);
	return ret;
}

bool httpd_builtin(struct MHD_Connection *conn, const char *method, const char *url,
                   struct metrics *m, httpd_ready_fn *ready, void *opaque, enum MHD_Result *ret)
{
	bool get;

	if (url == NULL || (strcmp(url, "/healthz") != 0 && strcmp(url, "/readyz") != 0 &&
	                    strcmp(url, "/metrics") != 0))
		return false;
	get = method != NULL && (strcmp(method, MHD_HTTP_METHOD_GET) == 0 ||
	                         strcmp(method, MHD_HTTP_METHOD_HEAD) == 0);
	if (!get) {
		*ret = httpd_reply_405(conn);
		return true;
	}
	if (strcmp(url, "/healthz") == 0) {
		*ret = httpd_reply_status(conn, MHD_HTTP_OK, "ok");
	} else if (strcmp(url, "/readyz") == 0) {
		bool is_ready = ready == NULL || ready(opaque);

		*ret = is_ready
		           ? httpd_reply_status(conn, MHD_HTTP_OK, "ready")
		           : httpd_reply_status(conn, MHD_HTTP_SERVICE_UNAVAILABLE, "not_ready");
	} else {
		char *text = metrics_render(m);

		if (text == NULL) {
			*ret = httpd_reply_error(conn, MHD_HTTP_INTERNAL_SERVER_ERROR,
			                         "cannot render metrics");
			return true;
		}
		*ret = httpd_reply_text(conn, MHD_HTTP_OK,
		                        "text/plain; version=0.0.4; charset=utf-8", text);
		free(text);
	}
	return true;
}

static enum MHD_Result httpd_health_handler(void *cls, struct MHD_Connection *conn, const char *url,
                                            const char *method, const char *version,
                                            const char *upload_data, size_t *upload_data_size,
                                            void **req_cls)
{
	struct httpd *h = cls;
	enum MHD_Result ret;

	(void)version;
	(void)upload_data;
	(void)req_cls;
	/* Any request body is discarded: the health server only answers GET routes. */
	if (*upload_data_size != 0) {
		*upload_data_size = 0;
		return MHD_YES;
	}
	if (httpd_builtin(conn, method, url, h->m, h->ready, h->opaque, &ret))
		return ret;
	return httpd_reply_error(conn, MHD_HTTP_NOT_FOUND, "Not found");
}

void httpd_mhd_log(void *cls, const char *fmt, va_list ap)
{
	struct httpd_mhd_logger *lg = cls;
	char line[512];
	size_t n;

	if (!log_enabled(LOG_WARN))
		return;
	vsnprintf(line, sizeof line, fmt, ap);
	n = strlen(line);
	while (n > 0 && (line[n - 1] == '\n' || line[n - 1] == '\r'))
		line[--n] = '\0';
	log_warn_limited(&lg->limit, lg->msg ? lg->msg : "microhttpd", LOGS("detail", line));
}

int httpd_resolve_listen(const char *setting, const char *listen, struct sockaddr_storage *ss,
                         char *errstr, size_t errstr_size)
{
	struct addrinfo hints = {.ai_family = AF_UNSPEC,
	                         .ai_socktype = SOCK_STREAM,
	                         .ai_flags = AI_PASSIVE | AI_NUMERICSERV},
	                *res = NULL;
	char host[256], service[8];
	unsigned port;
	int rc;

	memset(ss, 0, sizeof *ss);
	if (listen == NULL || cfg_parse_listen(listen, host, sizeof host, &port) < 0) {
		snprintf(errstr, errstr_size, "%s: '%s' is not host:port", setting,
		         listen != NULL ? listen : "");
		return -1;
	}
	if (host[0] == '\0') {
		struct sockaddr_in *sin = (struct sockaddr_in *)ss;

		sin->sin_family = AF_INET;
		sin->sin_addr.s_addr = htonl(INADDR_ANY);
		sin->sin_port = htons((uint16_t)port);
		return 0;
	}
	snprintf(service, sizeof service, "%u", port);
	rc = getaddrinfo(host, service, &hints, &res);
	if (rc != 0 || res == NULL) {
		snprintf(errstr, errstr_size, "%s: cannot resolve '%s': %s", setting, host,
		         rc != 0 ? gai_strerror(rc) : "no address");
		return -1;
	}
	memcpy(ss, res->ai_addr, res->ai_addrlen);
	freeaddrinfo(res);
	return 0;
}

struct httpd *httpd_start_health(const char *listen, struct metrics *m, httpd_ready_fn *ready,
                                 void *opaque, char *errstr, size_t errstr_size)
{
	static const char setting[] = "HTTP_LISTEN";
	struct httpd *h = NULL;
	struct sockaddr_storage ss;
	const union MHD_DaemonInfo *info;
	unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_ERROR_LOG;

	if (httpd_resolve_listen(setting, listen, &ss, errstr, errstr_size) < 0)
		goto fail;
	h = calloc(1, sizeof *h);
	if (h == NULL) {
		snprintf(errstr, errstr_size, "out of memory");
		goto fail;
	}
	h->m = m;
	h->ready = ready;
	h->opaque = opaque;
	if (ss.ss_family == AF_INET6)
		flags |= MHD_USE_IPv6;
	/* The logger goes first: MHD wants it before any option that might log. */
	h->daemon = MHD_start_daemon(
	    flags, 0, NULL, NULL, httpd_health_handler, h, MHD_OPTION_EXTERNAL_LOGGER,
	    httpd_mhd_log, &h->mhd_log, MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&ss,
	    MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)HTTPD_CONN_TIMEOUT_S,
	    MHD_OPTION_CONNECTION_LIMIT, (unsigned)HTTPD_CONN_LIMIT, MHD_OPTION_END);
	if (h->daemon == NULL) {
		snprintf(errstr, errstr_size,
		         "%s: cannot listen on %s (address in use or not local?)", setting, listen);
		goto fail;
	}
	info = MHD_get_daemon_info(h->daemon, MHD_DAEMON_INFO_BIND_PORT);
	h->port = info != NULL ? info->port : 0;
	return h;
fail:
	httpd_stop(h);
	return NULL;
}

unsigned httpd_port(const struct httpd *h)
{
	return h != NULL ? h->port : 0;
}

void httpd_stop(struct httpd *h)
{
	if (h == NULL)
		return;
	if (h->daemon != NULL)
		MHD_stop_daemon(h->daemon);
	free(h);
}
