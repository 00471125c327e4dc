/* ts_kafka: reading back everything in a topic (plain assign, no group membership, beginning to
 * the high watermark) and producing single messages, for integration-test assertions. */
#include "ts_int.h"
#include "tsupport.h"

#include <librdkafka/rdkafka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static char *ts_strndup_or_null(const void *p, size_t n)
{
	char *s;

	if (!p)
		return NULL;
	s = malloc(n + 1);
	if (!s)
		fail_msg("out of memory");
	memcpy(s, p, n);
	s[n] = '\0';
	return s;
}

typedef void ts_dr_fn(rd_kafka_t *rk, const rd_kafka_message_t *rkm, void *opaque);

static rd_kafka_t *ts_kafka_new(rd_kafka_type_t type, const char *bootstrap, ts_dr_fn *dr)
{
	static unsigned seq;
	rd_kafka_conf_t *conf = rd_kafka_conf_new();
	char err[512], group[64];
	rd_kafka_t *rk;

	/* assign() needs a group.id to exist, but the group is never joined or committed to. */
	snprintf(group, sizeof group, "tsupport-%ld-%u", (long)getpid(), ++seq);
	if (rd_kafka_conf_set(conf, "bootstrap.servers", bootstrap, err, sizeof err) ||
	    rd_kafka_conf_set(conf, "client.id", "tsupport", err, sizeof err) ||
	    rd_kafka_conf_set(conf, "log_level", "3", err, sizeof err) ||
	    (type == RD_KAFKA_CONSUMER &&
	     (rd_kafka_conf_set(conf, "group.id", group, err, sizeof err) ||
	      rd_kafka_conf_set(conf, "enable.auto.commit", "false", err, sizeof err) ||
	      rd_kafka_conf_set(conf, "auto.offset.reset", "earliest", err, sizeof err))) ||
	    (type == RD_KAFKA_PRODUCER &&
	     (rd_kafka_conf_set(conf, "enable.idempotence", "true", err, sizeof err) ||
	      rd_kafka_conf_set(conf, "message.timeout.ms", "10000", err, sizeof err)))) {
		rd_kafka_conf_destroy(conf);
		fail_msg("kafka conf: %s", err);
	}
	if (dr)
		rd_kafka_conf_set_dr_msg_cb(conf, dr);
	rk = rd_kafka_new(type, conf, err, sizeof err);
	if (!rk) {
		rd_kafka_conf_destroy(conf);
		fail_msg("rd_kafka_new: %s", err);
	}
	return rk;
}

static int ts_kmsg_cmp(const void *a, const void *b)
{
	const struct ts_kmsg *x = a, *y = b;

	if (x->partition != y->partition)
		return x->partition < y->partition ? -1 : 1;
	return x->offset < y->offset ? -1 : x->offset > y->offset;
}

static void ts_kmsg_fill(struct ts_kmsg *m, const rd_kafka_message_t *rkm)
{
	rd_kafka_headers_t *hdrs = NULL;

	memset(m, 0, sizeof *m);
	m->key = ts_strndup_or_null(rkm->key, rkm->key_len);
	m->value = ts_strndup_or_null(rkm->payload ? rkm->payload : "", rkm->len);
	m->value_len = rkm->len;
	m->partition = rkm->partition;
	m->offset = rkm->offset;
	if (rd_kafka_message_headers(rkm, &hdrs) || !hdrs)
		return;
	m->nheaders = rd_kafka_header_cnt(hdrs);
	m->header_names = calloc(m->nheaders + 1, sizeof *m->header_names);
	m->header_values = calloc(m->nheaders + 1, sizeof *m->header_values);
	if (!m->header_names || !m->header_values)
		fail_msg("out of memory");
	for (size_t i = 0; i < m->nheaders; i++) {
		const char *name;
		const void *val;
		size_t len;

		if (rd_kafka_header_get_all(hdrs, i, &name, &val, &len))
			break;
		m->header_names[i] = ts_strndup_or_null(name, strlen(name));
		m->header_values[i] = ts_strndup_or_null(val ? val : "", val ? len : 0);
	}
}

