/* test_dialer_prompt: the dynamic variables and outbound-call body are built deterministically
 * from driver, violations, trip and rules, as JSON values (never pasted strings). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "prompt.h"

#include <stdlib.h>
#include <string.h>

static json_t *violations(void)
{
	return json_pack("{s:s, s:[{s:s, s:s}, {s:s, s:s}]}", "tripId", "TRIP-9",
	                 "violationDetails", "type", "speeding", "description",
	                 "72 mph in a 55 zone", "type", "hours_of_service", "description",
	                 "11h limit exceeded by 25 min");
}

static struct prompt_input full_input(json_t *viol)
{
	return (struct prompt_input){
	    .call_sid = "EL_1001_2025-11-21T10:30:00Z",
	    .driver_id = "1001",
	    .driver_name = "Ada Lovelace",
	    .phone_number = "+15550100001",
	    .trip_id = "TRIP-1",
	    .call_type = "violation_followup",
	    .custom_rules = "Keep it short.",
	    .violations = viol,
	    .dispatcher_name = "Maria",
	    .transfer_to = "+15550109999",
	};
}

static const char *var(const json_t *vars, const char *key)
{
	const char *s = json_string_value(json_object_get(vars, key));

	if (!s)
		fail_msg("dynamic variable %s missing or not a string", key);
	return s;
}

static void test_dialer_prompt_full(void **state)
{
	json_t *viol = violations();
	struct prompt_input in = full_input(viol);
	json_t *vars = prompt_dynamic_variables(&in);

	(void)state;
	assert_non_null(vars);
	assert_string_equal(var(vars, "call_sid"), "EL_1001_2025-11-21T10:30:00Z");
	assert_string_equal(var(vars, "driver_id"), "1001");
	assert_string_equal(var(vars, "driver_name"), "Ada Lovelace");
	assert_string_equal(var(vars, "dispatcher_name"), "Maria");
	assert_string_equal(var(vars, "transfer_to"), "+15550109999");
	assert_string_equal(var(vars, "trip_id"), "TRIP-1");
	assert_string_equal(var(vars, "call_type"), "violation_followup");
	assert_int_equal(json_integer_value(json_object_get(vars, "violations_count")), 2);
	assert_string_equal(var(vars, "violations_summary"),
	                    "1. speeding: 72 mph in a 55 zone; 2. hours of service: 11h limit "
	                    "exceeded by 25 min");
	assert_string_equal(var(vars, "custom_rules"), "Keep it short.");
	assert_string_equal(
	    var(vars, "first_message"),
	    "Hi Ada Lovelace, this is Maria, calling about 2 violations on trip TRIP-1. "
	    "Do you have a minute?");
	assert_string_equal(
	    var(vars, "call_context"),
	    "Driver: Ada Lovelace (id 1001). Trip: TRIP-1. Call type: "
	    "violation_followup. Violations (2): 1. speeding: 72 mph in a 55 zone; 2. "
	    "hours of service: 11h limit exceeded by 25 min Custom rules: Keep it "
	    "short. If the driver asks for a person, transfer the call to "
	    "+15550109999.");
	/* every value is a scalar: what ElevenLabs accepts as a dynamic variable */
	{
		const char *key;
		json_t *v;

		json_object_foreach(vars, key, v)
		    assert_true(json_is_string(v) || json_is_integer(v));
	}
	json_decref(vars);
	json_decref(viol);
}

static void test_dialer_prompt_deterministic(void **state)
{
	json_t *viol = violations();
	struct prompt_input in = full_input(viol);
	json_t *a = prompt_outbound_body(&in, "agent_1", "phnum_1");
	json_t *b = prompt_outbound_body(&in, "agent_1", "phnum_1");
	char *sa = json_dumps(a, JSON_COMPACT | JSON_SORT_KEYS);
	char *sb = json_dumps(b, JSON_COMPACT | JSON_SORT_KEYS);

	(void)state;
	assert_string_equal(sa, sb);
	assert_string_equal(json_string_value(json_object_get(a, "agent_id")), "agent_1");
	assert_string_equal(json_string_value(json_object_get(a, "agent_phone_number_id")),
	                    "phnum_1");
	assert_string_equal(json_string_value(json_object_get(a, "to_number")), "+15550100001");
	assert_string_equal(
	    json_string_value(json_object_get(
	        json_object_get(json_object_get(a, "conversation_initiation_client_data"),
	                        "dynamic_variables"),
	        "call_sid")),
	    "EL_1001_2025-11-21T10:30:00Z");
	free(sa);
	free(sb);
	json_decref(a);
	json_decref(b);
	json_decref(viol);
}

static void test_dialer_prompt_minimal(void **state)
{
	struct prompt_input in = {.call_sid = "EL_7_t", .driver_id = "7", .phone_number = "+1555"};
	json_t *vars = prompt_dynamic_variables(&in);

	(void)state;
	assert_int_equal(json_integer_value(json_object_get(vars, "violations_count")), 0);
	assert_string_equal(var(vars, "violations_summary"), "No violations recorded.");
	assert_string_equal(var(vars, "driver_name"), "");
	assert_string_equal(var(vars, "trip_id"), "");
	assert_string_equal(var(vars, "transfer_to"), "");
	assert_string_equal(var(vars, "dispatcher_name"), "dispatch");
	assert_string_equal(
	    var(vars, "first_message"),
	    "Hi there, this is dispatch, calling to check in with you. Do you have a "
	    "minute?");
	assert_null(json_object_get(vars, "call_token")); /* none configured: none sent */
	json_decref(vars);
}

