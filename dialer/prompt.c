/* prompt: builds the outbound-call body and its dynamic variables; deterministic, no I/O. */
#include "prompt.h"

#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* A growing text buffer; on allocation failure it stays marked failed and appends are no-ops. */
struct prompt_buf {
	char *s;
	size_t len, cap;
	bool failed;
};

__attribute__((format(printf, 2, 3))) static void prompt_printf(struct prompt_buf *b,
                                                                const char *fmt, ...)
{
	va_list ap;
	int n;

	if (b->failed)
		return;
	va_start(ap, fmt);
	n = vsnprintf(NULL, 0, fmt, ap);
	va_end(ap);
	if (n < 0) {
		b->failed = true;
		return;
	}
	if (b->len + (size_t)n + 1 > b->cap) {
		size_t cap = (b->len + (size_t)n + 1) * 2;
		char *s = realloc(b->s, cap);

		if (!s) {
			b->failed = true;
			return;
		}
		b->s = s;
		b->cap = cap;
	}
	va_start(ap, fmt);
	vsnprintf(b->s + b->len, b->cap - b->len, fmt, ap);
	va_end(ap);
	b->len += (size_t)n;
}

static const char *prompt_str(const char *s)
{
	return s && *s ? s : NULL;
}

void prompt_copy_utf8(char *out, size_t size, const char *s, size_t max)
{
	size_t n = strlen(s);

	if (size == 0)
		return;
	if (max > size - 1)
		max = size - 1;
	if (n > max) {
		n = max;
		/* back off continuation bytes (10xxxxxx) so no sequence is split */
		while (n > 0 && ((unsigned char)s[n] & 0xC0) == 0x80)
			n--;
	}
	memcpy(out, s, n);
	out[n] = '\0';
}

/* Sets key to text cut to PROMPT_TEXT_MAX. Returns 0 or -1. */
static int prompt_set_text(json_t *obj, const char *key, const char *text)
{
	char cut[PROMPT_TEXT_MAX + 1];

	prompt_copy_utf8(cut, sizeof cut, text ? text : "", PROMPT_TEXT_MAX);
	return json_object_set_new(obj, key, json_string(cut));
}

/* The violation details array of a violations value, or NULL. */
static const json_t *prompt_details(const json_t *violations)
{
	if (json_is_array(violations))
		return violations;
	if (json_is_object(violations)) {
		const json_t *d = json_object_get(violations, "violationDetails");

		if (json_is_array(d))
			return d;
	}
	return NULL;
}

/* "hours_of_service" -> "hours of service" appended to b. */
static void prompt_humanize(struct prompt_buf *b, const char *type)
{
	for (const char *p = type; *p; p++)
		prompt_printf(b, "%c", *p == '_' ? ' ' : *p);
}

/* Appends "1. speeding: 72 mph ...; 2. ..." and returns how many details were usable. */
static int prompt_summarize(struct prompt_buf *b, const json_t *details)
{
	size_t i;
	json_t *v;
	int n = 0;

	json_array_foreach(details, i, v)
	{
		const char *type = prompt_str(json_string_value(json_object_get(v, "type")));
		const char *desc = prompt_str(json_string_value(json_object_get(v, "description")));

		if (!type && !desc)
			continue;
		prompt_printf(b, "%s%d. ", n ? "; " : "", n + 1);
		if (type)
			prompt_humanize(b, type);
		if (type && desc)
			prompt_printf(b, ": ");
		if (desc)
			prompt_printf(b, "%s", desc);
		n++;
	}
	return n;
}

/* The trip: the request's trip_id, else the violations' tripId. Borrowed or NULL. */
static const char *prompt_trip(const struct prompt_input *in)
{
	if (prompt_str(in->trip_id))
		return in->trip_id;
	if (json_is_object(in->violations))
		return prompt_str(json_string_value(json_object_get(in->violations, "tripId")));
	return NULL;
}

