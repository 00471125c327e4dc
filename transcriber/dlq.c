/* dlq: dead-letter produce with the headers operators and the redrive need. */
#include "dlq.h"

#include "kbus.h"
#include "timeutil.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *const tr_dlq_headers[] = {
    TR_HDR_ERROR,
    TR_HDR_REASON,
    TR_HDR_ATTEMPTS,
    TR_HDR_SOURCE_TOPIC,
    TR_HDR_SOURCE_PARTITION,
    TR_HDR_SOURCE_OFFSET,
    TR_HDR_DEAD_LETTERED_AT,
};
#define TR_NDLQ_HEADERS (sizeof tr_dlq_headers / sizeof tr_dlq_headers[0])

bool tr_dlq_header(const char *name)
{
	for (size_t i = 0; i < TR_NDLQ_HEADERS; i++)
		if (strcmp(name, tr_dlq_headers[i]) == 0)
			return true;
	return false;
}

int tr_dlq_send(struct kbus_producer *p, const struct tr_msg *m, const char *reason,
                const char *error, unsigned attempts, int timeout_ms, char *errstr,
                size_t errstr_size)
{
	struct kbus_header *h = calloc(m->nheaders + TR_NDLQ_HEADERS, sizeof *h);
	char topic[512], s_attempts[16], s_partition[16], s_offset[32], at[40];
	size_t nh = 0;
	int rc = -1;

	if (!h) {
		snprintf(errstr, errstr_size, "out of memory");
		return -1;
	}
	if ((size_t)snprintf(topic, sizeof topic, "%s" KBUS_DLQ_SUFFIX, m->topic) >= sizeof topic) {
		snprintf(errstr, errstr_size, "topic name too long");
		goto out;
	}
	/* An earlier dead-letter's headers (a redriven message failing again) are replaced. */
	for (size_t i = 0; i < m->nheaders; i++)
		if (!tr_dlq_header(m->headers[i].name))
			h[nh++] = (struct kbus_header){m->headers[i].name, m->headers[i].value};
	snprintf(s_attempts, sizeof s_attempts, "%u", attempts);
	snprintf(s_partition, sizeof s_partition, "%" PRId32, m->partition);
	snprintf(s_offset, sizeof s_offset, "%" PRId64, m->offset);
	time_format_iso_ms(time_now_ms(), at, sizeof at);
	h[nh++] = (struct kbus_header){TR_HDR_ERROR, error ? error : ""};
	h[nh++] = (struct kbus_header){TR_HDR_REASON, reason};
	h[nh++] = (struct kbus_header){TR_HDR_ATTEMPTS, s_attempts};
	h[nh++] = (struct kbus_header){TR_HDR_SOURCE_TOPIC, m->topic};
	h[nh++] = (struct kbus_header){TR_HDR_SOURCE_PARTITION, s_partition};
	h[nh++] = (struct kbus_header){TR_HDR_SOURCE_OFFSET, s_offset};
	h[nh++] = (struct kbus_header){TR_HDR_DEAD_LETTERED_AT, at};
	rc = kbus_produce_sync(p, topic, m->key, m->key ? strlen(m->key) : 0, m->value,
	                       m->value_len, h, nh, timeout_ms, errstr, errstr_size);
out:
	free(h);
	return rc;
}