size_t ts_kafka_read_all(const char *bootstrap, const char *topic, struct ts_kmsg **out)
{
	rd_kafka_t *rk = ts_kafka_new(RD_KAFKA_CONSUMER, bootstrap, NULL);
	rd_kafka_topic_t *rkt = rd_kafka_topic_new(rk, topic, NULL);
	const struct rd_kafka_metadata *md = NULL;
	rd_kafka_topic_partition_list_t *parts;
	rd_kafka_resp_err_t err;
	int64_t *end;
	size_t n = 0, cap = 16, want = 0, got = 0;
	struct ts_kmsg *msgs = malloc(cap * sizeof *msgs);
	time_t deadline = time(NULL) + 20;
	int npart;

	err = rd_kafka_metadata(rk, 0, rkt, &md, 10000);
	if (err || md->topic_cnt != 1 || md->topics[0].err)
		fail_msg("topic %s: no metadata (%s)", topic,
		         rd_kafka_err2str(err             ? err
		                          : md->topic_cnt ? md->topics[0].err
		                                          : err));
	npart = md->topics[0].partition_cnt;
	rd_kafka_metadata_destroy(md);
	rd_kafka_topic_destroy(rkt);
	end = calloc((size_t)npart + 1, sizeof *end);
	parts = rd_kafka_topic_partition_list_new(npart);
	for (int p = 0; p < npart; p++) {
		int64_t lo, hi;
		err = rd_kafka_query_watermark_offsets(rk, topic, p, &lo, &hi, 10000);
		if (err)
			fail_msg("watermarks of %s[%d]: %s", topic, p, rd_kafka_err2str(err));
		end[p] = hi;
		if (hi > lo) {
			rd_kafka_topic_partition_list_add(parts, topic, p)->offset = lo;
			want += (size_t)(hi - lo);
		}
	}
	if (parts->cnt > 0 && (err = rd_kafka_assign(rk, parts)))
		fail_msg("assign %s: %s", topic, rd_kafka_err2str(err));
	rd_kafka_topic_partition_list_destroy(parts);
	while (got < want) {
		rd_kafka_message_t *rkm = rd_kafka_consumer_poll(rk, 200);

		if (time(NULL) > deadline)
			fail_msg("reading %s: got %zu of %zu messages in 20 s", topic, got, want);
		if (!rkm)
			continue;
		if (rkm->err) {
			rd_kafka_message_destroy(rkm);
			continue;
		}
		if (rkm->partition < npart && rkm->offset < end[rkm->partition]) {
			if (n == cap) {
				cap *= 2;
				msgs = realloc(msgs, cap * sizeof *msgs);
				if (!msgs)
					fail_msg("out of memory");
			}
			ts_kmsg_fill(&msgs[n++], rkm);
			got++;
		}
		rd_kafka_message_destroy(rkm);
	}
	rd_kafka_consumer_close(rk);
	rd_kafka_destroy(rk);
	free(end);
	qsort(msgs, n, sizeof *msgs, ts_kmsg_cmp);
	*out = msgs;
	return n;
}

void ts_kmsgs_free(struct ts_kmsg *msgs, size_t n)
{
	if (!msgs)
		return;
	for (size_t i = 0; i < n; i++) {
		for (size_t h = 0; h < msgs[i].nheaders; h++) {
			free(msgs[i].header_names[h]);
			free(msgs[i].header_values[h]);
		}
		free(msgs[i].header_names);
		free(msgs[i].header_values);
		free(msgs[i].key);
		free(msgs[i].value);
	}
	free(msgs);
}

const char *ts_kmsg_header(const struct ts_kmsg *m, const char *name)
{
	const char *found = NULL;

	for (size_t i = 0; i < m->nheaders; i++)
		if (m->header_names[i] && strcmp(m->header_names[i], name) == 0)
			found = m->header_values[i];
	return found;
}

