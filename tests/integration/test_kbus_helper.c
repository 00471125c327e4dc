/* test_kbus_helper: a separate client process for the kbus/devbroker integration tests.
 *   consume BOOTSTRAP GROUP TOPIC OUTFILE [CRASH_AFTER]
 *       kbus group consumer (session.timeout.ms 3000). Appends "#assign p,p,..." after every
 *       rebalance and "partition offset key value" per message to OUTFILE, then commits
 *       offset+1 (like a service after its database transaction). SIGTERM: close, exit 0.
 *       CRASH_AFTER > 0: after that many committed messages, _exit(3) without closing.
 *       KBUS_HELPER_REVOKE_COMMIT=1 in the environment: messages are committed only when
 *       their partition is revoked (as the dialer does), one kbus_consumer_commit each.
 *   produce BOOTSTRAP TOPIC COUNT TAG
 *       kbus producer: COUNT messages keyed "TAG-i" with value "TAG-i", waits for every
 *       delivery report, prints "acked N" and exits 0 when all N were acknowledged. */
#include "kbus.h"
#include "log.h"
#include "shutdown.h"

#include <fcntl.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

struct helper {
	int fd;
	char assigned[64]; /* partition -> 1 when currently assigned */
	struct kbus_consumer *c;
	bool revoke_commit;
	int64_t next[64]; /* revoke_commit: next offset to commit per partition, -1 none */
};

static void helper_write(int fd, const char *line)
{
	size_t len = strlen(line);

	if (write(fd, line, len) != (ssize_t)len) {
		perror("write");
		_exit(4);
	}
}

static void helper_rebalance(void *opaque, bool assigned,
                             const rd_kafka_topic_partition_list_t *parts)
{
	struct helper *h = opaque;
	char line[512] = "#assign ";
	size_t len = strlen(line);
	bool first = true;

	for (int i = 0; i < parts->cnt; i++) {
		int32_t p = parts->elems[i].partition;

		if (p < 0 || p >= 64)
			continue;
		h->assigned[p] = assigned;
		if (!assigned && h->revoke_commit && h->next[p] >= 0) {
			if (kbus_consumer_commit(h->c, parts->elems[i].topic, p, h->next[p]) != 0)
				fprintf(stderr, "commit on revoke of partition %d failed\n",
				        (int)p);
			h->next[p] = -1;
		}
	}
	for (int p = 0; p < 64 && len < sizeof line - 8; p++) {
		if (!h->assigned[p])
			continue;
		len += (size_t)snprintf(line + len, sizeof line - len, "%s%d", first ? "" : ",", p);
		first = false;
	}
	snprintf(line + len, sizeof line - len, "\n");
	helper_write(h->fd, line);
}

static int helper_consume(const char *bootstrap, const char *group, const char *topic,
                          const char *outfile, long crash_after)
{
	struct kbus_config kc = {
	    .brokers = bootstrap, .client_id = "test_kbus_helper", .session_timeout_ms = 3000};
	struct helper h = {0};
	struct kbus_consumer *c;
	char errstr[256];
	long handled = 0;

	const char *rc_env = getenv("KBUS_HELPER_REVOKE_COMMIT");

	h.revoke_commit = rc_env && strcmp(rc_env, "1") == 0;
	for (int p = 0; p < 64; p++)
		h.next[p] = -1;
	h.fd = open(outfile, O_WRONLY | O_CREAT | O_APPEND, 0644);
	if (h.fd < 0) {
		perror(outfile);
		return 1;
	}
	c = kbus_consumer_new(&kc, group, &topic, 1, helper_rebalance, &h, errstr, sizeof errstr);
	if (!c) {
		fprintf(stderr, "consumer: %s\n", errstr);
		return 1;
	}
	h.c = c;
	while (!shutdown_requested()) {
		rd_kafka_message_t *rkm = kbus_consumer_poll(c, 100);
		char line[512];

		if (!rkm)
			continue;
		snprintf(line, sizeof line, "%d %lld %.*s %.*s\n", (int)rkm->partition,
		         (long long)rkm->offset, (int)rkm->key_len, (const char *)rkm->key,
		         (int)rkm->len, (const char *)rkm->payload);
		helper_write(h.fd, line);
		if (h.revoke_commit && rkm->partition >= 0 && rkm->partition < 64) {
			h.next[rkm->partition] = rkm->offset + 1;
		} else if (kbus_consumer_commit(c, rd_kafka_topic_name(rkm->rkt), rkm->partition,
		                                rkm->offset + 1) != 0) {
			fprintf(stderr, "commit failed\n");
			rd_kafka_message_destroy(rkm);
			return 1;
		}
		rd_kafka_message_destroy(rkm);
		if (crash_after > 0 && ++handled >= crash_after)
			_exit(3); /* a crash: no close, no LeaveGroup */
	}
	kbus_consumer_close(c);
	close(h.fd);
	return 0;
}

static void helper_delivered(void *opaque, rd_kafka_resp_err_t err, int32_t partition,
                             int64_t offset)
{
	(void)partition;
	(void)offset;
	if (!err)
		atomic_fetch_add((atomic_long *)opaque, 1);
}

static int helper_produce(const char *bootstrap, const char *topic, long count, const char *tag)
{
	struct kbus_config kc = {.brokers = bootstrap, .client_id = "test_kbus_helper"};
	struct kbus_producer *p;
	atomic_long acked;
	char errstr[256];

	atomic_init(&acked, 0);
	p = kbus_producer_new(&kc, errstr, sizeof errstr);
	if (!p) {
		fprintf(stderr, "producer: %s\n", errstr);
		return 1;
	}
	for (long i = 0; i < count; i++) {
		char kv[64];
		int n = snprintf(kv, sizeof kv, "%s-%ld", tag, i);

		while (kbus_produce(p, topic, kv, (size_t)n, kv, (size_t)n, NULL, 0,
		                    helper_delivered, &acked) != 0)
			(void)kbus_producer_flush(p, 100);
	}
	if (kbus_producer_flush(p, 30000) != 0)
		fprintf(stderr, "flush timed out\n");
	kbus_producer_destroy(p, 1000);
	printf("acked %ld\n", atomic_load(&acked));
	return atomic_load(&acked) == count ? 0 : 1;
}

int main(int argc, char **argv)
{
	log_init("test_kbus_helper", LOG_INFO);
	shutdown_install();
	if (argc >= 6 && strcmp(argv[1], "consume") == 0)
		return helper_consume(argv[2], argv[3], argv[4], argv[5],
		                      argc >= 7 ? atol(argv[6]) : 0);
	if (argc == 6 && strcmp(argv[1], "produce") == 0)
		return helper_produce(argv[2], argv[3], atol(argv[4]), argv[5]);
	fprintf(stderr, "usage: test_kbus_helper consume BOOTSTRAP GROUP TOPIC OUTFILE "
	                "[CRASH_AFTER] | produce BOOTSTRAP TOPIC COUNT TAG\n");
	return 2;
}
