/* tsupport: what integration tests share: the throwaway Postgres (one schema per test), private
 * devbroker instances, spawning the real binaries, free ports, HTTP via libcurl, and reading
 * back what reached a topic. Failures abort the test with a message (cmocka fail_msg). */
#ifndef CALLPIPE_TSUPPORT_H
#define CALLPIPE_TSUPPORT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/* ---- paths ---- */
/* Path of a built binary ("ingress", "migrate", "devbroker", ...) in $CALLPIPE_BIN_DIR. Static
 * buffer per call. */
const char *ts_bin(const char *name, char *buf, size_t size);
/* $CALLPIPE_SOURCE_DIR (the repository root). */
const char *ts_source_dir(void);
/* This test binary's scratch directory, created on first use and kept after the run (process
 * logs, devbroker files, anything a test writes): $CALLPIPE_TESTENV_DIR/runs/<binary>-XXXXXX,
 * or /tmp/<binary>-XXXXXX. Its path is printed on stderr when created. */
const char *ts_tmpdir(void);

/* ---- Postgres ---- */
/* URL of the throwaway Postgres started by the ctest "pg" fixture (reads
 * $CALLPIPE_TEST_DATABASE_URL, else $CALLPIPE_TESTENV_DIR/pg.env). Never NULL (fails test). */
const char *ts_pg_url(void);

/* Creates a fresh schema with a unique name based on prefix and runs `migrate up` into it
 * (unless migrate=false). Writes the schema name into out. */
void ts_pg_schema_new(const char *prefix, bool migrate, char *out, size_t size);
void ts_pg_schema_drop(const char *schema);

/* Runs one SQL statement in schema (search_path set) and returns the first column of the first
 * row as a malloc'd string (NULL when no row / NULL value). Fails the test on SQL error. */
char *ts_pg_query(const char *schema, const char *sql);
long long ts_pg_query_ll(const char *schema, const char *sql); /* -1 when NULL/no row */
void ts_pg_exec(const char *schema, const char *sql);

struct db;
/* A common/db connection to schema of the test Postgres (db_close it). Fails the test when it
 * cannot connect. */
struct db *ts_pg_db_open(const char *schema);

/* ---- brokers ---- */
/* A test's broker. By default a private devbroker process. With CALLPIPE_TEST_BROKER=kafka (the
 * ctest `kafka` tier), the run's shared Apache Kafka broker: the test's topics are created there
 * under a prefix of its own, so tests run side by side. Use b->prefix as KAFKA_TOPIC_PREFIX,
 * ts_broker_topic for topic names and ts_broker_group for consumer group ids. */
struct ts_broker {
	pid_t pid;             /* devbroker process (0 on Kafka) */
	char bootstrap[256];   /* "127.0.0.1:port,..." */
	char control_url[128]; /* devbroker: "http://127.0.0.1:port" of the control interface */
	char dir[256];         /* temp dir holding its files */
	char prefix[160];      /* the topic prefix the test's services must use */
	bool kafka;            /* a real Kafka broker */
	bool private_kafka;    /* started (and stopped) by this test: can be killed */
};
/* True when this run's tests use real Kafka (CALLPIPE_TEST_BROKER=kafka). */
bool ts_broker_kafka_mode(void);
/* Starts the test's broker with callpipe's topics (common/kbus_topics) under prefix ("" ok) +
 * the test's own namespace on shared Kafka, partitions each (DLQs: 1). */
void ts_broker_start(struct ts_broker *b, const char *prefix, int partitions);
/* A Kafka broker of this test's own (scripts/kafka in its scratch dir; ~10 s), for tests that
 * kill it: ts_broker_kill (kill -9, data kept) and ts_broker_restart (same port and data). */
void ts_broker_start_kafka_private(struct ts_broker *b, const char *prefix, int partitions);
void ts_broker_kill(struct ts_broker *b);
void ts_broker_restart(struct ts_broker *b);
/* Stops a devbroker (asserting a clean exit) or a private Kafka; deletes the topics of a test on
 * the shared Kafka. */
void ts_broker_stop(struct ts_broker *b);
/* devbroker only (fails the test on Kafka): POSTs to the control interface, e.g.
 * ts_broker_control(b, "/brokers/1/down"). Returns HTTP status. */
