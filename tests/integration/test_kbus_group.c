/* test_kbus_group: consumer groups across processes on the test's broker (a private devbroker, or
 * real Kafka in the kafka tier): one producer process, two consumer processes splitting the
 * partitions, and commits that survive a crash and a restart (no committed message is read
 * again, none is lost). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "tsupport.h"

#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define TOPIC  "calls.requested" /* base name: ts_broker_topic */
#define MAXMSG 2000

/* What a helper consumer wrote to its output file. */
struct consumed {
	size_t n;
	int partition[MAXMSG];
	long long offset[MAXMSG];
	char key[MAXMSG][48];
	bool assigned[64]; /* as of the last "#assign" line */
	int nassigned;
	int rebalances;
};

static void consumed_read(const char *path, struct consumed *c)
{
	FILE *fp = fopen(path, "r");
	char line[512];

	memset(c, 0, sizeof *c);
	if (!fp)
		return;
	while (fgets(line, sizeof line, fp)) {
		if (strncmp(line, "#assign ", 8) == 0) {
			memset(c->assigned, 0, sizeof c->assigned);
			c->nassigned = 0;
			c->rebalances++;
			for (char *s = line + 8; *s && *s != '\n';) {
				long p = strtol(s, &s, 10);
				if (p >= 0 && p < 64 && !c->assigned[p]) {
					c->assigned[p] = true;
					c->nassigned++;
				}
				if (*s == ',')
					s++;
				else
					break;
			}
			continue;
		}
		if (c->n < MAXMSG && sscanf(line, "%d %lld %47s", &c->partition[c->n],
		                            &c->offset[c->n], c->key[c->n]) == 3)
			c->n++;
	}
	fclose(fp);
}

/* Starts a helper consumer in group (a name ts_broker_group turns into the broker's). */
static void consumer_start_env(struct ts_proc *p, const struct ts_broker *b, const char *group,
                               const char *out, const char *crash_after, const char *const *env)
{
	char bin[PATH_MAX], gid[256], topic[256];
	const char *argv[] = {ts_bin("test_kbus_helper", bin, sizeof bin),
	                      "consume",
	                      b->bootstrap,
	                      ts_broker_group(b, group, gid, sizeof gid),
	                      ts_broker_topic(b, TOPIC, topic, sizeof topic),
	                      out,
	                      crash_after,
	                      NULL};
	ts_proc_start(p, argv, env);
}

static void consumer_start(struct ts_proc *p, const struct ts_broker *b, const char *group,
                           const char *out, const char *crash_after)
{
	consumer_start_env(p, b, group, out, crash_after, NULL);
}

static void produce(const struct ts_broker *b, long count, const char *tag)
{
	char bin[PATH_MAX], n[16], topic[256], *out = NULL;
	int rc;

	snprintf(n, sizeof n, "%ld", count);
	const char *argv[] = {ts_bin("test_kbus_helper", bin, sizeof bin),
	                      "produce",
	                      b->bootstrap,
	                      ts_broker_topic(b, TOPIC, topic, sizeof topic),
	                      n,
	                      tag,
	                      NULL};
	rc = ts_run(argv, NULL, &out, 30000);
	if (rc != 0)
		fail_msg("producer process exited with %d: %s", rc, out ? out : "");
	free(out);
}

struct wait_n {
	const char *path[2];
	size_t want;
	struct consumed *c;
};

static bool consumed_at_least(void *opaque)
{
	struct wait_n *w = opaque;
	size_t total = 0;

	for (int i = 0; i < 2 && w->path[i]; i++) {
		consumed_read(w->path[i], w->c);
		total += w->c->n;
	}
	return total >= w->want;
}

static bool split_between_two(void *opaque)
{
	struct wait_n *w = opaque;
	struct consumed *a = w->c, *b = w->c + 1;

	consumed_read(w->path[0], a);
	consumed_read(w->path[1], b);
	if (a->nassigned == 0 || b->nassigned == 0 || a->nassigned + b->nassigned != 6)
		return false;
	for (int p = 0; p < 6; p++)
		if (a->assigned[p] == b->assigned[p])
			return false;
	return true;
}

