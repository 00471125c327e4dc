/* config: the ingress option table (env + --long-option + --help) and its validation. */
#include "config.h"

#include "log.h"

#include <libpq-fe.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>

static const struct cfg_option ingress_options[] = {
    CFG_OPT_HTTP_LISTEN(struct ingress_config, http_listen, "0.0.0.0:8080"),
    CFG_OPT_KAFKA_BROKERS(struct ingress_config, kafka_brokers),
    CFG_OPT_KAFKA_TOPIC_PREFIX(struct ingress_config, kafka_topic_prefix),
    CFG_OPT_KAFKA_CONFIG_FILE(struct ingress_config, kafka_config_file),
    CFG_OPT(struct ingress_config, "database-url", "DATABASE_URL", CFG_SECRET, NULL,
            "libpq URL for GET /calls/{call_sid} only (unset: that endpoint answers 503); the "
            "publish paths never use it",
            database_url, 0, 0, false),
    CFG_OPT_DB_SCHEMA(struct ingress_config, db_schema),
    CFG_OPT(struct ingress_config, "api-token", "INGRESS_API_TOKEN", CFG_SECRET, NULL,
            "bearer token required by POST /driver_data/call-elevenlabs and GET /calls/*",
            api_token, 0, 0, false),
    CFG_OPT(struct ingress_config, "webhook-secret", "ELEVENLABS_WEBHOOK_SECRET", CFG_SECRET, NULL,
            "HMAC secret of the ElevenLabs webhooks (ElevenLabs-Signature header)", webhook_secret,
            0, 0, false),
    CFG_OPT(struct ingress_config, "call-token-secret", "CALL_TOKEN_SECRET", CFG_SECRET, NULL,
            "key of the per-call tokens the dialer hands the agent (dynamic variable call_token; "
            "the same value in the dialer): with it, /webhooks/elevenlabs/transcription also "
            "takes unsigned lines from the agent's tool that carry X-Callpipe-Call-Token, each "
            "only for the call_sid its token was made for; unset: signed lines only",
            call_token_secret, 0, 0, false),
    CFG_OPT(struct ingress_config, "tool-secret", "INGRESS_TOOL_SECRET", CFG_SECRET, NULL,
            "optional second check on tool lines: the X-Callpipe-Tool-Secret header they must "
            "carry besides their call token (needs CALL_TOKEN_SECRET)",
            tool_secret, 0, 0, false),
    CFG_OPT(struct ingress_config, "admin-listen", "INGRESS_ADMIN_LISTEN", CFG_STR, NULL,
            "host:port of the admin address (/metrics, /healthz, /readyz, the console and its "
            "read APIs), kept off the internet; when set, /metrics is no longer served on "
            "HTTP_LISTEN",
            admin_listen, 0, 0, false),
    CFG_OPT(struct ingress_config, "admin-connection-limit", "INGRESS_ADMIN_CONNECTION_LIMIT",
            CFG_INT, "64",
            "most concurrent connections of the admin address (one thread each, event streams "
            "included); a quarter of them per client address",
            admin_connection_limit, 4, 4096, false),
    CFG_OPT(struct ingress_config, "events-max-subscribers", "INGRESS_EVENTS_MAX_SUBSCRIBERS",
            CFG_INT, "32",
            "GET /events: streams open at once (each holds an admin connection and its thread); "
            "more: 503",
            events_max_subscribers, 1, 1024, false),
    CFG_OPT(struct ingress_config, "events-queue", "INGRESS_EVENTS_QUEUE", CFG_INT, "1024",
            "GET /events: events one stream may have waiting to be written; one more and it is "
            "ended with resync slow_consumer",
            events_queue, 2, 1000000, false),
    CFG_OPT(struct ingress_config, "events-queue-bytes", "INGRESS_EVENTS_QUEUE_BYTES", CFG_INT,
            "1048576",
            "GET /events: bytes one stream may have waiting (memory: at most this times "
            "INGRESS_EVENTS_MAX_SUBSCRIBERS, plus the ring); more: resync slow_consumer",
            events_queue_bytes, 262144, 268435456, false),
    CFG_OPT(struct ingress_config, "events-ring", "INGRESS_EVENTS_RING", CFG_INT, "4096",
            "GET /events: recent events kept so that a client reconnecting with Last-Event-ID "
            "resumes",
            events_ring, 1, 1000000, false),
    CFG_OPT(struct ingress_config, "events-ring-bytes", "INGRESS_EVENTS_RING_BYTES", CFG_INT,
            "8388608", "GET /events: bytes of the recent events kept", events_ring_bytes, 65536,
            1073741824, false),
    CFG_OPT(struct ingress_config, "events-max-lines", "INGRESS_EVENTS_MAX_LINES", CFG_INT, "5000",
            "GET /events: transcription lines one insert may add and still be streamed line by "
            "line; more (a bulk load): every stream resyncs (bulk_change)",
            events_max_lines, 1, 1000000, false),
    CFG_OPT(struct ingress_config, "events-ping-ms", "INGRESS_EVENTS_PING_MS", CFG_INT, "15000",
            "GET /events: period of the \": ping\" comment that keeps idle streams (and proxies) "
            "open; below the admin idle timeout (45 s)",
            events_ping_ms, 100, 30000, false),
    CFG_OPT(struct ingress_config, "console-dir", "INGRESS_CONSOLE_DIR", CFG_STR, NULL,
            "directory of the console's files (index.html, console.js, console.css) served at "
            "/console on the admin address; unset: the source tree's console/ (baked in at "
            "build time), else the installed share/callpipe/console",
            console_dir, 0, 0, false),
    CFG_OPT(struct ingress_config, "allow-unauthenticated", "INGRESS_ALLOW_UNAUTHENTICATED",
            CFG_BOOL, "false",
            "explicit opt-in to run without INGRESS_API_TOKEN (anyone can place calls); logged",
            allow_unauthenticated, 0, 0, false),
    CFG_OPT(struct ingress_config, "allow-unsigned-webhooks", "INGRESS_ALLOW_UNSIGNED_WEBHOOKS",
            CFG_BOOL, "false",
            "explicit opt-in to accept webhooks without ELEVENLABS_WEBHOOK_SECRET; logged",
            allow_unsigned_webhooks, 0, 0, false),
    CFG_OPT(struct ingress_config, "max-body", "INGRESS_MAX_BODY", CFG_INT, "65536",
            "largest body (bytes) of call requests and transcription webhooks; larger: 413",
            max_body, 256, 16777216, false),
    CFG_OPT(struct ingress_config, "max-post-call-body", "INGRESS_MAX_POST_CALL_BODY", CFG_INT,
            "1048576", "largest body (bytes) of post-call webhooks; larger: 413",
            max_post_call_body, 1024, 67108864, false),
    CFG_OPT(struct ingress_config, "delivery-timeout-ms", "INGRESS_DELIVERY_TIMEOUT_MS", CFG_INT,
            "5000",
            "how long a request waits for the broker's acknowledgement (GET /calls: for the "
            "database) before answering 503",
            delivery_timeout_ms, 100, 300000, false),
    CFG_OPT(struct ingress_config, "retry-after", "INGRESS_RETRY_AFTER_S", CFG_INT, "5",
            "Retry-After (seconds) sent with 503 answers", retry_after_s, 1, 3600, false),
    CFG_OPT(struct ingress_config, "connection-timeout", "INGRESS_CONNECTION_TIMEOUT_S", CFG_INT,
            "10", "idle seconds after which a connection is closed (slow or stalled clients)",
            connection_timeout_s, 1, 3600, false),
    CFG_OPT(struct ingress_config, "connection-limit", "INGRESS_CONNECTION_LIMIT", CFG_INT, "4096",
            "most concurrent connections (also bounded by the open-files limit)", connection_limit,
            16, 1000000, false),
    CFG_OPT(struct ingress_config, "connection-memory", "INGRESS_CONNECTION_MEMORY", CFG_INT,
            "8192",
            "bytes per connection for request headers and the read buffer (bodies are copied "
            "out); headers that do not fit: 431. libmicrohttpd zeroes it for every request, so "
            "more costs CPU",
            connection_memory, 4096, 1048576, false),
    CFG_OPT(struct ingress_config, "connections-per-address", "INGRESS_CONNECTIONS_PER_ADDRESS",
            CFG_INT, "256",
            "most concurrent connections from one client address (IPv6: one /64); more are "
            "closed at once. 0: no limit (behind a proxy, where every client has the proxy's "
            "address: limit per client there)",
            connections_per_address, 0, 1000000, false),
    CFG_OPT(struct ingress_config, "header-timeout-ms", "INGRESS_HEADER_TIMEOUT_MS", CFG_INT,
            "5000",
            "a request's line and headers must be in within this long of the connection "
            "opening (on a kept-alive connection: of its request line, which must come within "
            "INGRESS_CONNECTION_TIMEOUT_S of the previous answer); later, the connection is "
            "closed. A deadline, not an idle timeout: trickling bytes does not extend it",
            header_timeout_ms, 100, 600000, false),
    CFG_OPT(struct ingress_config, "body-timeout-ms", "INGRESS_BODY_TIMEOUT_MS", CFG_INT, "5000",
            "a body must be in within this long of its headers, plus its length at "
            "INGRESS_BODY_MIN_RATE (a chunked body: the route's size limit); later, the "
            "connection is closed",
            body_timeout_ms, 100, 600000, false),
    CFG_OPT(struct ingress_config, "body-min-rate", "INGRESS_BODY_MIN_RATE", CFG_INT, "32768",
            "slowest upload (bytes per second) a body's deadline allows for", body_min_rate, 1,
            1073741824, false),
    CFG_OPT(struct ingress_config, "body-budget", "INGRESS_BODY_BUDGET", CFG_INT, "67108864",
            "bytes of request bodies held at once, all requests together (a body with "
            "Content-Length counts it in full from its headers); a request that does not fit: "
            "503 with Retry-After",
            body_budget, 65536, 68719476736LL, false),
    CFG_OPT(struct ingress_config, "threads", "INGRESS_THREADS", CFG_INT, "2",
            "HTTP worker threads (each serves many connections; also the read pool size)", threads,
            1, INGRESS_THREADS_MAX, false),
    CFG_OPT(struct ingress_config, "signature-max-age", "INGRESS_SIGNATURE_MAX_AGE_S", CFG_INT,
            "1800", "oldest accepted webhook signature timestamp (seconds)", sig_max_age_s, 1,
            86400, false),
    CFG_OPT(struct ingress_config, "signature-max-skew", "INGRESS_SIGNATURE_MAX_SKEW_S", CFG_INT,
            "300", "how far in the future a signature timestamp may be (seconds)", sig_max_skew_s,
            0, 3600, false),
    CFG_OPT(
        struct ingress_config, "drain-timeout-ms", "INGRESS_DRAIN_TIMEOUT_MS", CFG_INT, "15000",
        "on SIGTERM, how long to wait for in-flight requests (must exceed the delivery timeout)",
        drain_timeout_ms, 100, 600000, false),
    CFG_OPT(struct ingress_config, "kafka-linger-us", "INGRESS_KAFKA_LINGER_US", CFG_INT, "300",
            "producer linger (microseconds): how long a message may wait to share a batch; adds "
            "to every answer's latency",
            linger_us, 0, 1000000, false),
    CFG_OPT(struct ingress_config, "db-wait-ms", "INGRESS_DB_WAIT_MS", CFG_INT, "2000",
            "GET /calls: how long a lookup may queue for a free database connection before 503",
            db_wait_ms, 0, 60000, false),
    CFG_OPT(struct ingress_config, "console-advance-s", "INGRESS_CONSOLE_ADVANCE_S", CFG_INT, "60",
            "with DATABASE_URL: advance the rolling /stats/drivers window every this many seconds "
            "(its own connection), so a read never pays for a long pause; 0 = off",
            console_advance_s, 0, 86400, false),
    CFG_OPT_LOG_LEVEL(struct ingress_config, log_level),
};

