/* phone: North American numbers to E.164, with the numbering plan's validity rules. */
#include "phone.h"

#include <stdbool.h>
#include <stdio.h>
#include <string.h>

/* Premium-rate codes: callers pay extra for these, and nobody needs a driver reached on one. */
static const char *const phone_premium_npa[] = {"900"};
static const char *const phone_premium_nxx[] = {"976"};

static bool phone_in(const char *code, const char *const *list, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (strncmp(code, list[i], 3) == 0)
			return true;
	return false;
}

/* The rules a three-digit code (area code or exchange) shares: it starts with 2-9 and is not
 * an N11 service code. what names it in errstr. Returns 0 or -1. */
static int phone_code_ok(const char *code, const char *what, char *errstr, size_t errstr_size)
{
	if (code[0] < '2') {
		snprintf(errstr, errstr_size, "%s %.3s starts with %c (must be 2-9)", what, code,
		         code[0]);
		return -1;
	}
	if (code[1] == '1' && code[2] == '1') {
		snprintf(errstr, errstr_size, "%s %.3s is an N11 service code", what, code);
		return -1;
	}
	return 0;
}

/* Collects the digits of in into digits (>= PHONE_INPUT_MAX + 1); *plus: a leading + was seen.
 * Returns the count, or -1 with errstr for a character that is no digit or separator. */
static int phone_digits(const char *in, char *digits, bool *plus, char *errstr, size_t errstr_size)
{
	int nd = 0;

	*plus = false;
	for (size_t i = 0; in[i] != '\0'; i++) {
		char c = in[i];

		if (c >= '0' && c <= '9') {
			digits[nd++] = c;
		} else if (c == '+') {
			if (*plus || nd > 0) {
				snprintf(errstr, errstr_size, "'+' only once, before the digits");
				return -1;
			}
			*plus = true;
		} else if (c != ' ' && c != '-' && c != '.' && c != '(' && c != ')') {
			snprintf(errstr, errstr_size,
			         "only digits, blanks and - . ( ) + are allowed");
			return -1;
		}
	}
	digits[nd] = '\0';
	return nd;
}

int phone_e164(const char *in, char *out, size_t size, char *errstr, size_t errstr_size)
{
	char digits[PHONE_INPUT_MAX + 1];
	const char *national;
	bool plus;
	int nd;

	if (in == NULL || out == NULL || size < PHONE_E164_SIZE) {
		snprintf(errstr, errstr_size, "no number");
		return -1;
	}
	if (strlen(in) > PHONE_INPUT_MAX) {
		snprintf(errstr, errstr_size, "longer than %d characters", PHONE_INPUT_MAX);
		return -1;
	}
	nd = phone_digits(in, digits, &plus, errstr, errstr_size);
	if (nd < 0)
		return -1;
	if (nd == 11 && digits[0] == '1') {
		national = digits + 1;
	} else if (nd == 10 && !plus) {
		national = digits;
	} else {
		snprintf(errstr, errstr_size,
		         "not 10 digits, optionally after a country code 1 (+1 for North America "
		         "only)");
		return -1;
	}
	if (phone_code_ok(national, "area code", errstr, errstr_size) < 0 ||
	    phone_code_ok(national + 3, "exchange", errstr, errstr_size) < 0)
		return -1;
	if (phone_in(national, phone_premium_npa,
	             sizeof phone_premium_npa / sizeof phone_premium_npa[0])) {
		snprintf(errstr, errstr_size, "area code %.3s is premium-rate", national);
		return -1;
	}
	if (phone_in(national + 3, phone_premium_nxx,
	             sizeof phone_premium_nxx / sizeof phone_premium_nxx[0])) {
		snprintf(errstr, errstr_size, "exchange %.3s is premium-rate", national + 3);
		return -1;
	}
	snprintf(out, size, "+1%s", national);
	return 0;
}
