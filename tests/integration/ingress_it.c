/* ingress_it: helpers of the ingress integration tests (process, signed HTTP, curl multi). */
#include "ingress_it.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>

#include <cmocka.h>

#include "sig.h"

#include <arpa/inet.h>
#include <curl/curl.h>
#include <errno.h>
#include <jansson.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/evp.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

/* The topic prefix of b, after checking that the caller's prefix is the one b was started with
 * (on Kafka, b->prefix has the test's own namespace in front of it). */
static const char *it_prefix(const struct ts_broker *b, const char *prefix)
{
	size_t have = strlen(b->prefix), want;

	if (prefix == NULL)
		prefix = "";
	want = strlen(prefix);
	if (b->kafka ? have < want || strcmp(b->prefix + have - want, prefix) != 0
	             : strcmp(b->prefix, prefix) != 0)
		fail_msg("topic prefix %s is not the broker's (%s)", prefix, b->prefix);
	return b->prefix;
}

void it_ingress_start(struct it_ingress *in, const struct ts_broker *b, const char *prefix,
                      const char *const *extra, bool wait_ready)
{
	char bin[512], brokers[300], listen[64], pfx[200];
	const char *env[32];
	size_t n = 0;

	memset(in, 0, sizeof *in);
	in->port = ts_free_port();
	snprintf(in->base, sizeof in->base, "http://127.0.0.1:%u", in->port);
	snprintf(brokers, sizeof brokers, "KAFKA_BROKERS=%s", b->bootstrap);
	snprintf(listen, sizeof listen, "HTTP_LISTEN=127.0.0.1:%u", in->port);
	snprintf(pfx, sizeof pfx, "KAFKA_TOPIC_PREFIX=%s", it_prefix(b, prefix));
	env[n++] = brokers;
	env[n++] = listen;
	env[n++] = pfx;
	env[n++] = "INGRESS_API_TOKEN=" IT_TOKEN;
	env[n++] = "ELEVENLABS_WEBHOOK_SECRET=" IT_SECRET;
	env[n++] = "LOG_LEVEL=debug";
	for (size_t i = 0; extra && extra[i] && n < 31; i++)
		env[n++] = extra[i];
	env[n] = NULL;
	const char *argv[] = {ts_bin("ingress", bin, sizeof bin), NULL};
	ts_proc_start(&in->proc, argv, env);
	if (!ts_wait_http_ok(it_url(in, "/healthz"), 15000))
		fail_msg("ingress did not come up; log: %s", in->proc.log_path);
	if (wait_ready && !ts_wait_http_ok(it_url(in, "/readyz"), 15000))
		fail_msg("ingress never got ready; log: %s", in->proc.log_path);
}

int it_ingress_stop(struct it_ingress *in, int timeout_ms)
{
	if (in->proc.pid <= 0)
		return 0;
	return ts_proc_stop(&in->proc, SIGTERM, timeout_ms);
}

struct it_stack *it_stack_new(const char *prefix, int partitions, const char *const *extra)
{
	struct it_stack *st = calloc(1, sizeof *st);

	if (st == NULL)
		fail_msg("it_stack_new: out of memory");
	ts_broker_start(&st->broker, prefix, partitions);
	it_ingress_start(&st->in, &st->broker, prefix, extra, true);
	return st;
}

void it_stack_free(struct it_stack *st)
{
	int rc = it_ingress_stop(&st->in, 20000);

	ts_broker_stop(&st->broker);
	free(st);
	assert_int_equal(rc, 0);
}

const char *it_url(const struct it_ingress *in, const char *path)
{
	static __thread char bufs[8][512];
	static __thread unsigned next;
	char *buf = bufs[next++ % 8];

	snprintf(buf, sizeof bufs[0], "%s%s", in->base, path);
	return buf;
}

void it_post_auth(const struct it_ingress *in, const char *path, const char *body,
                  struct ts_http_resp *resp)
{
	const char *headers[] = {IT_AUTH, IT_JSON, NULL};

	ts_http("POST", it_url(in, path), headers, body, strlen(body), resp);
}

void it_sign(const char *secret, int64_t t, const char *body, char *out, size_t size)
{
	if (sig_sign(secret, t, body, strlen(body), out, size) != 0)
		fail_msg("sig_sign failed");
}

void it_post_signed(const struct it_ingress *in, const char *path, const char *body,
                    const char *secret, int64_t t, struct ts_http_resp *resp)
{
	char sig[160], line[200];
	const char *headers[] = {IT_JSON, line, NULL};

	if (secret != NULL) {
		it_sign(secret, t, body, sig, sizeof sig);
		snprintf(line, sizeof line, "ElevenLabs-Signature: %s", sig);
	} else {
		headers[1] = NULL;
	}
	ts_http("POST", it_url(in, path), headers, body, strlen(body), resp);
}

