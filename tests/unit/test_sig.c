/* test_sig: webhook signature vectors: an independently computed HMAC, and every way to fail. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>
#include <inttypes.h>
#include <openssl/evp.h>
#include <pthread.h>

#include "sig.h"

#define SECRET "whsec_test_secret"
#define BODY                                                                              \
	"{\"call_sid\":\"EL_42_2025-11-21T10:30:00Z\",\"speaker\":\"agent\",\"message\":" \
	"\"Hello\"}"
#define T        1763721000
#define MAC      "e46546456ba88ed3f435470115a08406593683400d602ff2582ee26b5b2681fd"
#define MAC_UP   "E46546456BA88ED3F435470115A08406593683400D602FF2582EE26B5B2681FD"
#define OTHER    "0000000000000000000000000000000000000000000000000000000000000000"
#define MAX_AGE  1800
#define MAX_SKEW 300

/* MAC was computed with OpenSSL's CLI when this test was written:
 *   printf '%s' '1763721000.<BODY>' | openssl dgst -sha256 -hmac 'whsec_test_secret'
 * and, for an empty body:
 *   printf '%s' '1700000000.' | openssl dgst -sha256 -hmac 'key' */
static void test_sig_sign_vector(void **state)
{
	char out[128];

	(void)state;
	assert_int_equal(sig_sign(SECRET, T, BODY, strlen(BODY), out, sizeof out), 0);
	assert_string_equal(out, "t=1763721000,v0=" MAC);
	assert_int_equal(sig_sign("key", 1700000000, "", 0, out, sizeof out), 0);
	assert_string_equal(
	    out,
	    "t=1700000000,v0=0f1cc1f811f42fd12af9618acf321769899fa521fe07a642f70a61785e130770");
	/* Too small an output buffer is an error, not a truncated header. */
	assert_int_equal(sig_sign(SECRET, T, BODY, strlen(BODY), out, 40), -1);
}

static const struct {
	const char *name;
	const char *secret;
	const char *header; /* NULL: no header */
	const char *body;
	int64_t now;
	enum sig_result want;
} verify_cases[] = {
    {"valid", SECRET, "t=1763721000,v0=" MAC, BODY, T, SIG_OK},
    {"valid, 30 min old", SECRET, "t=1763721000,v0=" MAC, BODY, T + MAX_AGE, SIG_OK},
    {"valid, clock behind by skew", SECRET, "t=1763721000,v0=" MAC, BODY, T - MAX_SKEW, SIG_OK},
    {"uppercase hex", SECRET, "t=1763721000,v0=" MAC_UP, BODY, T, SIG_OK},
    {"whitespace", SECRET, "  t = 1763721000 ,\tv0=" MAC " ", BODY, T, SIG_OK},
    {"whitespace around items", SECRET, " t=1763721000 , v0=" MAC " ", BODY, T, SIG_OK},
    {"v0 first", SECRET, "v0=" MAC ",t=1763721000", BODY, T, SIG_OK},
    {"unknown keys", SECRET, "t=1763721000,v1=abc,scheme=x,v0=" MAC, BODY, T, SIG_OK},
    {"empty items", SECRET, ",t=1763721000,,v0=" MAC ",", BODY, T, SIG_OK},
    {"multiple v0, good last", SECRET, "t=1763721000,v0=" OTHER ",v0=" MAC, BODY, T, SIG_OK},
    {"multiple v0, good first", SECRET, "t=1763721000,v0=" MAC ",v0=" OTHER, BODY, T, SIG_OK},
    {"multiple v0, none good", SECRET, "t=1763721000,v0=" OTHER ",v0=" OTHER, BODY, T,
     SIG_MISMATCH},
    {"wrong secret", "whsec_other", "t=1763721000,v0=" MAC, BODY, T, SIG_MISMATCH},
    {"tampered body", SECRET, "t=1763721000,v0=" MAC, BODY " ", T, SIG_MISMATCH},
    {"tampered t", SECRET, "t=1763721001,v0=" MAC, BODY, T, SIG_MISMATCH},
    {"too old", SECRET, "t=1763721000,v0=" MAC, BODY, T + MAX_AGE + 1, SIG_TOO_OLD},
    {"future", SECRET, "t=1763721000,v0=" MAC, BODY, T - MAX_SKEW - 1, SIG_FUTURE},
    {"missing", SECRET, NULL, BODY, T, SIG_MISSING},
    {"empty", SECRET, "", BODY, T, SIG_MISSING},
    {"blank", SECRET, "   ", BODY, T, SIG_MISSING},
    {"no t", SECRET, "v0=" MAC, BODY, T, SIG_MALFORMED},
    {"no v0", SECRET, "t=1763721000", BODY, T, SIG_MALFORMED},
    {"two t", SECRET, "t=1763721000,t=1763721000,v0=" MAC, BODY, T, SIG_MALFORMED},
    {"t not a number", SECRET, "t=abc,v0=" MAC, BODY, T, SIG_MALFORMED},
    {"t negative", SECRET, "t=-5,v0=" MAC, BODY, T, SIG_MALFORMED},
    {"t empty", SECRET, "t=,v0=" MAC, BODY, T, SIG_MALFORMED},
    {"t huge", SECRET, "t=99999999999999999999999,v0=" MAC, BODY, T, SIG_MALFORMED},
    {"v0 short", SECRET, "t=1763721000,v0=e465464", BODY, T, SIG_MALFORMED},
    {"v0 long", SECRET, "t=1763721000,v0=" MAC "00", BODY, T, SIG_MALFORMED},
    {"v0 not hex", SECRET,
     "t=1763721000,v0=g46546456ba88ed3f435470115a08406593683400d602ff2582ee26b5b2681fd", BODY, T,
     SIG_MALFORMED},
    {"item without =", SECRET, "t=1763721000,garbage,v0=" MAC, BODY, T, SIG_MALFORMED},
    {"semicolons", SECRET, "t=1763721000;v0=" MAC, BODY, T, SIG_MALFORMED},
    {"raw hex only", SECRET, MAC, BODY, T, SIG_MALFORMED},
};

