/* admit: a request's way from its headers to a complete body. Webhook credentials are judged on
 * the headers, before a byte of the body is stored; the body's length is checked against its
 * route's limit and the global budget (INGRESS_BODY_BUDGET); the body gets a deadline sized
 * from its length; and it is stored within all of those, or refused (413, 503) even when it
 * comes chunked. */
#include "admit.h"

#include "calltoken.h"
#include "config.h"
#include "conns.h"
#include "metrics.h"
#include "server_int.h"
#include "sig.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define ADMIT_FIRST_ALLOC \
	65536 /* at most this up front: a client may announce more than it sends */
#define ADMIT_RULES_MAX    4
#define ADMIT_BUDGET_ERROR "too many request bodies in flight, retry later"

int64_t admit_body_ms(uint64_t len, int64_t base_ms, int64_t min_rate)
{
	const int64_t cap = INT64_MAX / 8;
	uint64_t rate = min_rate < 1 ? 1u : (uint64_t)min_rate, ms;

	if (rate > 1000000000000000u)
		rate =
		    1000000000000000u; /* faster is instant; keeps (len % rate) * 1000 in range */
	if (base_ms < 0)
		base_ms = 0;
	if (base_ms >= cap || len / rate >= (uint64_t)cap / 1000)
		return cap;
	ms = (len / rate) * 1000 + ((len % rate) * 1000 + rate - 1) / rate;
	return ms >= (uint64_t)(cap - base_ms) ? cap : base_ms + (int64_t)ms;
}

bool admit_budget_take(_Atomic size_t *used, size_t budget, size_t n)
{
	size_t old = atomic_load_explicit(used, memory_order_relaxed);

	do {
		if (n > budget || old > budget - n)
			return false;
	} while (!atomic_compare_exchange_weak_explicit(used, &old, old + n, memory_order_relaxed,
	                                                memory_order_relaxed));
	return true;
}

void admit_budget_give(_Atomic size_t *used, size_t n)
{
	atomic_fetch_sub_explicit(used, n, memory_order_relaxed);
}

/* ---- webhook credentials, on the headers ---- */

/* One header a credential needs: check gets its value (NULL when absent) and returns NULL when
 * it passes, else the refusal reason (an ingress_rejected_total label). */
struct admit_rule {
	const char *header;
	const char *(*check)(const struct req *rq, const char *value);
};

/* A way for a webhook to prove itself. It applies when the header of its first rule is present;
 * then every rule must pass. The first scheme that applies judges the request; none: 401. What
 * needs the body (the signature's MAC, a token's call_sid) is checked later, in routes.c. */
struct admit_scheme {
	unsigned routes; /* 1u << ROUTE_x where it is accepted */
	bool (*enabled)(const struct server *s);
	struct admit_rule rules[ADMIT_RULES_MAX];
};

static const char *const admit_sig_reasons[] = {
    [SIG_OK] = NULL,
    [SIG_MISSING] = "signature_missing",
    [SIG_MALFORMED] = "signature_malformed",
    [SIG_TOO_OLD] = "signature_too_old",
    [SIG_FUTURE] = "signature_future",
    [SIG_MISMATCH] = "signature_mismatch",
};

/* ElevenLabs-Signature: well-formed and fresh (the MAC covers the body: verified once it is in,
 * so a forged header that passes here costs the budget, not unbounded memory). */
static const char *admit_check_signature(const struct req *rq, const char *value)
{
	const struct ingress_config *conf = rq->srv->conf;
	enum sig_result r = sig_check_header(value, rq->received_ms / 1000,
	                                     (long)conf->sig_max_age_s, (long)conf->sig_max_skew_s);

	return r == SIG_OK ? NULL : admit_sig_reasons[r];
}

/* X-Callpipe-Tool-Secret, when INGRESS_TOOL_SECRET is set: the shared secret itself (constant
 * time). Without one configured, nothing to check. */
