/* elevenlabs: the ElevenLabs API client parts the dial engine and the sweeper share. */
#include "elevenlabs.h"

const char *el_setup_error(CURLcode rc, CURLMcode mrc)
{
	if (rc != CURLE_OK)
		return curl_easy_strerror(rc);
	return curl_multi_strerror(mrc);
}
