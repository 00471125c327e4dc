/* calltoken: per-call tokens for the agent's tool. An ElevenLabs tool cannot sign its requests,
 * so the dialer hands the agent, as a dynamic variable, a token that only this call's lines can
 * carry: "v1.<expires>.<hex HMAC-SHA256(CALL_TOKEN_SECRET, "v1.<expires>.<call_sid>")>", with
 * expires in unix seconds. The ingress accepts a tool line only for the call_sid its token was
 * made for, until it expires. */
#ifndef CALLPIPE_CALLTOKEN_H
#define CALLPIPE_CALLTOKEN_H

#include <stddef.h>
#include <stdint.h>

#define CALLTOKEN_SIZE 96 /* "v1." + up to 12 digits + "." + 64 hex + NUL fits */

enum calltoken_result {
	CALLTOKEN_OK = 0,
	CALLTOKEN_MISSING,   /* no token */
	CALLTOKEN_MALFORMED, /* not "v1.<digits>.<64 lowercase hex>" */
	CALLTOKEN_EXPIRED,   /* its expiry is in the past */
	CALLTOKEN_MISMATCH,  /* not made for this call_sid under this secret */
};

/* A token secret ready to verify (the HMAC's key blocks hashed once); immutable, shareable
 * between threads. NULL on a NULL secret or no memory; calltoken_key_free (NULL ok). */
struct calltoken_key;
struct calltoken_key *calltoken_key_new(const char *secret);
void calltoken_key_free(struct calltoken_key *k);

/* Writes the token of call_sid valid until expires (unix seconds, 0..999999999999) into out
 * (>= CALLTOKEN_SIZE). Returns 0 or -1 (bad arguments, no memory). */
__attribute__((warn_unused_result)) int calltoken_make(const struct calltoken_key *k,
                                                       const char *call_sid, int64_t expires,
                                                       char *out, size_t size);

/* calltoken_make with a key made for this one call (the dialer: one token per dial). */
__attribute__((warn_unused_result)) int calltoken_sign(const char *secret, const char *call_sid,
                                                       int64_t expires, char *out, size_t size);

/* What can be judged without the call_sid (before the body is read): the token's form, and
 * that it has not expired at now. token may be NULL (CALLTOKEN_MISSING). */
enum calltoken_result calltoken_check(const char *token, int64_t now);

/* calltoken_check, then whether token was made for call_sid under k (constant-time compare). */
enum calltoken_result calltoken_verify(const struct calltoken_key *k, const char *token,
                                       const char *call_sid, int64_t now);

/* Short reason for metrics and logs: "ok", "missing", "malformed", "expired", "mismatch". */
const char *calltoken_result_str(enum calltoken_result r);

#endif
