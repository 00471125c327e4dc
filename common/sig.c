/* sig: ElevenLabs webhook signatures (HMAC-SHA256 over "<t>.<body>"), sign and verify. */
#include "sig.h"

#include <ctype.h>
#include <inttypes.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define SIG_HEADER_MAX 4096 /* longer headers are malformed, not parsed */
#define SIG_MAX_V0     8    /* at most this many candidate signatures are compared */
#define SIG_T_DIGITS   18   /* enough for any unix time, small enough to never overflow */
#define SIG_BLOCK      64   /* SHA-256 block size: the HMAC key length */

struct sig_key {
	EVP_MD *md;        /* SHA-256, fetched once */
	EVP_MD_CTX *inner; /* SHA-256 state after the key XOR ipad block */
	EVP_MD_CTX *outer; /* SHA-256 state after the key XOR opad block */
};

/* Starts a SHA-256 state on one 64-byte block: the key XOR pad. Returns 0 or -1. */
static int sig_pad_state(EVP_MD_CTX *ctx, const EVP_MD *md, const unsigned char key[SIG_BLOCK],
                         unsigned char x)
{
	unsigned char pad[SIG_BLOCK];
	int ok;

	for (size_t i = 0; i < SIG_BLOCK; i++)
		pad[i] = key[i] ^ x;
	ok = EVP_DigestInit_ex(ctx, md, NULL) == 1 && EVP_DigestUpdate(ctx, pad, SIG_BLOCK) == 1;
	OPENSSL_cleanse(pad, sizeof pad);
	return ok ? 0 : -1;
}

struct sig_key *sig_key_new(const char *secret)
{
	struct sig_key *k;
	unsigned char key[SIG_BLOCK] = {0};
	size_t klen;

	if (secret == NULL)
		return NULL;
	k = calloc(1, sizeof *k);
	if (k == NULL)
		return NULL;
	k->md = EVP_MD_fetch(NULL, "SHA256", NULL);
	k->inner = EVP_MD_CTX_new();
	k->outer = EVP_MD_CTX_new();
	if (k->md == NULL || k->inner == NULL || k->outer == NULL)
		goto fail;
	klen = strlen(secret);
	if (klen > SIG_BLOCK) {
		/* longer keys are hashed first */
		if (EVP_Digest(secret, klen, key, NULL, k->md, NULL) != 1)
			goto fail;
	} else {
		memcpy(key, secret, klen);
	}
	if (sig_pad_state(k->inner, k->md, key, 0x36) != 0 ||
	    sig_pad_state(k->outer, k->md, key, 0x5c) != 0)
		goto fail;
	OPENSSL_cleanse(key, sizeof key);
	return k;
fail:
	OPENSSL_cleanse(key, sizeof key);
	sig_key_free(k);
	return NULL;
}

void sig_key_free(struct sig_key *k)
{
	if (k == NULL)
		return;
	EVP_MD_CTX_free(k->inner);
	EVP_MD_CTX_free(k->outer);
	EVP_MD_free(k->md);
	free(k);
}

/* Writes "<t>." into out (>= 32 bytes); returns its length. Digits by hand: snprintf costs as
 * much as hashing a short webhook. */
static int sig_prefix(int64_t t, char *out, size_t size)
{
	char rev[24];
	int n = 0;

	if (t < 0)
		return snprintf(out, size, "%" PRId64 ".", t);
	do {
		rev[n++] = (char)('0' + t % 10);
		t /= 10;
	} while (t > 0);
	for (int i = 0; i < n; i++)
		out[i] = rev[n - 1 - i];
	out[n] = '.';
	return n + 1;
}

/* HMAC-SHA256 of a || b into mac (RFC 2104). The pads were hashed once in sig_key_new; here the
 * two states are copied and only the message and the inner digest are hashed, in place.
 * OpenSSL 3's one-shot HMAC() fetches HMAC and SHA-256 by name (under a lock) and builds three
 * digest contexts on every call. Returns 0 or -1. */
