/* codec: the design.md §4 Kafka messages in and out of JSON (jansson), strict about types, with
 * errors that name the field. Decoded structs borrow their strings from the json root they
 * keep; codec_*_clear releases it. Encoders return a new reference the caller owns. */
#ifndef CALLPIPE_CODEC_H
#define CALLPIPE_CODEC_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

/* Field getters on a JSON object: write "field 'name' ..." into errstr on failure, return -1.
 * required=false: a missing field (or null) leaves *out NULL / untouched and returns 0.
 * Strings must be non-empty and at most max_len bytes (0: unlimited). */
int codec_get_str(const json_t *obj, const char *name, bool required, size_t max_len,
                  const char **out, char *errstr, size_t errstr_size);
int codec_get_obj(const json_t *obj, const char *name, bool required, json_t **out, char *errstr,
                  size_t errstr_size);
int codec_get_arr(const json_t *obj, const char *name, bool required, json_t **out, char *errstr,
                  size_t errstr_size);

/* True when s[0..len) is well-formed UTF-8 by the rules jansson applies to JSON strings (no
 * overlong forms, no surrogates, nothing above U+10FFFF): text that can become a JSON string or a
 * Postgres text value. */
bool codec_utf8_ok(const char *s, size_t len);

/* Parses a buffer that must hold one JSON object. errstr says where it broke. Returns new ref. */
json_t *codec_parse_object(const char *buf, size_t len, char *errstr, size_t errstr_size);

/* Serialises compactly (JSON_COMPACT), malloc'd; caller frees. NULL on failure. */
char *codec_dump(const json_t *root, size_t *len);

/* calls.requested */
struct codec_call_requested {
	json_t *root;
	const char *call_sid, *driver_id, *driver_name, *phone_number; /* required */
	const char *trip_id, *call_type, *custom_rules;                /* optional (NULL) */
	json_t *violations;                                            /* borrowed; may be NULL */
	const char *requested_at;                                      /* required, ISO-8601 */
};
json_t *codec_call_requested_encode(const struct codec_call_requested *m);
int codec_call_requested_decode(const char *buf, size_t len, struct codec_call_requested *m,
                                char *errstr, size_t errstr_size);
void codec_call_requested_clear(struct codec_call_requested *m);

/* webhooks.transcription; speaker is "agent" or "user". */
struct codec_transcription {
	json_t *root;
	const char *event_id, *received_at, *call_sid, *speaker, *message;
};
json_t *codec_transcription_encode(const struct codec_transcription *m);
/* The same message made in place from root, a transcription webhook whose call_sid, speaker and
 * message the caller already checked: fields that are not the message's are dropped, event_id and
 * received_at set (no new object, no copy of the text). Returns root with one more reference, or
 * NULL. */
json_t *codec_transcription_stamp(json_t *root, const char *event_id, const char *received_at);
int codec_transcription_decode(const char *buf, size_t len, struct codec_transcription *m,
                               char *errstr, size_t errstr_size);
void codec_transcription_clear(struct codec_transcription *m);

/* webhooks.post_call; body is the webhook as received (borrowed from root). call_sid may be NULL.
 */
struct codec_post_call {
	json_t *root;
	const char *event_id, *received_at, *call_sid;
	json_t *body;
};
json_t *codec_post_call_encode(const struct codec_post_call *m);
int codec_post_call_decode(const char *buf, size_t len, struct codec_post_call *m, char *errstr,
                           size_t errstr_size);
void codec_post_call_clear(struct codec_post_call *m);

/* Limits shared by producers and consumers. */
#define CODEC_CALL_SID_MAX 255
#define CODEC_ID_MAX       255
#define CODEC_MESSAGE_MAX  16384

#endif
