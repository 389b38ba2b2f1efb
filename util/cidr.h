/*
 * cidr.h: sets of address ranges ("10.0.0.0/8,2001:db8::/32"), for --trusted-proxy and
 * --allow-cidr.
 *
 * A set is parsed once from its comma-separated text and is then read-only: lookups are pure
 * and thread-safe. An IPv4 range matches IPv4 addresses only and an IPv6 range IPv6 addresses
 * only (an IPv4-mapped IPv6 peer is converted to IPv4 by the caller, see ip_from_sockaddr()).
 */
#ifndef R53REG_UTIL_CIDR_H
#define R53REG_UTIL_CIDR_H

#include <stddef.h>
#include <sys/socket.h>

#include "util/ip.h"
#include "util/rc.h"

struct cidr {
    struct ip_addr net; /* host bits are zero */
    unsigned prefix;    /* 0..32 or 0..128 */
};

struct cidr_set {
    struct cidr *v; /* owned */
    size_t n;
    char *text; /* owned: the canonical list ("10.0.0.0/8,2001:db8::/32"), "" when empty */
};

/*
 * Parse a comma-separated list of ranges "ADDR/PREFIX" or "ADDR" (one address: /32 or /128)
 * into out (which the caller releases with cidr_set_release()). Spaces around entries are
 * ignored. Addresses are read by inet_pton, so any spelling of an address works here
 * (0.0.0.0/0 and ::/0 too); host bits after the prefix must be zero. NULL or an empty list
 * gives an empty set. Errors: RC_PARSE with a one-sentence detail naming the bad entry (and
 * the range that was probably meant), out left empty.
 */
enum rc_code cidr_set_parse(struct cidr_set *out, const char *list, char *detail, size_t n);

/* Is a inside any range of s? An empty set contains nothing. Thread-safe. */
int cidr_set_contains(const struct cidr_set *s, const struct ip_addr *a);

/* Free what s owns and empty it. Accepts a zeroed set. */
void cidr_set_release(struct cidr_set *s);

/*
 * The address of an AF_INET or AF_INET6 socket address, with IPv4-mapped IPv6
 * (::ffff:a.b.c.d) turned into IPv4. Returns 0, or -1 for other families.
 */
int ip_from_sockaddr(const struct sockaddr *sa, struct ip_addr *out);

#endif