int sig_key_hmac(const struct sig_key *k, const void *a, size_t alen, const void *b, size_t blen,
                 unsigned char mac[SIG_MAC_LEN])
{
	unsigned char inner[SIG_MAC_LEN];
	unsigned int n_in = 0, n_out = 0;
	EVP_MD_CTX *ctx = NULL;
	int rc = -1;

	if (k == NULL || (a == NULL && alen > 0) || (b == NULL && blen > 0))
		return -1;
	ctx = EVP_MD_CTX_new();
	if (ctx == NULL)
		goto out;
	if (EVP_MD_CTX_copy_ex(ctx, k->inner) != 1 ||
	    (alen > 0 && EVP_DigestUpdate(ctx, a, alen) != 1) ||
	    (blen > 0 && EVP_DigestUpdate(ctx, b, blen) != 1) ||
	    EVP_DigestFinal_ex(ctx, inner, &n_in) != 1 || n_in != SIG_MAC_LEN)
		goto out;
	if (EVP_MD_CTX_copy_ex(ctx, k->outer) != 1 ||
	    EVP_DigestUpdate(ctx, inner, sizeof inner) != 1 ||
	    EVP_DigestFinal_ex(ctx, mac, &n_out) != 1 || n_out != SIG_MAC_LEN)
		goto out;
	rc = 0;
out:
	OPENSSL_cleanse(inner, sizeof inner);
	EVP_MD_CTX_free(ctx);
	return rc;
}

/* HMAC-SHA256(secret, "<t>.<body>") into mac. Returns 0 or -1. */
static int sig_mac(const struct sig_key *k, int64_t t, const void *body, size_t len,
                   unsigned char mac[SIG_MAC_LEN])
{
	char prefix[32];
	int n = sig_prefix(t, prefix, sizeof prefix);

	if (n < 0)
		return -1;
	return sig_key_hmac(k, prefix, (size_t)n, body, len, mac);
}

int sig_sign(const char *secret, int64_t t, const void *body, size_t len, char *out,
             size_t out_size)
{
	unsigned char mac[SIG_MAC_LEN];
	char hex[2 * SIG_MAC_LEN + 1];
	struct sig_key *k = sig_key_new(secret);
	int n = sig_mac(k, t, body, len, mac);

	sig_key_free(k);
	if (n < 0)
		return -1;
	for (size_t i = 0; i < SIG_MAC_LEN; i++)
		snprintf(hex + 2 * i, 3, "%02x", mac[i]);
	n = snprintf(out, out_size, "t=%" PRId64 ",v0=%s", t, hex);
	return n < 0 || (size_t)n >= out_size ? -1 : 0;
}

static int sig_hexval(int c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	c = tolower(c);
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	return -1;
}

/* The parsed header: one t, up to SIG_MAX_V0 decoded signatures. */
struct sig_parsed {
	int64_t t;
	bool have_t;
	unsigned char v0[SIG_MAX_V0][SIG_MAC_LEN];
	size_t nv0;
};

/* Parses one "key=value" item (already trimmed, len > 0). Returns 0 or -1 (malformed). */
static int sig_parse_item(const char *item, size_t len, struct sig_parsed *p)
{
	const char *eq = memchr(item, '=', len);
	const char *val;
	size_t klen, vlen;

	if (eq == NULL)
		return -1;
	klen = (size_t)(eq - item);
	val = eq + 1;
	vlen = len - klen - 1;
	/* Tolerate blanks around '=' (the item's ends are already trimmed). */
	while (klen > 0 && isspace((unsigned char)item[klen - 1]))
		klen--;
	while (vlen > 0 && isspace((unsigned char)*val)) {
		val++;
		vlen--;
	}
	if (klen == 1 && item[0] == 't') {
		int64_t t = 0;

		if (p->have_t || vlen == 0 || vlen > SIG_T_DIGITS)
			return -1;
		for (size_t i = 0; i < vlen; i++) {
			if (!isdigit((unsigned char)val[i]))
				return -1;
			t = t * 10 + (val[i] - '0');
		}
		p->t = t;
		p->have_t = true;
		return 0;
	}
	if (klen == 2 && item[0] == 'v' && item[1] == '0') {
		if (vlen != 2 * SIG_MAC_LEN || p->nv0 == SIG_MAX_V0)
			return -1;
		for (size_t i = 0; i < SIG_MAC_LEN; i++) {
			int hi = sig_hexval((unsigned char)val[2 * i]);
			int lo = sig_hexval((unsigned char)val[2 * i + 1]);

			if (hi < 0 || lo < 0)
				return -1;
			p->v0[p->nv0][i] = (unsigned char)(hi << 4 | lo);
		}
		p->nv0++;
		return 0;
	}
	return 0; /* unknown keys (other schemes) are ignored */
}

