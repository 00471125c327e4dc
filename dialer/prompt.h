/* prompt: the outbound-call request body and the conversation's dynamic variables (driver
 * name, violations, trip, custom rules, first message), built deterministically with jansson. */
#ifndef CALLPIPE_DIALER_PROMPT_H
#define CALLPIPE_DIALER_PROMPT_H

#include <jansson.h>
#include <stddef.h>

/* What one call is about. Strings are borrowed; NULL or "" means absent. violations is the
 * calls.requested field: {tripId, violationDetails: [{type, description}]} (an array of details
 * is accepted too; anything else counts as no violations). */
struct prompt_input {
	const char *call_sid, *driver_id, *driver_name, *phone_number;
	const char *trip_id, *call_type, *custom_rules;
	const json_t *violations;
	const char *dispatcher_name, *transfer_to;
	const char *call_token; /* the call's tool token (common/calltoken.h); NULL: none */
};

/* Longest text put into one dynamic variable (bytes, cut at a UTF-8 boundary). */
#define PROMPT_TEXT_MAX 2000

/* The dynamic variables: call_sid, driver_id, driver_name, dispatcher_name, transfer_to,
 * trip_id, call_type, violations_count, violations_summary, custom_rules, first_message,
 * call_context, and call_token when the input has one. Every value is a string except
 * violations_count. Same input, same output.
 * Returns a new object (caller owns), NULL on allocation failure. */
json_t *prompt_dynamic_variables(const struct prompt_input *in);

/* The POST /v1/convai/twilio/outbound-call body: {agent_id, agent_phone_number_id, to_number,
 * conversation_initiation_client_data: {dynamic_variables}}. Caller owns; NULL on failure. */
json_t *prompt_outbound_body(const struct prompt_input *in, const char *agent_id,
                             const char *phone_number_id);

/* Copies at most max bytes of s into out (size > max) without splitting a UTF-8 sequence. */
void prompt_copy_utf8(char *out, size_t size, const char *s, size_t max);

#endif
