/* fuzz_request: libFuzzer target for the BatchCallRequest parser and phone normalisation. Besides
 * not crashing, every accepted request must encode messages the consumer-side decoder accepts,
 * with call_sids that are safe Kafka keys. */
#include "codec.h"
#include "phone.h"
#include "request.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void fuzz_check_batch(const struct request_batch *rb)
{
	json_t *reply;

	for (size_t i = 0; i < request_batch_count(rb); i++) {
		struct codec_call_requested m;
		const char *sid = request_batch_call_sid(rb, i);
		const char *value;
		char err[256];
		size_t len;

		if (strncmp(sid, "EL_", 3) != 0 || strlen(sid) > CODEC_CALL_SID_MAX)
			abort();
		value = request_batch_value(rb, i, &len);
		if (codec_call_requested_decode(value, len, &m, err, sizeof err) != 0)
			abort(); /* we produced something the dialer would reject */
		if (strcmp(m.call_sid, sid) != 0 || m.phone_number[0] != '+' ||
		    strlen(m.phone_number) != 12)
			abort();
		codec_call_requested_clear(&m);
	}
	reply = request_batch_reply(rb);
	if (reply == NULL)
		abort();
	json_decref(reply);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char err[512], e164[PHONE_E164_SIZE];
	struct request_batch *rb;
	char *text;

	rb = request_parse((const char *)data, size, "2025-11-21T10:30:00.000Z", err, sizeof err);
	if (rb != NULL) {
		fuzz_check_batch(rb);
		request_batch_free(rb);
	} else if (err[0] == '\0') {
		abort(); /* a refusal must say why */
	}
	/* the same bytes as a phone number */
	text = malloc(size + 1);
	if (text == NULL)
		return 0;
	memcpy(text, data, size);
	text[size] = '\0';
	/* an accepted number obeys the numbering plan; a refused one says why */
	err[0] = '\0';
	if (phone_e164(text, e164, sizeof e164, err, sizeof err) == 0) {
		if (strlen(e164) != 12 || strncmp(e164, "+1", 2) != 0 || e164[2] < '2' ||
		    e164[5] < '2' || (e164[3] == '1' && e164[4] == '1') ||
		    (e164[6] == '1' && e164[7] == '1') || strncmp(e164 + 2, "900", 3) == 0 ||
		    strncmp(e164 + 5, "976", 3) == 0)
			abort();
	} else if (err[0] == '\0') {
		abort();
	}
	free(text);
	return 0;
}
