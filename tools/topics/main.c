/* topics: creates, checks or lists callpipe's Kafka topics: `topics create | check | list`. */
#include "cfg.h"
#include "kbus_topics.h"
#include "log.h"

#include <stdio.h>
#include <string.h>

struct topics_config {
	char *brokers;
	char *prefix;
	char *kafka_config_file;
	long long partitions;
	long long dlq_partitions;
	long long replication_factor;
	long long timeout_ms;
	char *log_level;
};

static const struct cfg_option topics_options[] = {
    CFG_OPT(struct topics_config, "kafka-brokers", "KAFKA_BROKERS", CFG_STR, NULL,
            "Kafka bootstrap servers (host:port,...); not needed for list", brokers, 0, 0, false),
    CFG_OPT_KAFKA_TOPIC_PREFIX(struct topics_config, prefix),
    CFG_OPT_KAFKA_CONFIG_FILE(struct topics_config, kafka_config_file),
    CFG_OPT(struct topics_config, "partitions", "TOPICS_PARTITIONS", CFG_INT,
            KBUS_TOPICS_TEXT(KBUS_TOPICS_PARTITIONS),
            "partitions of calls.requested and webhooks.* (the most workers that share the work)",
            partitions, 1, 10000, false),
    CFG_OPT(struct topics_config, "dlq-partitions", "TOPICS_DLQ_PARTITIONS", CFG_INT,
            KBUS_TOPICS_TEXT(KBUS_TOPICS_DLQ_PARTITIONS), "partitions of each .dlq topic",
            dlq_partitions, 1, 10000, false),
    CFG_OPT(struct topics_config, "replication-factor", "TOPICS_REPLICATION_FACTOR", CFG_INT, "-1",
            "replicas of each partition (-1: the broker's default.replication.factor)",
            replication_factor, -1, 100, false),
    CFG_OPT(struct topics_config, "timeout-ms", "TOPICS_TIMEOUT_MS", CFG_INT, "30000",
            "how long to wait for the cluster", timeout_ms, 100, 600000, false),
    CFG_OPT_LOG_LEVEL(struct topics_config, log_level),
};

static const struct cfg_spec topics_spec = {
    .program = "topics",
    .usage = "[options] create | check | list",
    .about = "callpipe's Kafka topics, defined once: calls.requested, webhooks.transcription and "
             "webhooks.post_call with --partitions each, and each one's .dlq with "
             "--dlq-partitions, all under KAFKA_TOPIC_PREFIX. create: creates the missing ones "
             "(an existing topic with fewer partitions than planned is an error) and prints "
             "'created NAME' or 'exists NAME' per topic. check: verifies they all exist with at "
             "least the planned partitions. list: prints 'NAME PARTITIONS' of the plan, asking "
             "no broker. Exit codes: 0 ok, 1 cluster error or a topic missing or too small, "
             "2 usage or configuration.",
    .options = topics_options,
    .noptions = sizeof topics_options / sizeof topics_options[0],
};

static void topics_list(const struct kbus_topics_plan *plan)
{
	char name[512];
	int parts;

	for (size_t i = 0; i < KBUS_TOPICS_COUNT; i++)
		if (kbus_topics_get(plan, i, name, sizeof name, &parts) == 0)
			printf("%s %d\n", name, parts);
}

int main(int argc, char **argv)
{
	struct topics_config conf;
	struct kbus_topics_plan plan;
	struct kbus_config kc;
	bool created[KBUS_TOPICS_COUNT];
	char errstr[512], name[512];
	const char *cmd;
	int argi = 0, rc = 2, parts;
	enum cfg_result r;

	r = cfg_load(&topics_spec, &conf, argc, argv, &argi, errstr, sizeof errstr);
	if (cfg_start(r, "topics", r == CFG_OK ? conf.log_level : NULL, errstr, &rc) < 0)
		goto out;
	rc = 2;
	if (argc - argi != 1) {
		fprintf(stderr, "topics: give one command: create, check or list (see --help)\n");
		goto out;
	}
	cmd = argv[argi];
	plan = (struct kbus_topics_plan){.prefix = conf.prefix,
	                                 .partitions = (int)conf.partitions,
	                                 .dlq_partitions = (int)conf.dlq_partitions,
	                                 .replication_factor = (int)conf.replication_factor};
	if (strcmp(cmd, "list") == 0) {
		topics_list(&plan);
		rc = 0;
		goto out;
	}
	if (strcmp(cmd, "create") != 0 && strcmp(cmd, "check") != 0) {
		fprintf(stderr, "topics: unknown command '%s' (create, check or list)\n", cmd);
		goto out;
	}
	if (!conf.brokers || !*conf.brokers) {
		fprintf(stderr, "topics: KAFKA_BROKERS (--kafka-brokers) is required for %s\n",
		        cmd);
		goto out;
	}
	kc = (struct kbus_config){.brokers = conf.brokers,
	                          .topic_prefix = conf.prefix,
	                          .client_id = "callpipe-topics",
	                          .config_file = conf.kafka_config_file};
	rc = 1;
	if (strcmp(cmd, "check") == 0) {
		if (kbus_topics_check(&kc, &plan, (int)conf.timeout_ms, errstr, sizeof errstr)) {
			fprintf(stderr, "topics: %s\n", errstr);
			goto out;
		}
		topics_list(&plan);
		rc = 0;
		goto out;
	}
	if (kbus_topics_create(&kc, &plan, (int)conf.timeout_ms, created, errstr, sizeof errstr)) {
		fprintf(stderr, "topics: %s\n", errstr);
		goto out;
	}
	for (size_t i = 0; i < KBUS_TOPICS_COUNT; i++)
		if (kbus_topics_get(&plan, i, name, sizeof name, &parts) == 0)
			printf("%s %s %d\n", created[i] ? "created" : "exists", name, parts);
	rc = 0;
out:
	fflush(stdout);
	cfg_free(&topics_spec, &conf);
	return rc;
}
