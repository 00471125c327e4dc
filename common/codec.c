/* codec: strict jansson getters and the design.md §4 messages (calls.requested, webhooks.*). */
#include "codec.h"

#include "timeutil.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define CODEC_NAME_MAX  255 /* driver_name, call_type */
#define CODEC_PHONE_MAX 32
#define CODEC_TIME_MAX  64

/* Looks name up in obj; a missing or null field is an error only when required. Returns 0 with
 * *out NULL when absent-and-optional, 0 with *out set when present, -1 with errstr. */
static int codec_lookup(const json_t *obj, const char *name, bool required, json_t **out,
                        char *errstr, size_t errstr_size)
{
	json_t *v;

	*out = NULL;
	if (!json_is_object(obj)) {
		snprintf(errstr, errstr_size, "field '%s': not inside a JSON object", name);
		return -1;
	}
	v = json_object_get(obj, name);
	if (v == NULL || json_is_null(v)) {
		if (!required)
			return 0;
		snprintf(errstr, errstr_size, "field '%s' is missing", name);
		return -1;
	}
	*out = v;
	return 0;
}

int codec_get_str(const json_t *obj, const char *name, bool required, size_t max_len,
                  const char **out, char *errstr, size_t errstr_size)
{
	json_t *v;
	size_t len;

	if (codec_lookup(obj, name, required, &v, errstr, errstr_size) < 0)
		return -1;
	*out = NULL;
	if (v == NULL)
		return 0;
	if (!json_is_string(v)) {
		snprintf(errstr, errstr_size, "field '%s' must be a string", name);
		return -1;
	}
	len = json_string_length(v);
	if (len == 0) {
		snprintf(errstr, errstr_size, "field '%s' must not be empty", name);
		return -1;
	}
	if (max_len > 0 && len > max_len) {
		snprintf(errstr, errstr_size, "field '%s' is too long (%zu bytes, max %zu)", name,
		         len, max_len);
		return -1;
	}
	*out = json_string_value(v);
	return 0;
}

bool codec_utf8_ok(const char *s, size_t len)
{
	const unsigned char *p = (const unsigned char *)s, *end = p + len;

	while (p < end) {
		unsigned c = *p++;
		unsigned need, min, cp;

		if (c < 0x80)
			continue;
		if (c >= 0xc2 && c <= 0xdf) {
			need = 1, min = 0x80, cp = c & 0x1f;
		} else if (c >= 0xe0 && c <= 0xef) {
			need = 2, min = 0x800, cp = c & 0x0f;
		} else if (c >= 0xf0 && c <= 0xf4) {
			need = 3, min = 0x10000, cp = c & 0x07;
		} else {
			return false; /* a continuation byte, an overlong lead (c0, c1), or f5..ff
			               */
		}
		if ((size_t)(end - p) < need)
			return false;
		for (unsigned i = 0; i < need; i++, p++) {
			if ((*p & 0xc0) != 0x80)
				return false;
			cp = cp << 6 | (*p & 0x3f);
		}
		if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
			return false;
	}
	return true;
}

/* codec_lookup, then a type check: "field 'name' must be <what>" when v is not of type. */
static int codec_get_typed(const json_t *obj, const char *name, bool required, json_type type,
                           const char *what, json_t **out, char *errstr, size_t errstr_size)
{
	json_t *v;

	if (codec_lookup(obj, name, required, &v, errstr, errstr_size) < 0)
		return -1;
	*out = NULL;
	if (v == NULL)
		return 0;
	if (json_typeof(v) != type) {
		snprintf(errstr, errstr_size, "field '%s' must be %s", name, what);
		return -1;
	}
	*out = v;
	return 0;
}

int codec_get_obj(const json_t *obj, const char *name, bool required, json_t **out, char *errstr,
                  size_t errstr_size)
{
	return codec_get_typed(obj, name, required, JSON_OBJECT, "an object", out, errstr,
	                       errstr_size);
}

int codec_get_arr(const json_t *obj, const char *name, bool required, json_t **out, char *errstr,
                  size_t errstr_size)
{
	return codec_get_typed(obj, name, required, JSON_ARRAY, "an array", out, errstr,
	                       errstr_size);
}

static const char *codec_type_name(const json_t *v)
{
	switch (json_typeof(v)) {
	case JSON_OBJECT:
		return "an object";
	case JSON_ARRAY:
		return "an array";
	case JSON_STRING:
		return "a string";
	case JSON_INTEGER:
	case JSON_REAL:
		return "a number";
	case JSON_TRUE:
	case JSON_FALSE:
		return "a boolean";
	case JSON_NULL:
		return "null";
	}
	return "something else";
}