static const char *admit_check_tool_secret(const struct req *rq, const char *value)
{
	if (!rq->srv->has_tool_secret)
		return NULL;
	if (value == NULL || !routes_secret_equal(rq->srv, value, rq->srv->tool_hash))
		return "tool_secret_mismatch";
	return NULL;
}

static const char *const admit_token_reasons[] = {
    [CALLTOKEN_OK] = NULL,
    [CALLTOKEN_MISSING] = "call_token_missing",
    [CALLTOKEN_MALFORMED] = "call_token_malformed",
    [CALLTOKEN_EXPIRED] = "call_token_expired",
    [CALLTOKEN_MISMATCH] = "call_token_mismatch",
};

/* X-Callpipe-Call-Token: well-formed and unexpired (which call it was made for needs the body's
 * call_sid: routes.c checks that). */
static const char *admit_check_call_token(const struct req *rq, const char *value)
{
	return admit_token_reasons[calltoken_check(value, rq->received_ms / 1000)];
}

static bool admit_signature_on(const struct server *s)
{
	return s->webhook_key != NULL;
}

static bool admit_tool_on(const struct server *s)
{
	return s->call_token_key != NULL;
}

static const struct admit_scheme admit_schemes[] = {
    /* a request that carries a signature is judged by it alone */
    {1u << ROUTE_TRANSCRIPTION | 1u << ROUTE_POST_CALL,
     admit_signature_on,
     {{ROUTES_SIG_HEADER, admit_check_signature}}},
    /* the per-turn tool cannot sign: its call token, and the tool secret when one is set */
    {1u << ROUTE_TRANSCRIPTION,
     admit_tool_on,
     {{ROUTES_TOKEN_HEADER, admit_check_call_token},
      {ROUTES_TOOL_HEADER, admit_check_tool_secret}}},
    /* the tool secret alone writes into no call: the token is missing */
    {1u << ROUTE_TRANSCRIPTION,
     admit_tool_on,
     {{ROUTES_TOOL_HEADER, admit_check_tool_secret},
      {ROUTES_TOKEN_HEADER, admit_check_call_token}}},
};

bool admit_webhook(struct req *rq, enum MHD_Result *ret)
{
	const struct server *s = rq->srv;
	const char *reason = "signature_missing";

	if (s->webhook_key == NULL)
		return true; /* INGRESS_ALLOW_UNSIGNED_WEBHOOKS, checked and logged at start */
	for (size_t i = 0; i < sizeof admit_schemes / sizeof admit_schemes[0]; i++) {
		const struct admit_scheme *sc = &admit_schemes[i];

		if ((sc->routes & 1u << rq->route) == 0 || !sc->enabled(s) ||
		    MHD_lookup_connection_value(rq->conn, MHD_HEADER_KIND, sc->rules[0].header) ==
		        NULL)
			continue;
		reason = NULL;
		for (size_t j = 0;
		     j < ADMIT_RULES_MAX && sc->rules[j].header != NULL && reason == NULL; j++)
			reason = sc->rules[j].check(
			    rq, MHD_lookup_connection_value(rq->conn, MHD_HEADER_KIND,
			                                    sc->rules[j].header));
		break;
	}
	if (reason == NULL)
		return true;
	*ret = server_reply_error(rq, MHD_HTTP_UNAUTHORIZED,
	                          strncmp(reason, "signature_", 10) == 0 ? "Invalid signature"
	                                                                 : "Invalid call token",
	                          reason);
	return false;
}

/* ---- the body ---- */

bool admit_reserve(struct req *rq, size_t n)
{
	struct server *s = rq->srv;

	if (!admit_budget_take(&s->body_bytes, (size_t)s->conf->body_budget, n))
		return false;
	rq->reserved += n;
	return true;
}

void admit_release(struct req *rq)
{
	admit_budget_give(&rq->srv->body_bytes, rq->reserved);
	rq->reserved = 0;
}

static enum MHD_Result admit_too_large(struct req *rq)
{
	char msg[96];

	snprintf(msg, sizeof msg, "body larger than %zu bytes", rq->limit);
	return server_reply_error(rq, MHD_HTTP_CONTENT_TOO_LARGE, msg, "body_too_large");
}

