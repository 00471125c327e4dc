/* routes: the three POST endpoints (call requests, transcription and post-call webhooks): header
 * checks, authentication, validation and what each publishes. */
#include "calltoken.h"
#include "config.h"
#include "log.h"
#include "metrics.h"
#include "request.h"
#include "server.h"
#include "server_int.h"
#include "sig.h"
#include "timeutil.h"
#include "webhook.h"

#include <ctype.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* Comparing fixed-size digests keeps the time independent of where (and whether) they differ,
 * and of the length. */
bool routes_secret_equal(const struct server *s, const char *presented,
                         const unsigned char want[32])
{
	unsigned char got[32];

	if (EVP_Digest(presented, strlen(presented), got, NULL, s->sha256, NULL) != 1)
		return false;
	return CRYPTO_memcmp(got, want, sizeof got) == 0;
}

bool server_bearer_ok(const struct server *s, const char *h)
{
	if (!s->has_token)
		return true; /* INGRESS_ALLOW_UNAUTHENTICATED, checked and logged at start */
	if (h == NULL || strncasecmp(h, "Bearer ", 7) != 0)
		return false;
	h += 7;
	while (*h == ' ')
		h++;
	return routes_secret_equal(s, h, s->token_hash);
}

bool routes_authorized(struct req *rq)
{
	return server_bearer_ok(
	    rq->srv,
	    MHD_lookup_connection_value(rq->conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_AUTHORIZATION));
}

/* "application/json", any case, optionally followed by parameters (charset=utf-8). */
static bool routes_json_type(const char *ct)
{
	static const char want[] = "application/json";

	if (ct == NULL)
		return false;
	while (*ct == ' ' || *ct == '\t')
		ct++;
	if (strncasecmp(ct, want, sizeof want - 1) != 0)
		return false;
	ct += sizeof want - 1;
	while (*ct == ' ' || *ct == '\t')
		ct++;
	return *ct == '\0' || *ct == ';';
}

bool routes_admit(struct req *rq, enum MHD_Result *ret)
{
	const struct ingress_config *conf = rq->srv->conf;
	const char *ct, *cl;

	if (rq->route == ROUTE_CALL_REQUEST && !routes_authorized(rq)) {
		*ret =
		    server_reply_error(rq, MHD_HTTP_UNAUTHORIZED, "Unauthorized", "unauthorized");
		return false;
	}
	if (rq->route != ROUTE_CALL_REQUEST && !admit_webhook(rq, ret))
		return false;
	ct = MHD_lookup_connection_value(rq->conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_TYPE);
	if (!routes_json_type(ct)) {
		*ret = server_reply_error(rq, MHD_HTTP_UNSUPPORTED_MEDIA_TYPE,
		                          "Content-Type must be application/json",
		                          "unsupported_media_type");
		return false;
	}
	time_format_iso_ms(rq->received_ms, rq->received_at, sizeof rq->received_at);
	rq->limit =
	    (size_t)(rq->route == ROUTE_POST_CALL ? conf->max_post_call_body : conf->max_body);
	cl = MHD_lookup_connection_value(rq->conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_LENGTH);
	return admit_length(rq, cl, ret);
}

/* Verifies the webhook signature (or, in unsigned mode, skips it) and sets rq->event_id from
 * what the signature covers (the verified t and the raw body), never from the header's text.
 * Returns true to go on; otherwise an answer was queued into *ret. */
static bool routes_signature(struct req *rq, enum MHD_Result *ret)
{
	const struct ingress_config *conf = rq->srv->conf;
	const char *header;
	enum sig_result r;
	char reason[40];
	int64_t t = 0;

	if (rq->srv->webhook_key == NULL) {
		if (webhook_event_id_random(rq->event_id, sizeof rq->event_id) == 0)
			return true;
		*ret = server_reply_error(rq, MHD_HTTP_INTERNAL_SERVER_ERROR, "no randomness",
		                          "internal");
		return false;
	}
	header = MHD_lookup_connection_value(rq->conn, MHD_HEADER_KIND, ROUTES_SIG_HEADER);
	r = sig_key_verify_t(rq->srv->webhook_key, header, rq->body, rq->len,
	                     rq->received_ms / 1000, (long)conf->sig_max_age_s,
	                     (long)conf->sig_max_skew_s, &t);
	if (r != SIG_OK) {
		snprintf(reason, sizeof reason, "signature_%s", sig_result_str(r));
		*ret = server_reply_error(rq, MHD_HTTP_UNAUTHORIZED, "Invalid signature", reason);
		return false;
	}
	if (webhook_event_id_signed(rq->srv->sha256, t, rq->body, rq->len, rq->event_id,
	                            sizeof rq->event_id) != 0) {
		*ret = server_reply_error(rq, MHD_HTTP_INTERNAL_SERVER_ERROR, "cannot hash",
		                          "internal");
		return false;
	}
	return true;
}