json_t *codec_parse_object(const char *buf, size_t len, char *errstr, size_t errstr_size)
{
	json_error_t err;
	json_t *root;

	if (buf == NULL || len == 0) {
		snprintf(errstr, errstr_size, "malformed JSON: empty input");
		return NULL;
	}
	root = json_loadb(buf, len, JSON_DECODE_ANY, &err);
	if (root == NULL) {
		snprintf(errstr, errstr_size, "malformed JSON at line %d, column %d: %s", err.line,
		         err.column, err.text);
		return NULL;
	}
	if (!json_is_object(root)) {
		snprintf(errstr, errstr_size, "expected a JSON object, got %s",
		         codec_type_name(root));
		json_decref(root);
		return NULL;
	}
	return root;
}

/* codec_dump's output: one buffer, grown by doubling from a size that fits most messages. */
struct codec_buf {
	char *data;
	size_t len, cap;
};

static int codec_buf_append(const char *chunk, size_t size, void *opaque)
{
	struct codec_buf *b = opaque;

	if (size >= b->cap - b->len) {
		size_t cap = b->cap;
		char *grown;

		while (size >= cap - b->len)
			cap *= 2;
		grown = realloc(b->data, cap);
		if (grown == NULL)
			return -1;
		b->data = grown;
		b->cap = cap;
	}
	memcpy(b->data + b->len, chunk, size);
	b->len += size;
	return 0;
}

char *codec_dump(const json_t *root, size_t *len)
{
	/* json_dumps grows its buffer from 16 bytes and then copies the result: six allocations
	 * and a strlen for a typical message, against one here. */
	struct codec_buf b = {.data = malloc(512), .cap = 512};

	if (root == NULL || b.data == NULL ||
	    json_dump_callback(root, codec_buf_append, &b, JSON_COMPACT) != 0) {
		free(b.data);
		return NULL;
	}
	b.data[b.len] = '\0'; /* appends always leave a byte free */
	if (len != NULL)
		*len = b.len;
	return b.data;
}

/* One string field of a message: where it goes in the struct and how it is checked. */
struct codec_field {
	const char *name;
	size_t offset; /* of the const char * in the message struct */
	bool required;
	size_t max_len;
	bool is_time; /* must parse as ISO-8601 */
};

#define CF(type, field, req, max, tm)                       \
	{                                                   \
#field, offsetof(type, field), req, max, tm \
	}

static const struct codec_field codec_call_requested_fields[] = {
    CF(struct codec_call_requested, call_sid, true, CODEC_CALL_SID_MAX, false),
    CF(struct codec_call_requested, driver_id, true, CODEC_ID_MAX, false),
    CF(struct codec_call_requested, driver_name, true, CODEC_NAME_MAX, false),
    CF(struct codec_call_requested, phone_number, true, CODEC_PHONE_MAX, false),
    CF(struct codec_call_requested, trip_id, false, CODEC_ID_MAX, false),
    CF(struct codec_call_requested, call_type, false, CODEC_NAME_MAX, false),
    CF(struct codec_call_requested, custom_rules, false, CODEC_MESSAGE_MAX, false),
    CF(struct codec_call_requested, requested_at, true, CODEC_TIME_MAX, true),
};

static const struct codec_field codec_transcription_fields[] = {
    CF(struct codec_transcription, event_id, true, CODEC_ID_MAX, false),
    CF(struct codec_transcription, received_at, true, CODEC_TIME_MAX, true),
    CF(struct codec_transcription, call_sid, true, CODEC_CALL_SID_MAX, false),
    CF(struct codec_transcription, speaker, true, 16, false),
    CF(struct codec_transcription, message, true, CODEC_MESSAGE_MAX, false),
};

static const struct codec_field codec_post_call_fields[] = {
    CF(struct codec_post_call, event_id, true, CODEC_ID_MAX, false),
    CF(struct codec_post_call, received_at, true, CODEC_TIME_MAX, true),
    CF(struct codec_post_call, call_sid, false, CODEC_CALL_SID_MAX, false),
};

#define NFIELDS(a) (sizeof(a) / sizeof((a)[0]))

/* Undoes a decode that failed: frees root and leaves msg (size bytes) zeroed. Returns -1. */
static int codec_decode_fail(json_t *root, void *msg, size_t size)
{
	json_decref(root);
	memset(msg, 0, size);
	return -1;
}

/* Zeroes msg (size bytes), parses buf and fills the string fields of msg. Returns the root (the
 * caller stores it in msg->root once its own checks passed), or NULL with errstr and msg zeroed. */
static json_t *codec_decode_fields(const char *buf, size_t len, void *msg, size_t size,
                                   const struct codec_field *fields, size_t nfields, char *errstr,
                                   size_t errstr_size)
{
	json_t *root;

	memset(msg, 0, size);
	root = codec_parse_object(buf, len, errstr, errstr_size);
	if (root == NULL)
		return NULL;
	for (size_t i = 0; i < nfields; i++) {
		const struct codec_field *f = &fields[i];
		const char **out = (const char **)(void *)((char *)msg + f->offset);
		int64_t ms;

		if (codec_get_str(root, f->name, f->required, f->max_len, out, errstr,
		                  errstr_size) < 0)
			goto fail;
		if (f->is_time && *out != NULL && time_parse_iso_ms(*out, &ms) < 0) {
			snprintf(errstr, errstr_size, "field '%s' must be an ISO-8601 timestamp",
			         f->name);
			goto fail;
		}
	}
	return root;
fail:
	(void)codec_decode_fail(root, msg, size);
	return NULL;
}

