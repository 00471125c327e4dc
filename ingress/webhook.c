/* webhook: event ids, transcription validation and post-call routing for the ElevenLabs hooks. */
#include "webhook.h"

#include "codec.h"
#include "timeutil.h"

#include <jansson.h>
#include <openssl/evp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#define WEBHOOK_TYPE_TRANSCRIPT "post_call_transcription"
#define WEBHOOK_TYPE_FAILURE    "call_initiation_failure"
#define WEBHOOK_TYPE_AUDIO      "post_call_audio"
/* Longest call_duration_secs taken for real: a conversation is minutes long; a month is absurd. */
#define WEBHOOK_DURATION_MAX_S 2592000.0

/* Lowercase hex SHA-256 of the n parts into out (>= WEBHOOK_EVENT_ID_SIZE). Returns 0 or -1. */
static int webhook_sha256_hex(const EVP_MD *sha256, const void *const *parts, const size_t *lens,
                              size_t n, char *out, size_t size)
{
	static const char hex[] = "0123456789abcdef";
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int mdlen = 0;
	EVP_MD_CTX *ctx;
	int ret = -1;

	if (size < WEBHOOK_EVENT_ID_SIZE)
		return -1;
	ctx = EVP_MD_CTX_new();
	if (ctx == NULL)
		return -1;
	if (EVP_DigestInit_ex(ctx, sha256 != NULL ? sha256 : EVP_sha256(), NULL) != 1)
		goto out;
	for (size_t i = 0; i < n; i++)
		if (lens[i] > 0 && EVP_DigestUpdate(ctx, parts[i], lens[i]) != 1)
			goto out;
	if (EVP_DigestFinal_ex(ctx, md, &mdlen) != 1 || mdlen != 32)
		goto out;
	for (unsigned i = 0; i < mdlen; i++) {
		out[2 * i] = hex[md[i] >> 4];
		out[2 * i + 1] = hex[md[i] & 15];
	}
	out[2 * mdlen] = '\0';
	ret = 0;
out:
	EVP_MD_CTX_free(ctx);
	return ret;
}

int webhook_event_id_signed(const EVP_MD *sha256, int64_t t, const void *body, size_t len,
                            char *out, size_t size)
{
	char prefix[32];
	int n = snprintf(prefix, sizeof prefix, "%lld.", (long long)t);
	const void *parts[] = {prefix, body};
	size_t lens[] = {(size_t)n, len};

	if (t < 0 || n < 0 || (size_t)n >= sizeof prefix || (body == NULL && len > 0))
		return -1;
	return webhook_sha256_hex(sha256, parts, lens, 2, out, size);
}

int webhook_event_id_tool(const EVP_MD *sha256, const char *call_sid, const char *key, char *out,
                          size_t size)
{
	const void *parts[] = {"tool\n", call_sid, "\n", key};
	size_t lens[4] = {5, 0, 1, 0};

	if (call_sid == NULL || key == NULL)
		return -1;
	lens[1] = strlen(call_sid);
	lens[3] = strlen(key);
	return webhook_sha256_hex(sha256, parts, lens, 4, out, size);
}

int webhook_event_id_random(char *out, size_t size)
{
	unsigned char b[16];
	size_t got = 0;

	if (size < 37)
		return -1;
	while (got < sizeof b) {
		ssize_t n = getrandom(b + got, sizeof b - got, 0);

		if (n < 0)
			return -1;
		got += (size_t)n;
	}
	b[6] = (unsigned char)((b[6] & 0x0f) | 0x40); /* version 4 */
	b[8] = (unsigned char)((b[8] & 0x3f) | 0x80); /* RFC 4122 variant */
	snprintf(out, size, "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x",
	         b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7], b[8], b[9], b[10], b[11], b[12],
	         b[13], b[14], b[15]);
	return 0;
}

bool webhook_id_ok(const char *s, size_t max)
{
	size_t n;

	if (s == NULL)
		return false;
	for (n = 0; s[n] != '\0'; n++) {
		unsigned char c = (unsigned char)s[n];

		if (n >= max || c < 0x20 || c == 0x7f)
			return false;
	}
	return n > 0 && codec_utf8_ok(s, n);
}

void webhook_msg_clear(struct webhook_msg *m)
{
	if (m == NULL)
		return;
	free(m->key);
	free(m->value);
	memset(m, 0, sizeof *m);
}

/* Takes ownership of enc: dumps it into out->value and copies key. Returns 0 or -1. */
static int webhook_finish(json_t *enc, const char *key, struct webhook_msg *out, char *errstr,
                          size_t errstr_size)
{
	out->value = codec_dump(enc, &out->value_len);
	json_decref(enc);
	out->key = strdup(key);
	if (out->value == NULL || out->key == NULL) {
		snprintf(errstr, errstr_size, "cannot encode the message");
		webhook_msg_clear(out);
		return -1;
	}
	out->key_len = strlen(out->key);
	out->action = WEBHOOK_PUBLISH;
	return 0;
}

