/* test_ingress_phone: North American numbers: normalisation to E.164 and the numbering plan's
 * rules (area code and exchange start with 2-9, no N11 service codes, no premium-rate 900 / 976),
 * one table row per rule. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "phone.h"

static const struct {
	const char *in;
	const char *want; /* E.164, or NULL: refused */
	const char *why;  /* refused: part of the reason */
} phone_cases[] = {
    /* spellings of one good number */
    {"(212) 555-0100", "+12125550100", NULL},
    {"1 212 555 0100", "+12125550100", NULL},
    {"1-212-555-0100", "+12125550100", NULL},
    {"212.555.0100", "+12125550100", NULL},
    {"+1 (212) 555-0100", "+12125550100", NULL},
    {"+12125550100", "+12125550100", NULL},
    {"2125550100", "+12125550100", NULL},
    {"12125550100", "+12125550100", NULL},
    /* the edges of the rules, on the good side */
    {"(201) 200-0000", "+12012000000", NULL}, /* lowest N: 2 */
    {"(999) 999-9999", "+19999999999", NULL}, /* highest */
    {"(212) 210-0100", "+12122100100", NULL}, /* N10 is no service code */
    {"(221) 555-0100", "+12215550100", NULL}, /* 1 in second place only */
    {"(212) 901-0100", "+12129010100", NULL}, /* 9 then 0: no N11 */
    {"(901) 555-0100", "+19015550100", NULL}, /* 901 is Memphis, not premium */
    {"(212) 977-0100", "+12129770100", NULL}, /* only 976 is premium */
    {"(976) 555-0100", "+19765550100", NULL}, /* 976 as an area code is not the premium NXX */
    {"(212) 900-0100", "+12129000100", NULL}, /* 900 as an exchange is not the premium NPA */
    /* area code (NPA) */
    {"(011) 555-0100", NULL, "area code 011 starts with 0"},
    {"(123) 555-0100", NULL, "area code 123 starts with 1"},
    {"1 (123) 555-0100", NULL, "area code 123 starts with 1"},
    {"(211) 555-0100", NULL, "area code 211 is an N11"},
    {"(411) 555-0100", NULL, "area code 411 is an N11"},
    {"(911) 555-0100", NULL, "area code 911 is an N11"},
    {"+1 911 555 0100", NULL, "area code 911 is an N11"},
    {"(900) 555-0100", NULL, "area code 900 is premium-rate"},
    {"1-900-555-0100", NULL, "area code 900 is premium-rate"},
    /* exchange (NXX) */
    {"(212) 055-0100", NULL, "exchange 055 starts with 0"},
    {"(212) 155-0100", NULL, "exchange 155 starts with 1"},
    {"(212) 121-0100", NULL, "exchange 121 starts with 1"},
    {"+1 555 010 0002", NULL, "exchange 010 starts with 0"},
    {"(212) 311-0100", NULL, "exchange 311 is an N11"},
    {"(212) 911-0100", NULL, "exchange 911 is an N11"},
    {"(212) 976-0100", NULL, "exchange 976 is premium-rate"},
    {"1-212-976-1234", NULL, "exchange 976 is premium-rate"},
    /* shape */
    {"", NULL, "not 10 digits"},
    {"12345", NULL, "not 10 digits"},
    {"555-0100", NULL, "not 10 digits"},
    {"212555010", NULL, "not 10 digits"},
    {"212-555-01000", NULL, "not 10 digits"}, /* 11 digits, not starting with 1 */
    {"121255501000", NULL, "not 10 digits"},
    {"+2125550100", NULL, "not 10 digits"}, /* a + promises a country code: 212 is not +1 */
    {"+44 20 7946 0958", NULL, "not 10 digits"},
    {"2125550100x12", NULL, "only digits"},
    {"1-800-FLOWERS", NULL, "only digits"},
    {"212_555_0100", NULL, "only digits"},
    {"++12125550100", NULL, "'+' only once"},
    {"212+5550100", NULL, "'+' only once"},
    {"+1 212 555 0100 0000 0000 0000 000", NULL, "longer than 32"},
};

static void test_phone_table(void **state)
{
	char out[PHONE_E164_SIZE], err[256];

	(void)state;
	for (size_t i = 0; i < sizeof phone_cases / sizeof phone_cases[0]; i++) {
		int rc;

		err[0] = '\0';
		rc = phone_e164(phone_cases[i].in, out, sizeof out, err, sizeof err);
		if (phone_cases[i].want != NULL) {
			if (rc != 0)
				fail_msg("'%s' was refused: %s", phone_cases[i].in, err);
			if (strcmp(out, phone_cases[i].want) != 0)
				fail_msg("'%s' became %s, want %s", phone_cases[i].in, out,
				         phone_cases[i].want);
		} else if (rc == 0) {
			fail_msg("'%s' was accepted as %s", phone_cases[i].in, out);
		} else if (strstr(err, phone_cases[i].why) == NULL) {
			fail_msg("'%s': reason '%s', want '%s'", phone_cases[i].in, err,
			         phone_cases[i].why);
		}
	}
}

static void test_phone_arguments(void **state)
{
	char out[PHONE_E164_SIZE], err[64];

	(void)state;
	assert_int_equal(phone_e164(NULL, out, sizeof out, err, sizeof err), -1);
	assert_int_equal(phone_e164("2125550100", out, 8, err, sizeof err), -1); /* too small */
	assert_int_equal(phone_e164("2125550100", out, sizeof out, err, sizeof err), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_phone_table),
	    cmocka_unit_test(test_phone_arguments),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
