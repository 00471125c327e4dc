/* fuzz_signature: libFuzzer target for the ElevenLabs-Signature header parser and verifier. The
 * input's first line is the header, the rest the body. A fuzzed header may never verify against
 * a secret it was not made with, and what sig_sign makes always verifies. The ingress's
 * header-stage check (sig_check_header, run before the body is read) must agree with the full
 * verification: the same refusal, or SIG_OK where only the MAC decides. */
#include "sig.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define SECRET "whsec_fuzz_secret"
#define NOW    1700000000

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const uint8_t *nl = memchr(data, '\n', size);
	size_t hlen = nl != NULL ? (size_t)(nl - data) : size;
	const uint8_t *body = nl != NULL ? nl + 1 : data + size;
	size_t blen = size - hlen - (nl != NULL ? 1 : 0);
	char *header = malloc(hlen + 1), signed_header[128];
	enum sig_result r, pre;

	if (header == NULL)
		return 0;
	memcpy(header, data, hlen);
	header[hlen] = '\0';
	r = sig_verify(SECRET, header, body, blen, NOW, 1800, 300);
	pre = sig_check_header(header, NOW, 1800, 300);
	if (pre != (r == SIG_MISMATCH ? SIG_OK : r))
		abort();
	if (r == SIG_OK) {
		/* only possible if the header carries the right MAC: then a different secret fails
		 */
		if (sig_verify("whsec_other_secret", header, body, blen, NOW, 1800, 300) == SIG_OK)
			abort();
	}
	if (sig_result_str(r) == NULL)
		abort();
	if (sig_sign(SECRET, NOW, body, blen, signed_header, sizeof signed_header) != 0 ||
	    sig_verify(SECRET, signed_header, body, blen, NOW, 1800, 300) != SIG_OK)
		abort();
	free(header);
	return 0;
}
