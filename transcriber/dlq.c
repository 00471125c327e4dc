/* dlq: a webhook message to its dead-letter topic through common/dlq. */
#include "dlq.h"

#include "deadletter.h"
#include "kbus.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int tr_dlq_send(struct kbus_producer *p, const struct tr_msg *m, const char *reason,
                const char *error, unsigned attempts, int timeout_ms, char *errstr,
                size_t errstr_size)
{
	struct kbus_header *h = m->nheaders ? calloc(m->nheaders, sizeof *h) : NULL;
	struct deadletter l;
	int rc;

	if (m->nheaders && !h) {
		snprintf(errstr, errstr_size, "out of memory");
		return -1;
	}
	for (size_t i = 0; i < m->nheaders; i++)
		h[i] = (struct kbus_header){m->headers[i].name, m->headers[i].value};
	l = (struct deadletter){
	    .source_topic = m->topic,
	    .partition = m->partition,
	    .offset = m->offset,
	    .key = m->key,
	    .key_len = m->key ? strlen(m->key) : 0,
	    .value = m->value,
	    .value_len = m->value_len,
	    .headers = h,
	    .nheaders = m->nheaders,
	    .reason = reason,
	    .last_error = error,
	    .attempts = attempts,
	};
	rc = deadletter_send(p, &l, timeout_ms, errstr, errstr_size);
	free(h);
	return rc;
}
