/* ingress: main: config -> producer, read workers, HTTP server, admin address -> run until
 * SIGTERM -> drain -> teardown in reverse. */
#include "admin.h"
#include "calls_read.h"
#include "config.h"
#include "console_advance.h"
#include "events.h"
#include "log.h"
#include "metrics.h"
#include "proc.h"
#include "publish.h"
#include "server.h"
#include "shutdown.h"

#include <stdbool.h>

static bool main_set(const char *v)
{
	return v != NULL && v[0] != '\0';
}

/* The admin address and its live events, when INGRESS_ADMIN_LISTEN is set. Returns 0 (*admin
 * NULL when not set) or -1 with errstr. */
static int main_start_admin(const struct ingress_config *conf, struct server *srv,
                            struct calls_read *reads, struct metrics *m, struct events **events,
                            struct admin **admin, char *errstr, size_t errstr_size)
{
	struct admin_deps deps = {
	    .conf = conf, .srv = srv, .reads = reads, .m = m, .events = events_serve};

	if (!main_set(conf->admin_listen))
		return 0;
	*events = events_start(conf, m, errstr, errstr_size);
	if (*events == NULL && main_set(conf->database_url))
		return -1;
	deps.events_opaque = *events;
	*admin = admin_start(&deps, errstr, errstr_size);
	if (*admin == NULL)
		return -1;
	log_info("ingress admin address listening", LOGS("listen", conf->admin_listen),
	         LOGI("port", admin_port(*admin)), LOGS("console_dir", admin_console_dir(conf)));
	return 0;
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
	ingress_proc_tune();
	ingress_config_log_security(&conf);

	m = metrics_new();
	if (m == NULL)
		goto out;
	pub = publish_new(&conf, m, errstr, sizeof errstr);
	if (pub == NULL) {
		log_error("cannot publish to Kafka", LOGS("error", errstr));
		rc = 2;
		goto out;
	}
	if (main_set(conf.database_url)) {
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
	if (main_start_admin(&conf, srv, reads, m, &events, &admin, errstr, sizeof errstr) < 0) {
		log_error("cannot start the admin address", LOGS("error", errstr));
		goto out;
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
