/* kbus_topics: callpipe's topics defined once; created and checked with the Kafka admin API. */
#include "kbus_topics.h"

#include "kbus_int.h"
#include "log.h"

#include <stdio.h>
#include <string.h>

static const char *const kbus_topics_bases[] = {KBUS_TOPIC_CALLS_REQUESTED,
                                                KBUS_TOPIC_TRANSCRIPTION, KBUS_TOPIC_POST_CALL};

int kbus_topics_get(const struct kbus_topics_plan *plan, size_t i, char *name, size_t size,
                    int *partitions)
{
	struct kbus_config kc = {.topic_prefix = plan->prefix};
	bool dlq = i % 2 == 1;

	if (i >= KBUS_TOPICS_COUNT)
		return -1;
	if (kbus_topic(&kc, kbus_topics_bases[i / 2], dlq, name, size))
		return -1;
	if (dlq)
		*partitions =
		    plan->dlq_partitions > 0 ? plan->dlq_partitions : KBUS_TOPICS_DLQ_PARTITIONS;
	else
		*partitions = plan->partitions > 0 ? plan->partitions : KBUS_TOPICS_PARTITIONS;
	return 0;
}

/* An admin client (a producer handle that never produces) for conf's cluster. */
static rd_kafka_t *kbus_topics_client(const struct kbus_config *conf, char *errstr,
                                      size_t errstr_size)
{
	rd_kafka_conf_t *rkc = rd_kafka_conf_new();
	rd_kafka_t *rk;

	if (kbus_conf_common(rkc, conf, errstr, errstr_size) ||
	    kbus_conf_extra(rkc, conf, errstr, errstr_size)) {
		rd_kafka_conf_destroy(rkc);
		return NULL;
	}
	rk = rd_kafka_new(RD_KAFKA_PRODUCER, rkc, errstr, errstr_size);
	if (!rk)
		rd_kafka_conf_destroy(rkc);
	return rk;
}

/* Partition counts of the plan's topics as the cluster reports them (0: missing). */
static int kbus_topics_describe(rd_kafka_t *rk, const struct kbus_topics_plan *plan, int timeout_ms,
                                int *have, char *errstr, size_t errstr_size)
{
	const struct rd_kafka_metadata *md = NULL;
	rd_kafka_resp_err_t err;
	char name[512];
	int want;

	err = rd_kafka_metadata(rk, 1, NULL, &md, timeout_ms);
	if (err) {
		snprintf(errstr, errstr_size, "cluster metadata: %s", rd_kafka_err2str(err));
		return -1;
	}
	for (size_t i = 0; i < KBUS_TOPICS_COUNT; i++) {
		have[i] = 0;
		if (kbus_topics_get(plan, i, name, sizeof name, &want))
			continue;
		for (int t = 0; t < md->topic_cnt; t++)
			if (strcmp(md->topics[t].topic, name) == 0 && !md->topics[t].err)
				have[i] = md->topics[t].partition_cnt;
	}
	rd_kafka_metadata_destroy(md);
	return 0;
}

/* Compares what the cluster has with the plan: 0 as planned, 1 a topic is missing, -1 one is too
 * small (or the prefix too long); errstr names the first shortfall. */
static int kbus_topics_compare(const struct kbus_topics_plan *plan, const int *have, char *errstr,
                               size_t errstr_size)
{
	char name[512];
	int want;

	for (size_t i = 0; i < KBUS_TOPICS_COUNT; i++) {
		if (kbus_topics_get(plan, i, name, sizeof name, &want)) {
			snprintf(errstr, errstr_size, "topic prefix too long");
			return -1;
		}
		if (have[i] == 0) {
			snprintf(errstr, errstr_size, "topic %s does not exist", name);
			return 1;
		}
		if (have[i] < want) {
			snprintf(errstr, errstr_size, "topic %s has %d partitions, %d planned",
			         name, have[i], want);
			return -1;
		}
	}
	return 0;
}

int kbus_topics_require(const struct kbus_config *conf, const char *const *topics, size_t n,
                        int timeout_ms, char *errstr, size_t errstr_size)
{
	const struct rd_kafka_metadata *md = NULL;
	rd_kafka_t *rk = kbus_topics_client(conf, errstr, errstr_size);
	rd_kafka_resp_err_t err;
	int ret = -1;

	if (!rk)
		return -1;
	err = rd_kafka_metadata(rk, 1, NULL, &md, timeout_ms);
	if (err) {
		log_warn("kafka topics not checked at start: the cluster did not answer",
		         LOGS("error", rd_kafka_err2str(err)), LOGI("timeout_ms", timeout_ms));
		ret = 0;
		goto out;
	}
	for (size_t i = 0; i < n; i++) {
		bool found = false;

		for (int t = 0; t < md->topic_cnt && !found; t++)
			found = strcmp(md->topics[t].topic, topics[i]) == 0 && !md->topics[t].err;
		if (!found) {
			snprintf(
			    errstr, errstr_size,
			    "topic %s does not exist on the cluster (check KAFKA_TOPIC_PREFIX; "
			    "topics are not auto-created: create them with `topics create`, see "
			    "docs/kafka.md)",
			    topics[i]);
			goto out;
		}
	}
	ret = 0;
out:
	if (md)
		rd_kafka_metadata_destroy(md);
	rd_kafka_destroy(rk);
	return ret;
}

