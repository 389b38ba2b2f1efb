/*
 * answer.c: how big the DNS answer for one weighted record is, and so how many values a record
 * may hold for its answer to fit a budget (--max-answer-bytes).
 *
 * Route 53 answers a query for a weighted name with every value of the one record it picks.
 * The answer is a DNS message (RFC 1035 section 4): a 12-byte header; the question (the name
 * in wire form, type, class); one resource record per value, its owner name compressed to a
 * 2-byte pointer to the question (RFC 1035 section 4.1.4), then type, class, TTL and length
 * (10 bytes) and the address (4 bytes for A, 16 for AAAA); an authority section that may name
 * the zone's four name servers (counted at the longest names Route 53 gives them,
 * "ns-2048.awsdns-64.co.uk.", 25 bytes each, owner compressed); and the EDNS0 OPT record
 * (RFC 6891, 11 bytes without options). Resolvers advertise 1,232 bytes today (DNS Flag Day
 * 2020): a larger answer is truncated and asked again over TCP, which some stub resolvers
 * cannot do. Pure functions.
 */
#include "registry/registry.h"

#include <string.h>

#define DNS_HEADER 12
#define DNS_QUESTION_FIXED 4 /* type, class */
#define DNS_RR_FIXED 12      /* compressed owner (2), type, class, TTL, rdlength */
#define DNS_NS_COUNT 4
#define DNS_NS_RDATA_MAX 25 /* "ns-2048.awsdns-64.co.uk." in wire form */
#define DNS_OPT_RR 11

/* The wire length of a domain name given as text without the trailing dot: each label with
 * its length byte, and the root's zero byte. */
static size_t name_wire_len(const char *name)
{
    size_t n = strlen(name);
    return n ? n + 2 : 1;
}

size_t reg_answer_bytes(const char *record_name, enum reg_type type, size_t nvalues)
{
    size_t rdata = type == REG_A ? 4 : 16;
    return DNS_HEADER + name_wire_len(record_name) + DNS_QUESTION_FIXED +
           nvalues * (DNS_RR_FIXED + rdata) + DNS_NS_COUNT * (DNS_RR_FIXED + DNS_NS_RDATA_MAX) +
           DNS_OPT_RR;
}

unsigned reg_answer_capacity(const char *record_name, enum reg_type type, unsigned budget)
{
    size_t fixed = reg_answer_bytes(record_name, type, 0);
    size_t per = reg_answer_bytes(record_name, type, 1) - fixed;
    size_t n = budget > fixed ? (budget - fixed) / per : 0;
    return n > REG_MAX_VALUES ? REG_MAX_VALUES : (unsigned)n;
}

unsigned reg_capacity(const struct reg_options *opt, enum reg_type type)
{
    unsigned cap;
    if (opt->max_per_bucket)
        return opt->max_per_bucket;
    cap = reg_answer_capacity(opt->record_name, type,
                              opt->max_answer_bytes ? opt->max_answer_bytes
                                                    : REG_ANSWER_BYTES_DEFAULT);
    return cap ? cap : 1;
}
