/* elevensim: a fake ElevenLabs (outbound-call API, conversations API, scripted signed webhooks)
 * for local runs and tests. */
#include "log.h"
#include "shutdown.h"
#include "simapi.h"
#include "simconf.h"
#include "simplay.h"
#include "simstore.h"

#include <curl/curl.h>
#include <stdio.h>
#include <string.h>

/* Writes "http://127.0.0.1:port" to path atomically (temp file + rename). Returns 0 or -1. */
static int sim_write_url(const char *path, const char *url)
{
	char tmp[1024];
	FILE *fp;

	snprintf(tmp, sizeof tmp, "%s.tmp", path);
	fp = fopen(tmp, "w");
	if (!fp)
		return -1;
	fprintf(fp, "%s\n", url);
	if (fclose(fp) != 0)
		return -1;
	return rename(tmp, path);
}

int main(int argc, char **argv)
{
	struct sim_options opt;
	struct sim_conf *conf = NULL;
	struct sim_store *store = NULL;
	struct sim_play *play = NULL;
	struct sim_api *api = NULL;
	enum log_level level = LOG_INFO;
	char errstr[512] = "", url[300], host[256];
	unsigned port;
	enum cfg_result r;
	int argi = 0, ret = 1;

	memset(&opt, 0, sizeof opt);
	shutdown_install();
	r = cfg_load(sim_conf_spec(), &opt, argc, argv, &argi, errstr, sizeof errstr);
	if (r == CFG_OK && (argi < argc || log_level_parse(opt.log_level, &level) ||
	                    cfg_parse_listen(opt.listen, host, sizeof host, &port))) {
		snprintf(errstr, sizeof errstr,
		         "bad argument, --log-level or --listen (see --help)");
		r = CFG_ERROR;
	}
	if (cfg_start(r, "elevensim", opt.log_level, errstr, &ret) < 0)
		goto out;
	conf = sim_conf_new(&opt, errstr, sizeof errstr);
	if (!conf) {
		fprintf(stderr, "elevensim: %s\n", errstr);
		ret = 2;
		goto out;
	}
	if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK)
		goto out;
	store = sim_store_new();
	play = store ? sim_play_start(conf, store, opt.webhook_secret, opt.tool_secret,
	                              (int)opt.webhook_threads, errstr, sizeof errstr)
	             : NULL;
	api = play
	          ? sim_api_start(opt.listen, opt.api_key, conf, store, play, errstr, sizeof errstr)
	          : NULL;
	if (!api) {
		log_error("elevensim: cannot start", LOGS("error", errstr));
		goto out_stop;
	}
	snprintf(url, sizeof url, "http://%s:%u",
	         host[0] && strcmp(host, "0.0.0.0") != 0 ? host : "127.0.0.1", sim_api_port(api));
	if (opt.url_file && *opt.url_file && sim_write_url(opt.url_file, url)) {
		log_error("elevensim: cannot write --url-file", LOGS("path", opt.url_file));
		goto out_stop;
	}
	log_info("elevensim: listening", LOGS("url", url),
	         LOGS("webhooks", opt.webhook_url && *opt.webhook_url ? opt.webhook_url : "off"),
	         LOGS("signed", opt.webhook_secret && *opt.webhook_secret ? "yes" : "no"),
	         LOGI("latency_ms", opt.latency_ms), LOGI("turns", opt.turns));
	while (!shutdown_requested())
		shutdown_sleep_ms(200);
	log_info("elevensim: stopping");
	ret = 0;
out_stop:
	sim_play_stop(play); /* releases every held answer before the server stops */
	sim_api_stop(api);
	sim_play_free(play);
	sim_store_free(store);
	curl_global_cleanup();
out:
	sim_conf_free(conf);
	cfg_free(sim_conf_spec(), &opt);
	return ret;
}
