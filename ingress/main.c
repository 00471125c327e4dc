/* ingress: main: config → producer, read workers, HTTP server → run until SIGTERM → drain. */
#include "admin.h"
#include "calls_read.h"
#include "config.h"
#include "console_advance.h"
#include "events.h"
#include "log.h"
#include "metrics.h"
#include "publish.h"
#include "server.h"
#include "shutdown.h"

#include <malloc.h>
#include <stdio.h>
#include <sys/resource.h>

/* Lets the connection limit be reached: soft open-files limit up to the hard one. */
static void main_raise_nofile(void)
{
	struct rlimit rl;

	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max;
		if (setrlimit(RLIMIT_NOFILE, &rl) != 0)
			log_warn("cannot raise the open-files limit");
	}
}

static void main_log_security(const struct ingress_config *conf)
{
	if (conf->api_token == NULL || conf->api_token[0] == '\0')
		log_warn("INGRESS_ALLOW_UNAUTHENTICATED is on: anyone who can reach this port can "
		         "place calls and read transcripts");
	else if (conf->allow_unauthenticated)
		log_warn("INGRESS_ALLOW_UNAUTHENTICATED is ignored: INGRESS_API_TOKEN is set");
	if (conf->webhook_secret == NULL || conf->webhook_secret[0] == '\0')
		log_warn("INGRESS_ALLOW_UNSIGNED_WEBHOOKS is on: webhooks are accepted without a "
		         "signature (event_id is a random UUID)");
	else if (conf->allow_unsigned_webhooks)
		log_warn("INGRESS_ALLOW_UNSIGNED_WEBHOOKS is ignored: ELEVENLABS_WEBHOOK_SECRET is "
		         "set, every webhook must be signed");
	if (conf->database_url == NULL || conf->database_url[0] == '\0')
		log_warn("DATABASE_URL is not set: GET /calls/{call_sid} answers 503");
	if (conf->call_token_secret != NULL && conf->call_token_secret[0] != '\0')
		log_info(
		    "agent tool lines are accepted with their call's token "
		    "(X-Callpipe-Call-Token)",
		    LOGS("tool_secret", conf->tool_secret != NULL && conf->tool_secret[0] != '\0'
		                            ? "required too"
		                            : "not set"));
}

/* Fixed malloc thresholds. With glibc's defaults (dynamic, from 128 KiB) the librdkafka broker
 * thread's per-batch buffers kept shrinking its heap (madvise) and faulting it back in: ~0.3
 * madvise per request under load. Up to 16 MiB of free heap per arena may now be kept. */
static void main_tune_malloc(void)
{
	(void)mallopt(M_MMAP_THRESHOLD, 4 * 1024 * 1024);
	(void)mallopt(M_TRIM_THRESHOLD, 16 * 1024 * 1024);
}

int main(int argc, char **argv)
{
	struct ingress_config conf;
	struct metrics *m = NULL;
	struct publish *pub = NULL;
	struct calls_read *reads = NULL;
	struct server *srv = NULL;
	struct admin *admin = NULL;
	struct events *events = NULL;
	struct console_advance *advance = NULL;
	char errstr[512];
	enum cfg_result r;
	int rc = 1;

	r = ingress_config_load(&conf, argc, argv, errstr, sizeof errstr);
	if (cfg_start(r, "ingress", conf.log_level, errstr, &rc) < 0) {
		ingress_config_free(&conf);
		return rc;
	}
	shutdown_install();
	main_raise_nofile();
	main_tune_malloc();
	main_log_security(&conf);

	m = metrics_new();
	if (m == NULL)
		goto out;
	pub = publish_new(&conf, m, errstr, sizeof errstr);
	if (pub == NULL) {
		log_error("cannot publish to Kafka", LOGS("error", errstr));
		rc = 2;
		goto out;
	}
	if (conf.database_url != NULL && conf.database_url[0] != '\0') {
		reads = calls_read_new(conf.database_url, conf.db_schema, (int)conf.threads,
		                       (long)conf.db_wait_ms, errstr, sizeof errstr);
		if (reads == NULL) {
			log_error("cannot start the read workers", LOGS("error", errstr));
			goto out;
		}
	}
	if (reads != NULL && conf.console_advance_s > 0) {
		advance = console_advance_start(conf.database_url, conf.db_schema,
		                                conf.console_advance_s, errstr, sizeof errstr);
		if (advance == NULL) {
			log_error("cannot start the console window advance", LOGS("error", errstr));
			goto out;
		}
	}
	srv = server_start(&conf, pub, reads, m, errstr, sizeof errstr);
	if (srv == NULL) {
		log_error("cannot start the HTTP server", LOGS("error", errstr));
		goto out;
	}
	if (conf.admin_listen != NULL && conf.admin_listen[0] != '\0') {
		/* /metrics, health, the console and its read APIs, off the public address */
		struct admin_deps deps = {
		    .conf = &conf, .srv = srv, .reads = reads, .m = m, .events = events_serve};

		events = events_start(&conf, m, errstr, sizeof errstr);
		if (events == NULL && conf.database_url != NULL && conf.database_url[0] != '\0') {
			log_error("cannot start the live events", LOGS("error", errstr));
			goto out;
		}
		deps.events_opaque = events;
		admin = admin_start(&deps, errstr, sizeof errstr);
		if (admin == NULL) {
			log_error("cannot start the admin address", LOGS("error", errstr));
			goto out;
		}
		log_info("ingress admin address listening", LOGS("listen", conf.admin_listen),
		         LOGI("port", admin_port(admin)),
		         LOGS("console_dir", admin_console_dir(&conf)));
	}
	log_info("ingress listening", LOGS("listen", conf.http_listen),
	         LOGI("port", server_port(srv)), LOGS("brokers", conf.kafka_brokers),
	         LOGS("topic", publish_topic_name(pub, PUBLISH_CALLS_REQUESTED)),
	         LOGI("threads", conf.threads),
	         LOGS("metrics", admin != NULL ? "admin address" : "this address"));

	while (!shutdown_requested())
		(void)shutdown_sleep_ms(1000);
	console_advance_stop(advance); /* before the drain: nothing of it is in flight */
	advance = NULL;

	log_info("shutting down: draining in-flight requests",
	         LOGI("in_flight", server_in_flight(srv)));
	if (server_drain(srv, (long)conf.drain_timeout_ms) != 0) {
		/* Some client is still uploading. Stop taking work, make sure what was accepted is
		 * out, and leave without tearing down under its feet. */
		log_error("in-flight requests did not finish in time; exiting",
		          LOGI("in_flight", server_in_flight(srv)));
		(void)publish_flush(pub, 2000);
		return 1;
	}
	rc = 0;
out:
	/* Order matters: the daemon first (no new work), then the read workers and the producer
	 * (their late callbacks still use the server struct), then the server struct. */
	console_advance_stop(advance); /* wakes it: at most a running advance to wait for */
	if (server_stop(srv) != 0)
		rc = 1;
	events_close(events); /* its streams hold admin connection threads */
	admin_stop(admin);    /* its /readyz asks the server struct, its reads the workers */
	events_destroy(events);
	calls_read_destroy(reads);
	if (pub != NULL && publish_flush(pub, (int)conf.drain_timeout_ms) != 0) {
		log_error("messages still queued for the broker at exit");
		rc = 1;
	}
	publish_destroy(pub, 1000);
	server_destroy(srv);
	metrics_destroy(m);
	if (rc == 0)
		log_info("ingress stopped");
	ingress_config_free(&conf);
	return rc;
}
