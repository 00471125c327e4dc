/* test_devbroker: the devbroker daemon itself: the topics of design.md §4 (with prefix, partition
 * counts and .dlq) as the cluster reports them, the control interface and its errors,
 * --listen-port, clean shutdown, and the mock's offsets_for_times quirk that tests must design
 * around. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "tsupport.h"

#include <jansson.h>
#include <librdkafka/rdkafka.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static rd_kafka_t *client_new(const char *bootstrap)
{
	rd_kafka_conf_t *conf = rd_kafka_conf_new();
	char err[256];
	rd_kafka_t *rk;

	if (rd_kafka_conf_set(conf, "bootstrap.servers", bootstrap, err, sizeof err) ||
	    rd_kafka_conf_set(conf, "log_level", "3", err, sizeof err))
		fail_msg("conf: %s", err);
	rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, err, sizeof err);
	if (!rk)
		fail_msg("rd_kafka_new: %s", err);
	return rk;
}

/* Partition count of topic in the cluster's metadata; -1 when the cluster does not know it. */
static int metadata_partitions(rd_kafka_t *rk, const char *topic)
{
	const struct rd_kafka_metadata *md;
	int n = -1;

	assert_int_equal(rd_kafka_metadata(rk, 1, NULL, &md, 10000), RD_KAFKA_RESP_ERR_NO_ERROR);
	for (int i = 0; i < md->topic_cnt; i++)
		if (strcmp(md->topics[i].topic, topic) == 0 && !md->topics[i].err)
			n = md->topics[i].partition_cnt;
	rd_kafka_metadata_destroy(md);
	return n;
}

static json_t *get_status(const struct ts_broker *b)
{
	struct ts_http_resp resp;
	char url[300];
	json_error_t jerr;
	json_t *root;

	snprintf(url, sizeof url, "%s/status", b->control_url);
	ts_http("GET", url, NULL, NULL, 0, &resp);
	assert_int_equal(resp.status, 200);
	root = json_loads(resp.body, 0, &jerr);
	if (!root)
		fail_msg("GET /status: not JSON (%s): %s", jerr.text, resp.body);
	ts_http_resp_free(&resp);
	return root;
}

static void test_devbroker_creates_design_topics(void **state)
{
	static const char *const names[] = {"pfx.calls.requested", "pfx.webhooks.transcription",
	                                    "pfx.webhooks.post_call"};
	struct ts_broker b;
	rd_kafka_t *rk;
	json_t *status, *topics;

	(void)state;
	ts_broker_start(&b, "pfx.", 4);
	rk = client_new(b.bootstrap);
	for (size_t i = 0; i < 3; i++) {
		char dlq[128];
		snprintf(dlq, sizeof dlq, "%s.dlq", names[i]);
		assert_int_equal(metadata_partitions(rk, names[i]), 4);
		assert_int_equal(metadata_partitions(rk, dlq), 1);
	}
	assert_int_equal(metadata_partitions(rk, "calls.requested"), -1); /* prefix applied */

	status = get_status(&b);
	assert_string_equal(json_string_value(json_object_get(status, "bootstrap")), b.bootstrap);
	assert_string_equal(json_string_value(json_object_get(status, "storage")), "memory");
	topics = json_object_get(status, "topics");
	assert_int_equal(json_array_size(topics), 6);
	assert_int_equal(json_array_size(json_object_get(status, "brokers")), 1);
	json_decref(status);
	rd_kafka_destroy(rk);
	ts_broker_stop(&b);
}

static void test_devbroker_control_interface(void **state)
{
	struct ts_broker b;
	struct ts_http_resp resp;
	rd_kafka_t *rk;
	json_t *status, *broker;
	char url[300];

	(void)state;
	ts_broker_start(&b, "", 2);
	rk = client_new(b.bootstrap);
	/* POST /topics creates a topic the cluster knows */
	assert_int_equal(ts_broker_control(&b, "/topics?name=extra.topic&partitions=3"), 200);
	assert_int_equal(metadata_partitions(rk, "extra.topic"), 3);
	assert_int_equal(ts_broker_control(&b, "/topics?name=extra.topic&partitions=3"), 400);
	assert_int_equal(ts_broker_control(&b, "/topics?name=bad%2Fname"), 400);
	/* broker state is reported */
	assert_int_equal(ts_broker_control(&b, "/brokers/1/down"), 200);
	status = get_status(&b);
	broker = json_array_get(json_object_get(status, "brokers"), 0);
	assert_false(json_is_true(json_object_get(broker, "up")));
	json_decref(status);
	assert_int_equal(ts_broker_control(&b, "/brokers/1/up"), 200);
	assert_int_equal(ts_broker_control(&b, "/rtt?broker=1&ms=5"), 200);
	assert_int_equal(ts_broker_control(&b, "/errors?api=Fetch&code=NOT_LEADER_FOR_PARTITION"),
	                 200);
	assert_int_equal(ts_broker_control(&b, "/errors?api=0&code=7&count=2&broker=1"), 200);
	assert_int_equal(ts_broker_control(&b, "/errors/clear?api=Fetch"), 200);
	/* and mistakes are refused with a reason */
	assert_int_equal(ts_broker_control(&b, "/brokers/9/down"), 400);
	assert_int_equal(ts_broker_control(&b, "/brokers/1/sideways"), 404);
	assert_int_equal(ts_broker_control(&b, "/errors?api=Bogus&code=1"), 400);
	assert_int_equal(ts_broker_control(&b, "/errors?api=Produce&code=NO_SUCH_ERROR"), 400);
	assert_int_equal(ts_broker_control(&b, "/errors?api=Produce&code=1&count=0"), 400);
	assert_int_equal(ts_broker_control(&b, "/rtt?broker=1&ms=x"), 400);
	assert_int_equal(ts_broker_control(&b, "/nothing"), 404);
	snprintf(url, sizeof url, "%s/brokers/1/down", b.control_url);
	ts_http("GET", url, NULL, NULL, 0, &resp);
	assert_int_equal(resp.status, 405);
	assert_non_null(strstr(resp.body, "\"error\""));
	ts_http_resp_free(&resp);
	/* the cluster still works after all that */
	ts_kafka_produce(b.bootstrap, "calls.requested", "k", "v", NULL);
	rd_kafka_destroy(rk);
	ts_broker_stop(&b);
}

