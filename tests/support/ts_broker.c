/* ts_broker: the broker a test runs against: a private devbroker process (default), or, with
 * CALLPIPE_TEST_BROKER=kafka, the run's shared Apache Kafka broker (ctest fixture kafka_start)
 * under a topic prefix of the test's own, or a private Kafka broker (scripts/kafka) for tests
 * that kill it. */
#include "ts_int.h"
#include "tsupport.h"

#include "kbus_topics.h"

#include <errno.h>
#include <librdkafka/rdkafka.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* Reads the first line of path into out; false while the file does not exist yet. */
static bool ts_read_line(const char *path, char *out, size_t size)
{
	FILE *fp = fopen(path, "r");
	bool ok;

	if (!fp)
		return false;
	ok = fgets(out, (int)size, fp) != NULL;
	fclose(fp);
	if (ok)
		out[strcspn(out, "\r\n")] = '\0';
	return ok && out[0];
}

bool ts_broker_kafka_mode(void)
{
	const char *mode = getenv("CALLPIPE_TEST_BROKER");

	return mode && strcmp(mode, "kafka") == 0;
}

static unsigned ts_broker_seq;

/* A fresh scratch directory for broker b. */
static void ts_broker_dir(struct ts_broker *b, const char *kind)
{
	snprintf(b->dir, sizeof b->dir, "%s/%s-%u", ts_tmpdir(), kind, ++ts_broker_seq);
	if (mkdir(b->dir, 0755) != 0)
		fail_msg("mkdir %s: %s", b->dir, strerror(errno));
}

static void ts_devbroker_start(struct ts_broker *b, const char *prefix, int partitions)
{
	char bin[PATH_MAX], parts[16], bfile[300], cfile[300];
	struct ts_proc proc;
	long long deadline;

	ts_broker_dir(b, "devbroker");
	snprintf(b->prefix, sizeof b->prefix, "%s", prefix ? prefix : "");
	snprintf(parts, sizeof parts, "%d", partitions > 0 ? partitions : 6);
	snprintf(bfile, sizeof bfile, "%s/bootstrap", b->dir);
	snprintf(cfile, sizeof cfile, "%s/control", b->dir);
	const char *argv[] = {ts_bin("devbroker", bin, sizeof bin),
	                      "--prefix",
	                      b->prefix,
	                      "--partitions",
	                      parts,
	                      "--bootstrap-file",
	                      bfile,
	                      "--control-file",
	                      cfile,
	                      NULL};
	ts_proc_start(&proc, argv, NULL);
	b->pid = proc.pid;
	deadline = ts_now_ms() + 15000;
	/* The control file is written before the bootstrap file. */
	while (!ts_read_line(bfile, b->bootstrap, sizeof b->bootstrap)) {
		if (!ts_proc_alive(&proc) || ts_now_ms() >= deadline) {
			ts_proc_stop(&proc, SIGKILL, 2000);
			b->pid = 0;
			fail_msg("devbroker did not start; log: %s", proc.log_path);
		}
		ts_sleep_ms(20);
	}
	if (!ts_read_line(cfile, b->control_url, sizeof b->control_url))
		fail_msg("devbroker wrote no control file; log: %s", proc.log_path);
}

/* The shared broker's address: $CALLPIPE_TEST_KAFKA_BROKERS, else KAFKA_BROKERS= in
 * $CALLPIPE_TESTENV_DIR/kafka.env (written by scripts/kafka start, the ctest fixture). */
static void ts_kafka_shared_address(char *out, size_t size)
{
	const char *env = getenv("CALLPIPE_TEST_KAFKA_BROKERS"), *dir;
	char path[PATH_MAX], line[512];

	if (env && *env) {
		snprintf(out, size, "%s", env);
		return;
	}
	dir = getenv("CALLPIPE_TESTENV_DIR");
	if (!dir || !*dir)
		fail_msg("CALLPIPE_TEST_BROKER=kafka but neither CALLPIPE_TEST_KAFKA_BROKERS nor "
		         "CALLPIPE_TESTENV_DIR is set (run the test through ctest -L kafka)");
	snprintf(path, sizeof path, "%s/kafka.env", dir);
	if (!ts_read_line(path, line, sizeof line) || strncmp(line, "KAFKA_BROKERS=", 14) != 0)
		fail_msg("no KAFKA_BROKERS= line in %s: is the kafka_start fixture running?", path);
	if ((size_t)snprintf(out, size, "%s", line + 14) >= size)
		fail_msg("KAFKA_BROKERS in %s is too long", path);
}