void it_event_id(int64_t t, const char *body, char out[65])
{
	unsigned char md[32];
	unsigned int len = 0;
	char prefix[32];
	EVP_MD_CTX *ctx = EVP_MD_CTX_new();

	snprintf(prefix, sizeof prefix, "%lld.", (long long)t);
	assert_non_null(ctx);
	assert_int_equal(EVP_DigestInit_ex(ctx, EVP_sha256(), NULL), 1);
	assert_int_equal(EVP_DigestUpdate(ctx, prefix, strlen(prefix)), 1);
	assert_int_equal(EVP_DigestUpdate(ctx, body, strlen(body)), 1);
	assert_int_equal(EVP_DigestFinal_ex(ctx, md, &len), 1);
	EVP_MD_CTX_free(ctx);
	for (unsigned i = 0; i < len; i++)
		snprintf(out + 2 * i, 3, "%02x", md[i]);
}

bool it_header(const char *headers, const char *name, char *out, size_t size)
{
	size_t nl = strlen(name);

	for (const char *line = headers; line && *line;) {
		const char *end = strstr(line, "\r\n");
		size_t len = end ? (size_t)(end - line) : strlen(line);

		if (len > nl && strncasecmp(line, name, nl) == 0 && line[nl] == ':') {
			const char *v = line + nl + 1;
			size_t vl = len - nl - 1;

			while (vl > 0 && *v == ' ') {
				v++;
				vl--;
			}
			snprintf(out, size, "%.*s", (int)vl, v);
			return true;
		}
		line = end ? end + 2 : NULL;
	}
	return false;
}

bool it_json_str(const char *body, const char *field, char *out, size_t size)
{
	json_t *root = json_loads(body, 0, NULL);
	const char *v = json_string_value(json_object_get(root, field));
	bool ok = v != NULL;

	if (ok)
		snprintf(out, size, "%s", v);
	json_decref(root);
	return ok;
}

size_t it_count_key(const struct ts_broker *b, const char *topic, const char *key)
{
	struct ts_kmsg *msgs = NULL;
	size_t n = ts_kafka_read_all(b->bootstrap, topic, &msgs), count = 0;

	for (size_t i = 0; i < n; i++)
		if (msgs[i].key != NULL && strcmp(msgs[i].key, key) == 0)
			count++;
	ts_kmsgs_free(msgs, n);
	return count;
}

static size_t it_discard(char *ptr, size_t size, size_t nmemb, void *userdata)
{
	(void)ptr;
	(void)userdata;
	return size * nmemb;
}

void it_multi_post(const char *url, const char *const *headers, const char *const *bodies, size_t n,
                   long *statuses)
{
	CURLM *multi = curl_multi_init();
	CURL **easy = calloc(n, sizeof *easy);
	struct curl_slist *hl = NULL;
	int running = 0;

	assert_non_null(multi);
	assert_non_null(easy);
	for (size_t i = 0; headers && headers[i]; i++)
		hl = curl_slist_append(hl, headers[i]);
	curl_multi_setopt(multi, CURLMOPT_MAX_TOTAL_CONNECTIONS, 0L);
	for (size_t i = 0; i < n; i++) {
		easy[i] = curl_easy_init();
		assert_non_null(easy[i]);
		curl_easy_setopt(easy[i], CURLOPT_URL, url);
		curl_easy_setopt(easy[i], CURLOPT_NOPROXY, "*");
		curl_easy_setopt(easy[i], CURLOPT_NOSIGNAL, 1L);
		curl_easy_setopt(easy[i], CURLOPT_TIMEOUT_MS, 60000L);
		curl_easy_setopt(easy[i], CURLOPT_FORBID_REUSE, 1L);
		curl_easy_setopt(easy[i], CURLOPT_HTTPHEADER, hl);
		curl_easy_setopt(easy[i], CURLOPT_POSTFIELDS, bodies[i]);
		curl_easy_setopt(easy[i], CURLOPT_WRITEFUNCTION, it_discard);
		curl_easy_setopt(easy[i], CURLOPT_PRIVATE, (void *)(uintptr_t)i);
		curl_multi_add_handle(multi, easy[i]);
		statuses[i] = 0;
	}
	do {
		CURLMcode mc = curl_multi_perform(multi, &running);

		assert_int_equal(mc, CURLM_OK);
		if (running > 0)
			curl_multi_poll(multi, NULL, 0, 100, NULL);
	} while (running > 0);
	for (;;) {
		int left = 0;
		CURLMsg *msg = curl_multi_info_read(multi, &left);
		void *priv = NULL;

		if (msg == NULL)
			break;
		if (msg->msg != CURLMSG_DONE)
			continue;
		curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, (char **)&priv);
		if (msg->data.result == CURLE_OK)
			curl_easy_getinfo(msg->easy_handle, CURLINFO_RESPONSE_CODE,
			                  &statuses[(uintptr_t)priv]);
	}
	for (size_t i = 0; i < n; i++) {
		curl_multi_remove_handle(multi, easy[i]);
		curl_easy_cleanup(easy[i]);
	}
	curl_slist_free_all(hl);
	curl_multi_cleanup(multi);
	free(easy);
}

