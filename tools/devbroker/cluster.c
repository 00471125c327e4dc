/* cluster: devbroker's librdkafka mock cluster, hosted by a producer handle as librdkafka's own
 * tests do; keeps the topic and broker state the mock cannot be asked about. */
#include "cluster.h"
#include "log.h"

#include <arpa/inet.h>
#include <dlfcn.h>
#include <errno.h>
#include <librdkafka/rdkafka_mock.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define CLUSTER_MAX_BROKERS 16

struct cluster_topic {
	char *name;
	int partitions;
};

struct cluster {
	rd_kafka_t *rk; /* hosts the mock cluster; never produces */
	rd_kafka_mock_cluster_t *mcluster;
	char *bootstrap;
	int nbrokers;
	pthread_mutex_t mu; /* guards what follows (the control server's thread writes it) */
	bool up[CLUSTER_MAX_BROKERS + 1];
	int rtt_ms[CLUSTER_MAX_BROKERS + 1];
	struct cluster_topic *topics;
	size_t ntopics;
};

/* --listen-port support. librdkafka 2.0.2 binds each mock broker to 127.0.0.1:0 and has no API
 * to choose the port, so this process defines bind(): while cluster_new() creates the brokers
 * (and only then: the window is closed before any other socket is bound), a loopback bind to
 * port 0 is given the next fixed port instead. These two statics are the only process-wide
 * state besides the signal flag; they are written before the mock thread starts. */
static unsigned cluster_fixed_port;
static int cluster_fixed_left;

int bind(int fd, const struct sockaddr *addr, socklen_t len)
{
	int (*real_bind)(int, const struct sockaddr *, socklen_t);
	struct sockaddr_in sin;

	*(void **)&real_bind = dlsym(RTLD_NEXT, "bind");
	if (!real_bind) {
		errno = ENOSYS;
		return -1;
	}
	if (cluster_fixed_left > 0 && addr && addr->sa_family == AF_INET &&
	    len >= (socklen_t)sizeof sin) {
		memcpy(&sin, addr, sizeof sin);
		if (sin.sin_port == 0 && sin.sin_addr.s_addr == htonl(INADDR_LOOPBACK)) {
			sin.sin_port = htons((uint16_t)cluster_fixed_port++);
			cluster_fixed_left--;
			return real_bind(fd, (const struct sockaddr *)&sin, sizeof sin);
		}
	}
	return real_bind(fd, addr, len);
}