static void test_sig_verify_table(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof verify_cases / sizeof verify_cases[0]; i++) {
		enum sig_result r = sig_verify(verify_cases[i].secret, verify_cases[i].header,
		                               verify_cases[i].body, strlen(verify_cases[i].body),
		                               verify_cases[i].now, MAX_AGE, MAX_SKEW);

		if (r != verify_cases[i].want)
			fail_msg("%s: got %s, want %s", verify_cases[i].name, sig_result_str(r),
			         sig_result_str(verify_cases[i].want));
	}
}

/* The header-stage check agrees with the full verification on everything but the MAC: the
 * same refusal for a missing, malformed, stale or future header, SIG_OK where only the MAC (which
 * needs the body) decides. */
static void test_sig_check_header_table(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof verify_cases / sizeof verify_cases[0]; i++) {
		enum sig_result want =
		    verify_cases[i].want == SIG_MISMATCH ? SIG_OK : verify_cases[i].want;
		enum sig_result r = sig_check_header(verify_cases[i].header, verify_cases[i].now,
		                                     MAX_AGE, MAX_SKEW);

		if (r != want)
			fail_msg("%s: got %s, want %s", verify_cases[i].name, sig_result_str(r),
			         sig_result_str(want));
	}
	/* well-formed and fresh, whatever the MAC: an attacker can write one, so the body is
	 * still verified */
	assert_int_equal(sig_check_header("t=1763721000,v0=" OTHER, T, MAX_AGE, MAX_SKEW), SIG_OK);
}

static void test_sig_verify_bounded(void **state)
{
	char header[8192];
	size_t n;

	(void)state;
	/* A header padded past the length limit with ignorable items is refused unparsed. */
	n = (size_t)snprintf(header, sizeof header, "t=1763721000,v0=%s", MAC);
	while (n + 4 < sizeof header - 1) {
		memcpy(header + n, ",x=y", 4);
		n += 4;
	}
	header[n] = '\0';
	assert_int_equal(sig_verify(SECRET, header, BODY, strlen(BODY), T, MAX_AGE, MAX_SKEW),
	                 SIG_MALFORMED);
	/* Dozens of v0 entries: beyond the cap the header is malformed, not a CPU sink. */
	n = (size_t)snprintf(header, sizeof header, "t=1763721000");
	for (int i = 0; i < 40; i++)
		n += (size_t)snprintf(header + n, sizeof header - n, ",v0=%s", OTHER);
	assert_int_equal(sig_verify(SECRET, header, BODY, strlen(BODY), T, MAX_AGE, MAX_SKEW),
	                 SIG_MALFORMED);
}

static void test_sig_round_trip_binary(void **state)
{
	/* The body is raw bytes: NULs and non-UTF-8 are signed and verified as they are. */
	const unsigned char body[] = {0x00, 0xff, 0x7b, 0x00, 0x22, 0x80};
	char header[128];

	(void)state;
	assert_int_equal(sig_sign(SECRET, 1000, body, sizeof body, header, sizeof header), 0);
	assert_int_equal(sig_verify(SECRET, header, body, sizeof body, 1000, MAX_AGE, MAX_SKEW),
	                 SIG_OK);
	assert_int_equal(sig_verify(SECRET, header, body, sizeof body - 1, 1000, MAX_AGE, MAX_SKEW),
	                 SIG_MISMATCH);
}