static void ts_kafka_topics_create(struct ts_broker *b, int partitions)
{
	struct kbus_config kc = {.brokers = b->bootstrap, .client_id = "tsupport"};
	struct kbus_topics_plan plan = {.prefix = b->prefix, .partitions = partitions};
	char errstr[512];

	if (kbus_topics_create(&kc, &plan, 30000, NULL, errstr, sizeof errstr))
		fail_msg("creating the topics of %s on %s: %s", b->prefix, b->bootstrap, errstr);
}

/* Deletes the topics of b (the shared broker stays small over a run). Best effort. */
static void ts_kafka_topics_delete(struct ts_broker *b)
{
	struct kbus_topics_plan plan = {.prefix = b->prefix};
	rd_kafka_DeleteTopic_t *del[KBUS_TOPICS_COUNT];
	rd_kafka_conf_t *conf = rd_kafka_conf_new();
	rd_kafka_queue_t *q;
	rd_kafka_event_t *ev;
	char errstr[256], name[512];
	size_t n = 0;
	int parts;
	rd_kafka_t *rk;

	if (rd_kafka_conf_set(conf, "bootstrap.servers", b->bootstrap, errstr, sizeof errstr) ||
	    rd_kafka_conf_set(conf, "log_level", "3", errstr, sizeof errstr) ||
	    !(rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, errstr, sizeof errstr))) {
		rd_kafka_conf_destroy(conf);
		return;
	}
	for (size_t i = 0; i < KBUS_TOPICS_COUNT; i++)
		if (kbus_topics_get(&plan, i, name, sizeof name, &parts) == 0)
			del[n++] = rd_kafka_DeleteTopic_new(name);
	q = rd_kafka_queue_new(rk);
	rd_kafka_DeleteTopics(rk, del, n, NULL, q);
	ev = rd_kafka_queue_poll(q, 15000);
	if (ev)
		rd_kafka_event_destroy(ev);
	rd_kafka_DeleteTopic_destroy_array(del, n);
	rd_kafka_queue_destroy(q);
	rd_kafka_destroy(rk);
}

void ts_broker_start(struct ts_broker *b, const char *prefix, int partitions)
{
	memset(b, 0, sizeof *b);
	if (!ts_broker_kafka_mode()) {
		ts_devbroker_start(b, prefix, partitions);
		return;
	}
	b->kafka = true;
	ts_broker_dir(b, "kafka-shared");
	ts_kafka_shared_address(b->bootstrap, sizeof b->bootstrap);
	/* Tests run side by side on the one broker: each gets topics (and, through
	 * ts_broker_group, consumer groups) of its own. */
	snprintf(b->prefix, sizeof b->prefix, "%.60s-%ld-%u.%s", program_invocation_short_name,
	         (long)getpid(), ts_broker_seq, prefix ? prefix : "");
	ts_kafka_topics_create(b, partitions > 0 ? partitions : 6);
}

/* Runs scripts/kafka CMD --dir b->dir [extra...]; returns its exit status, output in *out. */
static int ts_kafka_script(struct ts_broker *b, const char *cmd, char **out, int timeout_ms)
{
	char script[PATH_MAX], envbin[PATH_MAX + 32];
	const char *argv[] = {script, cmd, "--dir", b->dir, NULL};
	const char *bin = getenv("CALLPIPE_BIN_DIR");
	const char *env[] = {envbin, NULL};

	snprintf(script, sizeof script, "%s/scripts/kafka", ts_source_dir());
	snprintf(envbin, sizeof envbin, "CALLPIPE_BIN_DIR=%s", bin ? bin : "");
	return ts_run_all(argv, env, out, timeout_ms);
}

