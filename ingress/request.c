/* request: BatchCallRequest validation, call_sid construction and phone normalisation. */
#include "request.h"

#include "codec.h"
#include "phone.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct request_entry {
	char call_sid[CODEC_CALL_SID_MAX + 1];
	const char *driver_id; /* borrowed from rb->root */
	char *value;           /* encoded calls.requested message, malloc'd */
	size_t value_len;
};

struct request_batch {
	json_t *root; /* the parsed body; entries borrow from it */
	const char *timestamp;
	size_t n;
	struct request_entry *entries;
};

bool request_token_ok(const char *s, size_t max)
{
	size_t n = 0;

	if (s == NULL)
		return false;
	for (; s[n] != '\0'; n++) {
		char c = s[n];

		if (n >= max)
			return false;
		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
		      c == '.' || c == ':' || c == '+' || c == '-'))
			return false;
	}
	return n > 0;
}

int request_call_sid(const char *driver_id, const char *timestamp, char *out, size_t size)
{
	int n;

	if (!request_token_ok(driver_id, REQUEST_DRIVER_ID_MAX) ||
	    !request_token_ok(timestamp, REQUEST_TIMESTAMP_MAX))
		return -1;
	n = snprintf(out, size, "EL_%s_%s", driver_id, timestamp);
	if (n < 0 || (size_t)n >= size || n > CODEC_CALL_SID_MAX)
		return -1;
	return 0;
}

void request_batch_free(struct request_batch *rb)
{
	if (rb == NULL)
		return;
	for (size_t i = 0; i < rb->n; i++)
		free(rb->entries[i].value);
	free(rb->entries);
	json_decref(rb->root);
	free(rb);
}

/* Validates violations {tripId?, violationDetails?[{type, description}]} and returns a clean copy
 * holding only those fields (new ref), or NULL with errstr. */
static json_t *request_violations(json_t *v, char *errstr, size_t errstr_size)
{
	json_t *out = json_object(), *details = NULL, *list = NULL, *item;
	const char *trip_id = NULL;
	char why[256];
	size_t i;

	if (out == NULL)
		goto nomem;
	if (codec_get_str(v, "tripId", false, REQUEST_TEXT_MAX, &trip_id, errstr, errstr_size) < 0)
		goto fail;
	if (trip_id != NULL && json_object_set_new(out, "tripId", json_string(trip_id)) != 0)
		goto nomem;
	if (codec_get_arr(v, "violationDetails", false, &details, errstr, errstr_size) < 0)
		goto fail;
	if (details == NULL)
		return out;
	if (json_array_size(details) > REQUEST_VIOLATIONS_MAX) {
		snprintf(errstr, errstr_size, "field 'violationDetails' has more than %d entries",
		         REQUEST_VIOLATIONS_MAX);
		goto fail;
	}
	list = json_array();
	if (list == NULL || json_object_set_new(out, "violationDetails", list) != 0)
		goto nomem;
	json_array_foreach(details, i, item)
	{
		const char *type = NULL, *desc = NULL;

		if (!json_is_object(item)) {
			snprintf(errstr, errstr_size, "violationDetails[%zu] must be an object", i);
			goto fail;
		}
		if (codec_get_str(item, "type", true, REQUEST_TEXT_MAX, &type, why, sizeof why) <
		        0 ||
		    codec_get_str(item, "description", true, REQUEST_RULES_MAX, &desc, why,
		                  sizeof why) < 0) {
			snprintf(errstr, errstr_size, "violationDetails[%zu]: %.200s", i, why);
			goto fail;
		}
		if (json_array_append_new(
		        list, json_pack("{s:s, s:s}", "type", type, "description", desc)) != 0)
			goto nomem;
	}
	return out;
nomem:
	snprintf(errstr, errstr_size, "out of memory");
fail:
	json_decref(out);
	return NULL;
}

