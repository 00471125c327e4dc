/* test_ingress_request: BatchCallRequest validation (each field, each error), call_sid
 * construction and the encoded calls.requested messages (phone numbers: test_ingress_phone). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "codec.h"
#include "request.h"

#define AT "2025-11-21T10:30:00.123Z"

static void test_request_call_sid(void **state)
{
	char sid[CODEC_CALL_SID_MAX + 1], big[REQUEST_DRIVER_ID_MAX + 2];

	(void)state;
	assert_int_equal(request_call_sid("12345", "2025-11-21T10:30:00Z", sid, sizeof sid), 0);
	assert_string_equal(sid, "EL_12345_2025-11-21T10:30:00Z");
	assert_int_equal(request_call_sid("D.1:a+b-c", "1732185000", sid, sizeof sid), 0);
	assert_string_equal(sid, "EL_D.1:a+b-c_1732185000");
	/* the separator, blanks, slashes, control characters and empties are refused */
	assert_int_equal(request_call_sid("a_b", "1", sid, sizeof sid), -1);
	assert_int_equal(request_call_sid("a b", "1", sid, sizeof sid), -1);
	assert_int_equal(request_call_sid("a/b", "1", sid, sizeof sid), -1);
	assert_int_equal(request_call_sid("a\nb", "1", sid, sizeof sid), -1);
	assert_int_equal(request_call_sid("", "1", sid, sizeof sid), -1);
	assert_int_equal(request_call_sid("a", "", sid, sizeof sid), -1);
	assert_int_equal(request_call_sid("a", "2025-11-21 10:30", sid, sizeof sid), -1);
	assert_int_equal(request_call_sid("é", "1", sid, sizeof sid), -1);
	/* bounded lengths: driverId <= 100, timestamp <= 64 */
	memset(big, 'a', sizeof big - 1);
	big[sizeof big - 1] = '\0';
	assert_int_equal(request_call_sid(big, "1", sid, sizeof sid), -1);
	big[REQUEST_DRIVER_ID_MAX] = '\0';
	assert_int_equal(request_call_sid(big, "1", sid, sizeof sid), 0);
	assert_true(strlen(sid) <= CODEC_CALL_SID_MAX);
	/* result must fit the buffer */
	assert_int_equal(request_call_sid("12345", "1", sid, 8), -1);
}

static const char good[] =
    "{\"callType\":\"violation_followup\",\"timestamp\":\"2025-11-21T10:30:00Z\","
    "\"unknown_top\":[1,2],"
    "\"drivers\":["
    "{\"driverId\":\"1001\",\"driverName\":\"Ada Lovelace\",\"phoneNumber\":\"(212) 555-0101\","
    "\"customRules\":\"Keep it short.\",\"extra\":true,"
    "\"violations\":{\"tripId\":\"TRIP-9\",\"junk\":1,\"violationDetails\":["
    "{\"type\":\"speeding\",\"description\":\"72 in a 55\",\"severity\":3}]}},"
    "{\"driverId\":\"1002\",\"driverName\":\"Grace Hopper\",\"phoneNumber\":\"+12125550102\"}"
    "]}";

