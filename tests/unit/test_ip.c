/* test_ip.c: table-driven cases for util/ip (curl tests/unit style). */
#include <string.h>

#include "check.h"
#include "util/ip.h"

static const struct {
    const char *in;
    const char *canon; /* NULL: must be refused */
    const char *detail_has; /* substring of the refusal detail, or NULL */
} cases[] = {
    {"10.0.0.1", "10.0.0.1", NULL},
    {"127.0.0.1", "127.0.0.1", NULL},
    {"255.255.255.254", "255.255.255.254", NULL},
    {"2001:db8::1", "2001:db8::1", NULL},
    {"2001:db8:0:1:1:1:1:1", "2001:db8:0:1:1:1:1:1", NULL},
    {"::1", "::1", NULL},
    {"2001:db8::", "2001:db8::", NULL},
    {"fe80::1", "fe80::1", NULL},
    /* IPv4 spellings */
    {"010.0.0.1", NULL, "did you mean 10.0.0.1"},
    {"10.0.0.01", NULL, "leading zeros"},
    {"10.0.0", NULL, "not an IPv4 or IPv6"},
    {"10.0.0.256", NULL, "not an IPv4 or IPv6"},
    {"10.0.0.1.", NULL, NULL},
    {"10.0.0.1/32", NULL, "prefix length"},
    {"10.0.0.1:80", NULL, "not an IPv4 or IPv6"},
    {"0x0a.0.0.1", NULL, "'x'"},
    {"167772161", NULL, "not an IPv4 or IPv6"},
    {" 10.0.0.1", NULL, "byte 0x20"},
    {"10.0.0.1\n", NULL, "byte 0x0a"},
    {"%31.0.0.1", NULL, "'%'"},
    {"host.example", NULL, "'h'"},
    {"", NULL, "empty"},
    {"0.0.0.0", NULL, "unspecified"},
    {"224.0.0.1", NULL, "multicast"},
    {"239.255.255.255", NULL, "multicast"},
    {"255.255.255.255", NULL, "broadcast"},
    /* IPv6 spellings */
    {"2001:DB8::1", NULL, "write 2001:db8::1"},
    {"2001:db8:0:0:0:0:0:1", NULL, "write 2001:db8::1"},
    {"2001:0db8::1", NULL, "write 2001:db8::1"},
    {"2001:db8::0:1", NULL, "write 2001:db8::1"},
    {"2001:db8:0:1:1:1:1::", NULL, "write 2001:db8:0:1:1:1:1:0"},
    {"2001:db8::1:0:0:1", "2001:db8::1:0:0:1", NULL},
    {"2001:db8:0:0:1::1", NULL, "write 2001:db8::1:0:0:1"},
    {"::ffff:10.0.0.1", NULL, "IPv4-mapped"},
    {"::ffff:a00:1", NULL, "IPv4-mapped"},
    {"fe80::1%eth0", NULL, "zone id"},
    {"2001:db8::/32", NULL, "prefix length"},
    {"[2001:db8::1]", NULL, "'['"},
    {"::", NULL, "unspecified"},
    {"ff02::1", NULL, "multicast"},
    {"2001:db8::1::2", NULL, "not an IPv4 or IPv6"},
    {"1111:2222:3333:4444:5555:6666:7777:8888:9999", NULL, NULL},
    {"0000:0000:0000:0000:0000:0000:0000:0000:0000:0000:00", NULL, "at most"},
};

static void test_table(void)
{
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct ip_addr a;
        char detail[160], out[IP_TEXT_MAX];
        enum rc_code rc = ip_parse(cases[i].in, strlen(cases[i].in), &a, detail, sizeof(detail));
        if (cases[i].canon) {
            if (rc != RC_OK)
                fprintf(stderr, "case %zu '%s': refused: %s\n", i, cases[i].in, detail);
            CHECK_INT(rc, RC_OK);
            if (rc == RC_OK)
                CHECK_STR(ip_format(&a, out), cases[i].canon);
        } else {
            if (rc == RC_OK)
                fprintf(stderr, "case %zu '%s': accepted, should be refused\n", i, cases[i].in);
            CHECK_INT(rc, RC_INVALID_IP);
            if (cases[i].detail_has && !strstr(detail, cases[i].detail_has)) {
                fprintf(stderr, "case %zu '%s': detail '%s' lacks '%s'\n", i, cases[i].in,
                        detail, cases[i].detail_has);
                CHECK(0);
            }
        }
    }
}

