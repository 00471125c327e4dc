/* respond: request lifetime (references, in-flight count) and the JSON replies. */
#include "codec.h"
#include "config.h"
#include "conns.h"
#include "log.h"
#include "metrics.h"
#include "request.h"
#include "server_int.h"
#include "timeutil.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

const char *const route_names[ROUTE_N] = {
    [ROUTE_CALL_REQUEST] = "call_request", [ROUTE_TRANSCRIPTION] = "transcription",
    [ROUTE_POST_CALL] = "post_call",       [ROUTE_CALLS_READ] = "calls_read",
    [ROUTE_HEALTHZ] = "healthz",           [ROUTE_READYZ] = "readyz",
    [ROUTE_METRICS] = "metrics",           [ROUTE_OTHER] = "other",
};

/* ---- request lifetime ---- */

struct req *req_new(struct server *s, struct MHD_Connection *conn)
{
	struct req *rq = calloc(1, sizeof *rq);
	const char *hdr;

	if (rq == NULL)
		return NULL;
	pthread_mutex_init(&rq->lock, NULL);
	rq->srv = s;
	rq->conn = conn;
	rq->edge = conns_get(conn);
	conn_busy(rq->edge);       /* the headers are in */
	atomic_init(&rq->refs, 1); /* MHD's, dropped in server_completed */
	rq->start_mono_ms = time_mono_ms();
	rq->received_ms = time_now_ms();
	hdr = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "X-Request-Id");
	if (hdr != NULL && request_token_ok(hdr, 36)) {
		snprintf(rq->request_id, sizeof rq->request_id, "%s", hdr);
	} else {
		/* unique per process run: a random base fixed at start plus a counter */
		uint64_t v = s->request_id_base + atomic_fetch_add(&s->request_seq, 1);
		static const char hex[] = "0123456789abcdef";

		for (int i = 15; i >= 0; i--, v >>= 4)
			rq->request_id[i] = hex[v & 15];
		rq->request_id[16] = '\0';
	}
	metric_set(s->m_in_flight, (double)(atomic_fetch_add(&s->in_flight, 1) + 1));
	return rq;
}

void req_ref(struct req *rq)
{
	atomic_fetch_add_explicit(&rq->refs, 1, memory_order_relaxed);
}

void req_unref(struct req *rq)
{
	if (atomic_fetch_sub_explicit(&rq->refs, 1, memory_order_acq_rel) != 1)
		return;
	json_decref(rq->ok_body);
	json_decref(rq->done_body);
	free(rq->body);
	admit_release(rq);
	pthread_mutex_destroy(&rq->lock);
	free(rq);
}

void server_completed(void *cls, struct MHD_Connection *conn, void **req_cls,
                      enum MHD_RequestTerminationCode toe)
{
	struct server *s = cls;
	struct req *rq = *req_cls;

	(void)conn;
	if (rq == NULL)
		return;
	if (toe != MHD_REQUEST_TERMINATED_COMPLETED_OK)
		log_debug("request ended early", LOGS("route", route_names[rq->route]),
		          LOGS("request_id", rq->request_id), LOGI("reason", toe));
	*req_cls = NULL;
	conn_answered(rq->edge, time_mono_ms()); /* the next request's headers are due */
	/* Answered (or given up): no longer in flight, even if a late delivery report still holds
	 * a reference. */
	metric_set(s->m_in_flight, (double)(atomic_fetch_sub(&s->in_flight, 1) - 1));
	req_unref(rq);
}

/* ---- replies ---- */

/* The statuses whose ingress_requests_total series are cached (looked up once, then reused
 * without the registry's lock). */
static const unsigned server_cached_status[SERVER_STATUS_SLOTS] = {200, 202, 400, 401, 404,
                                                                   405, 413, 415, 500, 503};

