/* phone: North American phone numbers: normalisation to E.164 and the numbering plan's validity
 * rules (NANP: NPA-NXX-XXXX). Pure functions: no I/O, no globals. */
#ifndef CALLPIPE_INGRESS_PHONE_H
#define CALLPIPE_INGRESS_PHONE_H

#include <stddef.h>

#define PHONE_INPUT_MAX 32 /* raw phoneNumber as sent */
#define PHONE_E164_SIZE 16 /* "+1" + 10 digits + NUL, rounded up */

/* Normalises a North American number to E.164 ("+1" + 10 digits) into out (>= PHONE_E164_SIZE).
 * Accepts digits with the usual separators (space . - ( ) and one leading +), drops them; 11
 * digits starting with 1, or 10 digits without a +, are the national number NPA-NXX-XXXX. The
 * numbering plan's rules apply: the area code (NPA) and the exchange (NXX) start with 2-9, are
 * not N11 service codes (211, 311, ... 911), and premium-rate numbers (area code 900, exchange
 * 976) are refused. Returns 0, or -1 with errstr saying why ("area code 911 is an N11 service
 * code"). */
__attribute__((warn_unused_result)) int phone_e164(const char *in, char *out, size_t size,
                                                   char *errstr, size_t errstr_size);

#endif
