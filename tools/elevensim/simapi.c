/* simapi: elevensim HTTP endpoints: outbound-call, conversations, /healthz and the /sim control. */
#include "simapi.h"

#include "httpd.h"
#include "log.h"
#include "simconf.h"
#include "simplay.h"
#include "simstore.h"

#include <microhttpd.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#define SIM_BODY_MAX (1024 * 1024)
#define SIM_OUTBOUND "/v1/convai/twilio/outbound-call"
#define SIM_CONVS    "/v1/convai/conversations/"

struct sim_api {
	struct MHD_Daemon *daemon;
	unsigned port;
	char api_key[256];
	struct sim_conf *conf;
	struct sim_store *store;
	struct sim_play *play;
	struct httpd_mhd_logger mhd_log;
};

/* Per-request state; freed by the completion callback. */
struct sim_req {
	struct sim_api *api;
	struct MHD_Connection *conn;
	char *body;
	size_t len;
	bool too_big;
	/* an answer held back (latency, race, hang) */
	bool held;
	unsigned status;
	char *answer;
	long retry_after_s; /* -1: no header */
	long latency_ms;
};

static enum MHD_Result sim_queue(struct MHD_Connection *conn, unsigned status, const char *text,
                                 long retry_after_s)
{
	struct MHD_Response *resp =
	    MHD_create_response_from_buffer(strlen(text), (void *)text, MHD_RESPMEM_MUST_COPY);
	enum MHD_Result ret;
	char ra[32];

	if (!resp)
		return MHD_NO;
	MHD_add_response_header(resp, "Content-Type", "application/json");
	if (retry_after_s >= 0) {
		snprintf(ra, sizeof ra, "%ld", retry_after_s);
		MHD_add_response_header(resp, "Retry-After", ra);
	}
	ret = MHD_queue_response(conn, status, resp);
	MHD_destroy_response(resp);
	return ret;
}

/* Queues root (stolen) as the answer; NULL (out of memory building it) answers 500 {}. */
static enum MHD_Result sim_reply(struct MHD_Connection *conn, unsigned status, json_t *root)
{
	enum MHD_Result ret;

	if (!root)
		return sim_queue(conn, 500, "{}", -1);
	ret = httpd_reply_json(conn, status, root);
	json_decref(root);
	return ret;
}

static json_t *sim_detail(const char *status, const char *message)
{
	return json_pack("{s:{s:s, s:s}}", "detail", "status", status, "message", message);
}

/* FastAPI-style validation error naming the field. */
static json_t *sim_validation(const char *field, const char *msg, const char *type)
{
	return json_pack("{s:[{s:[s, s], s:s, s:s}]}", "detail", "loc", "body", field, "msg", msg,
	                 "type", type);
}

static void sim_resume(void *arg)
{
	struct sim_req *r = arg;

	MHD_resume_connection(r->conn);
}

/* Race mode: the held answer goes out (after the latency) once the call's first webhook was
 * attempted, or once one webhook timeout passed: the webhook threads may be busy with other
 * calls' webhooks to a slow or unreachable target, and the API must not wait for those. Both
 * events run sim_race_release; the first answers, the last frees the token. */
struct sim_race {
	struct sim_req *r; /* touched only by the first release: r is freed once answered */
	atomic_flag answered;
	atomic_int refs;
};

static void sim_race_release(void *arg)
{
	struct sim_race *race = arg;
	struct sim_req *r = race->r;

	if (!atomic_flag_test_and_set(&race->answered) &&
	    sim_play_after(r->api->play, r->latency_ms, sim_resume, r))
		MHD_resume_connection(r->conn);
	if (atomic_fetch_sub(&race->refs, 1) == 1)
		free(race);
}

