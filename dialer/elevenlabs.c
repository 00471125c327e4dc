/* elevenlabs: ElevenLabs endpoint URLs, request headers, shared curl options and body capture. */
#include "elevenlabs.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int el_url(const char *base_url, const char *path, const char *suffix, char *out, size_t size)
{
	size_t blen = strlen(base_url);
	int n;

	while (blen > 0 && base_url[blen - 1] == '/')
		blen--;
	n = snprintf(out, size, "%.*s%s%s", (int)blen, base_url, path, suffix ? suffix : "");
	return n < 0 || (size_t)n >= size ? -1 : 0;
}

struct curl_slist *el_headers(const char *api_key, bool json_body)
{
	const char *lines[4];
	struct curl_slist *h = NULL;
	char key[1024];
	size_t n = 0;

	if ((size_t)snprintf(key, sizeof key, "xi-api-key: %s", api_key) >= sizeof key)
		return NULL;
	lines[n++] = "Accept: application/json";
	if (json_body) {
		lines[n++] = "Content-Type: application/json";
		lines[n++] = "Expect:"; /* no 100-continue round trip */
	}
	lines[n++] = key;
	for (size_t i = 0; i < n; i++) {
		struct curl_slist *next = curl_slist_append(h, lines[i]);

		if (!next) {
			curl_slist_free_all(h);
			return NULL;
		}
		h = next;
	}
	return h;
}

void el_body_reset(struct el_body *b)
{
	b->len = 0;
	b->truncated = false;
	if (b->data)
		b->data[0] = '\0';
}

void el_body_free(struct el_body *b)
{
	free(b->data);
	b->data = NULL;
	b->len = 0;
}

static size_t el_on_body(char *ptr, size_t size, size_t nmemb, void *userdata)
{
	struct el_body *b = userdata;
	size_t n = size * nmemb;
	size_t keep = b->len + n > b->max ? b->max - b->len : n;
	char *buf;

	if (keep < n)
		b->truncated = true;
	if (keep > 0) {
		buf = realloc(b->data, b->len + keep + 1);
		if (!buf)
			return 0; /* aborts the transfer */
		memcpy(buf + b->len, ptr, keep);
		b->data = buf;
		b->len += keep;
		b->data[b->len] = '\0';
	}
	return n;
}

CURLcode el_easy_setup(CURL *easy, const struct curl_slist *headers, long timeout_ms,
                       long connect_timeout_ms, struct el_body *body)
{
	const struct {
		CURLoption opt;
		long value;
	} longs[] = {
	    {CURLOPT_TIMEOUT_MS, timeout_ms},
	    {CURLOPT_CONNECTTIMEOUT_MS, connect_timeout_ms},
	    {CURLOPT_NOSIGNAL, 1L},
	    {CURLOPT_TCP_KEEPALIVE, 1L},
	};
	CURLcode rc = curl_easy_setopt(easy, CURLOPT_HTTPHEADER, headers);

	for (size_t i = 0; rc == CURLE_OK && i < sizeof longs / sizeof longs[0]; i++)
		rc = curl_easy_setopt(easy, longs[i].opt, longs[i].value);
	if (rc == CURLE_OK)
		rc = curl_easy_setopt(easy, CURLOPT_WRITEFUNCTION, el_on_body);
	if (rc == CURLE_OK)
		rc = curl_easy_setopt(easy, CURLOPT_WRITEDATA, body);
	return rc;
}

const char *el_setup_error(CURLcode rc, CURLMcode mrc)
{
	if (rc != CURLE_OK)
		return curl_easy_strerror(rc);
	return curl_multi_strerror(mrc);
}