double it_metric(const struct it_ingress *in, const char *series)
{
	struct ts_http_resp resp;
	double v = -1;

	ts_http("GET", it_url(in, "/metrics"), NULL, NULL, 0, &resp);
	(void)ts_metric_value(resp.body, series, &v);
	ts_http_resp_free(&resp);
	return v;
}

size_t it_log_count(const struct it_ingress *in, const char *needle)
{
	FILE *fp = fopen(in->proc.log_path, "r");
	char line[4096];
	size_t n = 0;

	assert_non_null(fp);
	while (fgets(line, sizeof line, fp) != NULL)
		if (strstr(line, needle) != NULL)
			n++;
	fclose(fp);
	return n;
}

long long it_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int it_raw_connect(const struct it_ingress *in, const char *src)
{
	struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)in->port)};
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0), one = 1;

	assert_true(fd >= 0);
	(void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
	if (src != NULL) {
		struct sockaddr_in from = {.sin_family = AF_INET};

		assert_int_equal(inet_pton(AF_INET, src, &from.sin_addr), 1);
		if (bind(fd, (struct sockaddr *)&from, sizeof from) != 0)
			fail_msg("bind %s: %s", src, strerror(errno));
	}
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (connect(fd, (struct sockaddr *)&sa, sizeof sa) != 0)
		fail_msg("connect to the ingress: %s", strerror(errno));
	return fd;
}

bool it_raw_send(int fd, const void *data, size_t len)
{
	const char *p = data;

	while (len > 0) {
		ssize_t n = send(fd, p, len, MSG_NOSIGNAL);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return false;
		p += n;
		len -= (size_t)n;
	}
	return true;
}

int it_raw_status(int fd, int timeout_ms, char *headers, size_t size)
{
	char buf[8192];
	size_t have = 0;
	long long end = it_now_ms() + timeout_ms;
	int status = 0;

	for (;;) {
		struct pollfd pfd = {.fd = fd, .events = POLLIN};
		long long left = end - it_now_ms();
		ssize_t n;

		if (left <= 0 || poll(&pfd, 1, (int)left) == 0)
			return -1;
		n = recv(fd, buf + have, sizeof buf - 1 - have, 0);
		if (n <= 0)
			break;
		have += (size_t)n;
		buf[have] = '\0';
		if (strstr(buf, "\r\n\r\n") != NULL || have == sizeof buf - 1)
			break;
	}
	buf[have] = '\0';
	if (sscanf(buf, "HTTP/1.%*d %d", &status) != 1)
		status = 0;
	if (headers != NULL)
		snprintf(headers, size, "%s", buf);
	return status;
}

long it_raw_wait_close(int fd, int timeout_ms)
{
	long long t0 = it_now_ms(), end = t0 + timeout_ms;
	char buf[4096];

	for (;;) {
		struct pollfd pfd = {.fd = fd, .events = POLLIN};
		long long left = end - it_now_ms();
		ssize_t n;

		if (left <= 0 || poll(&pfd, 1, (int)left) == 0)
			return -1;
		n = recv(fd, buf, sizeof buf, 0);
		if (n == 0 || (n < 0 && errno != EINTR && errno != EAGAIN))
			return (long)(it_now_ms() - t0);
	}
}

bool it_raw_open(int fd)
{
	char c;
	ssize_t n = recv(fd, &c, 1, MSG_DONTWAIT | MSG_PEEK);

	return n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK);
}

long it_proc_kib(pid_t pid, const char *field)
{
	char path[64], line[256];
	size_t fl = strlen(field);
	long kib = -1;
	FILE *fp;

	snprintf(path, sizeof path, "/proc/%d/status", (int)pid);
	fp = fopen(path, "r");
	assert_non_null(fp);
	while (fgets(line, sizeof line, fp) != NULL)
		if (strncmp(line, field, fl) == 0 && line[fl] == ':')
			kib = strtol(line + fl + 1, NULL, 10);
	fclose(fp);
	if (kib < 0)
		fail_msg("no %s in %s", field, path);
	return kib;
}