/* Plays conv_id at once and answers r per sim_race_release. */
static void sim_race_start(struct sim_req *r, const char *conv_id)
{
	struct sim_race *race = calloc(1, sizeof *race);
	struct sim_knobs k;

	if (!race) {
		MHD_resume_connection(r->conn);
		return;
	}
	race->r = r;
	atomic_flag_clear(&race->answered);
	atomic_init(&race->refs, 2);
	sim_conf_get(r->api->conf, &k);
	if (sim_play_conversation(r->api->play, conv_id, 0, sim_race_release, race))
		sim_race_release(race);
	if (sim_play_after(r->api->play, k.webhook_timeout_ms, sim_race_release, race))
		sim_race_release(race);
}

/* Holds the answer (taken) for delay_ms, or queues it now. */
static enum MHD_Result sim_answer(struct sim_req *r, unsigned status, json_t *root,
                                  long retry_after_s, long delay_ms, bool wait_first_webhook,
                                  const char *conv_id)
{
	char *text = root ? json_dumps(root, JSON_COMPACT) : NULL;

	json_decref(root);
	if (!text)
		return sim_queue(r->conn, 500, "{}", -1);
	if (!wait_first_webhook && delay_ms <= 0) {
		enum MHD_Result ret = sim_queue(r->conn, status, text, retry_after_s);

		free(text);
		return ret;
	}
	r->held = true;
	r->status = status;
	r->answer = text;
	r->retry_after_s = retry_after_s;
	r->latency_ms = delay_ms;
	MHD_suspend_connection(r->conn);
	if (wait_first_webhook)
		sim_race_start(r, conv_id);
	else if (sim_play_after(r->api->play, delay_ms, sim_resume, r))
		MHD_resume_connection(r->conn);
	return MHD_YES;
}

static bool sim_authorized(struct sim_req *r)
{
	const char *key = MHD_lookup_connection_value(r->conn, MHD_HEADER_KIND, "xi-api-key");

	return !r->api->api_key[0] || (key && strcmp(key, r->api->api_key) == 0);
}

/* Checks the body like the real API: required strings, dynamic variables of scalars, an E.164
 * number. Returns NULL when valid, else the 422 body. */
static json_t *sim_validate(const json_t *root, const json_t **dynvars)
{
	static const char *const required[] = {"agent_id", "agent_phone_number_id", "to_number"};
	const json_t *client = json_object_get(root, "conversation_initiation_client_data");
	const char *to, *key;
	json_t *v;

	*dynvars = NULL;
	for (size_t i = 0; i < sizeof required / sizeof required[0]; i++) {
		const json_t *f = json_object_get(root, required[i]);

		if (!f)
			return sim_validation(required[i], "field required", "value_error.missing");
		if (!json_is_string(f) || json_string_length(f) == 0)
			return sim_validation(required[i], "str type expected", "type_error.str");
	}
	to = json_string_value(json_object_get(root, "to_number"));
	if (to[0] != '+' || strlen(to) < 8 || strlen(to) > 16 || to[1] < '1' || to[1] > '9' ||
	    strspn(to + 1, "0123456789") != strlen(to + 1))
		return sim_validation("to_number", "invalid phone number (E.164 expected)",
		                      "value_error");
	if (client && !json_is_object(client))
		return sim_validation("conversation_initiation_client_data", "dict expected",
		                      "type_error.dict");
	*dynvars = json_object_get(client, "dynamic_variables");
	if (*dynvars && !json_is_object(*dynvars))
		return sim_validation("dynamic_variables", "dict expected", "type_error.dict");
	json_object_foreach((json_t *)*dynvars, key, v)
	{
		if (!json_is_string(v) && !json_is_number(v) && !json_is_boolean(v))
			return sim_validation(key,
			                      "dynamic variables must be strings, numbers or "
			                      "booleans",
			                      "type_error");
	}
	return NULL;
}

static enum MHD_Result sim_outbound(struct sim_req *r)
{
	struct sim_api *a = r->api;
	const json_t *dynvars = NULL;
	json_t *root, *err, *answer;
	const char *call_sid;
	char conv_id[64], twilio_sid[64], key[300];
	struct sim_knobs k;
	enum sim_answer ans;
	enum sim_mode mode;
	unsigned status = 200;
	int n;

