/* fuzz_signature: libFuzzer target for the ElevenLabs-Signature header parser and verifier, the
 * event id derived from a verified signature, and the per-call tool token. The input's first line
 * is the header, the rest the body. Invariants:
 * - a fuzzed header never verifies against a secret it was not made with; what sig_sign makes
 *   always verifies;
 * - a header that verifies gives the event id of (its t, the body), whatever its spelling: the
 *   fuzzer's bytes also re-spell a genuine header (leading zeros, hex case, blanks, unknown and
 *   decoy items), and every such spelling that verifies gives the genuine header's id;
 * - the first line as a call token (the body as its call_sid) verifies only if it is exactly
 *   the token calltoken_make writes for that expiry: one spelling, no forgery;
 * - the ingress's header-stage check (sig_check_header, run before the body is read) agrees
 *   with the full verification: the same refusal, or SIG_OK where only the MAC decides. */
#include "calltoken.h"
#include "sig.h"
#include "webhook.h"

#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define SECRET       "whsec_fuzz_secret"
#define TOKEN_SECRET "call-token-fuzz-secret"
#define NOW          1700000000

/* The event id of header over body, or "" when it does not verify. */
static void fuzz_event_id(const struct sig_key *k, const char *header, const void *body,
                          size_t blen, char out[WEBHOOK_EVENT_ID_SIZE])
{
	int64_t t = -1;

	out[0] = '\0';
	if (sig_key_verify_t(k, header, body, blen, NOW, 1800, 300, &t) != SIG_OK)
		return;
	if (t < NOW - 1800 || t > NOW + 300 ||
	    webhook_event_id_signed(NULL, t, body, blen, out, WEBHOOK_EVENT_ID_SIZE) != 0)
		abort();
}

/* Re-spells the genuine header "t=<t>,v0=<hex>" as the bytes in ctl direct: leading zeros on t,
 * hex case, blanks around items and '=', unknown items, a decoy v0 before the real one. */
static void fuzz_respell(const char *mac_hex, int64_t t, const uint8_t *ctl, size_t n, char *out,
                         size_t size)
{
	char hex[2 * SIG_MAC_LEN + 1];
	unsigned c0 = n > 0 ? ctl[0] : 0, c1 = n > 1 ? ctl[1] : 0, c2 = n > 2 ? ctl[2] : 0;
	const char *blank = (c1 & 1) ? " " : "", *eq = (c1 & 2) ? " = " : "=";

	for (size_t i = 0; i < sizeof hex; i++) {
		char c = mac_hex[i];

		hex[i] = (c0 >> (i % 8) & 1) && c >= 'a' && c <= 'f' ? (char)(c - 'a' + 'A') : c;
		if (c == '\0')
			break;
	}
	snprintf(out, size, "%s%st%s%0*" PRId64 ",%s%sv0%s%s%s%s", blank, (c1 & 4) ? "x=1," : "",
	         eq, (int)(c2 % 12) + 1, t, blank,
	         (c1 & 8) ? "v0=" /* decoy */ "00000000000000000000000000000000"
	                    "00000000000000000000000000000000,"
	                  : "",
	         eq, hex, (c1 & 16) ? ",x=2" : "", blank);
}

static void fuzz_token(const char *line, const char *body, size_t blen)
{
	static struct calltoken_key *k;
	char *sid, made[CALLTOKEN_SIZE];
	enum calltoken_result r;

	if (k == NULL && (k = calltoken_key_new(TOKEN_SECRET)) == NULL)
		abort();
	sid = strndup(body, blen);
	if (sid == NULL)
		return;
	r = calltoken_verify(k, line, sid, NOW);
	if (calltoken_result_str(r) == NULL)
		abort();
	if (r == CALLTOKEN_OK) {
		/* only the one token made for this call_sid and expiry */
		long long exp = atoll(line + 3);

		if (calltoken_make(k, sid, exp, made, sizeof made) != 0 || strcmp(made, line) != 0)
			abort();
	}
	/* what calltoken_make writes always verifies, for its own call_sid only */
	if (calltoken_make(k, sid, NOW + 60, made, sizeof made) != 0 ||
	    calltoken_verify(k, made, sid, NOW) != CALLTOKEN_OK ||
	    calltoken_check(made, NOW) != CALLTOKEN_OK)
		abort();
	free(sid);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct sig_key *key;
	const uint8_t *nl = memchr(data, '\n', size);
	size_t hlen = nl != NULL ? (size_t)(nl - data) : size;
	const uint8_t *body = nl != NULL ? nl + 1 : data + size;
	size_t blen = size - hlen - (nl != NULL ? 1 : 0);
	char *header = malloc(hlen + 1), signed_header[128], spelled[400];
	char genuine_id[WEBHOOK_EVENT_ID_SIZE], id[WEBHOOK_EVENT_ID_SIZE];
	enum sig_result r, pre;

	if (header == NULL)
		return 0;
	if (key == NULL && (key = sig_key_new(SECRET)) == NULL)
		abort();
	memcpy(header, data, hlen);
	header[hlen] = '\0';
	r = sig_verify(SECRET, header, body, blen, NOW, 1800, 300);
	pre = sig_check_header(header, NOW, 1800, 300);
	if (pre != (r == SIG_MISMATCH ? SIG_OK : r))
		abort();
	if (r == SIG_OK) {
		/* only possible if the header carries the right MAC: then a different secret fails
		 */
		if (sig_verify("whsec_other_secret", header, body, blen, NOW, 1800, 300) == SIG_OK)
			abort();
		fuzz_event_id(key, header, body, blen, id);
		if (id[0] == '\0')
			abort(); /* sig_verify and sig_key_verify_t disagree */
	}
	if (sig_result_str(r) == NULL)
		abort();
	if (sig_sign(SECRET, NOW, body, blen, signed_header, sizeof signed_header) != 0 ||
	    sig_verify(SECRET, signed_header, body, blen, NOW, 1800, 300) != SIG_OK)
		abort();
	/* the genuine header's event id, and the same for each re-spelling of it */
	fuzz_event_id(key, signed_header, body, blen, genuine_id);
	if (genuine_id[0] == '\0')
		abort();
	fuzz_respell(strstr(signed_header, "v0=") + 3, NOW, data, size, spelled, sizeof spelled);
	fuzz_event_id(key, spelled, body, blen, id);
	if (strcmp(id, genuine_id) != 0)
		abort();
	/* a header made at another second is another event */
	if (sig_sign(SECRET, NOW - 1, body, blen, signed_header, sizeof signed_header) != 0)
		abort();
	fuzz_event_id(key, signed_header, body, blen, id);
	if (id[0] == '\0' || strcmp(id, genuine_id) == 0)
		abort();
	fuzz_token(header, (const char *)body, blen);
	free(header);
	return 0;
}
