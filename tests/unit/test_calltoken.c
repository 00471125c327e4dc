/* test_calltoken: per-call tool tokens: a vector computed independently, the binding to one
 * call_sid and one secret, expiry, and every malformed spelling. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "calltoken.h"

#define SECRET "call-token-secret-0123"
#define SID    "EL_1001_2025-11-21T10:30:00Z"
#define EXP    1763800000
#define NOW    1763721000
/* printf '%s' 'v1.1763800000.EL_1001_2025-11-21T10:30:00Z' |
 *   openssl dgst -sha256 -hmac 'call-token-secret-0123' */
#define MAC   "331b46d693ad6dd57fff49ea6ac4dedcfc18e0b57c38615ede046f0ece128ade"
#define TOKEN "v1.1763800000." MAC

static void test_calltoken_vector(void **state)
{
	char out[CALLTOKEN_SIZE];

	(void)state;
	assert_int_equal(calltoken_sign(SECRET, SID, EXP, out, sizeof out), 0);
	assert_string_equal(out, TOKEN);
	assert_true(strlen(out) < CALLTOKEN_SIZE);
	/* too small a buffer, a negative or absurd expiry, no call_sid: errors, no token */
	assert_int_equal(calltoken_sign(SECRET, SID, EXP, out, 40), -1);
	assert_int_equal(calltoken_sign(SECRET, SID, -1, out, sizeof out), -1);
	assert_int_equal(calltoken_sign(SECRET, SID, 1000000000000LL, out, sizeof out), -1);
	assert_int_equal(calltoken_sign(SECRET, NULL, EXP, out, sizeof out), -1);
	assert_int_equal(calltoken_sign(NULL, SID, EXP, out, sizeof out), -1);
}

/* A token is good for its own call_sid under its own secret until it expires, and for nothing
 * else: the shared secret of the tool alone opens no call. */
static void test_calltoken_binding(void **state)
{
	struct calltoken_key *k = calltoken_key_new(SECRET);
	struct calltoken_key *other = calltoken_key_new("another-secret-012345");
	char tok[CALLTOKEN_SIZE], tok2[CALLTOKEN_SIZE];

	(void)state;
	assert_non_null(k);
	assert_non_null(other);
	assert_int_equal(calltoken_make(k, SID, EXP, tok, sizeof tok), 0);
	assert_int_equal(calltoken_verify(k, tok, SID, NOW), CALLTOKEN_OK);
	assert_int_equal(calltoken_verify(k, tok, SID, EXP), CALLTOKEN_OK); /* its last second */
	assert_int_equal(calltoken_verify(k, tok, SID, EXP + 1), CALLTOKEN_EXPIRED);
	assert_int_equal(calltoken_verify(k, tok, "EL_1002_2025-11-21T10:30:00Z", NOW),
	                 CALLTOKEN_MISMATCH);
	assert_int_equal(calltoken_verify(k, tok, SID "x", NOW), CALLTOKEN_MISMATCH);
	assert_int_equal(calltoken_verify(k, tok, "", NOW), CALLTOKEN_MISMATCH);
	assert_int_equal(calltoken_verify(other, tok, SID, NOW), CALLTOKEN_MISMATCH);
	/* a later expiry cannot be written in: the MAC covers it */
	memcpy(tok2, tok, sizeof tok);
	tok2[3] = '2';
	assert_int_equal(calltoken_verify(k, tok2, SID, NOW), CALLTOKEN_MISMATCH);
	/* tokens for two calls differ */
	assert_int_equal(calltoken_make(k, "EL_1002_2025-11-21T10:30:00Z", EXP, tok2, sizeof tok2),
	                 0);
	assert_string_not_equal(tok, tok2);
	/* calltoken_make and calltoken_sign agree */
	assert_int_equal(calltoken_sign(SECRET, SID, EXP, tok2, sizeof tok2), 0);
	assert_string_equal(tok, tok2);
	assert_int_equal(calltoken_verify(NULL, tok, SID, NOW), CALLTOKEN_MISMATCH);
	calltoken_key_free(k);
	calltoken_key_free(other);
	calltoken_key_free(NULL);
}

static void test_calltoken_malformed(void **state)
{
	static const struct {
		const char *token;
		enum calltoken_result want; /* of calltoken_check at NOW */
	} cases[] = {
	    {TOKEN, CALLTOKEN_OK},
	    {NULL, CALLTOKEN_MISSING},
	    {"", CALLTOKEN_MISSING},
	    {"v1.1700000000." MAC, CALLTOKEN_EXPIRED},
	    {"v2.1763800000." MAC, CALLTOKEN_MALFORMED},
	    {"V1.1763800000." MAC, CALLTOKEN_MALFORMED},
	    {"1763800000." MAC, CALLTOKEN_MALFORMED},
	    {"v1." MAC, CALLTOKEN_MALFORMED},
	    {"v1..", CALLTOKEN_MALFORMED},
	    {"v1", CALLTOKEN_MALFORMED},
	    {"v1.01763800000." MAC, CALLTOKEN_MALFORMED}, /* one spelling: no leading zero */
	    {"v1.-1763800000." MAC, CALLTOKEN_MALFORMED},
	    {"v1.9999999999999." MAC, CALLTOKEN_MALFORMED}, /* 13 digits */
	    {"v1.1763800000." MAC "0", CALLTOKEN_MALFORMED},
	    {"v1.1763800000." MAC " ", CALLTOKEN_MALFORMED},
	    {" v1.1763800000." MAC, CALLTOKEN_MALFORMED},
	    {"v1.1763800000.", CALLTOKEN_MALFORMED},
	    {"v1.1763800000.abc", CALLTOKEN_MALFORMED},
	    {"v1.1763800000.331B46D693AD6DD57FFF49EA6AC4DEDCFC18E0B57C38615EDE046F0ECE128ADE",
	     CALLTOKEN_MALFORMED}, /* lowercase hex only */
	    {"v1.1763800000,331b46d693ad6dd57fff49ea6ac4dedcfc18e0b57c38615ede046f0ece128ade",
	     CALLTOKEN_MALFORMED},
	};
	struct calltoken_key *k = calltoken_key_new(SECRET);

	(void)state;
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		enum calltoken_result r = calltoken_check(cases[i].token, NOW);
		enum calltoken_result v = calltoken_verify(k, cases[i].token, SID, NOW);

		if (r != cases[i].want || v != cases[i].want)
			fail_msg("case %zu (%s): check %s, verify %s, want %s", i,
			         cases[i].token ? cases[i].token : "(null)",
			         calltoken_result_str(r), calltoken_result_str(v),
			         calltoken_result_str(cases[i].want));
	}
	assert_string_equal(calltoken_result_str(CALLTOKEN_MISMATCH), "mismatch");
	calltoken_key_free(k);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_calltoken_vector),
	    cmocka_unit_test(test_calltoken_binding),
	    cmocka_unit_test(test_calltoken_malformed),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
