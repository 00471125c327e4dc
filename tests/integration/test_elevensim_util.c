/* test_elevensim_util: what the elevensim tests share (see the header). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "test_elevensim_util.h"

#include <microhttpd.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

struct rx_req {
	char *body;
	size_t len;
};

long long est_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static enum MHD_Result rx_handler(void *cls, struct MHD_Connection *conn, const char *url,
                                  const char *method, const char *version, const char *upload,
                                  size_t *upload_size, void **con_cls)
{
	struct est_receiver *rx = cls;
	struct rx_req *r = *con_cls;
	struct MHD_Response *resp;
	enum MHD_Result ret;
	const char *sig, *tok, *tool;
	unsigned status = 200;

	(void)method;
	(void)version;
	if (!r) {
		*con_cls = calloc(1, sizeof *r);
		return MHD_YES;
	}
	if (*upload_size) {
		r->body = realloc(r->body, r->len + *upload_size + 1);
		memcpy(r->body + r->len, upload, *upload_size);
		r->len += *upload_size;
		r->body[r->len] = '\0';
		*upload_size = 0;
		return MHD_YES;
	}
	sig = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "ElevenLabs-Signature");
	tok = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "X-Callpipe-Call-Token");
	tool = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "X-Callpipe-Tool-Secret");
	pthread_mutex_lock(&rx->mu);
	if (rx->seen++ < rx->fail_first) {
		status = 503;
	} else if (rx->n < EST_MAX_HOOKS) {
		struct est_hook *h = &rx->hooks[rx->n++];

		snprintf(h->path, sizeof h->path, "%s", url);
		snprintf(h->signature, sizeof h->signature, "%s", sig ? sig : "");
		snprintf(h->call_token, sizeof h->call_token, "%s", tok ? tok : "");
		snprintf(h->tool_secret, sizeof h->tool_secret, "%s", tool ? tool : "");
		h->body = r->body ? r->body : strdup("");
		r->body = NULL;
		h->at_ms = est_now_ms();
	}
	pthread_mutex_unlock(&rx->mu);
	free(r->body);
	free(r);
	*con_cls = NULL;
	resp = MHD_create_response_from_buffer(2, (void *)"{}", MHD_RESPMEM_PERSISTENT);
	ret = MHD_queue_response(conn, status, resp);
	MHD_destroy_response(resp);
	return ret;
}

void est_rx_reset(struct est_receiver *rx, int fail_first)
{
	pthread_mutex_lock(&rx->mu);
	for (int i = 0; i < rx->n; i++)
		free(rx->hooks[i].body);
	rx->n = 0;
	rx->seen = 0;
	rx->fail_first = fail_first;
	pthread_mutex_unlock(&rx->mu);
}

int est_rx_count(struct est_receiver *rx)
{
	int n;

	pthread_mutex_lock(&rx->mu);
	n = rx->n;
	pthread_mutex_unlock(&rx->mu);
	return n;
}

bool est_rx_wait(struct est_receiver *rx, int n, int timeout_ms)
{
	for (int waited = 0; waited <= timeout_ms; waited += 20) {
		if (est_rx_count(rx) >= n)
			return true;
		ts_sleep_ms(20);
	}
	return false;
}

int est_setup(void **state)
{
	struct est_env *e = calloc(1, sizeof *e);
	char url[64], wh[80];
	const char *args[] = {"--webhook-url", url, "--webhook-backoff-ms", "50", NULL};
	const char *env[] = {wh, "INGRESS_TOOL_SECRET=" EST_TOOL_SECRET, NULL};

	pthread_mutex_init(&e->rx.mu, NULL);
	e->rx.daemon = MHD_start_daemon(MHD_USE_INTERNAL_POLLING_THREAD, 0, NULL, NULL, rx_handler,
	                                &e->rx, MHD_OPTION_END);
	assert_non_null(e->rx.daemon);
	e->rx.port = MHD_get_daemon_info(e->rx.daemon, MHD_DAEMON_INFO_BIND_PORT)->port;
	snprintf(url, sizeof url, "http://127.0.0.1:%u", e->rx.port);
	snprintf(wh, sizeof wh, "ELEVENLABS_WEBHOOK_SECRET=%s", DIT_SECRET);
	dit_sim_start(&e->sim, args, env);
	*state = e;
	return 0;
}

int est_teardown(void **state)
{
	struct est_env *e = *state;

	if (e->spare.proc.pid > 0)
		(void)ts_proc_stop(&e->spare.proc, SIGKILL, 5000);
	dit_sim_stop(&e->sim);
	MHD_stop_daemon(e->rx.daemon);
	est_rx_reset(&e->rx, 0);
	free(e);
	return 0;
}

int est_reset(void **state)
{
	struct est_env *e = *state;
	struct ts_http_resp resp;
	char url[200], cfg[400];

	snprintf(url, sizeof url, "%s/sim/reset", e->sim.url);
	ts_http("POST", url, NULL, "", 0, &resp);
	assert_int_equal(resp.status, 200);
	ts_http_resp_free(&resp);
	est_rx_reset(&e->rx, 0);
	snprintf(cfg, sizeof cfg,
	         "{\"turns\": 2, \"turn_delay_ms\": 50, \"latency_ms\": 0, \"seed\": 1, "
	         "\"429_share\": 0, \"race_share\": 0, \"placed_502_share\": 0, "
	         "\"placed_504_share\": 0, \"webhook_url\": \"http://127.0.0.1:%u\", "
	         "\"webhook_timeout_ms\": 5000, \"webhook_retries\": 3}",
	         e->rx.port);
	dit_sim_config(&e->sim, cfg);
	return 0;
}

void est_dial(const struct est_env *e, const char *key, const char *call_sid,
              const char *body_override, struct ts_http_resp *resp)
{
	char url[200], hdr[100], body[512];
	const char *headers[] = {hdr, "Content-Type: application/json", NULL};

	snprintf(url, sizeof url, "%s/v1/convai/twilio/outbound-call", e->sim.url);
	snprintf(hdr, sizeof hdr, "xi-api-key: %s", key);
	snprintf(body, sizeof body,
	         "{\"agent_id\": \"agent_x\", \"agent_phone_number_id\": \"ph_x\", \"to_number\": "
	         "\"+15550100001\", \"conversation_initiation_client_data\": "
	         "{\"dynamic_variables\": {\"call_sid\": \"%s\", \"driver_name\": \"Ada\", "
	         "\"first_message\": \"Hi Ada\"}}}",
	         call_sid);
	if (body_override)
		snprintf(body, sizeof body, "%s", body_override);
	ts_http("POST", url, headers, body, strlen(body), resp);
}

json_t *est_body_json(const struct ts_http_resp *resp)
{
	json_t *root = json_loads(resp->body ? resp->body : "", 0, NULL);

	if (!root)
		fail_msg("not JSON: %s", resp->body ? resp->body : "(none)");
	return root;
}

const char *est_str(const json_t *o, const char *path)
{
	/* "a.b.c": nested objects */
	char key[64];
	const char *dot;

	while ((dot = strchr(path, '.'))) {
		snprintf(key, sizeof key, "%.*s", (int)(dot - path), path);
		o = json_object_get(o, key);
		path = dot + 1;
	}
	return json_string_value(json_object_get(o, path));
}

void est_dial_accepted(const struct est_env *e, const char *call_sid, char *conv, size_t size)
{
	struct ts_http_resp resp;
	json_t *root;

	est_dial(e, DIT_API_KEY, call_sid, NULL, &resp);
	assert_int_equal(resp.status, 200);
	root = est_body_json(&resp);
	snprintf(conv, size, "%s", est_str(root, "conversation_id"));
	json_decref(root);
	ts_http_resp_free(&resp);
}
