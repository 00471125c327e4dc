/* calltoken: per-call tool tokens "v1.<expires>.<hex HMAC>": make, check, verify. */
#include "calltoken.h"

#include "sig.h"

#include <openssl/crypto.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define CALLTOKEN_VERSION    "v1."
#define CALLTOKEN_EXP_DIGITS 12 /* unix seconds up to the year 33658: never overflows */

/* The key is a sig_key: the same precomputed HMAC-SHA256, under a secret of its own. */
struct calltoken_key {
	struct sig_key *hmac;
};

struct calltoken_key *calltoken_key_new(const char *secret)
{
	struct calltoken_key *k;

	if (secret == NULL)
		return NULL;
	k = calloc(1, sizeof *k);
	if (k == NULL)
		return NULL;
	k->hmac = sig_key_new(secret);
	if (k->hmac == NULL) {
		free(k);
		return NULL;
	}
	return k;
}

void calltoken_key_free(struct calltoken_key *k)
{
	if (k == NULL)
		return;
	sig_key_free(k->hmac);
	free(k);
}

/* The MAC of "<head><call_sid>", head being "v1.<expires>." as it appears in the token. */
static int calltoken_mac(const struct calltoken_key *k, const char *head, size_t head_len,
                         const char *call_sid, unsigned char mac[SIG_MAC_LEN])
{
	if (k == NULL || call_sid == NULL)
		return -1;
	return sig_key_hmac(k->hmac, head, head_len, call_sid, strlen(call_sid), mac);
}

int calltoken_make(const struct calltoken_key *k, const char *call_sid, int64_t expires, char *out,
                   size_t size)
{
	static const char hex[] = "0123456789abcdef";
	unsigned char mac[SIG_MAC_LEN];
	char head[32];
	int n;

	if (expires < 0 || expires > 999999999999LL || out == NULL || size < CALLTOKEN_SIZE)
		return -1;
	n = snprintf(head, sizeof head, CALLTOKEN_VERSION "%lld.", (long long)expires);
	if (n < 0 || (size_t)n >= sizeof head || calltoken_mac(k, head, (size_t)n, call_sid, mac))
		return -1;
	memcpy(out, head, (size_t)n);
	for (size_t i = 0; i < SIG_MAC_LEN; i++) {
		out[n + 2 * (int)i] = hex[mac[i] >> 4];
		out[n + 2 * (int)i + 1] = hex[mac[i] & 15];
	}
	out[n + 2 * SIG_MAC_LEN] = '\0';
	OPENSSL_cleanse(mac, sizeof mac);
	return 0;
}

int calltoken_sign(const char *secret, const char *call_sid, int64_t expires, char *out,
                   size_t size)
{
	struct calltoken_key *k = calltoken_key_new(secret);
	int rc = k != NULL ? calltoken_make(k, call_sid, expires, out, size) : -1;

	calltoken_key_free(k);
	return rc;
}

/* Parses "v1.<expires>.<64 lowercase hex>": one spelling only (no leading zeros, no blanks).
 * Sets *expires, *head_len (length of "v1.<expires>.") and mac. Returns 0 or -1. */
static int calltoken_parse(const char *token, int64_t *expires, size_t *head_len,
                           unsigned char mac[SIG_MAC_LEN])
{
	const char *p;
	size_t nd = 0;
	int64_t e = 0;

	if (strncmp(token, CALLTOKEN_VERSION, strlen(CALLTOKEN_VERSION)) != 0)
		return -1;
	p = token + strlen(CALLTOKEN_VERSION);
	while (p[nd] >= '0' && p[nd] <= '9') {
		if (++nd > CALLTOKEN_EXP_DIGITS)
			return -1;
		e = e * 10 + (p[nd - 1] - '0');
	}
	if (nd == 0 || (nd > 1 && p[0] == '0') || p[nd] != '.')
		return -1;
	*expires = e;
	*head_len = (size_t)(p + nd + 1 - token);
	p += nd + 1;
	for (size_t i = 0; i < 2 * SIG_MAC_LEN; i++) {
		char c = p[i];
		int v = c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;

		if (v < 0)
			return -1; /* also the end of a short token */
		if (i % 2 == 0)
			mac[i / 2] = (unsigned char)(v << 4);
		else
			mac[i / 2] |= (unsigned char)v;
	}
	return p[2 * SIG_MAC_LEN] == '\0' ? 0 : -1;
}

enum calltoken_result calltoken_check(const char *token, int64_t now)
{
	unsigned char mac[SIG_MAC_LEN];
	int64_t expires;
	size_t head_len;

	if (token == NULL || token[0] == '\0')
		return CALLTOKEN_MISSING;
	if (calltoken_parse(token, &expires, &head_len, mac) != 0)
		return CALLTOKEN_MALFORMED;
	return expires < now ? CALLTOKEN_EXPIRED : CALLTOKEN_OK;
}

enum calltoken_result calltoken_verify(const struct calltoken_key *k, const char *token,
                                       const char *call_sid, int64_t now)
{
	unsigned char got[SIG_MAC_LEN], want[SIG_MAC_LEN];
	int64_t expires;
	size_t head_len;
	bool match;

	if (token == NULL || token[0] == '\0')
		return CALLTOKEN_MISSING;
	if (calltoken_parse(token, &expires, &head_len, got) != 0)
		return CALLTOKEN_MALFORMED;
	if (expires < now)
		return CALLTOKEN_EXPIRED;
	if (calltoken_mac(k, token, head_len, call_sid, want) != 0)
		return CALLTOKEN_MISMATCH;
	match = CRYPTO_memcmp(got, want, sizeof want) == 0;
	OPENSSL_cleanse(want, sizeof want);
	return match ? CALLTOKEN_OK : CALLTOKEN_MISMATCH;
}

const char *calltoken_result_str(enum calltoken_result r)
{
	switch (r) {
	case CALLTOKEN_OK:
		return "ok";
	case CALLTOKEN_MISSING:
		return "missing";
	case CALLTOKEN_MALFORMED:
		return "malformed";
	case CALLTOKEN_EXPIRED:
		return "expired";
	case CALLTOKEN_MISMATCH:
		return "mismatch";
	}
	return "unknown";
}
