/* webhook: event ids, transcription validation and post-call routing for the ElevenLabs hooks. */
#include "webhook.h"

#include "codec.h"

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

int webhook_event_id_signed(const EVP_MD *sha256, const char *sig_header, const void *body,
                            size_t len, char *out, size_t size)
{
	static const char hex[] = "0123456789abcdef";
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int mdlen = 0;
	EVP_MD_CTX *ctx;
	int ret = -1;

	if (sig_header == NULL || size < WEBHOOK_EVENT_ID_SIZE)
		return -1;
	ctx = EVP_MD_CTX_new();
	if (ctx == NULL)
		return -1;
	if (EVP_DigestInit_ex(ctx, sha256 != NULL ? sha256 : EVP_sha256(), NULL) != 1 ||
	    EVP_DigestUpdate(ctx, sig_header, strlen(sig_header)) != 1 ||
	    EVP_DigestUpdate(ctx, "\n", 1) != 1 || EVP_DigestUpdate(ctx, body, len) != 1 ||
	    EVP_DigestFinal_ex(ctx, md, &mdlen) != 1 || mdlen != 32)
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
	return n > 0;
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

int webhook_transcription(const char *body, size_t len, const char *event_id,
                          const char *received_at, struct webhook_msg *out, char *errstr,
                          size_t errstr_size)
{
	struct codec_transcription m = {0};
	json_t *root;
	int ret = -1;

	memset(out, 0, sizeof *out);
	root = codec_parse_object(body, len, errstr, errstr_size);
	if (root == NULL)
		return -1;
	if (codec_get_str(root, "call_sid", true, CODEC_CALL_SID_MAX, &m.call_sid, errstr,
	                  errstr_size) < 0 ||
	    codec_get_str(root, "speaker", true, 16, &m.speaker, errstr, errstr_size) < 0 ||
	    codec_get_str(root, "message", true, CODEC_MESSAGE_MAX, &m.message, errstr,
	                  errstr_size) < 0)
		goto out;
	if (!webhook_id_ok(m.call_sid, CODEC_CALL_SID_MAX)) {
		snprintf(errstr, errstr_size,
		         "field 'call_sid' must not contain control characters");
		goto out;
	}
	if (strcmp(m.speaker, "agent") != 0 && strcmp(m.speaker, "user") != 0) {
		snprintf(errstr, errstr_size, "field 'speaker' must be \"agent\" or \"user\"");
		goto out;
	}
	/* the parsed body becomes the message: no second object, no copy of the text */
	ret = webhook_finish(codec_transcription_stamp(root, event_id, received_at), m.call_sid,
	                     out, errstr, errstr_size);
out:
	json_decref(root);
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
	if (webhook_post_call_sid(data, &m.call_sid, errstr, errstr_size) < 0)
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