/* The precomputed key blocks give OpenSSL's own HMAC for keys shorter than, as long as and
 * longer than the 64-byte block, and bodies of any length. */
static void test_sig_key_matches_openssl_hmac(void **state)
{
	char secret[200], body[300], header[128], want[128];
	unsigned char mac[32];
	size_t maclen = 0;

	(void)state;
	for (size_t kl = 1; kl < sizeof secret; kl += 7) {
		for (size_t i = 0; i < kl; i++)
			secret[i] = (char)('!' + (i * 31 + kl) % 90);
		secret[kl] = '\0';
		for (size_t bl = 0; bl < sizeof body; bl += 61) {
			struct sig_key *k = sig_key_new(secret);
			char text[400];
			int tl;

			for (size_t i = 0; i < bl; i++)
				body[i] = (char)(i * 7 + kl);
			tl = snprintf(text, sizeof text, "%d.", T);
			memcpy(text + tl, body, bl);
			assert_non_null(EVP_Q_mac(NULL, "HMAC", NULL, "SHA256", NULL, secret, kl,
			                          (unsigned char *)text, (size_t)tl + bl, mac,
			                          sizeof mac, &maclen));
			assert_int_equal(maclen, 32);
			tl = snprintf(want, sizeof want, "t=%d,v0=", T);
			for (size_t i = 0; i < 32; i++)
				tl += snprintf(want + tl, sizeof want - (size_t)tl, "%02x", mac[i]);
			assert_int_equal(sig_sign(secret, T, body, bl, header, sizeof header), 0);
			assert_string_equal(header, want);
			assert_non_null(k);
			assert_int_equal(sig_key_verify(k, want, body, bl, T, MAX_AGE, MAX_SKEW),
			                 SIG_OK);
			sig_key_free(k);
		}
	}
	assert_null(sig_key_new(NULL));
	sig_key_free(NULL);
}

struct sig_thread_arg {
	const struct sig_key *key;
	int ok, mismatch;
};

static void *sig_thread(void *opaque)
{
	struct sig_thread_arg *a = opaque;
	char header[128];

	snprintf(header, sizeof header, "t=%d,v0=%s", T, MAC);
	for (int i = 0; i < 20000; i++) {
		/* the same key, alternately right and wrong: verifying never changes it */
		if (sig_key_verify(a->key, header, BODY, strlen(BODY), T, MAX_AGE, MAX_SKEW) ==
		    SIG_OK)
			a->ok++;
		if (sig_key_verify(a->key, header, BODY, strlen(BODY) - 1, T, MAX_AGE, MAX_SKEW) ==
		    SIG_MISMATCH)
			a->mismatch++;
	}
	return NULL;
}

/* One key, used by several threads at once (the ingress's HTTP threads share it). */
static void test_sig_key_shared_by_threads(void **state)
{
	struct sig_key *k = sig_key_new(SECRET);
	struct sig_thread_arg args[4];
	pthread_t th[4];

	(void)state;
	assert_non_null(k);
	for (int i = 0; i < 4; i++) {
		args[i] = (struct sig_thread_arg){.key = k};
		assert_int_equal(pthread_create(&th[i], NULL, sig_thread, &args[i]), 0);
	}
	for (int i = 0; i < 4; i++) {
		assert_int_equal(pthread_join(th[i], NULL), 0);
		assert_int_equal(args[i].ok, 20000);
		assert_int_equal(args[i].mismatch, 20000);
	}
	sig_key_free(k);
}

static void test_sig_result_str(void **state)
{
	(void)state;
	assert_string_equal(sig_result_str(SIG_OK), "ok");
	assert_string_equal(sig_result_str(SIG_MISSING), "missing");
	assert_string_equal(sig_result_str(SIG_MALFORMED), "malformed");
	assert_string_equal(sig_result_str(SIG_TOO_OLD), "too_old");
	assert_string_equal(sig_result_str(SIG_FUTURE), "future");
	assert_string_equal(sig_result_str(SIG_MISMATCH), "mismatch");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_sig_sign_vector),
	    cmocka_unit_test(test_sig_verify_table),
	    cmocka_unit_test(test_sig_check_header_table),
	    cmocka_unit_test(test_sig_verify_bounded),
	    cmocka_unit_test(test_sig_round_trip_binary),
	    cmocka_unit_test(test_sig_key_matches_openssl_hmac),
	    cmocka_unit_test(test_sig_key_shared_by_threads),
	    cmocka_unit_test(test_sig_result_str),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
