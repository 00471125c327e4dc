/* sig: ElevenLabs webhook signatures: "t=<unix>,v0=<hex HMAC-SHA256(secret, "<t>.<body>")>". */
#ifndef CALLPIPE_SIG_H
#define CALLPIPE_SIG_H

#include <stddef.h>
#include <stdint.h>

#define SIG_MAC_LEN 32 /* HMAC-SHA256 */

enum sig_result {
	SIG_OK = 0,
	SIG_MISSING,   /* no header */
	SIG_MALFORMED, /* header not parseable */
	SIG_TOO_OLD,   /* t older than max_age_s */
	SIG_FUTURE,    /* t more than max_skew_s in the future */
	SIG_MISMATCH,  /* no v0 matched (constant-time compare) */
};

/* A webhook secret ready for signing and verifying: SHA-256 fetched once and the HMAC's key
 * blocks hashed once, so each message costs only its own bytes. Immutable once made: any number
 * of threads may use one key at once. It keeps only the hashed key blocks, not secret. NULL on a
 * NULL secret or no memory; the caller frees it with sig_key_free (NULL is fine). */
struct sig_key;
struct sig_key *sig_key_new(const char *secret);
void sig_key_free(struct sig_key *k);

/* Writes the header value for body signed at unix time t into out (>= 96 bytes). Returns 0 or -1.
 */
int sig_sign(const char *secret, int64_t t, const void *body, size_t len, char *out,
             size_t out_size);

/* Verifies header (may be NULL) over the raw body at time now. Accepts several v0= entries
 * (secret rotation); unknown keys are ignored. */
enum sig_result sig_key_verify(const struct sig_key *k, const char *header, const void *body,
                               size_t len, int64_t now, long max_age_s, long max_skew_s);

/* The checks of sig_key_verify that need no body: header present, well-formed, t within
 * max_age_s before and max_skew_s after now. SIG_OK here means only that the MAC is worth
 * computing once the body is in; sig_key_verify gives the same answer for any other result. */
enum sig_result sig_check_header(const char *header, int64_t now, long max_age_s, long max_skew_s);

/* sig_key_verify that also gives the verified timestamp: *t (may be NULL) is set only on SIG_OK.
 * A signature covers the timestamp's value and the body, not the header's spelling (leading
 * zeros, hex case, blanks, unknown items), so (*t, body) is what identifies a signed event. */
enum sig_result sig_key_verify_t(const struct sig_key *k, const char *header, const void *body,
                                 size_t len, int64_t now, long max_age_s, long max_skew_s,
                                 int64_t *t);

/* HMAC-SHA256 under k of the concatenation a || b (either may be empty) into mac; for other MACs
 * under a secret of their own (common/calltoken.c). Returns 0 or -1. */
__attribute__((warn_unused_result)) int sig_key_hmac(const struct sig_key *k, const void *a,
                                                     size_t alen, const void *b, size_t blen,
                                                     unsigned char mac[SIG_MAC_LEN]);

/* sig_key_verify with a key made for this one call (tests, tools: a server keeps its key). */
enum sig_result sig_verify(const char *secret, const char *header, const void *body, size_t len,
                           int64_t now, long max_age_s, long max_skew_s);

/* Short reason for metrics and logs: "missing", "malformed", "too_old", "future", "mismatch". */
const char *sig_result_str(enum sig_result r);

#endif