/* Optional strings go out as null when unset or empty, so decoders never see "". */
static const char *codec_opt(const char *s)
{
	return s != NULL && *s != '\0' ? s : NULL;
}

json_t *codec_call_requested_encode(const struct codec_call_requested *m)
{
	return json_pack("{s:s, s:s, s:s, s:s, s:s?, s:s?, s:s?, s:O?, s:s}", "call_sid",
	                 m->call_sid, "driver_id", m->driver_id, "driver_name", m->driver_name,
	                 "phone_number", m->phone_number, "trip_id", codec_opt(m->trip_id),
	                 "call_type", codec_opt(m->call_type), "custom_rules",
	                 codec_opt(m->custom_rules), "violations", m->violations, "requested_at",
	                 m->requested_at);
}

int codec_call_requested_decode(const char *buf, size_t len, struct codec_call_requested *m,
                                char *errstr, size_t errstr_size)
{
	json_t *root =
	    codec_decode_fields(buf, len, m, sizeof *m, codec_call_requested_fields,
	                        NFIELDS(codec_call_requested_fields), errstr, errstr_size);

	if (root == NULL)
		return -1;
	if (codec_get_obj(root, "violations", false, &m->violations, errstr, errstr_size) < 0)
		return codec_decode_fail(root, m, sizeof *m);
	m->root = root;
	return 0;
}

void codec_call_requested_clear(struct codec_call_requested *m)
{
	if (m == NULL)
		return;
	json_decref(m->root);
	memset(m, 0, sizeof *m);
}

json_t *codec_transcription_encode(const struct codec_transcription *m)
{
	return json_pack("{s:s, s:s, s:s, s:s, s:s}", "event_id", m->event_id, "received_at",
	                 m->received_at, "call_sid", m->call_sid, "speaker", m->speaker, "message",
	                 m->message);
}

json_t *codec_transcription_stamp(json_t *root, const char *event_id, const char *received_at)
{
	const char *key;
	json_t *value;
	void *next;

	if (!json_is_object(root) || event_id == NULL || received_at == NULL)
		return NULL;
	json_object_foreach_safe(root, next, key, value)
	{
		/* the message's own fields stay (event_id and received_at are set below) */
		size_t i = 0;

		while (i < NFIELDS(codec_transcription_fields) &&
		       strcmp(key, codec_transcription_fields[i].name) != 0)
			i++;
		if (i == NFIELDS(codec_transcription_fields))
			json_object_del(root, key);
	}
	if (json_object_set_new(root, "event_id", json_string(event_id)) != 0 ||
	    json_object_set_new(root, "received_at", json_string(received_at)) != 0)
		return NULL;
	return json_incref(root);
}

int codec_transcription_decode(const char *buf, size_t len, struct codec_transcription *m,
                               char *errstr, size_t errstr_size)
{
	json_t *root =
	    codec_decode_fields(buf, len, m, sizeof *m, codec_transcription_fields,
	                        NFIELDS(codec_transcription_fields), errstr, errstr_size);

	if (root == NULL)
		return -1;
	if (strcmp(m->speaker, "agent") != 0 && strcmp(m->speaker, "user") != 0) {
		snprintf(errstr, errstr_size, "field 'speaker' must be \"agent\" or \"user\"");
		return codec_decode_fail(root, m, sizeof *m);
	}
	m->root = root;
	return 0;
}

void codec_transcription_clear(struct codec_transcription *m)
{
	if (m == NULL)
		return;
	json_decref(m->root);
	memset(m, 0, sizeof *m);
}

json_t *codec_post_call_encode(const struct codec_post_call *m)
{
	return json_pack("{s:s, s:s, s:s?, s:O}", "event_id", m->event_id, "received_at",
	                 m->received_at, "call_sid", codec_opt(m->call_sid), "body", m->body);
}

int codec_post_call_decode(const char *buf, size_t len, struct codec_post_call *m, char *errstr,
                           size_t errstr_size)
{
	json_t *root = codec_decode_fields(buf, len, m, sizeof *m, codec_post_call_fields,
	                                   NFIELDS(codec_post_call_fields), errstr, errstr_size);

	if (root == NULL)
		return -1;
	if (codec_get_obj(root, "body", true, &m->body, errstr, errstr_size) < 0)
		return codec_decode_fail(root, m, sizeof *m);
	m->root = root;
	return 0;
}

void codec_post_call_clear(struct codec_post_call *m)
{
	if (m == NULL)
		return;
	json_decref(m->root);
	memset(m, 0, sizeof *m);
}