static const struct cfg_spec ingress_spec = {
    .program = "ingress",
    .usage = "[options]",
    .about = "The HTTP front door of callpipe: validates call requests and ElevenLabs webhooks "
             "and publishes them to Kafka, answering only after the broker acknowledged "
             "them. Every option can be set by its environment variable; flags win.",
    .options = ingress_options,
    .noptions = sizeof ingress_options / sizeof ingress_options[0],
};

const struct cfg_spec *ingress_config_spec(void)
{
	return &ingress_spec;
}

int ingress_config_validate(const struct ingress_config *conf, char *errstr, size_t errstr_size)
{
	if (cfg_check_shared(conf->log_level, conf->http_listen, errstr, errstr_size))
		return -1;
	if ((conf->api_token == NULL || conf->api_token[0] == '\0') &&
	    !conf->allow_unauthenticated) {
		snprintf(errstr, errstr_size,
		         "INGRESS_API_TOKEN (--api-token) is not set: set it, or run without "
		         "authentication explicitly with INGRESS_ALLOW_UNAUTHENTICATED=true");
		return -1;
	}
	if (conf->api_token != NULL && conf->api_token[0] != '\0' && strlen(conf->api_token) < 16) {
		snprintf(errstr, errstr_size,
		         "INGRESS_API_TOKEN (--api-token) is shorter than 16 characters");
		return -1;
	}
	if ((conf->webhook_secret == NULL || conf->webhook_secret[0] == '\0') &&
	    !conf->allow_unsigned_webhooks) {
		snprintf(
		    errstr, errstr_size,
		    "ELEVENLABS_WEBHOOK_SECRET (--webhook-secret) is not set: set it, or accept "
		    "unsigned webhooks explicitly with INGRESS_ALLOW_UNSIGNED_WEBHOOKS=true");
		return -1;
	}
	if (conf->database_url != NULL && conf->database_url[0] != '\0' &&
	    (strchr(conf->database_url, '=') != NULL ||
	     strstr(conf->database_url, "://") != NULL)) {
		char *err = NULL;
		PQconninfoOption *opts = PQconninfoParse(conf->database_url, &err);

		if (opts == NULL) {
			snprintf(
			    errstr, errstr_size,
			    "DATABASE_URL (--database-url) is not a valid libpq URL or conninfo");
			PQfreemem(err);
			return -1;
		}
		PQconninfoFree(opts);
	}
	if (conf->tool_secret != NULL && conf->tool_secret[0] != '\0' &&
	    strlen(conf->tool_secret) < 16) {
		snprintf(errstr, errstr_size,
		         "INGRESS_TOOL_SECRET (--tool-secret) is shorter than 16 characters");
		return -1;
	}
	if (conf->body_budget < conf->max_body || conf->body_budget < conf->max_post_call_body) {
		snprintf(
		    errstr, errstr_size,
		    "INGRESS_BODY_BUDGET (%lld) is below a body size limit "
		    "(INGRESS_MAX_BODY %lld, INGRESS_MAX_POST_CALL_BODY %lld): such a body could "
		    "never be accepted",
		    conf->body_budget, conf->max_body, conf->max_post_call_body);
		return -1;
	}
	if (conf->call_token_secret != NULL && conf->call_token_secret[0] != '\0' &&
	    strlen(conf->call_token_secret) < 16) {
		snprintf(errstr, errstr_size,
		         "CALL_TOKEN_SECRET (--call-token-secret) is shorter than 16 characters");
		return -1;
	}
	if (conf->tool_secret != NULL && conf->tool_secret[0] != '\0' &&
	    (conf->call_token_secret == NULL || conf->call_token_secret[0] == '\0')) {
		snprintf(
		    errstr, errstr_size,
		    "INGRESS_TOOL_SECRET (--tool-secret) is set but CALL_TOKEN_SECRET is not: "
		    "a tool line needs its per-call token (X-Callpipe-Call-Token) besides the "
		    "tool secret; set CALL_TOKEN_SECRET here and in the dialer (docs/ingress.md)");
		return -1;
	}
	if (conf->admin_listen != NULL && conf->admin_listen[0] != '\0') {
		if (cfg_check_listen("INGRESS_ADMIN_LISTEN", conf->admin_listen, errstr,
		                     errstr_size))
			return -1;
	}
	if (conf->drain_timeout_ms <= conf->delivery_timeout_ms) {
		snprintf(errstr, errstr_size,
		         "INGRESS_DRAIN_TIMEOUT_MS (%lld) must exceed INGRESS_DELIVERY_TIMEOUT_MS "
		         "(%lld) so in-flight requests can finish on SIGTERM",
		         conf->drain_timeout_ms, conf->delivery_timeout_ms);
		return -1;
	}
	return 0;
}

enum cfg_result ingress_config_load(struct ingress_config *conf, int argc, char **argv,
                                    char *errstr, size_t errstr_size)
{
	enum cfg_result r;
	int argi = 0;

	memset(conf, 0, sizeof *conf);
	r = cfg_load(&ingress_spec, conf, argc, argv, &argi, errstr, errstr_size);
	if (r != CFG_OK)
		return r;
	if (argi < argc) {
		snprintf(errstr, errstr_size, "unexpected argument '%s' (see --help)", argv[argi]);
		return CFG_ERROR;
	}
	if (ingress_config_validate(conf, errstr, errstr_size) != 0)
		return CFG_ERROR;
	return CFG_OK;
}

void ingress_config_free(struct ingress_config *conf)
{
	if (conf == NULL)
		return;
	cfg_free(&ingress_spec, conf);
}
