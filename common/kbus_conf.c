/* kbus_conf: topic names and the librdkafka configuration the producer and the consumer share:
 * brokers, client id, logging into common/log, and the operator's properties file. */
#include "kbus.h"
#include "kbus_int.h"
#include "log.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int kbus_topic(const struct kbus_config *conf, const char *base, bool dlq, char *out, size_t size)
{
	const char *prefix = conf && conf->topic_prefix ? conf->topic_prefix : "";
	int n = snprintf(out, size, "%s%s%s", prefix, base, dlq ? KBUS_DLQ_SUFFIX : "");

	if (n < 0 || (size_t)n >= size)
		return -1;
	return 0;
}

int kbus_conf_set(rd_kafka_conf_t *rkc, const char *name, const char *value, char *errstr,
                  size_t errstr_size)
{
	char why[256];

	if (rd_kafka_conf_set(rkc, name, value, why, sizeof why) != RD_KAFKA_CONF_OK) {
		snprintf(errstr, errstr_size, "kafka setting %s: %s", name, why);
		return -1;
	}
	return 0;
}

/* librdkafka log lines, from its own threads: syslog levels mapped onto ours. Its "errors" are
 * mostly transient connection trouble, so they are warnings here. */
static void kbus_log_cb(const rd_kafka_t *rk, int level, const char *fac, const char *buf)
{
	enum log_level lvl = level <= 2   ? LOG_ERROR
	                     : level <= 4 ? LOG_WARN
	                     : level <= 6 ? LOG_INFO
	                                  : LOG_DEBUG;

	/* Connection failures also arrive as error events (kbus_error_cb): log them once. */
	if (!log_enabled(lvl) || strcmp(fac, "FAIL") == 0)
		return;
	const struct log_field f[] = {LOGS("client", rd_kafka_name(rk)), LOGS("facility", fac)};
	log_emit(lvl, buf, f, 2);
}

static void kbus_error_cb(rd_kafka_t *rk, int err, const char *reason, void *opaque)
{
	char fatal[256];

	(void)opaque;
	if (err == RD_KAFKA_RESP_ERR__FATAL) {
		rd_kafka_resp_err_t orig = rd_kafka_fatal_error(rk, fatal, sizeof fatal);
		log_error("kafka fatal error", LOGS("client", rd_kafka_name(rk)),
		          LOGS("error", rd_kafka_err2name(orig)), LOGS("reason", fatal));
		return;
	}
	log_warn("kafka error", LOGS("client", rd_kafka_name(rk)),
	         LOGS("error", rd_kafka_err2name((rd_kafka_resp_err_t)err)),
	         LOGS("reason", reason));
}

int kbus_conf_common(rd_kafka_conf_t *rkc, const struct kbus_config *conf, char *errstr,
                     size_t errstr_size)
{
	if (!conf->brokers || !*conf->brokers) {
		snprintf(errstr, errstr_size, "KAFKA_BROKERS is empty");
		return -1;
	}
	if (kbus_conf_set(rkc, "bootstrap.servers", conf->brokers, errstr, errstr_size) ||
	    kbus_conf_set(rkc, "client.id", conf->client_id ? conf->client_id : "callpipe", errstr,
	                  errstr_size) ||
	    /* reconnect within ~1 s of a broker coming back (default backoff grows to 10 s, long
	     * enough for queued messages to time out meanwhile) */
	    kbus_conf_set(rkc, "reconnect.backoff.max.ms", "1000", errstr, errstr_size) ||
	    kbus_conf_set(rkc, "log.connection.close", "false", errstr, errstr_size))
		return -1;
	rd_kafka_conf_set_log_cb(rkc, kbus_log_cb);
	rd_kafka_conf_set_error_cb(rkc, kbus_error_cb);
	return 0;
}

/* Strips leading and trailing blanks in place. */
static char *kbus_trim(char *s)
{
	char *end;

	while (*s == ' ' || *s == '\t')
		s++;
	end = s + strlen(s);
	while (end > s && (end[-1] == ' ' || end[-1] == '\t' || end[-1] == '\n' || end[-1] == '\r'))
		*--end = '\0';
	return s;
}

/* Properties the services' guarantees rest on (acknowledged = durable, commits only after the
 * database, gaps seen, one group per service): their own settings own them, a file may not. */
static const char *const kbus_file_refused[] = {"acks",
                                                "request.required.acks",
                                                "enable.idempotence",
                                                "enable.auto.commit",
                                                "enable.auto.offset.store",
                                                "auto.offset.reset",
                                                "group.id",
                                                "bootstrap.servers",
                                                "metadata.broker.list",
                                                "message.timeout.ms",
                                                NULL};

static bool kbus_file_key_refused(const char *key)
{
	for (const char *const *k = kbus_file_refused; *k; k++)
		if (strcmp(*k, key) == 0)
			return true;
	return false;
}

/* Applies the librdkafka properties file path. An error names the line, not the value (it may
 * be a password). */
static int kbus_conf_file(rd_kafka_conf_t *rkc, const char *path, char *errstr, size_t errstr_size)
{
	char line[4096], why[256];
	FILE *fp = fopen(path, "r");
	int lineno = 0, ret = -1;

	if (!fp) {
		snprintf(errstr, errstr_size, "KAFKA_CONFIG_FILE %s: %s", path, strerror(errno));
		return -1;
	}
	while (fgets(line, sizeof line, fp)) {
		char *key = kbus_trim(line), *eq;

		lineno++;
		if (*key == '\0' || *key == '#')
			continue;
		eq = strchr(key, '=');
		if (!eq) {
			snprintf(errstr, errstr_size, "KAFKA_CONFIG_FILE %s:%d: not key=value",
			         path, lineno);
			goto out;
		}
		*eq = '\0';
		key = kbus_trim(key);
		if (kbus_file_key_refused(key)) {
			snprintf(errstr, errstr_size,
			         "KAFKA_CONFIG_FILE %s:%d: %s is callpipe's own setting (use its "
			         "KAFKA_*/service setting, see docs/kafka.md)",
			         path, lineno, key);
			goto out;
		}
		if (rd_kafka_conf_set(rkc, key, kbus_trim(eq + 1), why, sizeof why) !=
		    RD_KAFKA_CONF_OK) {
			snprintf(errstr, errstr_size,
			         "KAFKA_CONFIG_FILE %s:%d: property %s refused (unknown, or a bad "
			         "value)",
			         path, lineno, key);
			goto out;
		}
	}
	if (ferror(fp)) {
		snprintf(errstr, errstr_size, "KAFKA_CONFIG_FILE %s: read error", path);
		goto out;
	}
	ret = 0;
out:
	fclose(fp);
	return ret;
}

int kbus_conf_extra(rd_kafka_conf_t *rkc, const struct kbus_config *conf, char *errstr,
                    size_t errstr_size)
{
	if (conf->config_file && *conf->config_file &&
	    kbus_conf_file(rkc, conf->config_file, errstr, errstr_size))
		return -1;
	if (!conf->extra)
		return 0;
	for (const char *const *kv = conf->extra; kv[0]; kv += 2) {
		if (!kv[1]) {
			snprintf(errstr, errstr_size, "kafka setting %s: no value", kv[0]);
			return -1;
		}
		if (kbus_conf_set(rkc, kv[0], kv[1], errstr, errstr_size))
			return -1;
	}
	return 0;
}