static void test_request_parse_ok(void **state)
{
	char err[256] = "";
	struct request_batch *rb = request_parse(good, strlen(good), AT, err, sizeof err);
	struct codec_call_requested m;
	const char *value;
	size_t len;
	json_t *reply, *calls, *viol;

	(void)state;
	if (rb == NULL)
		fail_msg("refused: %s", err);
	assert_int_equal(request_batch_count(rb), 2);
	assert_string_equal(request_batch_call_sid(rb, 0), "EL_1001_2025-11-21T10:30:00Z");
	assert_string_equal(request_batch_call_sid(rb, 1), "EL_1002_2025-11-21T10:30:00Z");
	assert_string_equal(request_batch_driver_id(rb, 1), "1002");

	/* driver 0: every field, phone normalised, violations cleaned of unknown fields, the
	 * trip id taken from the violations when the request has none */
	value = request_batch_value(rb, 0, &len);
	assert_int_equal(strlen(value), len);
	assert_int_equal(codec_call_requested_decode(value, len, &m, err, sizeof err), 0);
	assert_string_equal(m.call_sid, "EL_1001_2025-11-21T10:30:00Z");
	assert_string_equal(m.driver_id, "1001");
	assert_string_equal(m.driver_name, "Ada Lovelace");
	assert_string_equal(m.phone_number, "+12125550101");
	assert_string_equal(m.trip_id, "TRIP-9");
	assert_string_equal(m.call_type, "violation_followup");
	assert_string_equal(m.custom_rules, "Keep it short.");
	assert_string_equal(m.requested_at, AT);
	assert_non_null(m.violations);
	viol = json_pack("{s:s, s:[{s:s, s:s}]}", "tripId", "TRIP-9", "violationDetails", "type",
	                 "speeding", "description", "72 in a 55");
	assert_true(json_equal(m.violations, viol));
	json_decref(viol);
	assert_null(json_object_get(m.root, "extra"));
	codec_call_requested_clear(&m);

	/* driver 1: optional fields absent */
	value = request_batch_value(rb, 1, &len);
	assert_int_equal(codec_call_requested_decode(value, len, &m, err, sizeof err), 0);
	assert_string_equal(m.phone_number, "+12125550102");
	assert_null(m.trip_id);
	assert_null(m.custom_rules);
	assert_null(m.violations);
	codec_call_requested_clear(&m);

	/* the 202 body */
	reply = request_batch_reply(rb);
	assert_non_null(reply);
	assert_string_equal(json_string_value(json_object_get(reply, "call_sid")),
	                    "EL_1001_2025-11-21T10:30:00Z");
	assert_string_equal(json_string_value(json_object_get(reply, "driver")), "1001");
	assert_string_equal(json_string_value(json_object_get(reply, "timestamp")),
	                    "2025-11-21T10:30:00Z");
	assert_non_null(json_string_value(json_object_get(reply, "message")));
	calls = json_object_get(reply, "calls");
	assert_int_equal(json_array_size(calls), 2);
	assert_string_equal(
	    json_string_value(json_object_get(json_array_get(calls, 1), "driverId")), "1002");
	assert_string_equal(
	    json_string_value(json_object_get(json_array_get(calls, 1), "call_sid")),
	    "EL_1002_2025-11-21T10:30:00Z");
	json_decref(reply);
	request_batch_free(rb);
}

static void test_request_trip_id_precedence(void **state)
{
	static const char body[] =
	    "{\"callType\":\"c\",\"timestamp\":\"1\",\"trip_id\":\"TOP\",\"drivers\":[{"
	    "\"driverId\":"
	    "\"1\",\"driverName\":\"n\",\"phoneNumber\":\"2125550100\",\"violations\":{\"tripId\":"
	    "\"INNER\"}}]}";
	char err[256];
	struct request_batch *rb = request_parse(body, strlen(body), AT, err, sizeof err);
	struct codec_call_requested m;
	const char *value;
	size_t len;

	(void)state;
	assert_non_null(rb);
	value = request_batch_value(rb, 0, &len);
	assert_int_equal(codec_call_requested_decode(value, len, &m, err, sizeof err), 0);
	assert_string_equal(m.trip_id, "TOP");
	codec_call_requested_clear(&m);
	request_batch_free(rb);
}

/* A request with one driver whose fields are given as JSON fragments. */
static char *one_driver(const char *top, const char *driver)
{
	char *s = NULL;

	assert_true(asprintf(&s, "{%s\"drivers\":[{%s}]}", top, driver) > 0);
	return s;
}

#define TOP  "\"callType\":\"c\",\"timestamp\":\"2025-11-21T10:30:00Z\","
#define DRV  "\"driverId\":\"7\",\"driverName\":\"N\",\"phoneNumber\":\"2125550100\""
#define DRV2 "\"driverId\":\"8\",\"driverName\":\"M\",\"phoneNumber\":\"2125550100\""

