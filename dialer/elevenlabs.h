/* elevenlabs: the ElevenLabs API client parts the dial engine and the sweeper share: endpoint
 * URLs from ELEVENLABS_BASE_URL, the request headers (xi-api-key), the curl options every request
 * takes, and a capped capture of the answer body. Each caller keeps its own handles (the engine a
 * curl multi, the sweeper one easy handle on its thread). */
#ifndef CALLPIPE_DIALER_ELEVENLABS_H
#define CALLPIPE_DIALER_ELEVENLABS_H

#include <curl/curl.h>
#include <stdbool.h>
#include <stddef.h>

#define EL_PATH_OUTBOUND_CALL "/v1/convai/twilio/outbound-call"
#define EL_PATH_CONVERSATIONS "/v1/convai/conversations/" /* + the escaped conversation_id */

/* Writes base_url without its trailing slashes, then path, then suffix (may be NULL), into out.
 * Returns 0, or -1 when it does not fit. */
__attribute__((warn_unused_result)) int el_url(const char *base_url, const char *path,
                                               const char *suffix, char *out, size_t size);

/* The headers of every request: Accept: application/json and xi-api-key; with json_body also
 * Content-Type: application/json and an empty Expect. NULL when out of memory. The caller frees
 * with curl_slist_free_all, after the last request that uses them. */
struct curl_slist *el_headers(const char *api_key, bool json_body);

/* An answer body: up to max bytes are kept (NUL-terminated in data), the rest is read and
 * dropped, and truncated says so. Zero-initialise, set max, then el_body_reset per request. */
struct el_body {
	char *data; /* NULL until something arrived */
	size_t len, max;
	bool truncated;
};

void el_body_reset(struct el_body *b); /* empties it for the next answer; keeps max */
void el_body_free(struct el_body *b);  /* frees data; the struct itself is the caller's */

/* Sets on easy what every ElevenLabs request takes: headers (borrowed), total and connect
 * timeouts, no signals, TCP keep-alive, and the answer body into body (borrowed; both must
 * outlive the transfer). Returns CURLE_OK or the first option that failed. */
CURLcode el_easy_setup(CURL *easy, const struct curl_slist *headers, long timeout_ms,
                       long connect_timeout_ms, struct el_body *body);

/* The text to log for a request that could not be set up: the easy handle's error when rc is
 * not CURLE_OK, else the multi handle's (mrc), so a failed curl_multi_add_handle is never
 * logged as "No error". Static storage. */
const char *el_setup_error(CURLcode rc, CURLMcode mrc);

#endif