	if (!sim_authorized(r))
		return sim_reply(r->conn, 401, sim_detail("invalid_api_key", "Invalid API key"));
	root = json_loadb(r->body ? r->body : "", r->len, 0, NULL);
	if (!json_is_object(root)) {
		json_decref(root);
		return sim_reply(
		    r->conn, 422,
		    sim_validation("body", "a JSON object is required", "value_error.jsondecode"));
	}
	err = sim_validate(root, &dynvars);
	if (err) {
		json_decref(root);
		return sim_reply(r->conn, 422, err);
	}
	call_sid = json_string_value(json_object_get(dynvars, "call_sid"));
	snprintf(key, sizeof key, "%s", call_sid && *call_sid ? call_sid : "(no call_sid)");
	sim_conf_get(a->conf, &k);
	n = sim_store_request(a->store, key);
	ans = sim_conf_answer(a->conf, key, n);
	log_info("elevensim: outbound-call", LOGS("call_sid", key), LOGI("request", n + 1),
	         LOGS("answer", sim_answer_name(ans)));
	switch (ans) {
	case SIM_ANSWER_OK:
	case SIM_ANSWER_PLACED_502: /* placed below, then answered as a gateway would */
	case SIM_ANSWER_PLACED_504:
		break;
	case SIM_ANSWER_SUCCESS_FALSE:
		sim_store_answered(a->store, key, 200, false);
		json_decref(root);
		return sim_answer(r, 200,
		                  json_pack("{s:b, s:s, s:n, s:n}", "success", 0, "message",
		                            "Failed to initiate the call: number unreachable",
		                            "conversation_id", "callSid"),
		                  -1, k.latency_ms, false, NULL);
	case SIM_ANSWER_HANG:
		sim_store_answered(a->store, key, 0, false);
		json_decref(root);
		return sim_answer(r, 504, sim_detail("timeout", "elevensim held this request"), -1,
		                  k.hang_ms, false, NULL);
	default: {
		static const struct {
			enum sim_answer a;
			unsigned status;
			const char *code, *msg;
		} errs[] = {
		    {SIM_ANSWER_429, 429, "too_many_concurrent_requests",
		     "Too many concurrent requests"},
		    {SIM_ANSWER_500, 500, "internal_error", "Internal server error"},
		    {SIM_ANSWER_502, 502, "bad_gateway", "Bad gateway"},
		    {SIM_ANSWER_503, 503, "service_unavailable", "Service temporarily unavailable"},
		    {SIM_ANSWER_504, 504, "gateway_timeout", "Gateway timeout"},
		    {SIM_ANSWER_400, 400, "invalid_request", "The agent cannot place this call"},
		};
		json_decref(root);
		if (ans == SIM_ANSWER_422) {
			sim_store_answered(a->store, key, 422, false);
			return sim_answer(
			    r, 422,
			    sim_validation("to_number", "scripted validation error", "value_error"),
			    -1, k.latency_ms, false, NULL);
		}
		for (size_t i = 0; i < sizeof errs / sizeof errs[0]; i++) {
			if (errs[i].a != ans)
				continue;
			sim_store_answered(a->store, key, (int)errs[i].status, false);
			return sim_answer(r, errs[i].status, sim_detail(errs[i].code, errs[i].msg),
			                  ans == SIM_ANSWER_429 ? k.retry_after_s : -1,
			                  k.latency_ms, false, NULL);
		}
		return sim_reply(r->conn, 500, sim_detail("internal_error", "unknown answer"));
	}
	}
	mode = sim_conf_mode(a->conf, key);
	if (sim_store_conv_new(a->store, key, json_string_value(json_object_get(root, "agent_id")),
	                       json_string_value(json_object_get(root, "to_number")), dynvars, mode,
	                       k.turns, k.seed, conv_id, twilio_sid)) {
		json_decref(root);
		return sim_reply(r->conn, 500, sim_detail("internal_error", "out of memory"));
	}
	json_decref(root);
	if (ans == SIM_ANSWER_PLACED_502 || ans == SIM_ANSWER_PLACED_504) {
		/* the call exists and plays; the answer is lost in a gateway */
		status = ans == SIM_ANSWER_PLACED_502 ? 502 : 504;
		answer = status == 502 ? sim_detail("bad_gateway", "Bad gateway")
		                       : sim_detail("gateway_timeout", "Gateway timeout");
		log_info("elevensim: call placed, answered as a gateway error",
		         LOGS("call_sid", key), LOGS("conversation_id", conv_id),
		         LOGI("status", status));
	} else {
		answer = json_pack("{s:b, s:s, s:s, s:s}", "success", 1, "message", "Success",
		                   "conversation_id", conv_id, "callSid", twilio_sid);
	}
	sim_store_answered(a->store, key, (int)status, true);
	if (mode == SIM_MODE_RACE)
		return sim_answer(r, status, answer, -1, k.latency_ms, true, conv_id);
	/* the call rings once the API answered: the first turn follows a turn delay later */
	if (sim_play_conversation(a->play, conv_id, k.latency_ms + k.turn_delay_ms, NULL, NULL))
		log_warn("elevensim: cannot schedule the conversation", LOGS("call_sid", key));
	return sim_answer(r, status, answer, -1, k.latency_ms, false, NULL);
}

