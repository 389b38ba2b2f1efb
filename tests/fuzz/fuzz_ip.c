/*
 * fuzz_ip.c: util/ip.h ip_parse on arbitrary bytes.
 *
 * Invariants (abort() when broken):
 * - an accepted input is its own canonical text: ip_format() of the result equals the input
 *   byte for byte and parses back to the same address;
 * - the refusal detail is always a NUL-terminated string inside its buffer, also when the
 *   buffer is too small for the sentence (a canary after it must survive);
 * - the result does not depend on whether a detail buffer was passed.
 */
#include <stdlib.h>
#include <string.h>

#include "fuzz.h"
#include "util/ip.h"

#define CANARY 0xA5

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *s = (const char *)data;
    struct ip_addr a, b;
    char detail[200 + 1], small[8 + 1], text[IP_TEXT_MAX];
    enum rc_code rc, rc2;

    memset(detail, CANARY, sizeof(detail));
    rc = ip_parse(s, size, &a, detail, sizeof(detail) - 1);
    if (detail[sizeof(detail) - 1] != (char)CANARY ||
        memchr(detail, '\0', sizeof(detail) - 1) == NULL)
        abort();

    /* a detail buffer too small for any sentence: truncated, still terminated */
    memset(small, CANARY, sizeof(small));
    rc2 = ip_parse(s, size, &b, small, sizeof(small) - 1);
    if (rc2 != rc || small[sizeof(small) - 1] != (char)CANARY ||
        memchr(small, '\0', sizeof(small) - 1) == NULL)
        abort();
    if (ip_parse(s, size, &b, NULL, 0) != rc)
        abort();

    if (rc != RC_OK) {
        if (rc != RC_INVALID_IP || detail[0] == '\0')
            abort();
        return 0;
    }
    if (a.family != IP_V4 && a.family != IP_V6)
        abort();
    ip_format(&a, text);
    if (strlen(text) != size || memcmp(text, s, size) != 0)
        abort();
    if (ip_parse(text, strlen(text), &b, NULL, 0) != RC_OK || ip_cmp(&a, &b) != 0 ||
        memcmp(a.b, b.b, sizeof(a.b)) != 0 || ip_hash(&a) != ip_hash(&b))
        abort();
    if (a.family == IP_V4) {
        static const uint8_t zero[12];
        if (memcmp(a.b + 4, zero, sizeof(zero)) != 0)
            abort();
    }
    /* the helpers must not trip the sanitizers either */
    if (ip_mod(&a, 1) != 0 || ip_mod(&a, 7) >= 7 || ip_mod(&a, 0xffffffffu) == 0xffffffffu)
        abort();
    (void)ip_is_loopback(&a);
    return 0;
}