bool admit_length(struct req *rq, const char *cl, enum MHD_Result *ret)
{
	const struct ingress_config *conf = rq->srv->conf;
	uint64_t len = rq->limit; /* chunked: the deadline allows for the largest body */

	if (cl != NULL) {
		char *end;
		unsigned long long n;

		errno = 0;
		n = strtoull(cl, &end, 10);
		if (errno != 0 || end == cl || n > rq->limit) {
			*ret = admit_too_large(rq);
			return false;
		}
		if (!admit_reserve(rq, (size_t)n)) {
			*ret = server_reply_error(rq, MHD_HTTP_SERVICE_UNAVAILABLE,
			                          ADMIT_BUDGET_ERROR, "body_budget");
			return false;
		}
		if (n > 0) {
			size_t first = n < ADMIT_FIRST_ALLOC ? (size_t)n : ADMIT_FIRST_ALLOC;

			rq->body = malloc(first);
			rq->cap = rq->body != NULL ? first : 0;
		}
		len = n;
	}
	conn_body_due(rq->edge, rq->start_mono_ms +
	                            admit_body_ms(len, conf->body_timeout_ms, conf->body_min_rate));
	return true;
}

/* Appends one piece of body within the route's limit and the budget. Returns 0, or the status
 * that refuses the body (413, 503); 500 when out of memory. */
static unsigned admit_store(struct req *rq, const char *data, size_t size)
{
	size_t need;

	if (size > rq->limit - rq->len)
		return MHD_HTTP_CONTENT_TOO_LARGE;
	need = rq->len + size;
	if (need > rq->cap) {
		size_t cap = rq->cap ? rq->cap : 4096;
		char *nb;

		while (cap < need)
			cap *= 2;
		if (cap > rq->limit)
			cap = rq->limit;
		if (cap > rq->reserved && need <= rq->reserved)
			cap = rq->reserved; /* a Content-Length: exactly what was reserved */
		if (cap > rq->reserved && !admit_reserve(rq, cap - rq->reserved))
			return MHD_HTTP_SERVICE_UNAVAILABLE;
		nb = realloc(rq->body, cap);
		if (nb == NULL)
			return MHD_HTTP_INTERNAL_SERVER_ERROR;
		rq->body = nb;
		rq->cap = cap;
	}
	memcpy(rq->body + rq->len, data, size);
	rq->len = need;
	return 0;
}

enum MHD_Result admit_body(struct req *rq, const char *data, size_t size)
{
	unsigned status;

	if (rq->refused != 0)
		return MHD_YES; /* refused already: the rest is read and dropped */
	status = admit_store(rq, data, size);
	if (status == 0)
		return MHD_YES;
	if (status == MHD_HTTP_INTERNAL_SERVER_ERROR)
		return MHD_NO; /* no memory: close the connection */
	/* Only a body without Content-Length (chunked) gets here: the header was checked. MHD
	 * cannot answer before the upload is complete, so the rest is read and dropped, and the
	 * answer comes at its end (or the body deadline closes the connection). */
	rq->refused = status;
	free(rq->body);
	rq->body = NULL;
	rq->len = rq->cap = 0;
	admit_release(rq);
	return MHD_YES;
}

bool admit_refused(struct req *rq, enum MHD_Result *ret)
{
	if (rq->refused == 0)
		return false;
	if (rq->refused == MHD_HTTP_CONTENT_TOO_LARGE)
		*ret = admit_too_large(rq);
	else
		*ret = server_reply_error(rq, MHD_HTTP_SERVICE_UNAVAILABLE, ADMIT_BUDGET_ERROR,
		                          "body_budget");
	return true;
}

void admit_tick(struct server *s, int64_t now_ms)
{
	(void)conns_reap(s->conns, now_ms);
	metric_set(s->m_connections, (double)conns_open(s->conns));
	metric_set(s->m_body_bytes,
	           (double)atomic_load_explicit(&s->body_bytes, memory_order_relaxed));
}