void ts_broker_start_kafka_private(struct ts_broker *b, const char *prefix, int partitions)
{
	char *out = NULL, *line;
	int rc;

	memset(b, 0, sizeof *b);
	b->kafka = true;
	b->private_kafka = true;
	ts_broker_dir(b, "kafka-private");
	snprintf(b->prefix, sizeof b->prefix, "%s", prefix ? prefix : "");
	rc = ts_kafka_script(b, "start", &out, 180000);
	line = out ? strstr(out, "KAFKA_BROKERS=") : NULL;
	if (rc != 0 || !line)
		fail_msg("scripts/kafka start --dir %s: exit %d\n%s", b->dir, rc, out ? out : "");
	line += 14;
	line[strcspn(line, "\r\n")] = '\0';
	snprintf(b->bootstrap, sizeof b->bootstrap, "%s", line);
	free(out);
	ts_kafka_topics_create(b, partitions > 0 ? partitions : 6);
}

void ts_broker_kill(struct ts_broker *b)
{
	char *out = NULL;
	int rc;

	if (!b->private_kafka)
		fail_msg("ts_broker_kill: only a private Kafka broker can be killed");
	rc = ts_kafka_script(b, "kill", &out, 30000);
	if (rc != 0)
		fail_msg("scripts/kafka kill --dir %s: exit %d\n%s", b->dir, rc, out ? out : "");
	free(out);
}

void ts_broker_restart(struct ts_broker *b)
{
	char *out = NULL;
	int rc;

	if (!b->private_kafka)
		fail_msg("ts_broker_restart: only a private Kafka broker can be restarted");
	rc = ts_kafka_script(b, "start", &out, 180000);
	if (rc != 0 || !out || !strstr(out, b->bootstrap))
		fail_msg("scripts/kafka start (restart) --dir %s: exit %d\n%s", b->dir, rc,
		         out ? out : "");
	free(out);
}

void ts_broker_stop(struct ts_broker *b)
{
	struct ts_proc proc = {.pid = b->pid};
	char *out = NULL;
	int rc;

	if (b->private_kafka) {
		rc = ts_kafka_script(b, "stop", &out, 60000);
		b->private_kafka = false;
		if (rc != 0)
			fail_msg("scripts/kafka stop --dir %s: exit %d\n%s", b->dir, rc,
			         out ? out : "");
		free(out);
		return;
	}
	if (b->kafka) {
		ts_kafka_topics_delete(b);
		b->kafka = false;
		return;
	}
	if (b->pid <= 0)
		return;
	snprintf(proc.name, sizeof proc.name, "devbroker");
	snprintf(proc.log_path, sizeof proc.log_path, "%s", ts_tmpdir());
	rc = ts_proc_stop(&proc, SIGTERM, 10000);
	b->pid = 0;
	if (rc != 0)
		fail_msg("devbroker exited with %d (its log is under %s)", rc, ts_tmpdir());
}

long ts_broker_control(const struct ts_broker *b, const char *path)
{
	char url[512], err[256];
	long status;

	if (b->kafka)
		fail_msg("devbroker control %s: not available on real Kafka (skip this test there)",
		         path);
	snprintf(url, sizeof url, "%s%s", b->control_url, path);
	status = ts_http_try("POST", url, NULL, NULL, err, sizeof err);
	if (status < 0)
		fail_msg("devbroker control %s: %s", path, err);
	return status;
}

const char *ts_broker_topic(const struct ts_broker *b, const char *base, char *buf, size_t size)
{
	if ((size_t)snprintf(buf, size, "%s%s", b->prefix, base) >= size)
		fail_msg("topic name %s%s too long", b->prefix, base);
	return buf;
}

const char *ts_broker_group(const struct ts_broker *b, const char *name, char *buf, size_t size)
{
	if ((size_t)snprintf(buf, size, "%s%s", b->kafka ? b->prefix : "", name) >= size)
		fail_msg("group name %s%s too long", b->prefix, name);
	return buf;
}