int kbus_topics_check(const struct kbus_config *conf, const struct kbus_topics_plan *plan,
                      int timeout_ms, char *errstr, size_t errstr_size)
{
	int have[KBUS_TOPICS_COUNT];
	rd_kafka_t *rk = kbus_topics_client(conf, errstr, errstr_size);
	int ret = -1;

	if (!rk)
		return -1;
	if (kbus_topics_describe(rk, plan, timeout_ms, have, errstr, errstr_size))
		goto out;
	ret = kbus_topics_compare(plan, have, errstr, errstr_size) == 0 ? 0 : -1;
out:
	rd_kafka_destroy(rk);
	return ret;
}

/* Sends one CreateTopics request for the topics marked in todo and reads each topic's result. */
static int kbus_topics_send(rd_kafka_t *rk, const struct kbus_topics_plan *plan, const bool *todo,
                            int timeout_ms, bool *created, char *errstr, size_t errstr_size)
{
	rd_kafka_NewTopic_t *nt[KBUS_TOPICS_COUNT] = {0};
	rd_kafka_queue_t *q = rd_kafka_queue_new(rk);
	rd_kafka_AdminOptions_t *opts =
	    rd_kafka_AdminOptions_new(rk, RD_KAFKA_ADMIN_OP_CREATETOPICS);
	const rd_kafka_CreateTopics_result_t *res;
	const rd_kafka_topic_result_t **results;
	rd_kafka_event_t *ev = NULL;
	size_t n = 0, nres = 0;
	char name[512];
	int parts, rf = plan->replication_factor > 0 ? plan->replication_factor : -1, ret = -1;

	if (rd_kafka_AdminOptions_set_operation_timeout(opts, timeout_ms, errstr, errstr_size) ||
	    rd_kafka_AdminOptions_set_request_timeout(opts, timeout_ms, errstr, errstr_size))
		goto out;
	for (size_t i = 0; i < KBUS_TOPICS_COUNT; i++) {
		if (!todo[i] || kbus_topics_get(plan, i, name, sizeof name, &parts))
			continue;
		nt[n] = rd_kafka_NewTopic_new(name, parts, rf, errstr, errstr_size);
		if (!nt[n])
			goto out;
		n++;
		if (rd_kafka_NewTopic_set_config(nt[n - 1], "max.message.bytes",
		                                 KBUS_TOPICS_TEXT(KBUS_TOPICS_MAX_MESSAGE_BYTES))) {
			snprintf(errstr, errstr_size, "topic %s: max.message.bytes refused", name);
			goto out;
		}
	}
	if (n == 0) {
		ret = 0;
		goto out;
	}
	rd_kafka_CreateTopics(rk, nt, n, opts, q);
	ev = rd_kafka_queue_poll(q, timeout_ms + 2000);
	if (!ev) {
		snprintf(errstr, errstr_size, "no answer to CreateTopics within %d ms", timeout_ms);
		goto out;
	}
	if (rd_kafka_event_error(ev)) {
		snprintf(errstr, errstr_size, "CreateTopics: %s", rd_kafka_event_error_string(ev));
		goto out;
	}
	res = rd_kafka_event_CreateTopics_result(ev);
	results = res ? rd_kafka_CreateTopics_result_topics(res, &nres) : NULL;
	ret = 0;
	for (size_t r = 0; r < nres; r++) {
		rd_kafka_resp_err_t err = rd_kafka_topic_result_error(results[r]);
		const char *tname = rd_kafka_topic_result_name(results[r]);

		if (err == RD_KAFKA_RESP_ERR_TOPIC_ALREADY_EXISTS)
			continue; /* raced with another creator: compared by the caller */
		if (err) {
			const char *why = rd_kafka_topic_result_error_string(results[r]);
			snprintf(errstr, errstr_size, "create topic %s: %s", tname,
			         why ? why : rd_kafka_err2str(err));
			ret = -1;
			break;
		}
		for (size_t i = 0; created && i < KBUS_TOPICS_COUNT; i++)
			if (kbus_topics_get(plan, i, name, sizeof name, &parts) == 0 &&
			    strcmp(name, tname) == 0)
				created[i] = true;
	}
out:
	if (ev)
		rd_kafka_event_destroy(ev);
	for (size_t i = 0; i < n; i++)
		rd_kafka_NewTopic_destroy(nt[i]);
	rd_kafka_AdminOptions_destroy(opts);
	rd_kafka_queue_destroy(q);
	return ret;
}

int kbus_topics_create(const struct kbus_config *conf, const struct kbus_topics_plan *plan,
                       int timeout_ms, bool *created, char *errstr, size_t errstr_size)
{
	int have[KBUS_TOPICS_COUNT];
	bool todo[KBUS_TOPICS_COUNT];
	rd_kafka_t *rk = kbus_topics_client(conf, errstr, errstr_size);
	int ret = -1;

	if (!rk)
		return -1;
	for (size_t i = 0; created && i < KBUS_TOPICS_COUNT; i++)
		created[i] = false;
	if (kbus_topics_describe(rk, plan, timeout_ms, have, errstr, errstr_size))
		goto out;
	for (size_t i = 0; i < KBUS_TOPICS_COUNT; i++)
		todo[i] = have[i] == 0;
	if (kbus_topics_send(rk, plan, todo, timeout_ms, created, errstr, errstr_size))
		goto out;
	/* What exists now (created, or there before) must match the plan. A topic just created
	 * may take a moment to show in metadata. */
	for (int tries = 0; tries < 50; tries++) {
		if (kbus_topics_describe(rk, plan, timeout_ms, have, errstr, errstr_size))
			goto out;
		ret = kbus_topics_compare(plan, have, errstr, errstr_size);
		if (ret != 1)
			break;
		rd_kafka_poll(rk, 100);
	}
	ret = ret == 0 ? 0 : -1;
out:
	rd_kafka_destroy(rk);
	return ret;
}
