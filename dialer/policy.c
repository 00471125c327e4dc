/* policy: classifies outbound-call answers and transport failures; Retry-After; token bucket. */
#include "policy.h"

#include <curl/curl.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* Appends s to out (NUL-terminated, size bytes) without overflowing; control bytes -> ' '. */
static void policy_append(char *out, size_t size, const char *s)
{
	size_t len = strlen(out);

	for (; *s && len + 1 < size; s++)
		out[len++] = (unsigned char)*s < 0x20 ? ' ' : *s;
	/* cut inside a UTF-8 sequence (next byte is a continuation): drop its start too */
	if (*s && ((unsigned char)*s & 0xC0) == 0x80) {
		while (len > 0 && ((unsigned char)out[len - 1] & 0xC0) == 0x80)
			len--;
		if (len > 0 && ((unsigned char)out[len - 1] & 0xC0) == 0xC0)
			len--;
	}
	out[len] = '\0';
}

/* detail: [{loc: ["body", "to_number"], msg: "field required"}, ...] -> "body.to_number: field
 * required; ..." */
static void policy_detail_list(const json_t *detail, char *out, size_t size)
{
	size_t i, j;
	json_t *item, *part;

	json_array_foreach(detail, i, item)
	{
		const char *msg = json_string_value(json_object_get(item, "msg"));
		const json_t *loc = json_object_get(item, "loc");

		if (i)
			policy_append(out, size, "; ");
		json_array_foreach(loc, j, part)
		{
			char num[32];

			if (j)
				policy_append(out, size, ".");
			if (json_is_string(part)) {
				policy_append(out, size, json_string_value(part));
			} else if (json_is_integer(part)) {
				snprintf(num, sizeof num, "%lld",
				         (long long)json_integer_value(part));
				policy_append(out, size, num);
			}
		}
		if (json_array_size(loc))
			policy_append(out, size, ": ");
		policy_append(out, size, msg ? msg : "invalid");
	}
}

void policy_api_message(const char *body, size_t len, char *out, size_t size)
{
	json_t *root = NULL, *detail;
	const char *msg = NULL;
	char text[201];

	if (size == 0)
		return;
	out[0] = '\0';
	if (!body || len == 0)
		return;
	root = json_loadb(body, len, JSON_DECODE_ANY, NULL);
	if (!root) { /* not JSON: the start of the text */
		size_t n = len < sizeof text - 1 ? len : sizeof text - 1;

		memcpy(text, body, n);
		text[n] = '\0';
		policy_append(out, size, text);
		return;
	}
	if (json_is_string(root))
		msg = json_string_value(root);
	msg = msg ? msg : json_string_value(json_object_get(root, "message"));
	detail = json_object_get(root, "detail");
	if (!msg && json_is_string(detail))
		msg = json_string_value(detail);
	if (!msg && json_is_object(detail)) {
		msg = json_string_value(json_object_get(detail, "message"));
		msg = msg ? msg : json_string_value(json_object_get(detail, "status"));
	}
	if (msg)
		policy_append(out, size, msg);
	else if (json_is_array(detail))
		policy_detail_list(detail, out, size);
	json_decref(root);
}

long policy_parse_retry_after(const char *value, int64_t now_ms)
{
	char *end;
	long secs;
	struct tm tm;
	time_t t;

	if (!value)
		return -1;
	while (*value == ' ' || *value == '\t')
		value++;
	if (*value >= '0' && *value <= '9') {
		secs = strtol(value, &end, 10);
		while (*end == ' ' || *end == '\t' || *end == '\r' || *end == '\n')
			end++;
		if (*end || secs < 0 || secs > 86400L * 365)
			return -1;
		return secs * 1000;
	}
	memset(&tm, 0, sizeof tm);
	end = strptime(value, "%a, %d %b %Y %H:%M:%S GMT", &tm);
	if (!end)
		return -1;
	t = timegm(&tm);
	if (t == (time_t)-1)
		return -1;
	return (int64_t)t * 1000 > now_ms ? (long)((int64_t)t * 1000 - now_ms) : 0;
}

static void policy_http_reason(long status, const char *body, size_t len, char *out, size_t size)
{
	char msg[400];

	policy_api_message(body, len, msg, sizeof msg);
	snprintf(out, size, "HTTP %ld%s%s", status, msg[0] ? ": " : "", msg);
}