/* Validates drivers[i] of rb and fills entry i. Returns 0 or -1 with errstr naming the field. */
static int request_driver(struct request_batch *rb, size_t i, json_t *drv, const char *call_type,
                          const char *trip_id, const char *requested_at, char *errstr,
                          size_t errstr_size)
{
	struct request_entry *e = &rb->entries[i];
	struct codec_call_requested m = {0};
	const char *id = NULL, *name = NULL, *phone = NULL, *rules = NULL;
	json_t *viol = NULL, *clean = NULL, *msg = NULL;
	char why[256], e164[PHONE_E164_SIZE];
	int ret = -1;

	if (!json_is_object(drv)) {
		snprintf(errstr, errstr_size, "drivers[%zu] must be an object", i);
		return -1;
	}
	if (codec_get_str(drv, "driverId", true, REQUEST_DRIVER_ID_MAX, &id, why, sizeof why) < 0)
		goto bad;
	if (!request_token_ok(id, REQUEST_DRIVER_ID_MAX)) {
		snprintf(errstr, errstr_size,
		         "drivers[%zu].driverId: only letters, digits and . : + - are allowed", i);
		return -1;
	}
	for (size_t j = 0; j < i; j++) {
		if (strcmp(rb->entries[j].driver_id, id) == 0) {
			snprintf(errstr, errstr_size,
			         "drivers[%zu].driverId: '%s' appears more than once (also "
			         "drivers[%zu])",
			         i, id, j);
			return -1;
		}
	}
	e->driver_id = id;
	if (codec_get_str(drv, "driverName", true, REQUEST_TEXT_MAX, &name, why, sizeof why) < 0 ||
	    codec_get_str(drv, "phoneNumber", true, PHONE_INPUT_MAX, &phone, why, sizeof why) < 0 ||
	    codec_get_str(drv, "customRules", false, REQUEST_RULES_MAX, &rules, why, sizeof why) <
	        0 ||
	    codec_get_obj(drv, "violations", false, &viol, why, sizeof why) < 0)
		goto bad;
	if (phone_e164(phone, e164, sizeof e164, why, sizeof why) != 0) {
		snprintf(errstr, errstr_size,
		         "drivers[%zu].phoneNumber: '%s' of driver '%s' is not a valid North "
		         "American phone number: %.150s",
		         i, phone, id, why);
		return -1;
	}
	if (viol != NULL) {
		clean = request_violations(viol, why, sizeof why);
		if (clean == NULL) {
			snprintf(errstr, errstr_size, "drivers[%zu].violations.%.200s", i, why);
			return -1;
		}
		if (trip_id == NULL)
			trip_id = json_string_value(json_object_get(clean, "tripId"));
	}
	if (request_call_sid(id, rb->timestamp, e->call_sid, sizeof e->call_sid) != 0) {
		snprintf(errstr, errstr_size, "drivers[%zu]: call_sid would be too long", i);
		goto out;
	}
	m.call_sid = e->call_sid;
	m.driver_id = id;
	m.driver_name = name;
	m.phone_number = e164;
	m.trip_id = trip_id;
	m.call_type = call_type;
	m.custom_rules = rules;
	m.violations = clean;
	m.requested_at = requested_at;
	msg = codec_call_requested_encode(&m);
	e->value = codec_dump(msg, &e->value_len);
	if (e->value == NULL) {
		snprintf(errstr, errstr_size, "drivers[%zu]: cannot encode the message", i);
		goto out;
	}
	ret = 0;
	goto out;
bad:
	snprintf(errstr, errstr_size, "drivers[%zu]: %.200s", i, why);
out:
	json_decref(msg);
	json_decref(clean);
	return ret;
}

struct request_batch *request_parse(const char *body, size_t len, const char *requested_at,
                                    char *errstr, size_t errstr_size)
{
	struct request_batch *rb = calloc(1, sizeof *rb);
	const char *call_type = NULL, *trip_id = NULL;
	json_t *drivers = NULL, *drv;
	size_t i;

	if (rb == NULL) {
		snprintf(errstr, errstr_size, "out of memory");
		return NULL;
	}
	rb->root = codec_parse_object(body, len, errstr, errstr_size);
	if (rb->root == NULL)
		goto fail;
	if (codec_get_str(rb->root, "callType", true, REQUEST_TEXT_MAX, &call_type, errstr,
	                  errstr_size) < 0 ||
	    codec_get_str(rb->root, "timestamp", true, REQUEST_TIMESTAMP_MAX, &rb->timestamp,
	                  errstr, errstr_size) < 0)
		goto fail;
	if (!request_token_ok(rb->timestamp, REQUEST_TIMESTAMP_MAX)) {
		snprintf(errstr, errstr_size,
		         "field 'timestamp': only letters, digits and . : + - are allowed");
		goto fail;
	}
	if (codec_get_str(rb->root, "trip_id", false, REQUEST_TEXT_MAX, &trip_id, errstr,
	                  errstr_size) < 0 ||
	    codec_get_arr(rb->root, "drivers", false, &drivers, errstr, errstr_size) < 0)
		goto fail;
	if (drivers == NULL || json_array_size(drivers) == 0) {
		snprintf(errstr, errstr_size, "No driver data provided");
		goto fail;
	}
	if (json_array_size(drivers) > REQUEST_DRIVERS_MAX) {
		snprintf(errstr, errstr_size, "field 'drivers' has more than %d entries",
		         REQUEST_DRIVERS_MAX);
		goto fail;
	}
	rb->entries = calloc(json_array_size(drivers), sizeof *rb->entries);
	if (rb->entries == NULL) {
		snprintf(errstr, errstr_size, "out of memory");
		goto fail;
	}
	json_array_foreach(drivers, i, drv)
	{
		rb->n = i + 1; /* so request_batch_free releases entry i too */
		if (request_driver(rb, i, drv, call_type, trip_id, requested_at, errstr,
		                   errstr_size) != 0)
			goto fail;
	}
	return rb;
fail:
	request_batch_free(rb);
	return NULL;
}

size_t request_batch_count(const struct request_batch *rb)
{
	return rb->n;
}

const char *request_batch_call_sid(const struct request_batch *rb, size_t i)
{
	return rb->entries[i].call_sid;
}

const char *request_batch_driver_id(const struct request_batch *rb, size_t i)
{
	return rb->entries[i].driver_id;
}

const char *request_batch_value(const struct request_batch *rb, size_t i, size_t *len)
{
	*len = rb->entries[i].value_len;
	return rb->entries[i].value;
}

json_t *request_batch_reply(const struct request_batch *rb)
{
	json_t *calls = json_array();
	char message[64];

	if (calls == NULL)
		return NULL;
	for (size_t i = 0; i < rb->n; i++)
		json_array_append_new(calls,
		                      json_pack("{s:s, s:s}", "driverId", rb->entries[i].driver_id,
		                                "call_sid", rb->entries[i].call_sid));
	snprintf(message, sizeof message, "Call requests accepted for %zu driver%s", rb->n,
	         rb->n == 1 ? "" : "s");
	return json_pack("{s:s, s:s, s:o, s:s, s:s}", "message", message, "timestamp",
	                 rb->timestamp, "calls", calls, "call_sid", rb->entries[0].call_sid,
	                 "driver", rb->entries[0].driver_id);
}
