/* policy: what the dialer does with an outbound-call answer (stored, failed, retried, outcome
 * unknown), Retry-After parsing, and the calls/s token bucket. Pure functions, no I/O. */
#ifndef CALLPIPE_DIALER_POLICY_H
#define CALLPIPE_DIALER_POLICY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum policy_action {
	POLICY_OK,      /* the API accepted the call: store conversation_id */
	POLICY_FAILED,  /* the API refused it: status failed with reason */
	POLICY_RETRY,   /* nothing was placed (connect failure before sending, 429, 503): again */
	POLICY_UNKNOWN, /* the request may have been acted on (timeout or connection lost after
	                   sending, 502, 504, an unreadable 2xx): never again */
};

#define POLICY_REASON_UNKNOWN "dial_outcome_unknown"

struct policy_verdict {
	enum policy_action action;
	char conversation_id[256]; /* POLICY_OK; may be "" when the API sent none */
	char reason[512];    /* FAILED: the API's message; RETRY/UNKNOWN: why ("HTTP 504: ...",
	                        "dial_outcome_unknown") */
	const char *label;   /* short static metric label: "429", "rejected", "http_4xx" ... */
	long retry_after_ms; /* RETRY: the server's Retry-After in ms, -1 when none */
};

/* An HTTP answer: status, body, Retry-After header value (NULL if absent), now (for HTTP-date
 * Retry-After). 2xx {success:true, conversation_id} -> OK; {success:false, message} -> FAILED;
 * 2xx unparseable -> UNKNOWN; 429/503 -> RETRY (refused before any work); 502/504 -> UNKNOWN (a
 * gateway answered for an upstream that may have placed the call); other 4xx/5xx -> FAILED with
 * "HTTP <status>: <message from detail/message>". */
void policy_classify_http(long status, const char *body, size_t len, const char *retry_after,
                          int64_t now_ms, struct policy_verdict *v);

/* A transport failure (curl code) with no HTTP answer. request_sent: bytes of the request may
 * have left (connection established and transfer begun). Not sent -> RETRY; sent -> UNKNOWN
 * (a timeout or a reset after sending). Failures to resolve, connect or complete the TLS
 * handshake happen before any request byte: RETRY whatever request_sent says. */
void policy_classify_transport(int curl_code, const char *curl_error, bool request_sent,
                               struct policy_verdict *v);

/* Parses a Retry-After value: delta-seconds or an HTTP-date. Returns ms >= 0, or -1. */
long policy_parse_retry_after(const char *value, int64_t now_ms);

/* Pulls a human message out of an API error body: "message", "detail" as string,
 * detail.message, or detail[].msg joined with loc. Writes "" when there is none. */
void policy_api_message(const char *body, size_t len, char *out, size_t size);

/* Token bucket: rate tokens/s, holding at most burst. rate <= 0: unlimited. */
struct policy_bucket {
	double rate, burst, tokens;
	int64_t last_ms;
};
void policy_bucket_init(struct policy_bucket *b, double rate, double burst, int64_t now_ms);
/* True when a token was available (and takes it). */
bool policy_bucket_take(struct policy_bucket *b, int64_t now_ms);
/* True when a token is available now, without taking it. */
bool policy_bucket_ready(struct policy_bucket *b, int64_t now_ms);
/* Milliseconds until a token is available (0 now). */
long policy_bucket_wait_ms(struct policy_bucket *b, int64_t now_ms);

#endif