static void out_path(char *buf, size_t size, const char *name)
{
	snprintf(buf, size, "%s/%s-%ld.out", ts_tmpdir(), name, (long)getpid());
	unlink(buf);
}

static void test_kbus_group_splits_partitions_across_processes(void **state)
{
	struct consumed *c = calloc(2, sizeof *c);
	struct ts_proc pa, pb;
	struct ts_broker b;
	char outa[300], outb[300];
	struct wait_n w = {.path = {outa, outb}, .c = c};

	(void)state;
	ts_broker_start(&b, "", 6);
	out_path(outa, sizeof outa, "split-a");
	out_path(outb, sizeof outb, "split-b");
	consumer_start(&pa, &b, "split", outa, NULL);
	consumer_start(&pb, &b, "split", outb, NULL);
	if (!ts_wait_until(split_between_two, &w, 30000))
		fail_msg("the two consumers did not split the 6 partitions (a has %d, b has %d); "
		         "logs %s %s",
		         c[0].nassigned, c[1].nassigned, pa.log_path, pb.log_path);

	produce(&b, 300, "split");
	w.want = 300;
	assert_true(ts_wait_until(consumed_at_least, &w, 20000));
	ts_sleep_ms(500); /* anything extra (a duplicate) would show up now */
	consumed_read(outa, &c[0]);
	consumed_read(outb, &c[1]);
	assert_int_equal(c[0].n + c[1].n, 300);
	assert_true(c[0].n > 0);
	assert_true(c[1].n > 0);
	/* each consumer only got its own partitions, and every key arrived exactly once */
	char *seen = calloc(300, 1);
	for (int i = 0; i < 2; i++) {
		for (size_t k = 0; k < c[i].n; k++) {
			int idx = -1;
			assert_true(c[i].assigned[c[i].partition[k]]);
			assert_int_equal(sscanf(c[i].key[k], "split-%d", &idx), 1);
			assert_true(idx >= 0 && idx < 300);
			assert_int_equal(seen[idx], 0);
			seen[idx] = 1;
		}
	}
	free(seen);
	assert_int_equal(ts_proc_stop(&pa, SIGTERM, 15000), 0);
	assert_int_equal(ts_proc_stop(&pb, SIGTERM, 15000), 0);
	ts_broker_stop(&b);
	free(c);
}