/* A per-turn line from the agent's tool: the tool path configured (CALL_TOKEN_SECRET), no
 * signature header, and a call token or tool secret header (a tool secret alone, as tools sent
 * before call tokens, is then refused as call_token_missing). A signed request is judged by its
 * signature alone; unsigned mode takes every request as it is. */
static bool routes_is_tool(struct req *rq)
{
	const struct server *s = rq->srv;

	return s->call_token_key != NULL && s->webhook_key != NULL &&
	       MHD_lookup_connection_value(rq->conn, MHD_HEADER_KIND, ROUTES_SIG_HEADER) == NULL &&
	       (MHD_lookup_connection_value(rq->conn, MHD_HEADER_KIND, ROUTES_TOKEN_HEADER) !=
	            NULL ||
	        MHD_lookup_connection_value(rq->conn, MHD_HEADER_KIND, ROUTES_TOOL_HEADER) != NULL);
}

static enum MHD_Result routes_tool_refused(struct req *rq, const char *why)
{
	char reason[40];

	snprintf(reason, sizeof reason, "call_token_%s", why);
	return server_reply_error(rq, MHD_HTTP_UNAUTHORIZED, "Invalid call token", reason);
}

/* The tool path: the tool secret when one is configured, then the call token, which must have
 * been made for the line's call_sid (so the tool's shared secret alone writes into no call).
 * The event id comes from the line's idempotency key, else it is random. Parses line (the caller
 * clears it) and sets rq->event_id; returns true to go on, else an answer was queued. */
static bool routes_tool_auth(struct req *rq, struct webhook_line *line, enum MHD_Result *ret)
{
	const struct server *s = rq->srv;
	const char *token =
	    MHD_lookup_connection_value(rq->conn, MHD_HEADER_KIND, ROUTES_TOKEN_HEADER);
	int64_t now = rq->received_ms / 1000;
	enum calltoken_result r;
	char err[512];

	if (s->has_tool_secret) {
		const char *tool =
		    MHD_lookup_connection_value(rq->conn, MHD_HEADER_KIND, ROUTES_TOOL_HEADER);

		if (tool == NULL || !routes_secret_equal(s, tool, s->tool_hash)) {
			*ret = server_reply_error(rq, MHD_HTTP_UNAUTHORIZED, "Invalid call token",
			                          "tool_secret_mismatch");
			return false;
		}
	}
	/* what the header alone can tell, before the body is parsed */
	r = calltoken_check(token, now);
	if (r != CALLTOKEN_OK) {
		*ret = routes_tool_refused(rq, calltoken_result_str(r));
		return false;
	}
	if (webhook_line_parse(rq->body, rq->len, line, err, sizeof err) != 0) {
		*ret = server_reply_error(rq, MHD_HTTP_BAD_REQUEST, err, "invalid_webhook");
		return false;
	}
	r = calltoken_verify(s->call_token_key, token, line->call_sid, now);
	if (r != CALLTOKEN_OK) {
		*ret = routes_tool_refused(rq, calltoken_result_str(r));
		return false;
	}
	if (line->key != NULL ? webhook_event_id_tool(s->sha256, line->call_sid, line->key,
	                                              rq->event_id, sizeof rq->event_id)
	                      : webhook_event_id_random(rq->event_id, sizeof rq->event_id)) {
		*ret = server_reply_error(rq, MHD_HTTP_INTERNAL_SERVER_ERROR, "cannot make an id",
		                          "internal");
		return false;
	}
	return true;
}

static enum MHD_Result routes_too_large(struct req *rq)
{
	return server_reply_error(rq, MHD_HTTP_CONTENT_TOO_LARGE,
	                          "message too large for the broker", "message_too_large");
}

enum MHD_Result routes_call_request(struct req *rq)
{
	struct server *s = rq->srv;
	struct request_batch *rb;
	struct publish_msg *msgs = NULL;
	struct kbus_header headers[2] = {{"request_id", rq->request_id},
	                                 {"requested_at", rq->received_at}};
	enum MHD_Result ret;
	char err[512];
	size_t n;

