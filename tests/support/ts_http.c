/* ts_http: HTTP for integration tests via libcurl (loopback only, no proxies, with timeouts). */
#include "ts_int.h"
#include "tsupport.h"

#include <curl/curl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct ts_buf {
	char *data;
	size_t len;
};

static size_t ts_buf_write(char *ptr, size_t size, size_t nmemb, void *userdata)
{
	struct ts_buf *b = userdata;
	size_t n = size * nmemb;
	char *grown = realloc(b->data, b->len + n + 1);

	if (!grown)
		return 0;
	b->data = grown;
	memcpy(b->data + b->len, ptr, n);
	b->len += n;
	b->data[b->len] = '\0';
	return n;
}

static void ts_curl_init_once(void)
{
	curl_global_init(CURL_GLOBAL_DEFAULT);
}

/* The shared request: returns the status, or -1 with errbuf on a transport error. */
static long ts_http_do(const char *method, const char *url, const char *const *headers,
                       const char *body, size_t body_len, struct ts_buf *rbody,
                       struct ts_buf *rheaders, char *errbuf, size_t errbuf_size)
{
	static pthread_once_t once = PTHREAD_ONCE_INIT;
	struct curl_slist *hl = NULL;
	CURL *curl;
	CURLcode rc;
	long status = -1;

	pthread_once(&once, ts_curl_init_once);
	curl = curl_easy_init();
	if (!curl) {
		snprintf(errbuf, errbuf_size, "curl_easy_init failed");
		return -1;
	}
	for (size_t i = 0; headers && headers[i]; i++)
		hl = curl_slist_append(hl, headers[i]);
	curl_easy_setopt(curl, CURLOPT_URL, url);
	curl_easy_setopt(curl, CURLOPT_CUSTOMREQUEST, method);
	curl_easy_setopt(curl, CURLOPT_NOPROXY, "*");
	curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(curl, CURLOPT_CONNECTTIMEOUT_MS, 5000L);
	curl_easy_setopt(curl, CURLOPT_TIMEOUT_MS, 30000L);
	curl_easy_setopt(curl, CURLOPT_HTTPHEADER, hl);
	curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, ts_buf_write);
	curl_easy_setopt(curl, CURLOPT_WRITEDATA, rbody);
	curl_easy_setopt(curl, CURLOPT_HEADERFUNCTION, ts_buf_write);
	curl_easy_setopt(curl, CURLOPT_HEADERDATA, rheaders);
	if (strcmp(method, "HEAD") == 0)
		curl_easy_setopt(curl, CURLOPT_NOBODY, 1L);
	if (body) {
		curl_easy_setopt(curl, CURLOPT_POSTFIELDS, body);
		curl_easy_setopt(curl, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)body_len);
	} else if (strcmp(method, "POST") == 0 || strcmp(method, "PUT") == 0) {
		curl_easy_setopt(curl, CURLOPT_POSTFIELDS, "");
		curl_easy_setopt(curl, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)0);
	}
	rc = curl_easy_perform(curl);
	if (rc != CURLE_OK)
		snprintf(errbuf, errbuf_size, "%s %s: %s", method, url, curl_easy_strerror(rc));
	else if (curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &status) != CURLE_OK)
		status = -1;
	curl_slist_free_all(hl);
	curl_easy_cleanup(curl);
	return status;
}

void ts_http(const char *method, const char *url, const char *const *headers, const char *body,
             size_t body_len, struct ts_http_resp *resp)
{
	struct ts_buf rbody = {0}, rheaders = {0};
	char err[512];

	memset(resp, 0, sizeof *resp);
	resp->status =
	    ts_http_do(method, url, headers, body, body_len, &rbody, &rheaders, err, sizeof err);
	if (resp->status < 0) {
		free(rbody.data);
		free(rheaders.data);
		fail_msg("HTTP request failed: %s", err);
	}
	resp->body = rbody.data ? rbody.data : strdup("");
	resp->headers = rheaders.data ? rheaders.data : strdup("");
}

void ts_http_resp_free(struct ts_http_resp *resp)
{
	if (!resp)
		return;
	free(resp->body);
	free(resp->headers);
	resp->body = resp->headers = NULL;
}

long ts_http_try(const char *method, const char *url, const char *body, char **body_out,
                 char *errbuf, size_t errbuf_size)
{
	struct ts_buf rbody = {0}, rheaders = {0};
	long status = ts_http_do(method, url, NULL, body, body ? strlen(body) : 0, &rbody,
	                         &rheaders, errbuf, errbuf_size);

	free(rheaders.data);
	if (body_out)
		*body_out = rbody.data;
	else
		free(rbody.data);
	return status;
}

bool ts_metric_value(const char *body, const char *series, double *out)
{
	size_t len = strlen(series);

	for (const char *line = body; line && *line;) {
		const char *next = strchr(line, '\n');

		if (strncmp(line, series, len) == 0 && line[len] == ' ') {
			*out = strtod(line + len + 1, NULL);
			return true;
		}
		line = next ? next + 1 : NULL;
	}
	return false;
}
