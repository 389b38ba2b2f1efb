/*
 * ip.c: strict parsing and RFC 5952 formatting of backend addresses.
 *
 * Parsing is inet_pton followed by a round trip through our own canonical formatter: the input
 * must equal the canonical text byte for byte. That one rule refuses leading zeros, uppercase,
 * uncompressed or wrongly compressed IPv6, and embedded-IPv4 spellings, while every refusal can
 * still name the spelling we would accept. Pure functions, thread-safe.
 */
#include "util/ip.h"

#include <arpa/inet.h>
#include <stdio.h>
#include <string.h>

#define say(detail, n, ...)                                                                 \
    do {                                                                                    \
        if ((detail) && (n))                                                                \
            snprintf((detail), (n), __VA_ARGS__);                                           \
    } while (0)

char *ip_format(const struct ip_addr *a, char out[IP_TEXT_MAX])
{
    if (a->family == IP_V4) {
        snprintf(out, IP_TEXT_MAX, "%u.%u.%u.%u", a->b[0], a->b[1], a->b[2], a->b[3]);
        return out;
    }
    unsigned w[8];
    for (int i = 0; i < 8; i++)
        w[i] = (unsigned)a->b[2 * i] << 8 | a->b[2 * i + 1];
    /* Longest run of >= 2 zero words; the first one wins ties (RFC 5952 4.2). */
    int best = -1, bestlen = 0;
    for (int i = 0; i < 8;) {
        if (w[i]) {
            i++;
            continue;
        }
        int j = i;
        while (j < 8 && w[j] == 0)
            j++;
        if (j - i > bestlen) {
            best = i;
            bestlen = j - i;
        }
        i = j;
    }
    if (bestlen < 2)
        best = -1;
    char *p = out;
    for (int i = 0; i < 8; i++) {
        if (i == best) {
            *p++ = ':';
            if (i == 0)
                *p++ = ':';
            i += bestlen - 1;
            continue;
        }
        p += sprintf(p, "%x", w[i]);
        if (i < 7)
            *p++ = ':';
    }
    *p = '\0';
    return out;
}

static int refused_v4(const uint8_t *b, char *detail, size_t n, const char *txt)
{
    if (b[0] == 0 && !b[1] && !b[2] && !b[3])
        say(detail, n, "%s is the unspecified address, not a backend", txt);
    else if (b[0] >= 224 && b[0] <= 239)
        say(detail, n, "%s is a multicast address, not a backend", txt);
    else if (b[0] == 255 && b[1] == 255 && b[2] == 255 && b[3] == 255)
        say(detail, n, "%s is the limited broadcast address, not a backend", txt);
    else
        return 0;
    return 1;
}

static int refused_v6(const uint8_t *b, char *detail, size_t n, const char *txt)
{
    static const uint8_t zero[16], mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
    if (!memcmp(b, zero, 16))
        say(detail, n, "%s is the unspecified address, not a backend", txt);
    else if (b[0] == 0xff)
        say(detail, n, "%s is a multicast address, not a backend", txt);
    else if (!memcmp(b, mapped, 12))
        say(detail, n, "%s is an IPv4-mapped IPv6 address; register the IPv4 address itself",
            txt);
    else
        return 0;
    return 1;
}