static void test_embedded_nul(void)
{
    struct ip_addr a;
    CHECK_INT(ip_parse("10.0.0.1\0x", 10, &a, NULL, 0), RC_INVALID_IP);
}

static void test_order_and_mod(void)
{
    struct ip_addr a, b, c;
    CHECK_INT(ip_parse("10.0.0.2", 8, &a, NULL, 0), RC_OK);
    CHECK_INT(ip_parse("10.0.0.10", 9, &b, NULL, 0), RC_OK);
    CHECK_INT(ip_parse("2001:db8::1", 11, &c, NULL, 0), RC_OK);
    CHECK(ip_cmp(&a, &b) < 0);
    CHECK(ip_cmp(&b, &c) < 0);
    CHECK(ip_cmp(&c, &a) > 0);
    CHECK_INT(ip_cmp(&a, &a), 0);
    /* 10.0.0.2 = 167772162 */
    CHECK_INT(ip_mod(&a, 100), 167772162u % 100);
    CHECK_INT(ip_mod(&a, 7), 167772162u % 7);
    /* 2001:db8::1 mod 2: odd */
    CHECK_INT(ip_mod(&c, 2), 1);
    CHECK_INT(ip_mod(&c, 1), 0);
    CHECK(ip_hash(&a) != ip_hash(&b));
    struct ip_addr l;
    CHECK_INT(ip_parse("127.1.2.3", 9, &l, NULL, 0), RC_OK);
    CHECK(ip_is_loopback(&l));
    CHECK(!ip_is_loopback(&a));
}

/* ip_special_range: the ranges the API refuses to register without --allow-special, and
 * their edges. */
static void test_special_range(void)
{
    static const struct {
        const char *in;
        const char *range; /* NULL: not special */
    } sp[] = {
        {"127.0.0.1", "127.0.0.0/8 (loopback)"},
        {"127.255.255.255", "127.0.0.0/8 (loopback)"},
        {"126.255.255.255", NULL},
        {"128.0.0.1", NULL},
        {"::1", "::1/128 (loopback)"},
        {"::2", NULL},
        {"169.254.1.1", "169.254.0.0/16 (link-local)"},
        {"169.254.0.1", "169.254.0.0/16 (link-local)"},
        {"169.254.255.255", "169.254.0.0/16 (link-local)"},
        {"169.253.255.255", NULL},
        {"169.255.0.1", NULL},
        {"fe80::1", "fe80::/10 (link-local)"},
        {"febf:ffff::1", "fe80::/10 (link-local)"},
        {"fe7f::1", NULL},
        {"fec0::1", NULL},
        {"0.1.2.3", "0.0.0.0/8 (this network)"},
        {"0.255.255.255", "0.0.0.0/8 (this network)"},
        {"1.0.0.0", NULL},
        {"10.0.0.1", NULL},
        {"192.168.1.1", NULL},
        {"2001:db8::1", NULL},
        {"::7f00:1", NULL}, /* IPv4-compatible, not ::1 */
        {"fd00::1", NULL},
    };
    for (size_t i = 0; i < sizeof(sp) / sizeof(sp[0]); i++) {
        struct ip_addr a;
        const char *got;
        CHECK_INT(ip_parse(sp[i].in, strlen(sp[i].in), &a, NULL, 0), RC_OK);
        got = ip_special_range(&a);
        if (!sp[i].range) {
            if (got)
                fprintf(stderr, "special %zu '%s': %s, expected none\n", i, sp[i].in, got);
            CHECK(got == NULL);
        } else {
            CHECK_STR(got ? got : "(none)", sp[i].range);
        }
    }
}

int main(void)
{
    test_table();
    test_embedded_nul();
    test_order_and_mod();
    test_special_range();
    return check_done("test_ip");
}