static int sig_parse(const char *header, struct sig_parsed *p)
{
	const char *s = header;

	memset(p, 0, sizeof *p);
	if (strlen(header) > SIG_HEADER_MAX)
		return -1;
	while (*s != '\0') {
		size_t n = strcspn(s, ",");
		const char *b = s, *e = s + n;

		while (b < e && isspace((unsigned char)*b))
			b++;
		while (e > b && isspace((unsigned char)e[-1]))
			e--;
		if (e > b && sig_parse_item(b, (size_t)(e - b), p) < 0)
			return -1;
		s += n;
		if (*s == ',')
			s++;
	}
	return p->have_t && p->nv0 > 0 ? 0 : -1;
}

/* Parses header into *p and judges its t at now: everything but the MAC. */
static enum sig_result sig_parse_fresh(const char *header, int64_t now, long max_age_s,
                                       long max_skew_s, struct sig_parsed *p)
{
	const char *h = header;

	while (h != NULL && isspace((unsigned char)*h))
		h++;
	if (h == NULL || *h == '\0')
		return SIG_MISSING;
	if (sig_parse(h, p) < 0)
		return SIG_MALFORMED;
	if (now - p->t > max_age_s)
		return SIG_TOO_OLD;
	if (p->t - now > max_skew_s)
		return SIG_FUTURE;
	return SIG_OK;
}

enum sig_result sig_check_header(const char *header, int64_t now, long max_age_s, long max_skew_s)
{
	struct sig_parsed p;

	return sig_parse_fresh(header, now, max_age_s, max_skew_s, &p);
}

enum sig_result sig_key_verify_t(const struct sig_key *k, const char *header, const void *body,
                                 size_t len, int64_t now, long max_age_s, long max_skew_s,
                                 int64_t *t)
{
	struct sig_parsed p;
	unsigned char mac[SIG_MAC_LEN];
	bool match = false;
	enum sig_result r = sig_parse_fresh(header, now, max_age_s, max_skew_s, &p);

	if (r != SIG_OK)
		return r;
	if (sig_mac(k, p.t, body, len, mac) < 0)
		return SIG_MISMATCH;
	/* Compare against every candidate, without stopping early. */
	for (size_t i = 0; i < p.nv0; i++)
		match |= CRYPTO_memcmp(mac, p.v0[i], SIG_MAC_LEN) == 0;
	OPENSSL_cleanse(mac, sizeof mac);
	if (match && t != NULL)
		*t = p.t;
	return match ? SIG_OK : SIG_MISMATCH;
}

enum sig_result sig_key_verify(const struct sig_key *k, const char *header, const void *body,
                               size_t len, int64_t now, long max_age_s, long max_skew_s)
{
	return sig_key_verify_t(k, header, body, len, now, max_age_s, max_skew_s, NULL);
}

enum sig_result sig_verify(const char *secret, const char *header, const void *body, size_t len,
                           int64_t now, long max_age_s, long max_skew_s)
{
	struct sig_key *k = sig_key_new(secret);
	enum sig_result r = sig_key_verify(k, header, body, len, now, max_age_s, max_skew_s);

	sig_key_free(k);
	return r;
}

const char *sig_result_str(enum sig_result r)
{
	switch (r) {
	case SIG_OK:
		return "ok";
	case SIG_MISSING:
		return "missing";
	case SIG_MALFORMED:
		return "malformed";
	case SIG_TOO_OLD:
		return "too_old";
	case SIG_FUTURE:
		return "future";
	case SIG_MISMATCH:
		return "mismatch";
	}
	return "unknown";
}
