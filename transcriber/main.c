/* transcriber: webhook events to call_transcriptions and final call statuses (design.md §4-§6).
 * Modes: consume (default), replay, redrive. config -> init -> run -> teardown in reverse. */
#include "app.h"
#include "config.h"
#include "consume.h"
#include "httpd.h"
#include "log.h"
#include "metrics.h"
#include "redrive.h"
#include "replay.h"
#include "shutdown.h"

#include <stdio.h>
#include <string.h>

enum tr_mode { TR_MODE_CONSUME, TR_MODE_REPLAY, TR_MODE_REDRIVE };

static bool tr_ready(void *opaque)
{
	struct tr_app *app = opaque;

	return atomic_load(&app->ready);
}

/* The subcommand at argv[argi] (none: consume). Returns 0 or -1 (usage error). */
static int tr_mode_parse(int argc, char **argv, int argi, enum tr_mode *mode)
{
	*mode = TR_MODE_CONSUME;
	if (argi >= argc)
		return 0;
	if (argi + 1 < argc) {
		fprintf(stderr, "transcriber: unexpected argument '%s' (see --help)\n",
		        argv[argi + 1]);
		return -1;
	}
	if (strcmp(argv[argi], "replay") == 0)
		*mode = TR_MODE_REPLAY;
	else if (strcmp(argv[argi], "redrive") == 0)
		*mode = TR_MODE_REDRIVE;
	else if (strcmp(argv[argi], "run") != 0) {
		fprintf(stderr, "transcriber: unknown command '%s' (run, replay, redrive)\n",
		        argv[argi]);
		return -1;
	}
	return 0;
}

int main(int argc, char **argv)
{
	struct tr_config conf;
	struct tr_app app = {0};
	struct metrics *metrics = NULL;
	struct httpd *httpd = NULL;
	enum tr_mode mode;
	enum cfg_result cr;
	char errstr[512];
	int argi = 0, rc = 1, open_rc;

	cr = tr_config_load(&conf, argc, argv, &argi, errstr, sizeof errstr);
	if (cfg_start(cr, "transcriber", conf.log_level, errstr, &rc) < 0) {
		tr_config_free(&conf);
		return rc;
	}
	if (tr_mode_parse(argc, argv, argi, &mode) < 0 || (mode == TR_MODE_REPLAY && !conf.from)) {
		if (mode == TR_MODE_REPLAY && !conf.from)
			fprintf(stderr, "transcriber: replay needs --from <ISO-8601 time>\n");
		tr_config_free(&conf);
		return 2;
	}
	shutdown_install();

	metrics = metrics_new();
	if (!metrics) {
		log_error("out of memory");
		goto out;
	}
	open_rc = tr_app_open(&app, &conf, metrics, errstr, sizeof errstr);
	if (open_rc < 0) {
		log_error("cannot start", LOGS("error", errstr));
		rc = open_rc == -1 ? 2 : 1;
		goto out;
	}
	if (mode == TR_MODE_CONSUME) {
		httpd = httpd_start_health(conf.http_listen, metrics, tr_ready, &app, errstr,
		                           sizeof errstr);
		if (!httpd) {
			log_error("cannot start the health server", LOGS("error", errstr));
			goto out;
		}
		log_info("health and metrics", LOGS("listen", conf.http_listen),
		         LOGI("port", httpd_port(httpd)));
		rc = tr_consume_run(&app) == 0 ? 0 : 1;
	} else if (mode == TR_MODE_REPLAY) {
		rc = tr_replay_run(&app, stdout) == 0 ? 0 : 1;
	} else {
		rc = tr_redrive_run(&app, stdout) == 0 ? 0 : 1;
	}
out:
	httpd_stop(httpd);
	tr_app_close(&app);
	metrics_destroy(metrics);
	tr_config_free(&conf);
	return rc;
}