void server_count_request(struct server *s, enum route route, unsigned status)
{
	struct metric *m = NULL;
	char code[8];
	int slot = -1;

	for (int i = 0; i < SERVER_STATUS_SLOTS; i++)
		if (server_cached_status[i] == status)
			slot = i;
	if (slot >= 0)
		m = atomic_load_explicit(&s->m_requests[route][slot], memory_order_acquire);
	if (m == NULL) {
		snprintf(code, sizeof code, "%u", status);
		m = metrics_counter(s->metrics, "ingress_requests_total",
		                    "HTTP requests answered, by route and status", "route",
		                    route_names[route], "status", code, NULL);
		/* the registry returns the same series for the same labels: a race stores it twice
		 */
		if (slot >= 0)
			atomic_store_explicit(&s->m_requests[route][slot], m, memory_order_release);
	}
	metric_inc(m);
}

enum MHD_Result server_reply(struct req *rq, unsigned status, const json_t *body,
                             const char *const *extra)
{
	struct server *s = rq->srv;
	struct MHD_Response *resp;
	json_t *empty = NULL;
	enum MHD_Result ret = MHD_NO;
	size_t len = 0;
	char *text;

	if (body == NULL)
		body = empty = json_object();
	text = codec_dump(body, &len);
	json_decref(empty);
	if (text == NULL)
		return MHD_NO;
	resp = MHD_create_response_from_buffer(len, text, MHD_RESPMEM_MUST_FREE);
	if (resp == NULL) {
		free(text);
		return MHD_NO;
	}
	if (MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, "application/json") ==
	        MHD_NO ||
	    MHD_add_response_header(resp, "X-Request-Id", rq->request_id) == MHD_NO)
		goto out;
	for (; extra != NULL && extra[0] != NULL; extra += 2)
		if (MHD_add_response_header(resp, extra[0], extra[1]) == MHD_NO)
			goto out;
	if (atomic_load(&s->draining) &&
	    MHD_add_response_header(resp, MHD_HTTP_HEADER_CONNECTION, "close") == MHD_NO)
		goto out;
	ret = MHD_queue_response(rq->conn, status, resp);
	server_count_request(s, rq->route, status);
	if (status >= 500) {
		log_warn_limited(&s->log_failed, "request failed",
		                 LOGS("route", route_names[rq->route]), LOGI("status", status),
		                 LOGS("request_id", rq->request_id),
		                 LOGI("ms", time_mono_ms() - rq->start_mono_ms));
	} else {
		log_debug("request answered", LOGS("route", route_names[rq->route]),
		          LOGI("status", status), LOGS("request_id", rq->request_id),
		          LOGI("ms", time_mono_ms() - rq->start_mono_ms));
	}
out:
	MHD_destroy_response(resp);
	return ret;
}

enum MHD_Result server_reply_error(struct req *rq, unsigned status, const char *msg,
                                   const char *reason)
{
	struct server *s = rq->srv;
	char retry[24];
	const char *extra[5] = {NULL};
	json_t *body = json_pack("{s:s}", "error", msg);
	enum MHD_Result ret;

	if (reason != NULL)
		metric_inc(metrics_counter(s->metrics, "ingress_rejected_total",
		                           "Requests refused, by reason", "reason", reason, NULL));
	if (status == MHD_HTTP_SERVICE_UNAVAILABLE) {
		snprintf(retry, sizeof retry, "%lld", s->conf->retry_after_s);
		extra[0] = MHD_HTTP_HEADER_RETRY_AFTER;
		extra[1] = retry;
	} else if (status == MHD_HTTP_UNAUTHORIZED && rq->route != ROUTE_TRANSCRIPTION &&
	           rq->route != ROUTE_POST_CALL) {
		extra[0] = MHD_HTTP_HEADER_WWW_AUTHENTICATE;
		extra[1] = "Bearer";
	}
	if (status < 500 && reason != NULL) {
		/* One line per refusal. A failed authentication (a wrong or rotated secret, or a
		 * probe) is a warning, limited on its own so that a flood of them cannot hide the
		 * other refusals. */
		bool auth = status == MHD_HTTP_UNAUTHORIZED;

		log_limited(auth ? LOG_WARN : LOG_INFO, auth ? &s->log_bad_auth : &s->log_refused,
		            "request refused", LOGS("route", route_names[rq->route]),
		            LOGI("status", status), LOGS("reason", reason), LOGS("error", msg),
		            LOGS("request_id", rq->request_id));
	}
	ret = server_reply(rq, status, body, extra);
	json_decref(body);
	return ret;
}