static void test_request_errors(void **state)
{
	static const struct {
		const char *body; /* NULL: use top/driver */
		const char *top, *driver;
		const char *want[2]; /* substrings of the error */
	} cases[] = {
	    {"", NULL, NULL, {"malformed JSON", NULL}},
	    {"{\"callType\":\"c\"", NULL, NULL, {"malformed JSON", NULL}},
	    {"[1]", NULL, NULL, {"JSON object", NULL}},
	    {"{\"callType\":\"c\",\"timestamp\":\"1\"}",
	     NULL,
	     NULL,
	     {"No driver data provided", NULL}},
	    {"{\"callType\":\"c\",\"timestamp\":\"1\",\"drivers\":[]}",
	     NULL,
	     NULL,
	     {"No driver data provided", NULL}},
	    {"{\"callType\":\"c\",\"timestamp\":\"1\",\"drivers\":null}",
	     NULL,
	     NULL,
	     {"No driver data provided", NULL}},
	    {"{\"callType\":\"c\",\"timestamp\":\"1\",\"drivers\":{}}",
	     NULL,
	     NULL,
	     {"'drivers'", "array"}},
	    {"{\"callType\":\"c\",\"timestamp\":\"1\",\"drivers\":[5]}",
	     NULL,
	     NULL,
	     {"drivers[0]", "object"}},
	    {NULL, "\"timestamp\":\"1\",", DRV, {"'callType'", "missing"}},
	    {NULL, "\"callType\":5,\"timestamp\":\"1\",", DRV, {"'callType'", "string"}},
	    {NULL, "\"callType\":\"\",\"timestamp\":\"1\",", DRV, {"'callType'", "empty"}},
	    {NULL, "\"callType\":\"c\",", DRV, {"'timestamp'", "missing"}},
	    {NULL, "\"callType\":\"c\",\"timestamp\":1732185000,", DRV, {"'timestamp'", "string"}},
	    {NULL,
	     "\"callType\":\"c\",\"timestamp\":\"2025/11/21\",",
	     DRV,
	     {"'timestamp'", "allowed"}},
	    {NULL, "\"callType\":\"c\",\"timestamp\":\"a_b\",", DRV, {"'timestamp'", "allowed"}},
	    {NULL,
	     "\"callType\":\"c\",\"timestamp\":\"1\",\"trip_id\":7,",
	     DRV,
	     {"'trip_id'", "string"}},
	    {NULL,
	     TOP,
	     "\"driverName\":\"N\",\"phoneNumber\":\"2125550100\"",
	     {"drivers[0]", "'driverId' is missing"}},
	    {NULL,
	     TOP,
	     "\"driverId\":7,\"driverName\":\"N\",\"phoneNumber\":\"2125550100\"",
	     {"drivers[0]", "'driverId' must be a string"}},
	    {NULL,
	     TOP,
	     "\"driverId\":\"\",\"driverName\":\"N\",\"phoneNumber\":\"2125550100\"",
	     {"drivers[0]", "'driverId' must not be empty"}},
	    {NULL,
	     TOP,
	     "\"driverId\":\"a_b\",\"driverName\":\"N\",\"phoneNumber\":\"2125550100\"",
	     {"drivers[0].driverId", "allowed"}},
	    {NULL,
	     TOP,
	     "\"driverId\":\"7\",\"phoneNumber\":\"2125550100\"",
	     {"drivers[0]", "'driverName' is missing"}},
	    {NULL,
	     TOP,
	     "\"driverId\":\"7\",\"driverName\":[],\"phoneNumber\":\"2125550100\"",
	     {"drivers[0]", "'driverName' must be a string"}},
	    {NULL,
	     TOP,
	     "\"driverId\":\"7\",\"driverName\":\"N\"",
	     {"drivers[0]", "'phoneNumber' is missing"}},
	    {NULL,
	     TOP,
	     "\"driverId\":\"7\",\"driverName\":\"N\",\"phoneNumber\":2125550100",
	     {"drivers[0]", "'phoneNumber' must be a string"}},
	    {NULL,
	     TOP,
	     "\"driverId\":\"7\",\"driverName\":\"N\",\"phoneNumber\":\"12345\"",
	     {"drivers[0].phoneNumber", "driver '7'"}},
	    {NULL, TOP, DRV ",\"customRules\":3", {"drivers[0]", "'customRules' must be a string"}},
	    {NULL,
	     TOP,
	     DRV ",\"violations\":\"x\"",
	     {"drivers[0]", "'violations' must be an object"}},
	    {NULL,
	     TOP,
	     DRV ",\"violations\":{\"tripId\":1}",
	     {"drivers[0].violations", "'tripId'"}},
	    {NULL,
	     TOP,
	     DRV ",\"violations\":{\"violationDetails\":{}}",
	     {"drivers[0].violations", "'violationDetails' must be an array"}},
	    {NULL,
	     TOP,
	     DRV ",\"violations\":{\"violationDetails\":[1]}",
	     {"violationDetails[0] must be an object", NULL}},
	    {NULL,
	     TOP,
	     DRV ",\"violations\":{\"violationDetails\":[{\"type\":\"x\"}]}",
	     {"violationDetails[0]", "'description' is missing"}},
	    {NULL,
	     TOP,
	     DRV ",\"violations\":{\"violationDetails\":[{\"type\":1,\"description\":\"d\"}]}",
	     {"violationDetails[0]", "'type' must be a string"}},
	    {NULL, TOP, DRV "},{" DRV, {"drivers[1].driverId", "more than once"}},
	    {NULL,
	     TOP,
	     DRV "},{" DRV2 "},{\"driverId\":\"9\",\"driverName\":\"O\",\"phoneNumber\":\"1\"",
	     {"drivers[2].phoneNumber", "driver '9'"}},
	};
	char err[512];

	(void)state;
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		char *body = cases[i].body != NULL ? strdup(cases[i].body)
		                                   : one_driver(cases[i].top, cases[i].driver);
		struct request_batch *rb;

		err[0] = '\0';
		rb = request_parse(body, strlen(body), AT, err, sizeof err);
		if (rb != NULL)
			fail_msg("case %zu accepted: %s", i, body);
		for (int k = 0; k < 2; k++)
			if (cases[i].want[k] != NULL && strstr(err, cases[i].want[k]) == NULL)
				fail_msg("case %zu: error '%s' lacks '%s'", i, err,
				         cases[i].want[k]);
		free(body);
	}
}