/* The call's tool token rides along as the dynamic variable call_token, untouched. */
static void test_dialer_prompt_call_token(void **state)
{
	static const char token[] =
	    "v1.1763800000.331b46d693ad6dd57fff49ea6ac4dedcfc18e0b57c38615ede046f0ece128ade";
	struct prompt_input in = {.call_sid = "EL_7_t", .call_token = token};
	json_t *vars = prompt_dynamic_variables(&in);

	(void)state;
	assert_non_null(vars);
	assert_string_equal(var(vars, "call_token"), token);
	json_decref(vars);
	in.call_token = "";
	vars = prompt_dynamic_variables(&in);
	assert_null(json_object_get(vars, "call_token"));
	json_decref(vars);
}

static void test_dialer_prompt_violation_shapes(void **state)
{
	/* an array of details, with one unusable entry; the trip comes from the violations */
	json_t *arr = json_pack("[{s:s}, {s:i}, {s:s}]", "description", "ran a red light", "type",
	                        5, "type", "logbook");
	json_t *obj =
	    json_pack("{s:s, s:[{s:s}]}", "tripId", "T-77", "violationDetails", "type", "speeding");
	json_t *bad = json_string("not an object");
	struct prompt_input in = {.call_sid = "s", .driver_name = "Bo", .violations = arr};
	json_t *vars = prompt_dynamic_variables(&in);

	(void)state;
	assert_int_equal(json_integer_value(json_object_get(vars, "violations_count")), 2);
	assert_string_equal(var(vars, "violations_summary"), "1. ran a red light; 2. logbook");
	assert_string_equal(
	    var(vars, "first_message"),
	    "Hi Bo, this is dispatch, calling about 2 recent violations. Do you have a "
	    "minute?");
	json_decref(vars);
	in.violations = obj;
	vars = prompt_dynamic_variables(&in);
	assert_string_equal(var(vars, "trip_id"), "T-77");
	assert_string_equal(
	    var(vars, "first_message"),
	    "Hi Bo, this is dispatch, calling about 1 violation on trip T-77. Do you "
	    "have a minute?");
	json_decref(vars);
	in.violations = bad;
	vars = prompt_dynamic_variables(&in);
	assert_int_equal(json_integer_value(json_object_get(vars, "violations_count")), 0);
	json_decref(vars);
	json_decref(arr);
	json_decref(obj);
	json_decref(bad);
}

static void test_dialer_prompt_hostile_text(void **state)
{
	/* quotes, braces, newlines and a huge rule text stay data: valid JSON, cut at the limit */
	char *rules = malloc(5000);
	struct prompt_input in = {
	    .call_sid = "s", .driver_name = "Eve \"}, \"agent_id\": \"evil", .custom_rules = rules};
	json_t *body, *back, *vars;
	char *text;

	(void)state;
	memset(rules, 'x', 4999);
	rules[4999] = '\0';
	rules[PROMPT_TEXT_MAX - 1] = '\xc3'; /* a 2-byte sequence straddling the limit */
	rules[PROMPT_TEXT_MAX] = '\xa9';
	body = prompt_outbound_body(&in, "agent_1", "phnum_1");
	text = json_dumps(body, JSON_COMPACT);
	back = json_loads(text, 0, NULL);
	assert_non_null(back);
	assert_string_equal(json_string_value(json_object_get(back, "agent_id")), "agent_1");
	vars = json_object_get(json_object_get(back, "conversation_initiation_client_data"),
	                       "dynamic_variables");
	assert_string_equal(var(vars, "driver_name"), "Eve \"}, \"agent_id\": \"evil");
	assert_int_equal(strlen(var(vars, "custom_rules")), PROMPT_TEXT_MAX - 1);
	free(text);
	free(rules);
	json_decref(body);
	json_decref(back);
}

static void test_dialer_prompt_copy_utf8(void **state)
{
	char out[8];

	(void)state;
	prompt_copy_utf8(out, sizeof out, "abc", 10);
	assert_string_equal(out, "abc");
	prompt_copy_utf8(out, sizeof out, "abcdefghij", 10);
	assert_string_equal(out, "abcdefg");
	prompt_copy_utf8(out, sizeof out, "ab\xe2\x82\xac", 4); /* € is 3 bytes: not split */
	assert_string_equal(out, "ab");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_dialer_prompt_full),
	    cmocka_unit_test(test_dialer_prompt_deterministic),
	    cmocka_unit_test(test_dialer_prompt_minimal),
	    cmocka_unit_test(test_dialer_prompt_call_token),
	    cmocka_unit_test(test_dialer_prompt_violation_shapes),
	    cmocka_unit_test(test_dialer_prompt_hostile_text),
	    cmocka_unit_test(test_dialer_prompt_copy_utf8),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
