/*
 * ip.h: strict IP address parsing and canonical formatting.
 *
 * A backend IP is accepted only in its canonical text form: dotted quad without leading zeros
 * for IPv4, RFC 5952 for IPv6 (lowercase, longest run of two or more zero fields compressed,
 * first one on ties, no embedded IPv4 except that IPv4-mapped addresses are refused anyway).
 * Pure functions, thread-safe.
 */
#ifndef R53REG_UTIL_IP_H
#define R53REG_UTIL_IP_H

#include <stddef.h>
#include <stdint.h>

#include "util/rc.h"

#define IP_TEXT_MAX 46 /* INET6_ADDRSTRLEN */

enum ip_family { IP_V4 = 4, IP_V6 = 6 };

struct ip_addr {
    enum ip_family family;
    uint8_t b[16]; /* network order; IPv4 uses b[0..3], the rest is zero */
};

/*
 * Parse s[0..len) as a backend address. On error returns RC_INVALID_IP and, when detail is
 * not NULL, writes a one-sentence reason (naming the canonical spelling when the input was a
 * non-canonical spelling of a valid address) into detail[0..detail_len).
 */
enum rc_code ip_parse(const char *s, size_t len, struct ip_addr *out, char *detail,
                      size_t detail_len);

/* Canonical text of a; out holds IP_TEXT_MAX bytes. Returns out. */
char *ip_format(const struct ip_addr *a, char out[IP_TEXT_MAX]);

/* Total order: IPv4 before IPv6, then numerically. */
int ip_cmp(const struct ip_addr *a, const struct ip_addr *b);

/* Hash for tables. */
uint64_t ip_hash(const struct ip_addr *a);

/* The address as a big-endian integer, modulo n (n > 0). */
unsigned ip_mod(const struct ip_addr *a, unsigned n);

/* Is a loopback (127.0.0.0/8 or ::1)? */
int ip_is_loopback(const struct ip_addr *a);

/*
 * The special-purpose range a lies in that reaches the host itself or its link rather than a
 * backend, as text naming the range and its kind ("127.0.0.0/8 (loopback)",
 * "::1/128 (loopback)", "169.254.0.0/16 (link-local)", "fe80::/10 (link-local)",
 * "0.0.0.0/8 (this network)"), or NULL when it lies in none. The API refuses to register
 * these unless --allow-special (docs/security.md). Returns a static string.
 */
const char *ip_special_range(const struct ip_addr *a);

#endif
