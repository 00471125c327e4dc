/* devbroker: a Kafka broker for development and tests, without a JVM: librdkafka's in-memory
 * mock cluster on loopback with the design.md §4 topics and an HTTP control interface. */
#include "cfg.h"
#include "cluster.h"
#include "control.h"
#include "kbus.h"
#include "kbus_topics.h"
#include "log.h"
#include "shutdown.h"

#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

struct devbroker_config {
	long long brokers;
	long long partitions;
	long long dlq_partitions;
	char *prefix;
	char *topics;
	char *bootstrap_file;
	char *control_file;
	char *control_listen;
	long long listen_port;
	char *log_level;
};

static const struct cfg_option devbroker_options[] = {
    CFG_OPT(struct devbroker_config, "brokers", "DEVBROKER_BROKERS", CFG_INT, "1",
            "number of mock brokers", brokers, 1, 16, false),
    CFG_OPT(struct devbroker_config, "partitions", "DEVBROKER_PARTITIONS", CFG_INT,
            KBUS_TOPICS_TEXT(KBUS_TOPICS_PARTITIONS),
            "partitions of each work topic (calls.requested, webhooks.*)", partitions, 1, 1000,
            false),
    CFG_OPT(struct devbroker_config, "dlq-partitions", "DEVBROKER_DLQ_PARTITIONS", CFG_INT,
            KBUS_TOPICS_TEXT(KBUS_TOPICS_DLQ_PARTITIONS), "partitions of each .dlq topic",
            dlq_partitions, 1, 1000, false),
    CFG_OPT(struct devbroker_config, "prefix", "DEVBROKER_TOPIC_PREFIX", CFG_STR, "",
            "topic name prefix (match the services' KAFKA_TOPIC_PREFIX)", prefix, 0, 0, false),
    CFG_OPT(struct devbroker_config, "topics", "DEVBROKER_TOPICS", CFG_STR, NULL,
            "extra topics, comma-separated name[:partitions] (no prefix added)", topics, 0, 0,
            false),
    CFG_OPT(struct devbroker_config, "bootstrap-file", "DEVBROKER_BOOTSTRAP_FILE", CFG_STR, NULL,
            "write the bootstrap address here (atomically) once ready", bootstrap_file, 0, 0,
            false),
    CFG_OPT(struct devbroker_config, "control-file", "DEVBROKER_CONTROL_FILE", CFG_STR, NULL,
            "write the control interface's URL here (atomically) once ready", control_file, 0, 0,
            false),
    CFG_OPT(struct devbroker_config, "control-listen", "DEVBROKER_CONTROL_LISTEN", CFG_STR,
            "127.0.0.1:0", "control HTTP interface host:port (port 0: any free port)",
            control_listen, 0, 0, false),
    CFG_OPT(struct devbroker_config, "listen-port", "DEVBROKER_LISTEN_PORT", CFG_INT, "0",
            "first broker port (broker i gets port+i-1); 0: random ports, read the bootstrap file",
            listen_port, 0, 65535, false),
    CFG_OPT_LOG_LEVEL(struct devbroker_config, log_level),
};

static const struct cfg_spec devbroker_spec = {
    .program = "devbroker",
    .usage = "[options]",
    .about = "A Kafka-protocol broker for development and tests (librdkafka's mock cluster on "
             "127.0.0.1). ALL STATE IS IN MEMORY: topics, messages and committed offsets are "
             "lost when it exits. Each partition keeps only ~5 MiB / 100,000 batches. Prints "
             "the bootstrap address on stdout. Control interface (HTTP, see "
             "docs/devbroker.md): GET /status, POST /brokers/{id}/down|up, "
             "/errors?api=&code=&count=[&broker=], /errors/clear?api=, /rtt?broker=&ms=, "
             "/topics?name=&partitions=. SIGTERM/SIGINT: stop and exit 0.",
    .options = devbroker_options,
    .noptions = sizeof devbroker_options / sizeof devbroker_options[0],
};

/* Writes text + "\n" to path via a temporary file and rename, so readers never see half. */
static int devbroker_write_file(const char *path, const char *text)
{
	char tmp[4096];
	FILE *fp;
	int ret = -1;

	if (snprintf(tmp, sizeof tmp, "%s.tmp.%ld", path, (long)getpid()) >= (int)sizeof tmp)
		return -1;
	fp = fopen(tmp, "w");
	if (!fp)
		return -1;
	if (fprintf(fp, "%s\n", text) < 0) {
		fclose(fp);
		goto out;
	}
	if (fclose(fp) != 0)
		goto out;
	if (rename(tmp, path) != 0)
		goto out;
	ret = 0;
out:
	if (ret)
		unlink(tmp);
	return ret;
}