static void test_kbus_group_commits_survive_crash_and_restart(void **state)
{
	struct consumed *c = calloc(3, sizeof *c);
	struct ts_proc pa, pb, pc;
	struct ts_broker b;
	char outa[300], outb[300], outc[300];
	struct wait_n w = {.c = c + 1};

	(void)state;
	ts_broker_start(&b, "", 6);
	out_path(outa, sizeof outa, "resume-a");
	out_path(outb, sizeof outb, "resume-b");
	out_path(outc, sizeof outc, "resume-c");
	produce(&b, 100, "r1");

	/* a handles 40 messages, committing each, then crashes (no close, no LeaveGroup) */
	consumer_start(&pa, &b, "resume", outa, "40");
	for (int i = 0; i < 300 && ts_proc_alive(&pa); i++)
		ts_sleep_ms(100);
	assert_int_equal(ts_proc_stop(&pa, SIGKILL, 1000), 3);
	consumed_read(outa, &c[0]);
	assert_int_equal(c[0].n, 40);

	/* b takes over once the group drops a (session.timeout.ms 3 s): exactly the other 60 */
	consumer_start(&pb, &b, "resume", outb, NULL);
	w.path[0] = outb;
	w.want = 60;
	if (!ts_wait_until(consumed_at_least, &w, 30000))
		fail_msg("b consumed %zu of 60; log %s", c[1].n, pb.log_path);
	ts_sleep_ms(1000);
	consumed_read(outb, &c[1]);
	assert_int_equal(c[1].n, 60);
	for (size_t i = 0; i < c[1].n; i++) {
		for (size_t k = 0; k < c[0].n; k++) {
			if (strcmp(c[1].key[i], c[0].key[k]) == 0)
				fail_msg("%s was committed by a and read again by b", c[0].key[k]);
			/* per partition, b starts right after a's last commit */
			if (c[1].partition[i] == c[0].partition[k])
				assert_true(c[1].offset[i] > c[0].offset[k]);
		}
	}
	/* a graceful restart resumes after the last commit too */
	assert_int_equal(ts_proc_stop(&pb, SIGTERM, 15000), 0);
	produce(&b, 20, "r2");
	consumer_start(&pc, &b, "resume", outc, NULL);
	w.path[0] = outc;
	w.c = c + 2;
	w.want = 20;
	if (!ts_wait_until(consumed_at_least, &w, 30000))
		fail_msg("c consumed %zu of 20; log %s", c[2].n, pc.log_path);
	ts_sleep_ms(1000);
	consumed_read(outc, &c[2]);
	assert_int_equal(c[2].n, 20);
	for (size_t i = 0; i < c[2].n; i++)
		assert_true(strncmp(c[2].key[i], "r2-", 3) == 0);
	assert_int_equal(ts_proc_stop(&pc, SIGTERM, 15000), 0);
	ts_broker_stop(&b);
	free(c);
}

/* Regression (CI, dialer): a consumer told to stop while its group rebalances (its partner has
 * just left) commits in its revoke callback. One commit came back "Unknown member" and the next
 * synchronous rd_kafka_commit never returned, so SIGTERM never finished. The race depends on
 * timing: several rounds, each a new group re-reading the topic. */
static void test_kbus_group_close_during_rebalance_is_bounded(void **state)
{
	const char *const env[] = {"KBUS_HELPER_REVOKE_COMMIT=1", NULL};
	struct consumed *c = calloc(2, sizeof *c);
	struct ts_broker b;

	(void)state;
	ts_broker_start(&b, "", 6);
	for (int round = 0; round < 4; round++) {
		char group[32], tag[32], name[32], outa[300], outb[300];
		struct wait_n w = {.path = {outa, outb}, .c = c};
		struct ts_proc pa, pb;

		snprintf(group, sizeof group, "closing-%d", round);
		snprintf(tag, sizeof tag, "close%d", round);
		snprintf(name, sizeof name, "close-a-%d", round);
		out_path(outa, sizeof outa, name);
		snprintf(name, sizeof name, "close-b-%d", round);
		out_path(outb, sizeof outb, name);
		consumer_start_env(&pa, &b, group, outa, NULL, env);
		consumer_start_env(&pb, &b, group, outb, NULL, env);
		if (!ts_wait_until(split_between_two, &w, 30000))
			fail_msg(
			    "round %d: the two consumers did not split the partitions; logs %s %s",
			    round, pa.log_path, pb.log_path);
		produce(&b, 60, tag);
		w.want = (size_t)(60 * (round + 1)); /* a new group reads every earlier round too */
		assert_true(ts_wait_until(consumed_at_least, &w, 20000));
		/* a leaves: b's group rebalances, and b is told to stop at once */
		assert_int_equal(ts_proc_stop(&pa, SIGTERM, 15000), 0);
		if (ts_proc_stop(&pb, SIGTERM, 25000) != 0)
			fail_msg("round %d: the consumer closed during a rebalance did not exit in "
			         "25 s; log %s",
			         round, pb.log_path);
	}
	ts_broker_stop(&b);
	free(c);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_kbus_group_splits_partitions_across_processes),
	    cmocka_unit_test(test_kbus_group_commits_survive_crash_and_restart),
	    cmocka_unit_test(test_kbus_group_close_during_rebalance_is_bounded),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
