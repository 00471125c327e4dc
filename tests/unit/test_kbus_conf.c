/* test_kbus_conf: KAFKA_CONFIG_FILE, the librdkafka properties file every service takes (SASL,
 * TLS): applied over kbus' defaults, comments and blanks skipped, errors naming file and line but
 * never a value, and callpipe's own guarantees (acks, idempotence, commits) not overridable. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "kbus_int.h"
#include "kbus_topics.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* Writes text to a temp file; its path into path. */
static void write_file(const char *text, char *path, size_t size)
{
	FILE *fp;
	int fd;

	snprintf(path, size, "/tmp/test_kbus_conf-XXXXXX");
	fd = mkstemp(path);
	assert_true(fd >= 0);
	fp = fdopen(fd, "w");
	assert_non_null(fp);
	fputs(text, fp);
	fclose(fp);
}

static int apply(const char *text, rd_kafka_conf_t *rkc, char *errstr, size_t size)
{
	char path[64];
	struct kbus_config kc = {.brokers = "127.0.0.1:9", .config_file = path};
	int ret;

	write_file(text, path, sizeof path);
	ret = kbus_conf_extra(rkc, &kc, errstr, size);
	unlink(path);
	return ret;
}

static void get(rd_kafka_conf_t *rkc, const char *name, char *out, size_t size)
{
	assert_int_equal(rd_kafka_conf_get(rkc, name, out, &size), RD_KAFKA_CONF_OK);
}

static void test_kbus_conf_file_applies_properties(void **state)
{
	rd_kafka_conf_t *rkc = rd_kafka_conf_new();
	char errstr[256], v[256];

	(void)state;
	assert_int_equal(apply("# SASL over TLS\n\n  security.protocol = SASL_SSL\n"
	                       "sasl.mechanisms=SCRAM-SHA-512\r\n"
	                       "sasl.username=callpipe\n"
	                       "sasl.password=pa=ss word\n"
	                       "\tclient.id = billing-ingress \n",
	                       rkc, errstr, sizeof errstr),
	                 0);
	get(rkc, "security.protocol", v, sizeof v);
	assert_string_equal(v, "sasl_ssl");
	get(rkc, "sasl.mechanisms", v, sizeof v);
	assert_string_equal(v, "SCRAM-SHA-512");
	get(rkc, "sasl.password", v, sizeof v);
	assert_string_equal(v, "pa=ss word"); /* only the first '=' splits */
	get(rkc, "client.id", v, sizeof v);
	assert_string_equal(v, "billing-ingress");
	rd_kafka_conf_destroy(rkc);
}

static void test_kbus_conf_file_errors_name_the_line_not_the_value(void **state)
{
	static const struct {
		const char *text, *expect;
	} cases[] = {
	    {"security.protocol=SASL_SSL\nno equals sign here\n", ":2: not key=value"},
	    {"sasl.password=hunter2secret\nno.such.property=hunter2secret\n",
	     ":2: property no.such.property refused"},
	    {"acks=1\n", ":1: acks is callpipe's own setting"},
	    {"enable.idempotence=false\n", "enable.idempotence is callpipe's own setting"},
	    {"# ok\nenable.auto.commit=true\n", ":2: enable.auto.commit is callpipe's own"},
	    {"auto.offset.reset=latest\n", "auto.offset.reset is callpipe's own"},
	    {"group.id=other\n", "group.id is callpipe's own"},
	};

	(void)state;
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		rd_kafka_conf_t *rkc = rd_kafka_conf_new();
		char errstr[256];

		assert_int_equal(apply(cases[i].text, rkc, errstr, sizeof errstr), -1);
		if (!strstr(errstr, cases[i].expect))
			fail_msg("case %zu: \"%s\" lacks \"%s\"", i, errstr, cases[i].expect);
		assert_null(strstr(errstr, "hunter2"));
		rd_kafka_conf_destroy(rkc);
	}
}

static void test_kbus_conf_file_missing_is_an_error(void **state)
{
	rd_kafka_conf_t *rkc = rd_kafka_conf_new();
	struct kbus_config kc = {.config_file = "/nonexistent/kafka.properties"};
	char errstr[256];

	(void)state;
	assert_int_equal(kbus_conf_extra(rkc, &kc, errstr, sizeof errstr), -1);
	assert_non_null(strstr(errstr, "/nonexistent/kafka.properties"));
	rd_kafka_conf_destroy(rkc);
}

static void test_kbus_topics_plan(void **state)
{
	struct kbus_topics_plan plan = {.prefix = "prod."};
	char name[64];
	int parts;

	(void)state;
	assert_int_equal(kbus_topics_get(&plan, 0, name, sizeof name, &parts), 0);
	assert_string_equal(name, "prod.calls.requested");
	assert_int_equal(parts, KBUS_TOPICS_PARTITIONS);
	assert_int_equal(kbus_topics_get(&plan, 5, name, sizeof name, &parts), 0);
	assert_string_equal(name, "prod.webhooks.post_call.dlq");
	assert_int_equal(parts, KBUS_TOPICS_DLQ_PARTITIONS);
	plan.partitions = 12;
	assert_int_equal(kbus_topics_get(&plan, 2, name, sizeof name, &parts), 0);
	assert_string_equal(name, "prod.webhooks.transcription");
	assert_int_equal(parts, 12);
	assert_int_equal(kbus_topics_get(&plan, KBUS_TOPICS_COUNT, name, sizeof name, &parts), -1);
	assert_int_equal(kbus_topics_get(&plan, 1, name, 8, &parts), -1); /* does not fit */
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_kbus_conf_file_applies_properties),
	    cmocka_unit_test(test_kbus_conf_file_errors_name_the_line_not_the_value),
	    cmocka_unit_test(test_kbus_conf_file_missing_is_an_error),
	    cmocka_unit_test(test_kbus_topics_plan),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