static enum MHD_Result sim_conversation(struct sim_req *r, const char *id)
{
	json_t *conv;

	if (!sim_authorized(r))
		return sim_reply(r->conn, 401, sim_detail("invalid_api_key", "Invalid API key"));
	conv = sim_store_conv_json(r->api->store, id);
	if (!conv)
		return sim_reply(r->conn, 404,
		                 sim_detail("conversation_not_found", "Conversation not found"));
	return sim_reply(r->conn, 200, conv);
}

static enum MHD_Result sim_config_put(struct sim_req *r)
{
	char errstr[512];
	json_t *patch = json_loadb(r->body ? r->body : "", r->len, 0, NULL);
	int rc = sim_conf_update(r->api->conf, patch, errstr, sizeof errstr);

	json_decref(patch);
	if (rc)
		return httpd_reply_error(r->conn, 400, errstr);
	log_info("elevensim: config updated");
	return sim_reply(r->conn, 200, sim_conf_json(r->api->conf));
}

static enum MHD_Result sim_route(struct sim_req *r, const char *method, const char *url)
{
	bool get = strcmp(method, "GET") == 0, post = strcmp(method, "POST") == 0;
	bool put = strcmp(method, "PUT") == 0;

	if (strcmp(url, SIM_OUTBOUND) == 0)
		return post ? sim_outbound(r)
		            : httpd_reply_error(r->conn, 405, "Method Not Allowed");
	if (strncmp(url, SIM_CONVS, strlen(SIM_CONVS)) == 0 && url[strlen(SIM_CONVS)] &&
	    !strchr(url + strlen(SIM_CONVS), '/'))
		return get ? sim_conversation(r, url + strlen(SIM_CONVS))
		           : httpd_reply_error(r->conn, 405, "Method Not Allowed");
	if (strcmp(url, "/healthz") == 0 && get)
		return sim_reply(r->conn, 200, json_pack("{s:s}", "status", "ok"));
	if (strcmp(url, "/sim/stats") == 0 && get)
		return sim_reply(r->conn, 200,
		                 sim_store_stats(r->api->store,
		                                 MHD_lookup_connection_value(
		                                     r->conn, MHD_GET_ARGUMENT_KIND, "call_sid")));
	if (strcmp(url, "/sim/reset") == 0 && post) {
		sim_store_reset(r->api->store);
		log_info("elevensim: state reset");
		return sim_reply(r->conn, 200, json_pack("{s:s}", "status", "reset"));
	}
	if (strcmp(url, "/sim/config") == 0 && get)
		return sim_reply(r->conn, 200, sim_conf_json(r->api->conf));
	if (strcmp(url, "/sim/config") == 0 && put)
		return sim_config_put(r);
	return sim_reply(r->conn, 404, json_pack("{s:s}", "detail", "Not Found"));
}

