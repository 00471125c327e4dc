/* dialer: consumes calls.requested and places each call exactly once (config -> init -> run ->
 * teardown in reverse). */
#include "config.h"
#include "consume.h"
#include "httpd.h"
#include "log.h"
#include "metrics.h"
#include "shutdown.h"
#include "sweeper.h"

#include <curl/curl.h>
#include <stdbool.h>

int main(int argc, char **argv)
{
	struct dialer_config conf;
	struct metrics *m = NULL;
	struct consume *c = NULL;
	struct sweeper *sw = NULL;
	struct httpd *h = NULL;
	char errstr[512] = "";
	char url[256];
	enum cfg_result r;
	bool curl = false;
	int rc = 1;

	r = dialer_config_load(&conf, argc, argv, errstr, sizeof errstr);
	if (cfg_start(r, "dialer", conf.log_level, errstr, &rc) < 0) {
		dialer_config_free(&conf);
		return rc;
	}
	shutdown_install();
	curl = curl_global_init(CURL_GLOBAL_DEFAULT) == CURLE_OK;
	if (!curl) {
		log_error("curl_global_init failed");
		goto out;
	}

	m = metrics_new();
	if (!m) {
		log_error("out of memory");
		goto out;
	}
	c = consume_new(&conf, m, errstr, sizeof errstr);
	if (!c) {
		log_error("cannot start", LOGS("error", errstr));
		goto out;
	}
	h = httpd_start_health(conf.http_listen, m, consume_ready, c, errstr, sizeof errstr);
	if (!h) {
		log_error("cannot start the health server", LOGS("error", errstr));
		goto out;
	}
	if (conf.sweeper) {
		sw = sweeper_start(&conf, m, errstr, sizeof errstr);
		if (!sw) {
			log_error("cannot start the sweeper", LOGS("error", errstr));
			goto out;
		}
	}
	cfg_redact_url(conf.el_base_url, url, sizeof url);
	log_info("dialer running", LOGI("http_port", httpd_port(h)), LOGS("group", conf.group),
	         LOGS("elevenlabs", url), LOGI("concurrency", conf.concurrency),
	         LOGI("rate_per_sec", conf.rate_per_sec),
	         LOGS("sweeper", conf.sweeper ? "on" : "off"));

	rc = consume_run(c) == 0 ? 0 : 1;
out:
	sweeper_stop(sw);
	httpd_stop(h);
	consume_destroy(c);
	metrics_destroy(m);
	if (curl)
		curl_global_cleanup();
	dialer_config_free(&conf);
	return rc;
}
