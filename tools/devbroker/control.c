/* control: devbroker's HTTP control interface: GET /status, POST /brokers/{id}/down|up,
 * /errors, /errors/clear, /rtt, /topics (documented in docs/devbroker.md). */
#include "control.h"
#include "cfg.h"
#include "cluster.h"
#include "httpd.h"
#include "log.h"

#include <arpa/inet.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct control {
	struct MHD_Daemon *daemon;
	struct cluster *cl;
	char url[128];
};

/* Reads an integer query argument; def when absent. Returns 0, or -1 when present but bad. */
static int control_arg_long(struct MHD_Connection *conn, const char *name, long def, long *out)
{
	const char *s = MHD_lookup_connection_value(conn, MHD_GET_ARGUMENT_KIND, name);
	char *end;

	if (!s || !*s) {
		*out = def;
		return 0;
	}
	*out = strtol(s, &end, 10);
	return *end ? -1 : 0;
}

static enum MHD_Result control_ok(struct MHD_Connection *conn)
{
	json_t *body = json_pack("{s:b}", "ok", 1);
	enum MHD_Result ret = httpd_reply_json(conn, MHD_HTTP_OK, body);

	json_decref(body);
	return ret;
}

/* POST /brokers/{id}/down|up */
static enum MHD_Result control_broker(struct control *ctl, struct MHD_Connection *conn,
                                      const char *url)
{
	char errstr[256], action[8];
	int id, n = 0;

	if (sscanf(url, "/brokers/%d/%7[a-z]%n", &id, action, &n) != 2 || url[n] != '\0' ||
	    (strcmp(action, "down") != 0 && strcmp(action, "up") != 0))
		return httpd_reply_error(conn, MHD_HTTP_NOT_FOUND, "use /brokers/{id}/down or /up");
	if (cluster_broker_set_up(ctl->cl, id, strcmp(action, "up") == 0, errstr, sizeof errstr))
		return httpd_reply_error(conn, MHD_HTTP_BAD_REQUEST, errstr);
	return control_ok(conn);
}

/* POST /errors?api=Produce&code=NOT_LEADER_FOR_PARTITION&count=3[&broker=1] */
static enum MHD_Result control_errors(struct control *ctl, struct MHD_Connection *conn)
{
	const char *api_s = MHD_lookup_connection_value(conn, MHD_GET_ARGUMENT_KIND, "api");
	const char *code_s = MHD_lookup_connection_value(conn, MHD_GET_ARGUMENT_KIND, "code");
	rd_kafka_resp_err_t code;
	char errstr[256];
	long count, broker;
	int16_t api;

	if (cluster_parse_api(api_s, &api))
		return httpd_reply_error(conn, MHD_HTTP_BAD_REQUEST, "api: unknown API name/key");
	if (cluster_parse_error(code_s, &code))
		return httpd_reply_error(conn, MHD_HTTP_BAD_REQUEST,
		                         "code: unknown error name/code");
	if (control_arg_long(conn, "count", 1, &count) ||
	    control_arg_long(conn, "broker", -1, &broker))
		return httpd_reply_error(conn, MHD_HTTP_BAD_REQUEST, "count/broker: not a number");
	if (count < 1)
		return httpd_reply_error(conn, MHD_HTTP_BAD_REQUEST, "count must be >= 1");
	if (cluster_push_errors(ctl->cl, api, code, (size_t)count, (int32_t)broker, errstr,
	                        sizeof errstr))
		return httpd_reply_error(conn, MHD_HTTP_BAD_REQUEST, errstr);
	return control_ok(conn);
}

/* POST /errors/clear?api=Produce */
static enum MHD_Result control_errors_clear(struct control *ctl, struct MHD_Connection *conn)
{
	int16_t api;

	if (cluster_parse_api(MHD_lookup_connection_value(conn, MHD_GET_ARGUMENT_KIND, "api"),
	                      &api))
		return httpd_reply_error(conn, MHD_HTTP_BAD_REQUEST, "api: unknown API name/key");
	cluster_clear_errors(ctl->cl, api);
	return control_ok(conn);
}

/* POST /rtt?broker=1&ms=500 */
static enum MHD_Result control_rtt(struct control *ctl, struct MHD_Connection *conn)
{
	char errstr[256];
	long broker, ms;

	if (control_arg_long(conn, "broker", 1, &broker) || control_arg_long(conn, "ms", -1, &ms))
		return httpd_reply_error(conn, MHD_HTTP_BAD_REQUEST, "broker/ms: not a number");
	if (cluster_set_rtt(ctl->cl, (int32_t)broker, (int)ms, errstr, sizeof errstr))
		return httpd_reply_error(conn, MHD_HTTP_BAD_REQUEST, errstr);
	return control_ok(conn);
}

