/* elevenlabs: the ElevenLabs API client parts the dial engine and the sweeper share. */
#ifndef CALLPIPE_DIALER_ELEVENLABS_H
#define CALLPIPE_DIALER_ELEVENLABS_H

#include <curl/curl.h>

/* The text to log for a request that could not be set up: the easy handle's error when rc is
 * not CURLE_OK, else the multi handle's (mrc), so a failed curl_multi_add_handle is never
 * logged as "No error". Static storage. */
const char *el_setup_error(CURLcode rc, CURLMcode mrc);

#endif