void webhook_line_clear(struct webhook_line *line)
{
	if (line == NULL)
		return;
	json_decref(line->root);
	memset(line, 0, sizeof *line);
}

/* The optional idempotency key: a string (1..WEBHOOK_IDEMPOTENCY_MAX bytes, no control
 * characters) or an integer (what a tool parameter of type number sends). Returns 0 or -1. */
static int webhook_line_key(struct webhook_line *line, char *errstr, size_t errstr_size)
{
	json_t *v = json_object_get(line->root, WEBHOOK_IDEMPOTENCY_FIELD);

	line->key = NULL;
	if (v == NULL || json_is_null(v))
		return 0;
	if (json_is_integer(v)) {
		snprintf(line->key_buf, sizeof line->key_buf, "%" JSON_INTEGER_FORMAT,
		         json_integer_value(v));
		line->key = line->key_buf;
		return 0;
	}
	if (codec_get_str(line->root, WEBHOOK_IDEMPOTENCY_FIELD, false, WEBHOOK_IDEMPOTENCY_MAX,
	                  &line->key, errstr, errstr_size) < 0)
		return -1;
	if (!webhook_id_ok(line->key, WEBHOOK_IDEMPOTENCY_MAX)) {
		snprintf(errstr, errstr_size, "field '%s' must not contain control characters",
		         WEBHOOK_IDEMPOTENCY_FIELD);
		line->key = NULL;
		return -1;
	}
	return 0;
}

int webhook_line_parse(const char *body, size_t len, struct webhook_line *line, char *errstr,
                       size_t errstr_size)
{
	const char *speaker = NULL, *message = NULL;

	memset(line, 0, sizeof *line);
	line->root = codec_parse_object(body, len, errstr, errstr_size);
	if (line->root == NULL)
		return -1;
	if (codec_get_str(line->root, "call_sid", true, CODEC_CALL_SID_MAX, &line->call_sid, errstr,
	                  errstr_size) < 0 ||
	    codec_get_str(line->root, "speaker", true, 16, &speaker, errstr, errstr_size) < 0 ||
	    codec_get_str(line->root, "message", true, CODEC_MESSAGE_MAX, &message, errstr,
	                  errstr_size) < 0)
		goto fail;
	if (!webhook_id_ok(line->call_sid, CODEC_CALL_SID_MAX)) {
		snprintf(errstr, errstr_size,
		         "field 'call_sid' must not contain control characters");
		goto fail;
	}
	if (strcmp(speaker, "agent") != 0 && strcmp(speaker, "user") != 0) {
		snprintf(errstr, errstr_size, "field 'speaker' must be \"agent\" or \"user\"");
		goto fail;
	}
	if (webhook_line_key(line, errstr, errstr_size) < 0)
		goto fail;
	return 0;
fail:
	webhook_line_clear(line);
	return -1;
}

int webhook_line_encode(const struct webhook_line *line, const char *event_id,
                        const char *received_at, struct webhook_msg *out, char *errstr,
                        size_t errstr_size)
{
	json_t *copy, *enc;

	memset(out, 0, sizeof *out);
	/* The parsed body becomes the message, with no copy of the text: the stamp edits the object
	 * in place (drops the fields that are not the message's), so it works on a shallow copy and
	 * line stays intact. */
	copy = json_copy(line->root);
	if (copy == NULL) {
		snprintf(errstr, errstr_size, "out of memory");
		return -1;
	}
	enc = codec_transcription_stamp(copy, event_id, received_at);
	json_decref(copy);
	return webhook_finish(enc, line->call_sid, out, errstr, errstr_size);
}

int webhook_transcription(const char *body, size_t len, const char *event_id,
                          const char *received_at, struct webhook_msg *out, char *errstr,
                          size_t errstr_size)
{
	struct webhook_line line;
	int ret;

	memset(out, 0, sizeof *out);
	if (webhook_line_parse(body, len, &line, errstr, errstr_size) < 0)
		return -1;
	ret = webhook_line_encode(&line, event_id, received_at, out, errstr, errstr_size);
	webhook_line_clear(&line);
	return ret;
}

/* Finds the optional call_sid at data.conversation_initiation_client_data.dynamic_variables.
 * Returns 0 (*call_sid NULL when absent) or -1 with errstr when present but not a usable id. */
static int webhook_post_call_sid(json_t *data, const char **call_sid, char *errstr,
                                 size_t errstr_size)
{
	json_t *init = NULL, *vars = NULL;
	char why[256];

	*call_sid = NULL;
	if (codec_get_obj(data, "conversation_initiation_client_data", false, &init, why,
	                  sizeof why) < 0 ||
	    (init != NULL &&
	     codec_get_obj(init, "dynamic_variables", false, &vars, why, sizeof why) < 0) ||
	    (vars != NULL && codec_get_str(vars, "call_sid", false, CODEC_CALL_SID_MAX, call_sid,
	                                   why, sizeof why) < 0)) {
		snprintf(errstr, errstr_size, "data.%.200s", why);
		return -1;
	}
	if (*call_sid != NULL && !webhook_id_ok(*call_sid, CODEC_CALL_SID_MAX)) {
		snprintf(errstr, errstr_size,
		         "field 'call_sid' of the dynamic variables contains control characters");
		return -1;
	}
	return 0;
}