enum rc_code ip_parse(const char *s, size_t len, struct ip_addr *out, char *detail,
                      size_t detail_len)
{
    char buf[IP_TEXT_MAX], canon[IP_TEXT_MAX];
    struct ip_addr a;

    memset(&a, 0, sizeof(a));
    if (detail && detail_len)
        detail[0] = '\0';
    if (len == 0) {
        say(detail, detail_len, "the address is empty");
        return RC_INVALID_IP;
    }
    if (len >= sizeof(buf)) {
        say(detail, detail_len, "the address is longer than any IP address (at most 45 bytes)");
        return RC_INVALID_IP;
    }
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)s[i];
        int ok = (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F') ||
                 c == '.' || c == ':';
        if (!ok) {
            char what[32];
            if (c == '/')
                snprintf(what, sizeof(what), "a prefix length ('/')");
            else if (c == '%')
                snprintf(what, sizeof(what), "'%%' (zone id or escape)");
            else if (c <= ' ' || c >= 0x7f)
                snprintf(what, sizeof(what), "byte 0x%02x", c);
            else
                snprintf(what, sizeof(what), "'%c'", c);
            say(detail, detail_len, "not an IP address: it contains %s", what);
            return RC_INVALID_IP;
        }
    }
    memcpy(buf, s, len);
    buf[len] = '\0';

    if (inet_pton(AF_INET, buf, a.b) == 1) {
        a.family = IP_V4;
    } else if (inet_pton(AF_INET6, buf, a.b) == 1) {
        a.family = IP_V6;
    } else {
        /* Name the canonical spelling of dotted quads with leading zeros. */
        unsigned o[4];
        char tail;
        if (sscanf(buf, "%u.%u.%u.%u%c", &o[0], &o[1], &o[2], &o[3], &tail) == 4 &&
            o[0] < 256 && o[1] < 256 && o[2] < 256 && o[3] < 256 && !strchr(buf, ':')) {
            char c4[IP_TEXT_MAX];
            snprintf(c4, sizeof(c4), "%u.%u.%u.%u", o[0], o[1], o[2], o[3]);
            say(detail, detail_len,
                "octets must not have leading zeros (ambiguous with octal); did you mean %s?", c4);
        } else {
            say(detail, detail_len, "'%s' is not an IPv4 or IPv6 address", buf);
        }
        return RC_INVALID_IP;
    }
    ip_format(&a, canon);
    if (a.family == IP_V4 ? refused_v4(a.b, detail, detail_len, canon)
                          : refused_v6(a.b, detail, detail_len, canon))
        return RC_INVALID_IP;
    if (strcmp(canon, buf) != 0) {
        say(detail, detail_len, "addresses must be in canonical form: write %s, not %s", canon,
            buf);
        return RC_INVALID_IP;
    }
    *out = a;
    return RC_OK;
}

int ip_cmp(const struct ip_addr *a, const struct ip_addr *b)
{
    if (a->family != b->family)
        return a->family == IP_V4 ? -1 : 1;
    return memcmp(a->b, b->b, a->family == IP_V4 ? 4 : 16);
}

uint64_t ip_hash(const struct ip_addr *a)
{
    /* FNV-1a over family and bytes, then a final mix. */
    uint64_t h = 1469598103934665603ULL;
    h = (h ^ (uint64_t)a->family) * 1099511628211ULL;
    for (int i = 0; i < 16; i++)
        h = (h ^ a->b[i]) * 1099511628211ULL;
    h ^= h >> 29;
    return h;
}

unsigned ip_mod(const struct ip_addr *a, unsigned n)
{
    unsigned len = a->family == IP_V4 ? 4 : 16;
    unsigned long long r = 0;
    for (unsigned i = 0; i < len; i++)
        r = (r * 256 + a->b[i]) % n;
    return (unsigned)r;
}

int ip_is_loopback(const struct ip_addr *a)
{
    static const uint8_t one[16] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1};
    if (a->family == IP_V4)
        return a->b[0] == 127;
    return !memcmp(a->b, one, 16);
}

const char *ip_special_range(const struct ip_addr *a)
{
    if (a->family == IP_V4) {
        if (a->b[0] == 127)
            return "127.0.0.0/8 (loopback)";
        if (a->b[0] == 169 && a->b[1] == 254)
            return "169.254.0.0/16 (link-local)";
        if (a->b[0] == 0)
            return "0.0.0.0/8 (this network)";
        return NULL;
    }
    if (ip_is_loopback(a))
        return "::1/128 (loopback)";
    if (a->b[0] == 0xfe && (a->b[1] & 0xc0) == 0x80)
        return "fe80::/10 (link-local)";
    return NULL;
}
