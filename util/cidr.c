/*
 * cidr.c: see cidr.h. Pure functions over immutable sets; thread-safe once parsed.
 */
#include "util/cidr.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/xalloc.h"

static void mask(struct ip_addr *a, unsigned prefix)
{
    unsigned bytes = a->family == IP_V4 ? 4 : 16;
    for (unsigned i = 0; i < bytes; i++) {
        unsigned keep = prefix >= 8 * (i + 1) ? 8 : prefix > 8 * i ? prefix - 8 * i : 0;
        a->b[i] &= (uint8_t)(0xFF00u >> keep);
    }
}

/* One entry s[0..len), already trimmed. */
static int parse_one(const char *s, size_t len, struct cidr *out, char *detail, size_t n)
{
    char addr[INET6_ADDRSTRLEN + 1], txt[IP_TEXT_MAX];
    const char *slash = memchr(s, '/', len);
    size_t alen = slash ? (size_t)(slash - s) : len;
    unsigned long prefix = 0, max;
    struct ip_addr masked;

    memset(out, 0, sizeof(*out));
    if (alen == 0 || alen >= sizeof(addr)) {
        snprintf(detail, n, "'%.*s' is not ADDRESS or ADDRESS/PREFIX", (int)(len > 60 ? 60 : len),
                 s);
        return -1;
    }
    memcpy(addr, s, alen);
    addr[alen] = '\0';
    if (inet_pton(AF_INET, addr, out->net.b) == 1) {
        out->net.family = IP_V4;
        max = 32;
    } else if (inet_pton(AF_INET6, addr, out->net.b) == 1) {
        out->net.family = IP_V6;
        max = 128;
    } else {
        snprintf(detail, n, "'%s' is not an IPv4 or IPv6 address", addr);
        return -1;
    }
    prefix = max;
    if (slash) {
        const char *p = slash + 1, *end = s + len;
        if (p == end || end - p > 3 || (p[0] == '0' && end - p > 1)) {
            snprintf(detail, n, "'%.*s': the prefix length must be a number 0..%lu", (int)len, s,
                     max);
            return -1;
        }
        prefix = 0;
        for (; p < end; p++) {
            if (!isdigit((unsigned char)*p)) {
                snprintf(detail, n, "'%.*s': the prefix length must be a number 0..%lu", (int)len,
                         s, max);
                return -1;
            }
            prefix = prefix * 10 + (unsigned long)(*p - '0');
        }
        if (prefix > max) {
            snprintf(detail, n, "'%.*s': the prefix length must be a number 0..%lu", (int)len, s,
                     max);
            return -1;
        }
    }
    out->prefix = (unsigned)prefix;
    masked = out->net;
    mask(&masked, out->prefix);
    if (memcmp(masked.b, out->net.b, sizeof(masked.b)) != 0) {
        snprintf(detail, n, "'%.*s' has host bits set after the prefix; did you mean %s/%u?",
                 (int)len, s, ip_format(&masked, txt), out->prefix);
        return -1;
    }
    return 0;
}

enum rc_code cidr_set_parse(struct cidr_set *out, const char *list, char *detail, size_t n)
{
    size_t cap = 0, tlen = 0, tcap = 0;
    char one[160];

    memset(out, 0, sizeof(*out));
    out->text = xstrdup("");
    if (!list)
        return RC_OK;
    for (const char *p = list;;) {
        const char *comma = strchr(p, ',');
        size_t len = comma ? (size_t)(comma - p) : strlen(p);
        const char *s = p;
        struct cidr c;
        char txt[IP_TEXT_MAX];
        int w;

        while (len && isspace((unsigned char)*s)) {
            s++;
            len--;
        }
        while (len && isspace((unsigned char)s[len - 1]))
            len--;
        if (len == 0) {
            if (!comma && out->n == 0 && p == list)
                break; /* "" or only spaces: the empty set */
            snprintf(detail, n, "an empty entry in the list (stray comma?)");
            goto bad;
        }
        if (parse_one(s, len, &c, one, sizeof(one))) {
            snprintf(detail, n, "%s", one);
            goto bad;
        }
        out->v = xgrow(out->v, &cap, out->n + 1, sizeof(*out->v));
        out->v[out->n++] = c;
        w = snprintf(one, sizeof(one), "%s%s/%u", out->n > 1 ? "," : "", ip_format(&c.net, txt),
                     c.prefix);
        out->text = xgrow(out->text, &tcap, tlen + (size_t)w + 1, 1);
        memcpy(out->text + tlen, one, (size_t)w + 1);
        tlen += (size_t)w;
        if (!comma)
            break;
        p = comma + 1;
    }
    return RC_OK;
bad:
    cidr_set_release(out);
    return RC_PARSE;
}

int cidr_set_contains(const struct cidr_set *s, const struct ip_addr *a)
{
    for (size_t i = 0; s && i < s->n; i++) {
        struct ip_addr m;
        if (s->v[i].net.family != a->family)
            continue;
        m = *a;
        mask(&m, s->v[i].prefix);
        if (!memcmp(m.b, s->v[i].net.b, sizeof(m.b)))
            return 1;
    }
    return 0;
}

void cidr_set_release(struct cidr_set *s)
{
    if (!s)
        return;
    free(s->v);
    free(s->text);
    memset(s, 0, sizeof(*s));
}

int ip_from_sockaddr(const struct sockaddr *sa, struct ip_addr *out)
{
    memset(out, 0, sizeof(*out));
    if (sa->sa_family == AF_INET) {
        const struct sockaddr_in *a4 = (const struct sockaddr_in *)(const void *)sa;
        out->family = IP_V4;
        memcpy(out->b, &a4->sin_addr, 4);
        return 0;
    }
    if (sa->sa_family == AF_INET6) {
        const struct sockaddr_in6 *a6 = (const struct sockaddr_in6 *)(const void *)sa;
        if (IN6_IS_ADDR_V4MAPPED(&a6->sin6_addr)) {
            out->family = IP_V4;
            memcpy(out->b, a6->sin6_addr.s6_addr + 12, 4);
        } else {
            out->family = IP_V6;
            memcpy(out->b, a6->sin6_addr.s6_addr, 16);
        }
        return 0;
    }
    return -1;
}