long ts_broker_control(const struct ts_broker *b, const char *path);
/* b->prefix + base into buf (returned). */
const char *ts_broker_topic(const struct ts_broker *b, const char *base, char *buf, size_t size);
/* The consumer group id to use for name: name itself on a devbroker, prefixed on Kafka. */
const char *ts_broker_group(const struct ts_broker *b, const char *name, char *buf, size_t size);

/* ---- processes ---- */
struct ts_proc {
	pid_t pid;
	char name[64];
	char log_path[256]; /* stderr+stdout of the process */
};
/* Spawns argv[0] (a path) with extra environment "KEY=VALUE" entries (NULL-terminated, may be
 * NULL) added to the current environment; output goes to a log file named after it. */
void ts_proc_start(struct ts_proc *p, const char *const *argv, const char *const *env);
/* Sends sig and waits up to timeout_ms; returns the exit status (WEXITSTATUS) or 128+signal,
 * -1 when it did not exit in time (then it is SIGKILLed). */
int ts_proc_stop(struct ts_proc *p, int sig, int timeout_ms);
bool ts_proc_alive(const struct ts_proc *p);
/* Runs argv to completion with env, capturing stdout into a malloc'd string (may be NULL) and
 * returning the exit status. */
int ts_run(const char *const *argv, const char *const *env, char **out, int timeout_ms);
/* ts_run capturing stderr too, interleaved with stdout (error messages, log lines). */
int ts_run_all(const char *const *argv, const char *const *env, char **out, int timeout_ms);

/* A free loopback TCP port below the kernel's ephemeral range, so that a server a test kills and
 * restarts on it cannot find it held by some outgoing connection (random, checked by a bind). */
unsigned ts_free_port(void);
/* True in an AddressSanitizer build: freed memory sits in its quarantine and every access is
 * instrumented, so resident-memory bounds and speed comparisons only hold in the plain build. */
#ifdef __SANITIZE_ADDRESS__
#define TS_UNDER_ASAN true
#else
#define TS_UNDER_ASAN false
#endif

/* True when the file at path (its first MiB) contains needle, e.g. a process's log. */
bool ts_file_contains(const char *path, const char *needle);
/* Waits until GET url answers 200, up to timeout_ms. Returns true if it did. */
bool ts_wait_http_ok(const char *url, int timeout_ms);

/* ---- HTTP ---- */
struct ts_http_resp {
	long status;
	char *body;    /* malloc'd, NUL-terminated */
	char *headers; /* malloc'd raw header block */
};
/* method "GET"/"POST"...; headers NULL-terminated "Name: value" lines (may be NULL). */
void ts_http(const char *method, const char *url, const char *const *headers, const char *body,
             size_t body_len, struct ts_http_resp *resp);
void ts_http_resp_free(struct ts_http_resp *resp);
/* The value of the first line "<series> <value>" of a Prometheus text body (series exactly as
 * printed, labels included); false, *out untouched, when there is none. body may be NULL. */
bool ts_metric_value(const char *body, const char *series, double *out);

/* ---- Kafka ---- */
struct ts_kmsg {
	char *key;
	char *value;
	size_t value_len;
	int32_t partition;
	int64_t offset;
	char **header_names, **header_values; /* nheaders each */
	size_t nheaders;
};
/* Reads every message currently in topic (all partitions, from the beginning to the high
 * watermark at call time) without a group. Returns the count; *out is malloc'd (free with
 * ts_kmsgs_free). */
size_t ts_kafka_read_all(const char *bootstrap, const char *topic, struct ts_kmsg **out);
void ts_kmsgs_free(struct ts_kmsg *msgs, size_t n);
const char *ts_kmsg_header(const struct ts_kmsg *m, const char *name); /* NULL if absent */
/* Produces one message synchronously (key may be NULL). */
void ts_kafka_produce(const char *bootstrap, const char *topic, const char *key, const char *value,
                      const char *const *headers /* "name", "value", ..., NULL */);

/* The offset group has committed for topic/partition (asked like a member would, without
 * joining), -1 when none. Fails the test when the broker does not answer. */
int64_t ts_kafka_committed(const char *bootstrap, const char *group, const char *topic,
                           int32_t partition);

/* ---- waiting ---- */
/* Polls cond(opaque) every 50 ms until true or timeout_ms. Returns its last value. */
bool ts_wait_until(bool (*cond)(void *opaque), void *opaque, int timeout_ms);
void ts_sleep_ms(long ms);

#endif