/* A 2xx answer: {success, message, conversation_id, callSid}. */
static void policy_classify_success(const char *body, size_t len, struct policy_verdict *v)
{
	json_t *root = json_loadb(body ? body : "", len, 0, NULL);
	const json_t *success = json_object_get(root, "success");
	const char *conv = json_string_value(json_object_get(root, "conversation_id"));
	const char *msg = json_string_value(json_object_get(root, "message"));

	if (!json_is_object(root) || (!json_is_boolean(success) && !conv)) {
		v->action = POLICY_UNKNOWN; /* the call may have been placed: do not guess */
		v->label = "bad_response";
		snprintf(v->reason, sizeof v->reason, "%s", POLICY_REASON_UNKNOWN);
	} else if (json_is_false(success)) {
		v->action = POLICY_FAILED;
		v->label = "rejected";
		policy_append(v->reason, sizeof v->reason,
		              msg && *msg ? msg : "outbound call refused (success: false)");
	} else {
		v->action = POLICY_OK;
		v->label = "ok";
		policy_append(v->conversation_id, sizeof v->conversation_id, conv ? conv : "");
	}
	json_decref(root);
}

void policy_classify_http(long status, const char *body, size_t len, const char *retry_after,
                          int64_t now_ms, struct policy_verdict *v)
{
	memset(v, 0, sizeof *v);
	v->retry_after_ms = -1;
	if (status >= 200 && status < 300) {
		policy_classify_success(body, len, v);
		return;
	}
	policy_http_reason(status, body, len, v->reason, sizeof v->reason);
	switch (status) {
	case 429: /* refused before any work: rate limit */
	case 503: /* refused before any work: the service is not taking requests */
		v->action = POLICY_RETRY;
		v->label = status == 429 ? "429" : "503";
		v->retry_after_ms = policy_parse_retry_after(retry_after, now_ms);
		return;
	case 502: /* a gateway lost the upstream's answer, or gave up waiting for it: */
	case 504: /* the API may have placed the call, so never a second ring */
		v->action = POLICY_UNKNOWN;
		v->label = status == 502 ? "502" : "504";
		return;
	default:
		break;
	}
	v->action = POLICY_FAILED;
	v->label = status >= 400 && status < 500   ? "http_4xx"
	           : status >= 500 && status < 600 ? "http_5xx"
	                                           : "http_other";
}

void policy_classify_transport(int curl_code, const char *curl_error, bool request_sent,
                               struct policy_verdict *v)
{
	memset(v, 0, sizeof *v);
	v->retry_after_ms = -1;
	switch (curl_code) {
	case CURLE_COULDNT_RESOLVE_PROXY:
	case CURLE_COULDNT_RESOLVE_HOST:
	case CURLE_COULDNT_CONNECT:
	case CURLE_SSL_CONNECT_ERROR:
		request_sent = false; /* failed before a connection existed */
		break;
	default:
		break;
	}
	if (request_sent) {
		v->action = POLICY_UNKNOWN;
		v->label = "outcome_unknown";
		snprintf(v->reason, sizeof v->reason, "%s", POLICY_REASON_UNKNOWN);
		return;
	}
	v->action = POLICY_RETRY;
	v->label = "connect";
	snprintf(v->reason, sizeof v->reason, "connect failed: %s",
	         curl_error && *curl_error ? curl_error : curl_easy_strerror(curl_code));
}

void policy_bucket_init(struct policy_bucket *b, double rate, double burst, int64_t now_ms)
{
	b->rate = rate;
	b->burst = burst < 1 ? 1 : burst;
	b->tokens = b->burst;
	b->last_ms = now_ms;
}

static void policy_bucket_refill(struct policy_bucket *b, int64_t now_ms)
{
	if (now_ms > b->last_ms) {
		b->tokens += (double)(now_ms - b->last_ms) * b->rate / 1000.0;
		if (b->tokens > b->burst)
			b->tokens = b->burst;
		b->last_ms = now_ms;
	}
}

bool policy_bucket_ready(struct policy_bucket *b, int64_t now_ms)
{
	if (b->rate <= 0)
		return true;
	policy_bucket_refill(b, now_ms);
	return b->tokens >= 1.0;
}

bool policy_bucket_take(struct policy_bucket *b, int64_t now_ms)
{
	if (!policy_bucket_ready(b, now_ms))
		return false;
	if (b->rate > 0)
		b->tokens -= 1.0;
	return true;
}

long policy_bucket_wait_ms(struct policy_bucket *b, int64_t now_ms)
{
	double missing;

	if (policy_bucket_ready(b, now_ms))
		return 0;
	missing = 1.0 - b->tokens;
	return (long)(missing * 1000.0 / b->rate) + 1;
}
