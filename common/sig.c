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
#define SIG_MAC_LEN    32
#define SIG_T_DIGITS   18 /* enough for any unix time, small enough to never overflow */
#define SIG_BLOCK      64 /* SHA-256 block size: the HMAC key length */

/* HMAC-SHA256(secret, "<t>.<body>") into mac (RFC 2104, on an explicitly fetched SHA-256).
 * OpenSSL 3's one-shot HMAC() fetches the HMAC and SHA-256 implementations by name and builds
 * three digest contexts on every call: ~3 us per webhook against ~0.8 us here (the signed text
 * is hashed in place, not copied). Returns 0 or -1. */
static int sig_mac(const char *secret, int64_t t, const void *body, size_t len,
                   unsigned char mac[SIG_MAC_LEN])
{
	unsigned char key[SIG_BLOCK] = {0}, pad[SIG_BLOCK], inner[SIG_MAC_LEN];
	char prefix[32];
	size_t klen;
	unsigned int n_in = 0, n_out = 0;
	int n = snprintf(prefix, sizeof prefix, "%" PRId64 ".", t);
	EVP_MD *md = NULL;
	EVP_MD_CTX *ctx = NULL;
	int rc = -1;

	if (secret == NULL || n < 0 || (body == NULL && len > 0))
		return -1;
	md = EVP_MD_fetch(NULL, "SHA256", NULL);
	ctx = EVP_MD_CTX_new();
	if (md == NULL || ctx == NULL)
		goto out;
	klen = strlen(secret);
	if (klen > SIG_BLOCK) {
		/* longer keys are hashed first */
		if (EVP_Digest(secret, klen, key, NULL, md, NULL) != 1)
			goto out;
	} else {
		memcpy(key, secret, klen);
	}
	for (size_t i = 0; i < SIG_BLOCK; i++)
		pad[i] = key[i] ^ 0x36;
	if (EVP_DigestInit_ex(ctx, md, NULL) != 1 || EVP_DigestUpdate(ctx, pad, SIG_BLOCK) != 1 ||
	    EVP_DigestUpdate(ctx, prefix, (size_t)n) != 1 ||
	    (len > 0 && EVP_DigestUpdate(ctx, body, len) != 1) ||
	    EVP_DigestFinal_ex(ctx, inner, &n_in) != 1 || n_in != SIG_MAC_LEN)
		goto out;
	for (size_t i = 0; i < SIG_BLOCK; i++)
		pad[i] = key[i] ^ 0x5c;
	if (EVP_DigestInit_ex(ctx, md, NULL) != 1 || EVP_DigestUpdate(ctx, pad, SIG_BLOCK) != 1 ||
	    EVP_DigestUpdate(ctx, inner, sizeof inner) != 1 ||
	    EVP_DigestFinal_ex(ctx, mac, &n_out) != 1 || n_out != SIG_MAC_LEN)
		goto out;
	rc = 0;
out:
	OPENSSL_cleanse(key, sizeof key);
	OPENSSL_cleanse(pad, sizeof pad);
	OPENSSL_cleanse(inner, sizeof inner);
	EVP_MD_CTX_free(ctx);
	EVP_MD_free(md);
	return rc;
}

int sig_sign(const char *secret, int64_t t, const void *body, size_t len, char *out,
             size_t out_size)
{
	unsigned char mac[SIG_MAC_LEN];
	char hex[2 * SIG_MAC_LEN + 1];
	int n;

	if (sig_mac(secret, t, body, len, mac) < 0)
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

enum sig_result sig_verify(const char *secret, const char *header, const void *body, size_t len,
                           int64_t now, long max_age_s, long max_skew_s)
{
	struct sig_parsed p;
	unsigned char mac[SIG_MAC_LEN];
	bool match = false;
	const char *h = header;

	while (h != NULL && isspace((unsigned char)*h))
		h++;
	if (h == NULL || *h == '\0')
		return SIG_MISSING;
	if (sig_parse(h, &p) < 0)
		return SIG_MALFORMED;
	if (now - p.t > max_age_s)
		return SIG_TOO_OLD;
	if (p.t - now > max_skew_s)
		return SIG_FUTURE;
	if (sig_mac(secret, p.t, body, len, mac) < 0)
		return SIG_MISMATCH;
	/* Compare against every candidate, without stopping early. */
	for (size_t i = 0; i < p.nv0; i++)
		match |= CRYPTO_memcmp(mac, p.v0[i], SIG_MAC_LEN) == 0;
	OPENSSL_cleanse(mac, sizeof mac);
	return match ? SIG_OK : SIG_MISMATCH;
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