/* A number field of obj, when present and a number, must lie in lo..hi: 0, or -1 with errstr
 * naming it (where: its path's head). Other types are left to the consumer's tolerance. *out
 * gets the value (or -1 when absent or not a number). */
static int webhook_number_in(const json_t *obj, const char *where, const char *name, double lo,
                             double hi, double *out, char *errstr, size_t errstr_size)
{
	const json_t *v = json_object_get(obj, name);
	double x;

	*out = -1;
	if (!json_is_number(v))
		return 0;
	x = json_number_value(v);
	if (!(x >= lo && x <= hi)) { /* NaN cannot come from JSON, but would fail too */
		snprintf(errstr, errstr_size, "field '%s%s' is out of range (%.0f..%.0f)", where,
		         name, lo, hi);
		return -1;
	}
	*out = x;
	return 0;
}

/* The times a post-call carries: event_timestamp and data.metadata's start_time_unix_secs and
 * call_duration_secs must be real times (0..TIME_UNIX_MAX_S, a duration of at most a month,
 * start + duration a time too), so the consumer's arithmetic on them is always defined.
 * Returns 0, or -1 with errstr naming the field. */
static int webhook_post_call_times(const json_t *root, const json_t *data, char *errstr,
                                   size_t errstr_size)
{
	const json_t *meta = json_object_get(data, "metadata");
	double ev, start, dur;

	if (webhook_number_in(root, "", "event_timestamp", 0, (double)TIME_UNIX_MAX_S, &ev, errstr,
	                      errstr_size) < 0)
		return -1;
	if (!json_is_object(meta))
		return 0;
	if (webhook_number_in(meta, "data.metadata.", "start_time_unix_secs", 0,
	                      (double)TIME_UNIX_MAX_S, &start, errstr, errstr_size) < 0 ||
	    webhook_number_in(meta, "data.metadata.", "call_duration_secs", 0,
	                      WEBHOOK_DURATION_MAX_S, &dur, errstr, errstr_size) < 0)
		return -1;
	if (start >= 0 && dur > 0 && start + dur > (double)TIME_UNIX_MAX_S) {
		snprintf(errstr, errstr_size,
		         "fields 'data.metadata.start_time_unix_secs' + 'call_duration_secs' are "
		         "past %lld",
		         TIME_UNIX_MAX_S);
		return -1;
	}
	return 0;
}

int webhook_post_call(const char *body, size_t len, const char *event_id, const char *received_at,
                      struct webhook_msg *out, char *errstr, size_t errstr_size)
{
	struct codec_post_call m = {0};
	const char *type = NULL, *conv = NULL;
	json_t *root, *data = NULL;
	char why[256];
	int ret = -1;

	memset(out, 0, sizeof *out);
	root = codec_parse_object(body, len, errstr, errstr_size);
	if (root == NULL)
		return -1;
	if (codec_get_str(root, "type", true, 0, &type, errstr, errstr_size) < 0)
		goto out;
	snprintf(out->type, sizeof out->type, "%s", type);
	if (strcmp(type, WEBHOOK_TYPE_AUDIO) == 0) {
		out->action = WEBHOOK_DROP_AUDIO;
		ret = 0;
		goto out;
	}
	if (strcmp(type, WEBHOOK_TYPE_TRANSCRIPT) != 0 && strcmp(type, WEBHOOK_TYPE_FAILURE) != 0) {
		out->action = WEBHOOK_IGNORE;
		ret = 0;
		goto out;
	}
	if (codec_get_obj(root, "data", true, &data, errstr, errstr_size) < 0)
		goto out;
	if (codec_get_str(data, "conversation_id", false, CODEC_ID_MAX, &conv, why, sizeof why) <
	    0) {
		snprintf(errstr, errstr_size, "data.%.200s", why);
		goto out;
	}
	if (conv != NULL && !webhook_id_ok(conv, CODEC_ID_MAX)) {
		snprintf(errstr, errstr_size,
		         "field 'data.conversation_id' must not contain control characters");
		goto out;
	}
	if (webhook_post_call_sid(data, &m.call_sid, errstr, errstr_size) < 0 ||
	    webhook_post_call_times(root, data, errstr, errstr_size) < 0)
		goto out;
	if (m.call_sid == NULL && conv == NULL) {
		snprintf(
		    errstr, errstr_size,
		    "neither data.conversation_initiation_client_data.dynamic_variables.call_sid "
		    "nor data.conversation_id is present");
		goto out;
	}
	m.event_id = event_id;
	m.received_at = received_at;
	m.body = root;
	ret = webhook_finish(codec_post_call_encode(&m), m.call_sid ? m.call_sid : conv, out,
	                     errstr, errstr_size);
out:
	if (ret != 0)
		out->type[0] = '\0';
	json_decref(root);
	return ret;
}