static void ts_dr_cb(rd_kafka_t *rk, const rd_kafka_message_t *rkm, void *opaque)
{
	(void)rk;
	(void)opaque;
	*(rd_kafka_resp_err_t *)rkm->_private = rkm->err;
}

void ts_kafka_produce(const char *bootstrap, const char *topic, const char *key, const char *value,
                      const char *const *headers)
{
	rd_kafka_t *rk;
	rd_kafka_headers_t *hdrs = rd_kafka_headers_new(4);
	rd_kafka_resp_err_t err, dr_err = RD_KAFKA_RESP_ERR__IN_PROGRESS;
	char errstr[512];

	/* The delivery report lands in dr_err through the per-message opaque. */
	rk = ts_kafka_new(RD_KAFKA_PRODUCER, bootstrap, ts_dr_cb);
	for (size_t i = 0; headers && headers[i] && headers[i + 1]; i += 2)
		rd_kafka_header_add(hdrs, headers[i], -1, headers[i + 1], -1);
	err = rd_kafka_producev(rk, RD_KAFKA_V_TOPIC(topic),
	                        RD_KAFKA_V_KEY(key, key ? strlen(key) : 0),
	                        RD_KAFKA_V_VALUE((void *)value, value ? strlen(value) : 0),
	                        RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY), RD_KAFKA_V_HEADERS(hdrs),
	                        RD_KAFKA_V_OPAQUE(&dr_err), RD_KAFKA_V_END);
	if (err) {
		rd_kafka_headers_destroy(hdrs);
		rd_kafka_destroy(rk);
		fail_msg("produce to %s: %s", topic, rd_kafka_err2str(err));
	}
	rd_kafka_flush(rk, 15000);
	snprintf(errstr, sizeof errstr, "%s", rd_kafka_err2str(dr_err));
	rd_kafka_destroy(rk);
	if (dr_err)
		fail_msg("produce to %s: delivery failed: %s", topic, errstr);
}

int64_t ts_kafka_committed(const char *bootstrap, const char *group, const char *topic,
                           int32_t partition)
{
	rd_kafka_conf_t *conf = rd_kafka_conf_new();
	rd_kafka_topic_partition_list_t *parts;
	rd_kafka_resp_err_t err;
	char errstr[512];
	int64_t offset;
	rd_kafka_t *rk;

	/* The group's id, to ask its coordinator; it never subscribes, so it never joins. */
	if (rd_kafka_conf_set(conf, "bootstrap.servers", bootstrap, errstr, sizeof errstr) ||
	    rd_kafka_conf_set(conf, "client.id", "tsupport", errstr, sizeof errstr) ||
	    rd_kafka_conf_set(conf, "log_level", "3", errstr, sizeof errstr) ||
	    rd_kafka_conf_set(conf, "group.id", group, errstr, sizeof errstr) ||
	    rd_kafka_conf_set(conf, "enable.auto.commit", "false", errstr, sizeof errstr)) {
		rd_kafka_conf_destroy(conf);
		fail_msg("kafka conf: %s", errstr);
	}
	rk = rd_kafka_new(RD_KAFKA_CONSUMER, conf, errstr, sizeof errstr);
	if (!rk) {
		rd_kafka_conf_destroy(conf);
		fail_msg("rd_kafka_new: %s", errstr);
	}
	parts = rd_kafka_topic_partition_list_new(1);
	rd_kafka_topic_partition_list_add(parts, topic, partition);
	err = rd_kafka_committed(rk, parts, 10000);
	if (!err)
		err = parts->elems[0].err;
	offset = parts->elems[0].offset;
	rd_kafka_topic_partition_list_destroy(parts);
	rd_kafka_destroy_flags(rk, RD_KAFKA_DESTROY_F_NO_CONSUMER_CLOSE);
	if (err)
		fail_msg("committed offset of %s [%d] in group %s: %s", topic, (int)partition,
		         group, rd_kafka_err2str(err));
	return offset >= 0 ? offset : -1;
}
