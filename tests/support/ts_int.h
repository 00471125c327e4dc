/* ts_int: what the tsupport files share internally (not for tests). */
#ifndef CALLPIPE_TS_INT_H
#define CALLPIPE_TS_INT_H

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

/* GET/POST without failing the test on transport errors: returns the HTTP status, or -1 when
 * no response came (errbuf then says why). body_out may be NULL. */
long ts_http_try(const char *method, const char *url, const char *body, char **body_out,
                 char *errbuf, size_t errbuf_size);

/* Monotonic clock in ms. */
long long ts_now_ms(void);

#endif
