/* test_dialer_elevenlabs: the ElevenLabs client parts shared by the dial engine and the sweeper. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "elevenlabs.h"

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

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_dialer_elevenlabs_setup_error),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