json_t *prompt_dynamic_variables(const struct prompt_input *in)
{
	struct prompt_buf summary = {0}, first = {0}, context = {0};
	const char *name = prompt_str(in->driver_name) ? in->driver_name : "there";
	const char *dispatcher = prompt_str(in->dispatcher_name) ? in->dispatcher_name : "dispatch";
	const char *trip = prompt_trip(in);
	const char *rules = prompt_str(in->custom_rules);
	const json_t *details = prompt_details(in->violations);
	json_t *vars = json_object();
	int nviol = 0;
	int rc = 0;

	if (details)
		nviol = prompt_summarize(&summary, details);
	if (nviol == 0)
		prompt_printf(&summary, "No violations recorded.");

	prompt_printf(&first, "Hi %s, this is %s", name, dispatcher);
	if (nviol > 0 && trip)
		prompt_printf(&first, ", calling about %d violation%s on trip %s.", nviol,
		              nviol == 1 ? "" : "s", trip);
	else if (nviol > 0)
		prompt_printf(&first, ", calling about %d recent violation%s.", nviol,
		              nviol == 1 ? "" : "s");
	else if (trip)
		prompt_printf(&first, ", calling about trip %s.", trip);
	else
		prompt_printf(&first, ", calling to check in with you.");
	prompt_printf(&first, " Do you have a minute?");

	prompt_printf(&context, "Driver: %s",
	              prompt_str(in->driver_name) ? in->driver_name : "unknown");
	if (prompt_str(in->driver_id))
		prompt_printf(&context, " (id %s)", in->driver_id);
	prompt_printf(&context, ". Trip: %s.", trip ? trip : "none");
	if (prompt_str(in->call_type))
		prompt_printf(&context, " Call type: %s.", in->call_type);
	prompt_printf(&context, " Violations (%d): %s", nviol, summary.failed ? "" : summary.s);
	prompt_printf(&context, " Custom rules: %s", rules ? rules : "none.");
	if (prompt_str(in->transfer_to))
		prompt_printf(&context,
		              " If the driver asks for a person, transfer the call to %s.",
		              in->transfer_to);

	if (!vars || summary.failed || first.failed || context.failed) {
		rc = -1;
		goto out;
	}
	rc |= prompt_set_text(vars, "call_sid", in->call_sid);
	rc |= prompt_set_text(vars, "driver_id", in->driver_id);
	rc |= prompt_set_text(vars, "driver_name", in->driver_name);
	rc |= prompt_set_text(vars, "dispatcher_name", dispatcher);
	rc |= prompt_set_text(vars, "transfer_to", in->transfer_to);
	rc |= prompt_set_text(vars, "trip_id", trip);
	rc |= prompt_set_text(vars, "call_type", in->call_type);
	rc |= json_object_set_new(vars, "violations_count", json_integer(nviol));
	rc |= prompt_set_text(vars, "violations_summary", summary.s);
	rc |= prompt_set_text(vars, "custom_rules", rules);
	rc |= prompt_set_text(vars, "first_message", first.s);
	rc |= prompt_set_text(vars, "call_context", context.s);
	if (prompt_str(in->call_token))
		rc |= prompt_set_text(vars, "call_token", in->call_token);
out:
	free(summary.s);
	free(first.s);
	free(context.s);
	if (rc) {
		json_decref(vars);
		return NULL;
	}
	return vars;
}

json_t *prompt_outbound_body(const struct prompt_input *in, const char *agent_id,
                             const char *phone_number_id)
{
	json_t *vars = prompt_dynamic_variables(in);

	if (!vars)
		return NULL;
	/* "o" steals vars, also when json_pack fails */
	return json_pack("{s:s, s:s, s:s, s:{s:o}}", "agent_id", agent_id, "agent_phone_number_id",
	                 phone_number_id, "to_number", in->phone_number ? in->phone_number : "",
	                 "conversation_initiation_client_data", "dynamic_variables", vars);
}
