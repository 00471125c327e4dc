/* fuzz_webhook: libFuzzer target for the transcription and post-call webhook parsers. Every
 * webhook accepted for publishing must encode a message the transcriber's decoder accepts, keyed
 * by a non-empty id without control characters; a tool line's idempotency key always yields an
 * event id; a published post-call's times are real times (run with UBSan: no undefined
 * conversion on the way). */
#include "codec.h"
#include "webhook.h"

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define EV "e2fa7436f53f4a558289079569737a50a83cb5b978c9dafb0d10af0df135b23f"
#define AT "2025-11-21T10:30:00.000Z"

/* Whether the JSON object value has a top-level member name (the key is not published; the same
 * words inside a message's text are). */
static bool webhook_fuzz_has_key(const char *value, size_t len, const char *name)
{
	json_t *root = json_loadb(value, len, 0, NULL);
	bool has = root == NULL || json_object_get(root, name) != NULL;

	json_decref(root);
	return has;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct webhook_msg msg;
	char err[512];

	if (webhook_transcription((const char *)data, size, EV, AT, &msg, err, sizeof err) == 0) {
		struct codec_transcription t;

		if (!webhook_id_ok(msg.key, CODEC_CALL_SID_MAX) ||
		    codec_transcription_decode(msg.value, msg.value_len, &t, err, sizeof err) != 0)
			abort();
		codec_transcription_clear(&t);
		webhook_msg_clear(&msg);
	}
	{
		struct webhook_line line;

		if (webhook_line_parse((const char *)data, size, &line, err, sizeof err) == 0) {
			char id[WEBHOOK_EVENT_ID_SIZE];

			if (line.key != NULL &&
			    (webhook_event_id_tool(NULL, line.call_sid, line.key, id, sizeof id) !=
			         0 ||
			     strlen(id) != 64))
				abort();
			if (webhook_line_encode(&line, EV, AT, &msg, err, sizeof err) != 0 ||
			    webhook_fuzz_has_key(msg.value, msg.value_len, "idempotency_key"))
				abort();
			webhook_msg_clear(&msg);
			webhook_line_clear(&line);
		}
	}
	if (webhook_post_call((const char *)data, size, EV, AT, &msg, err, sizeof err) == 0) {
		if (msg.action == WEBHOOK_PUBLISH) {
			struct codec_post_call pc;

			if (!webhook_id_ok(msg.key, CODEC_ID_MAX) ||
			    codec_post_call_decode(msg.value, msg.value_len, &pc, err,
			                           sizeof err) != 0)
				abort();
			codec_post_call_clear(&pc);
		} else if (msg.value != NULL) {
			abort(); /* dropped types publish nothing */
		}
		webhook_msg_clear(&msg);
	}
	return 0;
}