/* The mock aborts the process when a listener cannot bind, so check the fixed ports first. */
static int cluster_ports_free(unsigned first, int n, char *errstr, size_t errstr_size)
{
	for (int i = 0; i < n; i++) {
		struct sockaddr_in sin = {.sin_family = AF_INET,
		                          .sin_port = htons((uint16_t)(first + (unsigned)i)),
		                          .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
		int fd = socket(AF_INET, SOCK_STREAM, 0);
		int rc = fd < 0 ? -1 : bind(fd, (struct sockaddr *)&sin, sizeof sin);

		if (fd >= 0)
			close(fd);
		if (rc != 0) {
			snprintf(errstr, errstr_size,
			         "listen port 127.0.0.1:%u is not available: %s",
			         first + (unsigned)i, strerror(errno));
			return -1;
		}
	}
	return 0;
}

static void cluster_log_cb(const rd_kafka_t *rk, int level, const char *fac, const char *buf)
{
	(void)rk;
	if (level <= 4)
		log_warn(buf, LOGS("facility", fac));
	else if (level <= 6)
		log_info(buf, LOGS("facility", fac));
	else
		log_debug(buf, LOGS("facility", fac));
}

struct cluster *cluster_new(int nbrokers, unsigned listen_port, char *errstr, size_t errstr_size)
{
	struct cluster *cl = calloc(1, sizeof *cl);
	rd_kafka_conf_t *rkc = rd_kafka_conf_new();
	char why[256];

	if (!cl || !rkc) {
		snprintf(errstr, errstr_size, "out of memory");
		goto fail;
	}
	pthread_mutex_init(&cl->mu, NULL);
	if (nbrokers < 1 || nbrokers > CLUSTER_MAX_BROKERS) {
		snprintf(errstr, errstr_size, "brokers must be 1..%d", CLUSTER_MAX_BROKERS);
		goto fail;
	}
	if (listen_port && (listen_port + (unsigned)nbrokers - 1 > 65535 ||
	                    cluster_ports_free(listen_port, nbrokers, errstr, errstr_size)))
		goto fail;
	/* The host handle only carries the mock; keep it from looking for a real cluster. */
	if (rd_kafka_conf_set(rkc, "client.id", "devbroker", why, sizeof why) ||
	    rd_kafka_conf_set(rkc, "log.connection.close", "false", why, sizeof why)) {
		snprintf(errstr, errstr_size, "kafka conf: %s", why);
		goto fail;
	}
	rd_kafka_conf_set_log_cb(rkc, cluster_log_cb);
	cl->rk = rd_kafka_new(RD_KAFKA_PRODUCER, rkc, errstr, errstr_size);
	if (!cl->rk)
		goto fail;
	rkc = NULL;

	cluster_fixed_port = listen_port;
	cluster_fixed_left = listen_port ? nbrokers : 0;
	cl->mcluster = rd_kafka_mock_cluster_new(cl->rk, nbrokers);
	cluster_fixed_left = 0;
	if (!cl->mcluster) {
		snprintf(errstr, errstr_size, "rd_kafka_mock_cluster_new failed");
		goto fail;
	}
	cl->bootstrap = strdup(rd_kafka_mock_cluster_bootstraps(cl->mcluster));
	if (!cl->bootstrap) {
		snprintf(errstr, errstr_size, "out of memory");
		goto fail;
	}
	cl->nbrokers = nbrokers;
	for (int i = 1; i <= nbrokers; i++)
		cl->up[i] = true;
	return cl;
fail:
	if (rkc)
		rd_kafka_conf_destroy(rkc);
	cluster_destroy(cl);
	return NULL;
}

void cluster_destroy(struct cluster *cl)
{
	if (!cl)
		return;
	if (cl->mcluster)
		rd_kafka_mock_cluster_destroy(cl->mcluster); /* before its host handle */
	if (cl->rk)
		rd_kafka_destroy(cl->rk);
	for (size_t i = 0; i < cl->ntopics; i++)
		free(cl->topics[i].name);
	free(cl->topics);
	free(cl->bootstrap);
	pthread_mutex_destroy(&cl->mu);
	free(cl);
}

const char *cluster_bootstrap(const struct cluster *cl)
{
	return cl->bootstrap;
}

int cluster_topic_create(struct cluster *cl, const char *name, int partitions, char *errstr,
                         size_t errstr_size)
{
	int rf = cl->nbrokers < 3 ? cl->nbrokers : 3;
	struct cluster_topic *grown;
	rd_kafka_resp_err_t err;
	int ret = -1;

	if (!name || !*name || strlen(name) > 249 ||
	    strspn(name, "abcdefghijklmnopqrstuvwxyz"
	                 "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
	                 "0123456789._-") != strlen(name)) {
		snprintf(errstr, errstr_size, "invalid topic name");
		return -1;
	}
	if (partitions < 1 || partitions > 1000) {
		snprintf(errstr, errstr_size, "partitions must be 1..1000");
		return -1;
	}
	pthread_mutex_lock(&cl->mu);
	for (size_t i = 0; i < cl->ntopics; i++) {
		if (strcmp(cl->topics[i].name, name) == 0) {
			snprintf(errstr, errstr_size, "topic %s already exists", name);
			goto out;
		}
	}
	grown = realloc(cl->topics, (cl->ntopics + 1) * sizeof *grown);
	if (!grown) {
		snprintf(errstr, errstr_size, "out of memory");
		goto out;
	}
	cl->topics = grown;
	err = rd_kafka_mock_topic_create(cl->mcluster, name, partitions, rf);
	if (err) {
		snprintf(errstr, errstr_size, "create topic %s: %s", name, rd_kafka_err2str(err));
		goto out;
	}
	cl->topics[cl->ntopics].name = strdup(name);
	cl->topics[cl->ntopics].partitions = partitions;
	if (cl->topics[cl->ntopics].name)
		cl->ntopics++;
	ret = 0;
out:
	pthread_mutex_unlock(&cl->mu);
	return ret;
}

static int cluster_check_broker(const struct cluster *cl, int32_t id, char *errstr,
                                size_t errstr_size)
{
	if (id < 1 || id > cl->nbrokers) {
		snprintf(errstr, errstr_size, "no broker %d (brokers are 1..%d)", (int)id,
		         cl->nbrokers);
		return -1;
	}
	return 0;
}

int cluster_broker_set_up(struct cluster *cl, int32_t id, bool up, char *errstr, size_t errstr_size)
{
	rd_kafka_resp_err_t err;

	if (cluster_check_broker(cl, id, errstr, errstr_size))
		return -1;
	err = up ? rd_kafka_mock_broker_set_up(cl->mcluster, id)
	         : rd_kafka_mock_broker_set_down(cl->mcluster, id);
	if (err) {
		snprintf(errstr, errstr_size, "broker %d: %s", (int)id, rd_kafka_err2str(err));
		return -1;
	}
	pthread_mutex_lock(&cl->mu);
	cl->up[id] = up;
	pthread_mutex_unlock(&cl->mu);
	log_info(up ? "broker up" : "broker down", LOGI("broker", id));
	return 0;
}

int cluster_push_errors(struct cluster *cl, int16_t api, rd_kafka_resp_err_t code, size_t count,
                        int32_t broker, char *errstr, size_t errstr_size)
{
	if (count < 1 || count > 100000) {
		snprintf(errstr, errstr_size, "count must be 1..100000");
		return -1;
	}
	if (broker < 0) {
		rd_kafka_resp_err_t *codes = malloc(count * sizeof *codes);
		if (!codes) {
			snprintf(errstr, errstr_size, "out of memory");
			return -1;
		}
		for (size_t i = 0; i < count; i++)
			codes[i] = code;
		rd_kafka_mock_push_request_errors_array(cl->mcluster, api, count, codes);
		free(codes);
	} else {
		if (cluster_check_broker(cl, broker, errstr, errstr_size))
			return -1;
		for (size_t i = 0; i < count; i++) {
			rd_kafka_resp_err_t err = rd_kafka_mock_broker_push_request_error_rtts(
			    cl->mcluster, broker, api, 1, code, 0);
			if (err) {
				snprintf(errstr, errstr_size, "broker %d: %s", (int)broker,
				         rd_kafka_err2str(err));
				return -1;
			}
		}
	}
	log_info("request errors queued", LOGI("api", api), LOGS("error", rd_kafka_err2name(code)),
	         LOGI("count", count), LOGI("broker", broker));
	return 0;
}

void cluster_clear_errors(struct cluster *cl, int16_t api)
{
	rd_kafka_mock_clear_request_errors(cl->mcluster, api);
}

int cluster_set_rtt(struct cluster *cl, int32_t id, int rtt_ms, char *errstr, size_t errstr_size)
{
	rd_kafka_resp_err_t err;

	if (cluster_check_broker(cl, id, errstr, errstr_size))
		return -1;
	if (rtt_ms < 0 || rtt_ms > 600000) {
		snprintf(errstr, errstr_size, "ms must be 0..600000");
		return -1;
	}
	err = rd_kafka_mock_broker_set_rtt(cl->mcluster, id, rtt_ms);
	if (err) {
		snprintf(errstr, errstr_size, "broker %d: %s", (int)id, rd_kafka_err2str(err));
		return -1;
	}
	pthread_mutex_lock(&cl->mu);
	cl->rtt_ms[id] = rtt_ms;
	pthread_mutex_unlock(&cl->mu);
	return 0;
}

json_t *cluster_status(struct cluster *cl)
{
	json_t *brokers = json_array(), *topics = json_array();

	pthread_mutex_lock(&cl->mu);
	for (int i = 1; i <= cl->nbrokers; i++)
		json_array_append_new(brokers, json_pack("{s:i, s:b, s:i}", "id", i, "up",
		                                         cl->up[i], "rtt_ms", cl->rtt_ms[i]));
	for (size_t i = 0; i < cl->ntopics; i++)
		json_array_append_new(topics, json_pack("{s:s, s:i}", "name", cl->topics[i].name,
		                                        "partitions", cl->topics[i].partitions));
	pthread_mutex_unlock(&cl->mu);
	return json_pack("{s:s, s:o, s:o, s:s}", "bootstrap", cl->bootstrap, "brokers", brokers,
	                 "topics", topics, "storage", "memory");
}

static const struct {
	const char *name;
	int16_t key;
} cluster_apis[] = {
    {"Produce", 0},          {"Fetch", 1},
    {"ListOffsets", 2},      {"Metadata", 3},
    {"OffsetCommit", 8},     {"OffsetFetch", 9},
    {"FindCoordinator", 10}, {"JoinGroup", 11},
    {"Heartbeat", 12},       {"LeaveGroup", 13},
    {"SyncGroup", 14},       {"ApiVersions", 18},
    {"InitProducerId", 22},  {"AddPartitionsToTxn", 24},
    {"EndTxn", 26},
};

int cluster_parse_api(const char *s, int16_t *api)
{
	char *end;
	long v;

	if (!s || !*s)
		return -1;
	for (size_t i = 0; i < sizeof cluster_apis / sizeof cluster_apis[0]; i++) {
		if (strcasecmp(s, cluster_apis[i].name) == 0) {
			*api = cluster_apis[i].key;
			return 0;
		}
	}
	v = strtol(s, &end, 10);
	if (*end || v < 0 || v > 100)
		return -1;
	*api = (int16_t)v;
	return 0;
}

int cluster_parse_error(const char *s, rd_kafka_resp_err_t *code)
{
	const struct rd_kafka_err_desc *descs;
	size_t n;
	char *end;
	long v;

	if (!s || !*s)
		return -1;
	v = strtol(s, &end, 10);
	if (!*end) {
		*code = (rd_kafka_resp_err_t)v;
		return 0;
	}
	rd_kafka_get_err_descs(&descs, &n);
	for (size_t i = 0; i < n; i++) {
		if (descs[i].name && strcasecmp(descs[i].name, s) == 0) {
			*code = descs[i].code;
			return 0;
		}
	}
	return -1;
}
