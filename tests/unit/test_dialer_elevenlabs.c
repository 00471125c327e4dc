/* test_dialer_elevenlabs: the ElevenLabs client parts shared by the dial engine and the sweeper. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "elevenlabs.h"

#include <stdbool.h>
#include <string.h>

/* A failed curl_multi_add_handle (easy setup fine) is logged with the multi error's text; it
 * was once logged with curl_easy_strerror(CURLE_OK), "No error". */
static void test_dialer_elevenlabs_setup_error(void **state)
{
	(void)state;
	assert_string_equal(el_setup_error(CURLE_OK, CURLM_ADDED_ALREADY),
	                    curl_multi_strerror(CURLM_ADDED_ALREADY));
	assert_string_not_equal(el_setup_error(CURLE_OK, CURLM_OUT_OF_MEMORY),
	                        curl_easy_strerror(CURLE_OK));
	assert_string_equal(el_setup_error(CURLE_OUT_OF_MEMORY, CURLM_OK),
	                    curl_easy_strerror(CURLE_OUT_OF_MEMORY));
}

/* Both callers build their URLs here: trailing slashes of the base URL dropped, too long refused.
 */
static void test_dialer_elevenlabs_url(void **state)
{
	static const struct {
		const char *base, *path, *suffix, *want;
	} cases[] = {
	    {"https://api.elevenlabs.io", EL_PATH_OUTBOUND_CALL, NULL,
	     "https://api.elevenlabs.io/v1/convai/twilio/outbound-call"},
	    {"http://127.0.0.1:9/", EL_PATH_OUTBOUND_CALL, NULL,
	     "http://127.0.0.1:9/v1/convai/twilio/outbound-call"},
	    {"http://sim///", EL_PATH_CONVERSATIONS, "conv_1",
	     "http://sim/v1/convai/conversations/conv_1"},
	    {"", EL_PATH_CONVERSATIONS, "c", "/v1/convai/conversations/c"},
	};
	char out[128];

	(void)state;
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		assert_int_equal(
		    el_url(cases[i].base, cases[i].path, cases[i].suffix, out, sizeof out), 0);
		assert_string_equal(out, cases[i].want);
	}
	assert_int_equal(
	    el_url("http://a-rather-long-host.example", EL_PATH_OUTBOUND_CALL, NULL, out, 20), -1);
}

static size_t count_headers(const struct curl_slist *h, const char *want, bool *found)
{
	size_t n = 0;

	*found = false;
	for (; h; h = h->next, n++)
		if (strcmp(h->data, want) == 0)
			*found = true;
	return n;
}

/* One header set: the key always, the JSON body headers only for the POST. */
static void test_dialer_elevenlabs_headers(void **state)
{
	struct curl_slist *h;
	bool found;

	(void)state;
	h = el_headers("sk_test", true);
	assert_non_null(h);
	assert_int_equal(count_headers(h, "xi-api-key: sk_test", &found), 4);
	assert_true(found);
	(void)count_headers(h, "Content-Type: application/json", &found);
	assert_true(found);
	curl_slist_free_all(h);
	h = el_headers("sk_test", false);
	assert_int_equal(count_headers(h, "xi-api-key: sk_test", &found), 2);
	assert_true(found);
	(void)count_headers(h, "Accept: application/json", &found);
	assert_true(found);
	curl_slist_free_all(h);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_dialer_elevenlabs_url),
	    cmocka_unit_test(test_dialer_elevenlabs_headers),
	    cmocka_unit_test(test_dialer_elevenlabs_setup_error),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