	rb = request_parse(rq->body, rq->len, rq->received_at, err, sizeof err);
	if (rb == NULL)
		return server_reply_error(rq, MHD_HTTP_BAD_REQUEST, err, "invalid_request");
	n = request_batch_count(rb);
	msgs = calloc(n, sizeof *msgs);
	if (msgs == NULL) {
		ret = server_reply_error(rq, MHD_HTTP_INTERNAL_SERVER_ERROR, "out of memory",
		                         "internal");
		goto out;
	}
	for (size_t i = 0; i < n; i++) {
		msgs[i].key = request_batch_call_sid(rb, i);
		msgs[i].key_len = strlen(msgs[i].key);
		msgs[i].value = request_batch_value(rb, i, &msgs[i].value_len);
		msgs[i].headers = headers;
		msgs[i].nheaders = 2;
		if (msgs[i].value_len > publish_max_value(s->pub)) {
			ret = routes_too_large(rq);
			goto out;
		}
	}
	log_info("call request received", LOGS("request_id", rq->request_id), LOGI("drivers", n),
	         LOGS("call_sid", request_batch_call_sid(rb, 0)));
	ret = server_publish(rq, PUBLISH_CALLS_REQUESTED, msgs, n, MHD_HTTP_ACCEPTED,
	                     request_batch_reply(rb));
out:
	free(msgs);
	request_batch_free(rb);
	return ret;
}

/* {"status": "accepted", "event_id": id}, set field by field: every webhook answers it, and
 * json_pack would parse its format string each time (event ids are ASCII: ours). NULL on OOM. */
static json_t *routes_accepted_body(const char *event_id)
{
	json_t *body = json_object();

	if (body == NULL ||
	    json_object_set_new_nocheck(body, "status", json_string_nocheck("accepted")) != 0 ||
	    json_object_set_new_nocheck(body, "event_id", json_string_nocheck(event_id)) != 0) {
		json_decref(body);
		return NULL;
	}
	return body;
}

/* Publishes one webhook message with its event headers; answers 200 {status, event_id}. */
static enum MHD_Result routes_publish_webhook(struct req *rq, enum publish_topic topic,
                                              const struct webhook_msg *msg)
{
	struct kbus_header headers[3] = {
	    {"event_id", rq->event_id}, {"received_at", rq->received_at}, {"type", msg->type}};
	struct publish_msg pm = {
	    .key = msg->key,
	    .key_len = msg->key_len,
	    .value = msg->value,
	    .value_len = msg->value_len,
	    .headers = headers,
	    .nheaders = msg->type[0] != '\0' ? 3 : 2,
	};

	if (msg->value_len > publish_max_value(rq->srv->pub))
		return routes_too_large(rq);
	return server_publish(rq, topic, &pm, 1, MHD_HTTP_OK, routes_accepted_body(rq->event_id));
}

enum MHD_Result routes_transcription(struct req *rq)
{
	struct webhook_line line = {0};
	struct webhook_msg msg;
	enum MHD_Result ret;
	char err[512];

	if (routes_is_tool(rq)) {
		if (!routes_tool_auth(rq, &line, &ret)) {
			webhook_line_clear(&line);
			return ret;
		}
		if (webhook_line_encode(&line, rq->event_id, rq->received_at, &msg, err,
		                        sizeof err) != 0) {
			webhook_line_clear(&line);
			return server_reply_error(rq, MHD_HTTP_INTERNAL_SERVER_ERROR, err,
			                          "internal");
		}
		webhook_line_clear(&line);
	} else {
		if (!routes_signature(rq, &ret))
			return ret;
		if (webhook_transcription(rq->body, rq->len, rq->event_id, rq->received_at, &msg,
		                          err, sizeof err) != 0)
			return server_reply_error(rq, MHD_HTTP_BAD_REQUEST, err, "invalid_webhook");
	}
	ret = routes_publish_webhook(rq, PUBLISH_TRANSCRIPTION, &msg);
	webhook_msg_clear(&msg);
	return ret;
}

enum MHD_Result routes_post_call(struct req *rq)
{
	struct webhook_msg msg;
	enum MHD_Result ret;
	json_t *body;
	char err[512];

	if (!routes_signature(rq, &ret))
		return ret;
	if (webhook_post_call(rq->body, rq->len, rq->event_id, rq->received_at, &msg, err,
	                      sizeof err) != 0)
		return server_reply_error(rq, MHD_HTTP_BAD_REQUEST, err, "invalid_webhook");
	if (msg.action == WEBHOOK_PUBLISH) {
		ret = routes_publish_webhook(rq, PUBLISH_POST_CALL, &msg);
		webhook_msg_clear(&msg);
		return ret;
	}
	if (msg.action == WEBHOOK_DROP_AUDIO) {
		metric_inc(rq->srv->m_audio_dropped);
	} else {
		metric_inc(rq->srv->m_ignored);
		log_info("post-call webhook of an unknown type ignored", LOGS("type", msg.type),
		         LOGS("request_id", rq->request_id));
	}
	body =
	    json_pack("{s:s, s:s}", "status",
	              msg.action == WEBHOOK_DROP_AUDIO ? "dropped" : "ignored", "type", msg.type);
	ret = server_reply(rq, MHD_HTTP_OK, body, NULL);
	json_decref(body);
	webhook_msg_clear(&msg);
	return ret;
}