static void test_request_lengths(void **state)
{
	char name[REQUEST_TEXT_MAX + 2], err[512], *body = NULL;
	struct request_batch *rb;
	size_t off;

	(void)state;
	memset(name, 'n', sizeof name - 1);
	name[sizeof name - 1] = '\0'; /* 256 bytes: one too many */
	assert_true(asprintf(&body,
	                     "{\"callType\":\"c\",\"timestamp\":\"1\",\"drivers\":[{\"driverId\":"
	                     "\"1\",\"driverName\":\"%s\",\"phoneNumber\":\"2125550100\"}]}",
	                     name) > 0);
	assert_null(request_parse(body, strlen(body), AT, err, sizeof err));
	assert_non_null(strstr(err, "too long"));
	free(body);
	name[REQUEST_TEXT_MAX] = '\0'; /* exactly 255 */
	assert_true(asprintf(&body,
	                     "{\"callType\":\"c\",\"timestamp\":\"1\",\"drivers\":[{\"driverId\":"
	                     "\"1\",\"driverName\":\"%s\",\"phoneNumber\":\"2125550100\"}]}",
	                     name) > 0);
	rb = request_parse(body, strlen(body), AT, err, sizeof err);
	assert_non_null(rb);
	request_batch_free(rb);
	free(body);

	/* at most REQUEST_DRIVERS_MAX drivers */
	body = malloc(200 * (REQUEST_DRIVERS_MAX + 2));
	assert_non_null(body);
	off = (size_t)sprintf(body, "{\"callType\":\"c\",\"timestamp\":\"1\",\"drivers\":[");
	for (int i = 0; i <= REQUEST_DRIVERS_MAX; i++)
		off += (size_t)sprintf(body + off,
		                       "%s{\"driverId\":\"d%d\",\"driverName\":\"n\","
		                       "\"phoneNumber\":\"2125550100\"}",
		                       i ? "," : "", i);
	strcpy(body + off, "]}");
	assert_null(request_parse(body, strlen(body), AT, err, sizeof err));
	assert_non_null(strstr(err, "more than"));
	free(body);
}

static void test_request_token_ok(void **state)
{
	(void)state;
	assert_true(request_token_ok("aZ09.:+-", 8));
	assert_false(request_token_ok("aZ09.:+-x", 8));
	assert_false(request_token_ok("", 8));
	assert_false(request_token_ok(NULL, 8));
	assert_false(request_token_ok("a_b", 8));
	assert_false(request_token_ok("a%20", 8));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_request_call_sid),
	    cmocka_unit_test(test_request_parse_ok),
	    cmocka_unit_test(test_request_trip_id_precedence),
	    cmocka_unit_test(test_request_errors),
	    cmocka_unit_test(test_request_lengths),
	    cmocka_unit_test(test_request_token_ok),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
