/* msg: copying, decoding and freeing consumed webhook messages. */
#include "msg.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static char *tr_strndup(const void *p, size_t len)
{
	char *s = malloc(len + 1);

	if (!s)
		return NULL;
	if (len)
		memcpy(s, p, len);
	s[len] = '\0';
	return s;
}

static struct tr_msg *tr_msg_alloc(const char *topic, int32_t partition, int64_t offset,
                                   int64_t timestamp_ms, const void *key, size_t key_len,
                                   const void *value, size_t value_len, size_t nheaders)
{
	struct tr_msg *m = calloc(1, sizeof *m);

	if (!m)
		return NULL;
	m->partition = partition;
	m->offset = offset;
	m->timestamp_ms = timestamp_ms;
	m->order_partition = partition;
	m->order_offset = offset;
	m->topic = strdup(topic);
	m->value = tr_strndup(value, value_len);
	m->value_len = value_len;
	m->key = key ? tr_strndup(key, key_len) : NULL;
	m->headers = calloc(nheaders + 1, sizeof *m->headers);
	if (!m->topic || !m->value || (key && !m->key) || !m->headers) {
		tr_msg_free(m);
		return NULL;
	}
	return m;
}

struct tr_msg *tr_msg_new(const char *topic, int32_t partition, int64_t offset,
                          int64_t timestamp_ms, const char *key, const void *value,
                          size_t value_len, const char *const *headers, size_t nheaders)
{
	struct tr_msg *m = tr_msg_alloc(topic, partition, offset, timestamp_ms, key,
	                                key ? strlen(key) : 0, value, value_len, nheaders);

	if (!m)
		return NULL;
	for (size_t i = 0; i < nheaders; i++) {
		struct tr_header *h = &m->headers[m->nheaders];

		h->name = strdup(headers[2 * i]);
		h->value = strdup(headers[2 * i + 1] ? headers[2 * i + 1] : "");
		m->nheaders++;
		if (!h->name || !h->value) {
			tr_msg_free(m);
			return NULL;
		}
	}
	return m;
}

struct tr_msg *tr_msg_from_kafka(const rd_kafka_message_t *rkm)
{
	rd_kafka_headers_t *hdrs = NULL;
	rd_kafka_timestamp_type_t tstype;
	int64_t ts = rd_kafka_message_timestamp(rkm, &tstype);
	size_t nheaders = 0;
	struct tr_msg *m;

	if (rd_kafka_message_headers(rkm, &hdrs) == RD_KAFKA_RESP_ERR_NO_ERROR && hdrs)
		nheaders = rd_kafka_header_cnt(hdrs);
	m = tr_msg_alloc(rd_kafka_topic_name(rkm->rkt), rkm->partition, rkm->offset,
	                 tstype == RD_KAFKA_TIMESTAMP_NOT_AVAILABLE ? -1 : ts, rkm->key,
	                 rkm->key_len, rkm->payload ? rkm->payload : "", rkm->len, nheaders);
	if (!m)
		return NULL;
	for (size_t i = 0; i < nheaders; i++) {
		const char *name;
		const void *val;
		size_t size;
		struct tr_header *h = &m->headers[m->nheaders];

		if (rd_kafka_header_get_all(hdrs, i, &name, &val, &size))
			break;
		h->name = strdup(name);
		h->value = tr_strndup(val ? val : "", val ? size : 0);
		m->nheaders++;
		if (!h->name || !h->value) {
			tr_msg_free(m);
			return NULL;
		}
	}
	return m;
}

const char *tr_msg_header(const struct tr_msg *m, const char *name)
{
	const char *found = NULL;

	for (size_t i = 0; i < m->nheaders; i++)
		if (strcmp(m->headers[i].name, name) == 0)
			found = m->headers[i].value; /* the last one wins, as in Kafka clients */
	return found;
}

/* A redriven line keeps its place: the ingress's original partition/offset from the headers. */
static void tr_msg_origin(struct tr_msg *m)
{
	const char *p = tr_msg_header(m, TR_HDR_ORIGIN_PARTITION);
	const char *o = tr_msg_header(m, TR_HDR_ORIGIN_OFFSET);
	char *end1 = NULL, *end2 = NULL;
	long part;
	long long off;

	if (!p || !o)
		return;
	part = strtol(p, &end1, 10);
	off = strtoll(o, &end2, 10);
	if (*p && *o && *end1 == '\0' && *end2 == '\0' && part >= 0 && off >= 0) {
		m->order_partition = (int32_t)part;
		m->order_offset = off;
	}
}

void tr_msg_decode(struct tr_msg *m, const char *line_topic, const char *post_topic)
{
	char err[200];

	m->decoded = true;
	m->kind = TR_MSG_BAD;
	if (strcmp(m->topic, line_topic) == 0) {
		if (codec_transcription_decode(m->value, m->value_len, &m->line, err, sizeof err) <
		    0) {
			snprintf(m->error, sizeof m->error, "transcription message: %s", err);
			return;
		}
		m->call_sid = m->line.call_sid;
		m->kind = TR_MSG_LINE;
		tr_msg_origin(m);
		return;
	}
	if (strcmp(m->topic, post_topic) != 0) {
		snprintf(m->error, sizeof m->error, "message from unexpected topic %s", m->topic);
		return;
	}
	if (codec_post_call_decode(m->value, m->value_len, &m->post, err, sizeof err) < 0) {
		snprintf(m->error, sizeof m->error, "post-call message: %s", err);
		return;
	}
	if (tr_post_call_parse(m->post.body, &m->pc, err, sizeof err) < 0) {
		snprintf(m->error, sizeof m->error, "post-call body: %s", err);
		return;
	}
	m->call_sid = m->post.call_sid ? m->post.call_sid : m->pc.call_sid;
	m->kind = TR_MSG_POST_CALL;
}

int tr_msg_resolve_call(struct tr_msg *m, const char *call_sid)
{
	char *copy = strdup(call_sid);

	if (!copy)
		return -1;
	free(m->resolved_call_sid);
	m->resolved_call_sid = copy;
	m->call_sid = copy;
	return 0;
}

void tr_msg_free(struct tr_msg *m)
{
	if (!m)
		return;
	free(m->resolved_call_sid);
	codec_transcription_clear(&m->line);
	tr_post_call_clear(&m->pc);
	codec_post_call_clear(&m->post);
	for (size_t i = 0; i < m->nheaders; i++) {
		free(m->headers[i].name);
		free(m->headers[i].value);
	}
	free(m->headers);
	free(m->topic);
	free(m->key);
	free(m->value);
	free(m);
}

int tr_vec_push(struct tr_vec *vec, struct tr_msg *m)
{
	if (vec->n == vec->cap) {
		size_t cap = vec->cap ? vec->cap * 2 : 64;
		struct tr_msg **v = realloc(vec->v, cap * sizeof *v);

		if (!v)
			return -1;
		vec->v = v;
		vec->cap = cap;
	}
	vec->v[vec->n++] = m;
	return 0;
}

void tr_vec_free(struct tr_vec *vec)
{
	free(vec->v);
	vec->v = NULL;
	vec->n = vec->cap = 0;
}