static enum MHD_Result sim_handler(void *cls, struct MHD_Connection *conn, const char *url,
                                   const char *method, const char *version, const char *upload_data,
                                   size_t *upload_data_size, void **con_cls)
{
	struct sim_req *r = *con_cls;

	(void)version;
	if (!r) {
		r = calloc(1, sizeof *r);
		if (!r)
			return MHD_NO;
		r->api = cls;
		r->conn = conn;
		r->retry_after_s = -1;
		*con_cls = r;
		return MHD_YES;
	}
	if (*upload_data_size) {
		size_t n = *upload_data_size;

		*upload_data_size = 0;
		if (r->too_big || r->len + n > SIM_BODY_MAX) {
			r->too_big = true;
			return MHD_YES;
		}
		char *b = realloc(r->body, r->len + n + 1);
		if (!b)
			return MHD_NO;
		memcpy(b + r->len, upload_data, n);
		r->body = b;
		r->len += n;
		r->body[r->len] = '\0';
		return MHD_YES;
	}
	if (r->held) /* resumed: the held answer goes out now */
		return sim_queue(conn, r->status, r->answer, r->retry_after_s);
	if (r->too_big)
		return httpd_reply_error(conn, 413, "body too large");
	return sim_route(r, method, url);
}

static void sim_completed(void *cls, struct MHD_Connection *conn, void **con_cls,
                          enum MHD_RequestTerminationCode toe)
{
	struct sim_req *r = *con_cls;

	(void)cls;
	(void)conn;
	(void)toe;
	if (r) {
		free(r->body);
		free(r->answer);
		free(r);
		*con_cls = NULL;
	}
}

struct sim_api *sim_api_start(const char *listen, const char *api_key, struct sim_conf *conf,
                              struct sim_store *store, struct sim_play *play, char *errstr,
                              size_t errstr_size)
{
	struct sim_api *a = calloc(1, sizeof *a);
	struct sockaddr_storage ss;
	const union MHD_DaemonInfo *info;
	unsigned flags;

	if (!a) {
		snprintf(errstr, errstr_size, "out of memory");
		return NULL;
	}
	if (httpd_resolve_listen("--listen", listen, &ss, errstr, errstr_size) != 0)
		goto fail;
	snprintf(a->api_key, sizeof a->api_key, "%s", api_key ? api_key : "");
	a->conf = conf;
	a->store = store;
	a->play = play;
	a->mhd_log.msg = "elevensim: libmicrohttpd";
	flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_AUTO | MHD_ALLOW_SUSPEND_RESUME |
	        MHD_USE_ERROR_LOG | (ss.ss_family == AF_INET6 ? MHD_USE_IPv6 : 0);
	a->daemon = MHD_start_daemon(
	    flags, 0, NULL, NULL, sim_handler, a, MHD_OPTION_EXTERNAL_LOGGER, httpd_mhd_log,
	    &a->mhd_log, MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&ss, MHD_OPTION_NOTIFY_COMPLETED,
	    sim_completed, NULL, MHD_OPTION_CONNECTION_LIMIT, 4000u, MHD_OPTION_CONNECTION_TIMEOUT,
	    300u, MHD_OPTION_END);
	if (!a->daemon) {
		snprintf(errstr, errstr_size, "cannot listen on %s", listen);
		goto fail;
	}
	info = MHD_get_daemon_info(a->daemon, MHD_DAEMON_INFO_BIND_PORT);
	a->port = info ? info->port : 0;
	return a;
fail:
	free(a);
	return NULL;
}

unsigned sim_api_port(const struct sim_api *a)
{
	return a ? a->port : 0;
}

void sim_api_stop(struct sim_api *a)
{
	if (!a)
		return;
	MHD_stop_daemon(a->daemon);
	free(a);
}