/* Creates callpipe's topics (common/kbus_topics: the definition tools/topics uses on real Kafka),
 * then the --topics extras. */
static int devbroker_topics(struct cluster *cl, const struct devbroker_config *conf, char *errstr,
                            size_t errstr_size)
{
	struct kbus_topics_plan plan = {.prefix = conf->prefix,
	                                .partitions = (int)conf->partitions,
	                                .dlq_partitions = (int)conf->dlq_partitions};
	char name[512], *list = NULL, *save = NULL;
	int ret = -1, nparts;

	for (size_t i = 0; i < KBUS_TOPICS_COUNT; i++) {
		if (kbus_topics_get(&plan, i, name, sizeof name, &nparts)) {
			snprintf(errstr, errstr_size, "prefix too long");
			return -1;
		}
		if (cluster_topic_create(cl, name, nparts, errstr, errstr_size))
			return -1;
	}
	if (!conf->topics || !*conf->topics)
		return 0;
	list = strdup(conf->topics);
	if (!list) {
		snprintf(errstr, errstr_size, "out of memory");
		return -1;
	}
	for (char *tok = strtok_r(list, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
		char *colon = strchr(tok, ':');
		long parts = conf->partitions;

		if (colon) {
			char *end;
			*colon = '\0';
			parts = strtol(colon + 1, &end, 10);
			if (*end || parts < 1) {
				snprintf(errstr, errstr_size, "topics: bad partition count for %s",
				         tok);
				goto out;
			}
		}
		if (cluster_topic_create(cl, tok, (int)parts, errstr, errstr_size))
			goto out;
	}
	ret = 0;
out:
	free(list);
	return ret;
}

int main(int argc, char **argv)
{
	struct devbroker_config conf = {0};
	struct cluster *cl = NULL;
	struct control *ctl = NULL;
	enum log_level level;
	char errstr[512];
	int argi = 0, rc = 1;
	enum cfg_result cr;

	cr = cfg_load(&devbroker_spec, &conf, argc, argv, &argi, errstr, sizeof errstr);
	if (cr == CFG_OK && (argi < argc || log_level_parse(conf.log_level, &level))) {
		snprintf(errstr, sizeof errstr, "%s",
		         argi < argc ? "unexpected argument" : "bad log-level");
		cr = CFG_ERROR;
	}
	if (cfg_start(cr, "devbroker", conf.log_level, errstr, &rc) < 0) {
		cfg_free(&devbroker_spec, &conf);
		return rc;
	}
	shutdown_install();

	cl = cluster_new((int)conf.brokers, (unsigned)conf.listen_port, errstr, sizeof errstr);
	if (!cl) {
		log_error("cannot start the mock cluster", LOGS("error", errstr));
		goto out;
	}
	if (devbroker_topics(cl, &conf, errstr, sizeof errstr)) {
		log_error("cannot create topics", LOGS("error", errstr));
		goto out;
	}
	ctl = control_start(conf.control_listen, cl, errstr, sizeof errstr);
	if (!ctl) {
		log_error("cannot start the control interface", LOGS("error", errstr));
		goto out;
	}
	/* The control file first: a reader that sees the bootstrap file can use both. */
	if ((conf.control_file && devbroker_write_file(conf.control_file, control_url(ctl))) ||
	    (conf.bootstrap_file &&
	     devbroker_write_file(conf.bootstrap_file, cluster_bootstrap(cl)))) {
		log_error("cannot write the bootstrap/control file");
		goto out;
	}
	printf("%s\n", cluster_bootstrap(cl));
	fflush(stdout);
	log_info("devbroker ready (state is in memory only)",
	         LOGS("bootstrap", cluster_bootstrap(cl)), LOGS("control", control_url(ctl)),
	         LOGI("brokers", conf.brokers), LOGS("prefix", conf.prefix ? conf.prefix : ""),
	         LOGI("partitions", conf.partitions));

	while (!shutdown_requested())
		shutdown_sleep_ms(1000);
	log_info("devbroker stopping");
	rc = 0;
out:
	control_stop(ctl);
	if (conf.bootstrap_file)
		unlink(conf.bootstrap_file);
	if (conf.control_file)
		unlink(conf.control_file);
	cluster_destroy(cl);
	cfg_free(&devbroker_spec, &conf);
	return rc;
}