/* POST /topics?name=foo&partitions=3 */
static enum MHD_Result control_topics(struct control *ctl, struct MHD_Connection *conn)
{
	const char *name = MHD_lookup_connection_value(conn, MHD_GET_ARGUMENT_KIND, "name");
	char errstr[256];
	long partitions;

	if (control_arg_long(conn, "partitions", 1, &partitions))
		return httpd_reply_error(conn, MHD_HTTP_BAD_REQUEST, "partitions: not a number");
	if (cluster_topic_create(ctl->cl, name, (int)partitions, errstr, sizeof errstr))
		return httpd_reply_error(conn, MHD_HTTP_BAD_REQUEST, errstr);
	return control_ok(conn);
}

static enum MHD_Result control_route(struct control *ctl, struct MHD_Connection *conn,
                                     const char *method, const char *url)
{
	bool post = strcmp(method, "POST") == 0;

	if (strcmp(url, "/status") == 0) {
		json_t *status;
		enum MHD_Result ret;

		if (strcmp(method, "GET") != 0)
			return httpd_reply_error(conn, MHD_HTTP_METHOD_NOT_ALLOWED, "use GET");
		status = cluster_status(ctl->cl);
		ret = httpd_reply_json(conn, MHD_HTTP_OK, status);
		json_decref(status);
		return ret;
	}
	if (strncmp(url, "/brokers/", 9) != 0 && strcmp(url, "/errors") != 0 &&
	    strcmp(url, "/errors/clear") != 0 && strcmp(url, "/rtt") != 0 &&
	    strcmp(url, "/topics") != 0)
		return httpd_reply_error(conn, MHD_HTTP_NOT_FOUND, "no such route");
	if (!post)
		return httpd_reply_error(conn, MHD_HTTP_METHOD_NOT_ALLOWED, "use POST");
	if (strncmp(url, "/brokers/", 9) == 0)
		return control_broker(ctl, conn, url);
	if (strcmp(url, "/errors") == 0)
		return control_errors(ctl, conn);
	if (strcmp(url, "/errors/clear") == 0)
		return control_errors_clear(ctl, conn);
	if (strcmp(url, "/rtt") == 0)
		return control_rtt(ctl, conn);
	return control_topics(ctl, conn);
}

static enum MHD_Result control_handler(void *cls, struct MHD_Connection *conn, const char *url,
                                       const char *method, const char *version,
                                       const char *upload_data, size_t *upload_data_size,
                                       void **req_cls)
{
	static int started; /* address used as a marker only; never written */

	(void)version;
	(void)upload_data;
	if (*req_cls == NULL) {
		*req_cls = &started;
		return MHD_YES;
	}
	if (*upload_data_size) { /* request bodies are ignored */
		*upload_data_size = 0;
		return MHD_YES;
	}
	log_info("control request", LOGS("method", method), LOGS("url", url));
	return control_route(cls, conn, method, url);
}

struct control *control_start(const char *listen, struct cluster *cl, char *errstr,
                              size_t errstr_size)
{
	struct control *ctl = calloc(1, sizeof *ctl);
	struct sockaddr_in sin = {.sin_family = AF_INET};
	const union MHD_DaemonInfo *info;
	char host[64];
	unsigned port;

	if (!ctl) {
		snprintf(errstr, errstr_size, "out of memory");
		return NULL;
	}
	ctl->cl = cl;
	if (cfg_parse_listen(listen, host, sizeof host, &port) || port > 65535 ||
	    inet_pton(AF_INET, *host ? host : "127.0.0.1", &sin.sin_addr) != 1) {
		snprintf(errstr, errstr_size, "control-listen: expected IPv4 host:port, got \"%s\"",
		         listen);
		goto fail;
	}
	sin.sin_port = htons((uint16_t)port);
	ctl->daemon =
	    MHD_start_daemon(MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_ERROR_LOG, 0, NULL, NULL,
	                     control_handler, ctl, MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&sin,
	                     MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)10, MHD_OPTION_END);
	if (!ctl->daemon) {
		snprintf(errstr, errstr_size, "control-listen: cannot listen on %s", listen);
		goto fail;
	}
	info = MHD_get_daemon_info(ctl->daemon, MHD_DAEMON_INFO_BIND_PORT);
	if (!info || !info->port) {
		snprintf(errstr, errstr_size, "control-listen: cannot read the bound port");
		goto fail;
	}
	snprintf(ctl->url, sizeof ctl->url, "http://%s:%u", *host ? host : "127.0.0.1",
	         (unsigned)info->port);
	return ctl;
fail:
	control_stop(ctl);
	return NULL;
}

const char *control_url(const struct control *ctl)
{
	return ctl->url;
}

void control_stop(struct control *ctl)
{
	if (!ctl)
		return;
	if (ctl->daemon)
		MHD_stop_daemon(ctl->daemon);
	free(ctl);
}