static bool file_exists(void *path)
{
	return access(path, F_OK) == 0;
}

static void test_devbroker_fixed_port_and_clean_exit(void **state)
{
	unsigned port = ts_free_port();
	char bin[PATH_MAX], sport[16], bfile[300], cfile[300], want[64], line[128] = "";
	struct ts_proc p;
	struct ts_kmsg *msgs;
	char *out = NULL;
	FILE *fp;

	(void)state;
	snprintf(sport, sizeof sport, "%u", port);
	snprintf(bfile, sizeof bfile, "%s/fixed-%ld.bootstrap", ts_tmpdir(), (long)getpid());
	snprintf(cfile, sizeof cfile, "%s/fixed-%ld.control", ts_tmpdir(), (long)getpid());
	const char *argv[] = {ts_bin("devbroker", bin, sizeof bin),
	                      "--listen-port",
	                      sport,
	                      "--bootstrap-file",
	                      bfile,
	                      "--control-file",
	                      cfile,
	                      NULL};
	ts_proc_start(&p, argv, NULL);
	if (!ts_wait_until(file_exists, bfile, 10000))
		fail_msg("no bootstrap file; log %s", p.log_path);
	fp = fopen(bfile, "r");
	assert_non_null(fp);
	assert_non_null(fgets(line, sizeof line, fp));
	fclose(fp);
	snprintf(want, sizeof want, "127.0.0.1:%u\n", port);
	assert_string_equal(line, want);
	ts_kafka_produce(want, "calls.requested", "k", "on a fixed port", NULL);
	want[strlen(want) - 1] = '\0';
	assert_int_equal(ts_kafka_read_all(want, "calls.requested", &msgs), 1);
	assert_string_equal(msgs[0].value, "on a fixed port");
	ts_kmsgs_free(msgs, 1);

	/* the same port again: a clear error and exit 1, not an abort */
	const char *again[] = {bin, "--listen-port", sport, NULL};
	assert_int_equal(ts_run(again, NULL, &out, 10000), 1);
	free(out);

	/* SIGTERM: exit 0 and the files are gone (no stale address for scripts to read) */
	assert_int_equal(ts_proc_stop(&p, SIGTERM, 10000), 0);
	assert_int_equal(access(bfile, F_OK), -1);
	assert_int_equal(access(cfile, F_OK), -1);
}

static void test_devbroker_offsets_for_times_answers_end_of_log(void **state)
{
	struct ts_broker b;
	rd_kafka_t *rk;
	rd_kafka_topic_partition_list_t *parts;

	(void)state;
	ts_broker_start(&b, "", 1);
	for (int i = 0; i < 3; i++)
		ts_kafka_produce(b.bootstrap, "calls.requested", "k", "v", NULL);
	rk = client_new(b.bootstrap);
	parts = rd_kafka_topic_partition_list_new(1);
	rd_kafka_topic_partition_list_add(parts, "calls.requested", 0)->offset = 0; /* t = 1970 */
	assert_int_equal(rd_kafka_offsets_for_times(rk, parts, 10000), RD_KAFKA_RESP_ERR_NO_ERROR);
	/* a real broker answers 0 (the first message at or after t); the mock answers -1
	 * (RD_KAFKA_OFFSET_END, "no such message"): replay-from-timestamp cannot be tested against
	 * devbroker (docs/devbroker.md) */
	assert_int_equal(parts->elems[0].err, RD_KAFKA_RESP_ERR_NO_ERROR);
	assert_int_equal(parts->elems[0].offset, RD_KAFKA_OFFSET_END);
	rd_kafka_topic_partition_list_destroy(parts);
	rd_kafka_destroy(rk);
	ts_broker_stop(&b);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_devbroker_creates_design_topics),
	    cmocka_unit_test(test_devbroker_control_interface),
	    cmocka_unit_test(test_devbroker_fixed_port_and_clean_exit),
	    cmocka_unit_test(test_devbroker_offsets_for_times_answers_end_of_log),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
