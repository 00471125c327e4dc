/* deadletter: the one dead-letter producer of every worker, with one header set. */
#include "deadletter.h"

#include "timeutil.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *const deadletter_headers[] = {
    DEADLETTER_HDR_REASON,        DEADLETTER_HDR_ERROR,
    DEADLETTER_HDR_FIRST_ERROR,   DEADLETTER_HDR_ATTEMPTS,
    DEADLETTER_HDR_SOURCE_TOPIC,  DEADLETTER_HDR_SOURCE_PARTITION,
    DEADLETTER_HDR_SOURCE_OFFSET, DEADLETTER_HDR_DEAD_LETTERED_AT,
};
#define DEADLETTER_NHEADERS (sizeof deadletter_headers / sizeof deadletter_headers[0])

bool deadletter_header(const char *name)
{
	for (size_t i = 0; i < DEADLETTER_NHEADERS; i++)
		if (strcmp(name, deadletter_headers[i]) == 0)
			return true;
	return false;
}

int deadletter_send(struct kbus_producer *p, const struct deadletter *l, int timeout_ms,
                    char *errstr, size_t errstr_size)
{
	struct kbus_header *h = calloc(l->nheaders + DEADLETTER_NHEADERS, sizeof *h);
	char topic[512], attempts[16], partition[16], offset[32], at[40];
	const char *last = l->last_error ? l->last_error : "";
	size_t nh = 0;
	int rc = -1;

	if (!h) {
		snprintf(errstr, errstr_size, "out of memory");
		return -1;
	}
	if ((size_t)snprintf(topic, sizeof topic, "%s" KBUS_DLQ_SUFFIX, l->source_topic) >=
	    sizeof topic) {
		snprintf(errstr, errstr_size, "topic name too long");
		goto out;
	}
	/* An earlier dead letter's headers (a redriven message failing again) are replaced. */
	for (size_t i = 0; i < l->nheaders; i++)
		if (!deadletter_header(l->headers[i].name))
			h[nh++] = l->headers[i];
	snprintf(attempts, sizeof attempts, "%u", l->attempts ? l->attempts : 1);
	snprintf(partition, sizeof partition, "%" PRId32, l->partition);
	snprintf(offset, sizeof offset, "%" PRId64, l->offset);
	time_format_iso_ms(time_now_ms(), at, sizeof at);
	h[nh++] = (struct kbus_header){DEADLETTER_HDR_REASON, l->reason ? l->reason : ""};
	h[nh++] = (struct kbus_header){DEADLETTER_HDR_ERROR, last};
	h[nh++] = (struct kbus_header){DEADLETTER_HDR_FIRST_ERROR,
	                               l->first_error ? l->first_error : last};
	h[nh++] = (struct kbus_header){DEADLETTER_HDR_ATTEMPTS, attempts};
	h[nh++] = (struct kbus_header){DEADLETTER_HDR_SOURCE_TOPIC, l->source_topic};
	h[nh++] = (struct kbus_header){DEADLETTER_HDR_SOURCE_PARTITION, partition};
	h[nh++] = (struct kbus_header){DEADLETTER_HDR_SOURCE_OFFSET, offset};
	h[nh++] = (struct kbus_header){DEADLETTER_HDR_DEAD_LETTERED_AT, at};
	rc = kbus_produce_sync(p, topic, l->key, l->key ? l->key_len : 0, l->value, l->value_len, h,
	                       nh, timeout_ms, errstr, errstr_size);
out:
	free(h);
	return rc;
}

int deadletter_headers_copy(const rd_kafka_message_t *rkm, struct kbus_header **out, size_t *n)
{
	rd_kafka_headers_t *hdrs = NULL;
	struct kbus_header *h;
	const char *name;
	const void *val;
	size_t cnt, len;

	*out = NULL;
	*n = 0;
	if (rd_kafka_message_headers(rkm, &hdrs) != RD_KAFKA_RESP_ERR_NO_ERROR || !hdrs)
		return 0;
	cnt = rd_kafka_header_cnt(hdrs);
	if (cnt == 0)
		return 0;
	h = calloc(cnt, sizeof *h);
	if (!h)
		return -1;
	for (size_t i = 0; i < cnt; i++) {
		char *nm, *v;

		if (rd_kafka_header_get_all(hdrs, i, &name, &val, &len) !=
		    RD_KAFKA_RESP_ERR_NO_ERROR)
			break;
		nm = strdup(name);
		v = malloc(len + 1);
		if (!nm || !v) {
			free(nm);
			free(v);
			deadletter_headers_free(h, *n);
			*n = 0;
			return -1;
		}
		if (val && len)
			memcpy(v, val, len);
		v[len] = '\0';
		h[*n] = (struct kbus_header){nm, v};
		(*n)++;
	}
	*out = h;
	return 0;
}

void deadletter_headers_free(struct kbus_header *h, size_t n)
{
	if (!h)
		return;
	for (size_t i = 0; i < n; i++) {
		free((char *)h[i].name);
		free((char *)h[i].value);
	}
	free(h);
}
