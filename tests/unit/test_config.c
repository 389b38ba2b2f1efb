/* test_config.c: flags, environment, precedence, and bad values naming their flag. */
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "check.h"
#include "server/config.h"

static const char *const *fake_env;

static const char *env_lookup(const char *name)
{
    for (const char *const *e = fake_env; e && *e; e += 2)
        if (!strcmp(e[0], name))
            return e[1];
    return NULL;
}

/* Parse argv (NULL-terminated) with env pairs; the error text lands in errbuf. */
static enum cfg_result parse(struct cfg *cfg, const char *const *env, char *errbuf,
                             size_t errlen, ...)
{
    char *argv[32];
    int argc = 0;
    va_list ap;
    FILE *err = fmemopen(errbuf, errlen, "w");
    FILE *out = fopen("/dev/null", "w");
    enum cfg_result r;

    argv[argc++] = (char *)"r53reg";
    va_start(ap, errlen);
    for (const char *a; (a = va_arg(ap, const char *));)
        argv[argc++] = (char *)a;
    va_end(ap);
    argv[argc] = NULL;
    fake_env = env;
    memset(errbuf, 0, errlen);
    r = cfg_parse(cfg, argc, argv, env_lookup, out, err);
    fclose(err);
    fclose(out);
    return r;
}

static void test_defaults(void)
{
    struct cfg c;
    char err[512];
    CHECK_INT(parse(&c, NULL, err, sizeof(err), NULL), CFG_RUN);
    CHECK_STR(c.listen, "127.0.0.1:8080");
    CHECK(c.listen_loopback);
    CHECK_STR(c.reg.record_name, "app.example.com");
    CHECK_INT(c.reg.buckets, 100);
    CHECK_INT(c.reg.max_per_bucket, 0); /* derived from the answer budget */
    CHECK_INT(c.reg.max_answer_bytes, 1232);
    CHECK_INT(c.reg.ttl, 60);
    CHECK_INT(c.reg.bucketing, REG_BUCKETING_ORDERED);
    CHECK_INT(c.reg.weights, REG_WEIGHTS_PROPORTIONAL);
    CHECK_INT(c.provider, CFG_PROVIDER_MEMORY);
    CHECK_INT(c.reg.commit, REG_COMMIT_GROUP);
    CHECK(c.state_file == NULL);
    CHECK_INT(c.ntokens, 0);
    CHECK_INT(c.check.kind, HC_KIND_INHERIT); /* --check off */
    CHECK(c.reg.max_down_share == 0.5);
    CHECK(c.api_rps == 5);
    CHECK(c.api_burst == 1); /* evenly spaced calls */
    CHECK(c.api_change_rps == 10);
    cfg_release(&c);
}

static void test_api_limits(void)
{
    struct cfg c;
    char err[512];
    const char *env[] = {"R53REG_API_CHANGE_RPS", "0.5", "R53REG_API_BURST", "3", NULL};
    CHECK_INT(parse(&c, env, err, sizeof(err), "--api-rps", "2.5", "--api-burst=4", NULL),
              CFG_RUN);
    CHECK(c.api_rps == 2.5); /* fractions */
    CHECK(c.api_burst == 4); /* flag wins over env */
    CHECK(c.api_change_rps == 0.5);
    cfg_release(&c);
    CHECK_INT(parse(&c, NULL, err, sizeof(err), "--api-change-rps", "0", NULL), CFG_RUN);
    CHECK(c.api_change_rps == 0); /* no change budget */
    cfg_release(&c);
}

static void test_check_flags(void)
{
    struct cfg c;
    char err[512];
    CHECK_INT(parse(&c, NULL, err, sizeof(err), "--check", "http", "--check-port", "8080",
                    "--check-path", "/healthz?full=1", "--check-status", "200-299",
                    "--check-interval-ms", "500", "--check-timeout-ms", "400", "--check-rise",
                    "3", "--check-fall", "4", "--max-down-share", "0.25", NULL),
              CFG_RUN);
    CHECK_INT(c.check.kind, HC_HTTP);
    CHECK_INT(c.check.port, 8080);
    CHECK_STR(c.check.path, "/healthz?full=1");
    CHECK_INT(c.check.status_min, 200);
    CHECK_INT(c.check.status_max, 299);
    CHECK_INT(c.check.interval_ms, 500);
    CHECK_INT(c.check.timeout_ms, 400);
    CHECK_INT(c.check.rise, 3);
    CHECK_INT(c.check.fall, 4);
    CHECK(c.reg.max_down_share == 0.25);
    CHECK(hc_check_validate(&c.check, err, sizeof(err)) == RC_OK);
    cfg_release(&c);
}

static void test_env_and_flags(void)
{
    struct cfg c;
    char err[512];
    const char *env[] = {"R53REG_BUCKETS", "7", "R53REG_RECORD_NAME", "API.Example.COM.",
                         "R53REG_TOKENS", " t1-0123456789abcd ,t2-0123456789abcd,, ", "R53REG_WEIGHTS", "equal", NULL};
    CHECK_INT(parse(&c, env, err, sizeof(err), "--buckets", "9", "--ttl=300", "--bucketing",
                    "modulo", NULL),
              CFG_RUN);
    CHECK_INT(c.reg.buckets, 9); /* flag wins over env */
    CHECK_INT(c.reg.ttl, 300);
    CHECK_STR(c.reg.record_name, "api.example.com"); /* lowercased, trailing dot dropped */
    CHECK_INT(c.reg.weights, REG_WEIGHTS_EQUAL);
    CHECK_INT(c.reg.bucketing, REG_BUCKETING_MODULO);
    CHECK_INT(c.ntokens, 2);
    if (c.ntokens == 2) {
        CHECK_STR(c.tokens[0], "t1-0123456789abcd");
        CHECK_STR(c.tokens[1], "t2-0123456789abcd");
    }
    cfg_release(&c);
}

/* --bucketing auto (the default): ordered, except where ordered placement would be unfair
 * (equal weights) or slow (immediate mode); an explicit ordered with equal weights is refused. */
static void test_bucketing_auto(void)
{
    struct cfg c;
    char err[512];
    const char *noenv[] = {NULL};

    CHECK_INT(parse(&c, noenv, err, sizeof(err), "--weights", "equal", NULL), CFG_RUN);
    CHECK_INT(c.reg.bucketing, REG_BUCKETING_BALANCED);
    cfg_release(&c);
    CHECK_INT(parse(&c, noenv, err, sizeof(err), "--commit", "immediate", NULL), CFG_RUN);
    CHECK_INT(c.reg.bucketing, REG_BUCKETING_BALANCED);
    cfg_release(&c);
    CHECK_INT(parse(&c, noenv, err, sizeof(err), "--bucketing", "modulo", "--commit", "immediate",
                    NULL),
              CFG_RUN);
    CHECK_INT(c.reg.bucketing, REG_BUCKETING_MODULO);
    cfg_release(&c);
    CHECK_INT(parse(&c, noenv, err, sizeof(err), "--bucketing", "ordered", "--weights", "equal",
                    NULL),
              CFG_EXIT_USAGE);
    CHECK(strstr(err, "--bucketing ordered needs --weights proportional") != NULL);
}

/* --tree: its label, and what it cannot be combined with, each refused naming why. */
/* A DNS name of exactly len characters (labels of 60 'a's) in buf. */
static const char *name_of(char *buf, size_t len)
{
    for (size_t i = 0; i < len; i++)
        buf[i] = i % 61 == 60 ? '.' : 'a';
    buf[len] = '\0';
    return buf;
}

static void test_tree_flags(void)
{
    struct cfg c;
    char err[512];
    const char *noenv[] = {NULL};
    char longname[REG_RECORD_NAME_MAX + 1];

    CHECK_INT(parse(&c, noenv, err, sizeof(err), "--tree", NULL), CFG_RUN);
    CHECK_INT(c.reg.tree, REG_TREE_ON);
    CHECK_STR(reg_tree_label(&c.reg), "_r53reg");
    cfg_release(&c);
    CHECK_INT(parse(&c, noenv, err, sizeof(err), "--tree", "--tree-label", "shard-x", NULL),
              CFG_RUN);
    CHECK_STR(c.reg.tree_label, "shard-x");
    cfg_release(&c);
    CHECK_INT(parse(&c, noenv, err, sizeof(err), "--tree-auto", NULL), CFG_RUN);
    CHECK_INT(c.reg.tree, REG_TREE_AUTO);
    cfg_release(&c);
    CHECK_INT(parse(&c, noenv, err, sizeof(err), "--tree", "--tree-auto", NULL), CFG_EXIT_USAGE);
    CHECK(strstr(err, "choose one") != NULL);
    CHECK_INT(parse(&c, noenv, err, sizeof(err), "--tree-auto", "--commit", "immediate", NULL),
              CFG_EXIT_USAGE);
    CHECK(strstr(err, "--tree-auto needs --commit group") != NULL);
    CHECK_INT(parse(&c, noenv, err, sizeof(err), "--tree", "--commit", "immediate", NULL),
              CFG_EXIT_USAGE);
    CHECK(strstr(err, "--tree needs --commit group") != NULL);
    CHECK_INT(parse(&c, noenv, err, sizeof(err), "--tree", "--weights", "equal", NULL),
              CFG_EXIT_USAGE);
    CHECK(strstr(err, "--tree needs --weights proportional") != NULL);
    CHECK_INT(parse(&c, noenv, err, sizeof(err), "--tree", "--bucketing", "modulo", NULL),
              CFG_EXIT_USAGE);
    CHECK(strstr(err, "--tree needs --bucketing ordered or balanced") != NULL);
    CHECK_INT(parse(&c, noenv, err, sizeof(err), "--tree-label", "a.b", NULL), CFG_EXIT_USAGE);
    CHECK(strstr(err, "--tree-label") != NULL);
    CHECK_INT(parse(&c, noenv, err, sizeof(err), "--tree-label", "Upper", NULL), CFG_EXIT_USAGE);
    CHECK_INT(parse(&c, noenv, err, sizeof(err), "--tree-label", "", NULL), CFG_EXIT_USAGE);
    /* Route 53's set identifiers take 128 characters: "<name>_99" flat, "99._r53reg.<name>_99"
     * in the tree. */
    CHECK_INT(parse(&c, noenv, err, sizeof(err), "--record-name", name_of(longname, 125), NULL),
              CFG_RUN);
    cfg_release(&c);
    CHECK_INT(parse(&c, noenv, err, sizeof(err), "--record-name", name_of(longname, 126), NULL),
              CFG_EXIT_USAGE);
    CHECK(strstr(err, "would be 129 characters") != NULL);
    CHECK_INT(parse(&c, noenv, err, sizeof(err), "--record-name", name_of(longname, 113), "--tree",
                    NULL),
              CFG_RUN);
    cfg_release(&c);
    CHECK_INT(parse(&c, noenv, err, sizeof(err), "--record-name", name_of(longname, 114), "--tree",
                    NULL),
              CFG_EXIT_USAGE);
    CHECK(strstr(err, "99.<label>.<name>_99") != NULL);
    CHECK_INT(parse(&c, noenv, err, sizeof(err), "--record-name", name_of(longname, 113), "--tree",
                    "--tree-label", "abcdefgh", NULL),
              CFG_EXIT_USAGE);
}

static void test_bad_values(void)
{
    static const struct {
        const char *flag, *value, *needle;
    } bad[] = {
        {"--buckets", "0", "--buckets"},
        {"--buckets", "101", "--buckets"},
        {"--buckets", "ten", "--buckets"},
        {"--buckets", "-1", "--buckets"},
        {"--max-per-bucket", "401", "--max-per-bucket"},
        {"--ttl", "2147483648", "--ttl"},
        {"--bucketing", "random", "--bucketing"},
        {"--weights", "heavy", "--weights"},
        {"--provider", "bind", "--provider"},
        {"--listen", "localhost:80", "--listen"},
        {"--listen", "127.0.0.1", "--listen"},
        {"--listen", "127.0.0.1:65536", "--listen"},
        {"--record-name", "bad name.example.com", "--record-name"},
        {"--record-name", "a..b", "--record-name"},
        {"--log-level", "loud", "--log-level"},
        {"--commit", "later", "--commit"},
        {"--token-file", "/nonexistent/tokens", "--token-file"},
        {"--provider", "route53", "--zone-id"},
        {"--zone-id", "Z1; rm -rf", "--zone-id"},
        {"--aws-endpoint", "ftp://x", "--aws-endpoint"},
        {"--api-rps", "0", "--api-rps"},
        {"--api-rps", "fast", "--api-rps"},
        {"--api-rps", "2.5x", "--api-rps"},
        {"--api-rps", "1001", "--api-rps"},
        {"--api-rps", "nan", "--api-rps"},
        {"--api-burst", "0.5", "--api-burst"},
        {"--api-burst", "", "--api-burst"},
        {"--api-change-rps", "-1", "--api-change-rps"},
        {"--api-change-rps", "inf", "--api-change-rps"},
        {"--tokens", "self:fleet", "--tokens"},
        {"--tokens", "admin:bad name:tok", "--tokens"},
        {"--tokens", "read:-x:tok", "--tokens"},
        {"--tokens", "admin:ops:#tok", "--tokens"},
        {"--tokens", "admin:ops:two words", "--tokens"},
        {"--tokens", "bare-a-0123456789,self:x:tok-0123456789ab,bare-b-0123456789,read:x:tok2-0123456789a",
         "two tokens are named 'x'"},
        {"--tokens", "same-0123456789ab,admin:ops:same-0123456789ab", "the same secret"},
        /* Too short, or a word where the secret belongs. */
        {"--tokens", "admin:ops:Short-1234", "shorter than 16"},
        {"--tokens", "Short-1234", "shorter than 16"},
        {"--tokens", "self:Zq7rT2mXw9Lp4VbN:fleet", "looks like a secret"},
        {"--tokens", "self:ops:abcdefghijklmnopqrst", "holds a word"},
        {"--tokens", "admin:ops:admin", "holds a word"},
        {"--trusted-proxy", "10.0.0.0/33", "--trusted-proxy"},
        {"--trusted-proxy", "10.0.0.1/8", "did you mean 10.0.0.0/8?"},
        {"--trusted-proxy", "proxy.example", "--trusted-proxy"},
        {"--allow-cidr", "10.0.0.0/8,", "--allow-cidr"},
        {"--allow-cidr", "2001:db8::/129", "--allow-cidr"},
        {"--client-rps", "-1", "--client-rps"},
        {"--client-burst", "0", "--client-burst"},
        {"--max-connections-per-ip", "x", "--max-connections-per-ip"},
        {"--tls-cert", "/tmp/cert.pem", "--tls-key"},
        {"--tls-key", "/tmp/key.pem", "--tls-cert"},
        {"--check", "icmp", "--check"},
        {"--check", "tcp", "--check-port"},
        {"--check-port", "65536", "--check-port"},
        {"--check-path", "healthz", "--check-path"},
        {"--check-path", "/a b", "--check-path"},
        {"--check-status", "200", "--check-status"},
        {"--check-status", "+200-299", "--check-status"},
        {"--check-status", "300-200", "--check-status"},
        {"--check-status", "200-600", "--check-status"},
        {"--check-interval-ms", "5", "--check-interval-ms"},
        {"--check-timeout-ms", "5000", "exceeds --check-interval-ms"},
        {"--check-rise", "0", "--check-rise"},
        {"--check-fall", "1001", "--check-fall"},
        {"--check-parallel", "0", "--check-parallel"},
        {"--max-down-share", "1.5", "--max-down-share"},
        {"--max-down-share", "half", "--max-down-share"},
        {"--max-down-share", "-0.1", "--max-down-share"},
        {"--record-name", "a123456789.b123456789.c123456789.d123456789.e123456789.f12345678"
                          "9.g123456789.h123456789.i123456789.j123456789.k123456789.l12345678"
                          "9.m123456789.n123456789.o123456789.p123456789.q123456789.r12345678"
                          "9.s123456789.t123456789.u123456789.v12345678.example.com",
         "_draining.<name>"},
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        struct cfg c;
        char err[512];
        CHECK_INT(parse(&c, NULL, err, sizeof(err), bad[i].flag, bad[i].value, NULL),
                  CFG_EXIT_USAGE);
        if (!strstr(err, bad[i].needle)) {
            fprintf(stderr, "%s %s: message '%s' lacks '%s'\n", bad[i].flag, bad[i].value, err,
                    bad[i].needle);
            CHECK(0);
        }
    }
    {
        struct cfg c;
        char err[512];
        const char *env[] = {"R53REG_TTL", "soon", NULL};
        CHECK_INT(parse(&c, env, err, sizeof(err), NULL), CFG_EXIT_USAGE);
        CHECK(strstr(err, "R53REG_TTL") != NULL);
        CHECK_INT(parse(&c, NULL, err, sizeof(err), "--nope", NULL), CFG_EXIT_USAGE);
        CHECK(strstr(err, "--nope") != NULL);
        CHECK_INT(parse(&c, NULL, err, sizeof(err), "--ttl", NULL), CFG_EXIT_USAGE);
        CHECK(strstr(err, "needs a value") != NULL);
    }
}

static void test_non_loopback_needs_token(void)
{
    struct cfg c;
    char err[512], dir[] = "/tmp/r53reg-cfg-XXXXXX", path[300];
    FILE *f;

    CHECK_INT(parse(&c, NULL, err, sizeof(err), "--listen", "0.0.0.0:8080", NULL),
              CFG_EXIT_USAGE);
    CHECK(strstr(err, "--allow-anonymous") != NULL);
    CHECK_INT(parse(&c, NULL, err, sizeof(err), "--listen", "0.0.0.0:8080",
                    "--allow-anonymous", NULL),
              CFG_RUN);
    cfg_release(&c);
    CHECK_INT(parse(&c, NULL, err, sizeof(err), "--listen", "[::1]:0", NULL), CFG_RUN);
    CHECK(c.listen_loopback);
    cfg_release(&c);
    /* A trusted proxy forwards remote callers: no anonymous changes, loopback or not. */
    CHECK_INT(parse(&c, NULL, err, sizeof(err), "--trusted-proxy", "127.0.0.1/32", NULL),
              CFG_EXIT_USAGE);
    CHECK(strstr(err, "--trusted-proxy 127.0.0.1/32") != NULL &&
          strstr(err, "--allow-anonymous") != NULL);
    CHECK_INT(parse(&c, NULL, err, sizeof(err), "--trusted-proxy", "127.0.0.1/32",
                    "--allow-anonymous", NULL),
              CFG_RUN);
    cfg_release(&c);
    {
        const char *env[] = {"R53REG_TOKENS", "admin:ops:Zq7rT2mXw9Lp4VbN", NULL};
        CHECK_INT(parse(&c, env, err, sizeof(err), "--trusted-proxy", "127.0.0.1/32", NULL),
                  CFG_RUN);
        cfg_release(&c);
    }

    if (!mkdtemp(dir)) {
        CHECK(0);
        return;
    }
    snprintf(path, sizeof(path), "%s/tokens", dir);
    f = fopen(path, "w");
    fputs("# fleet tokens\n\n  alpha-token-0123456789  \nbeta-token-0123456789\n", f);
    fclose(f);
    CHECK_INT(parse(&c, NULL, err, sizeof(err), "--listen", "[::]:8080", "--token-file", path,
                    NULL),
              CFG_RUN);
    CHECK(!c.listen_loopback);
    CHECK_INT(c.ntokens, 2);
    if (c.ntokens == 2)
        CHECK_STR(c.tokens[0], "alpha-token-0123456789");
    cfg_release(&c);
    unlink(path);
    rmdir(dir);
}

static void test_security_flags(void)
{
    struct cfg c;
    char err[512];
    const char *env[] = {"R53REG_TOKENS", "legacy-1-0123456789, self:fleet:fleet-tok-0123456789 , read:ro:r:o-0123456789ab", NULL};

    CHECK_INT(parse(&c, NULL, err, sizeof(err), NULL), CFG_RUN);
    CHECK_INT(c.client_rps, 20);
    CHECK_INT(c.client_burst, 40);
    CHECK_INT(c.max_connections_per_ip, 64);
    CHECK(c.trusted_proxy == NULL && c.allow_cidr == NULL && c.tls_cert == NULL);
    cfg_release(&c);

    CHECK_INT(parse(&c, env, err, sizeof(err), "--trusted-proxy", "10.0.0.0/8, ::1",
                    "--allow-cidr", "192.0.2.0/24,2001:db8::/32", "--client-rps", "0",
                    "--client-burst", "5", "--max-connections-per-ip", "0", "--tls-cert",
                    "/etc/r53reg/cert.pem", "--tls-key", "/etc/r53reg/key.pem", NULL),
              CFG_RUN);
    CHECK_STR(c.trusted_proxy, "10.0.0.0/8, ::1");
    CHECK_STR(c.allow_cidr, "192.0.2.0/24,2001:db8::/32");
    CHECK_INT(c.client_rps, 0);
    CHECK_INT(c.client_burst, 5);
    CHECK_INT(c.max_connections_per_ip, 0);
    CHECK_STR(c.tls_cert, "/etc/r53reg/cert.pem");
    CHECK_STR(c.tls_key, "/etc/r53reg/key.pem");
    /* Bare entries are admin tokens named by position; scoped ones keep their name. */
    CHECK_INT(c.ntokens, 3);
    CHECK_INT(c.ntokens_static, 3);
    if (c.ntokens == 3) {
        CHECK_STR(c.token_list.v[0].name, "token-1");
        CHECK_INT(c.token_list.v[0].scope, SRV_SCOPE_ADMIN);
        CHECK_STR(c.tokens[0], "legacy-1-0123456789");
        CHECK_STR(c.token_list.v[1].name, "fleet");
        CHECK_INT(c.token_list.v[1].scope, SRV_SCOPE_SELF);
        CHECK_STR(c.tokens[1], "fleet-tok-0123456789");
        CHECK_STR(c.token_list.v[2].name, "ro");
        CHECK_INT(c.token_list.v[2].scope, SRV_SCOPE_READ);
        CHECK_STR(c.tokens[2], "r:o-0123456789ab"); /* the token is everything after the second ':' */
    }
    cfg_release(&c);
}

/* --allow-special: off by default, on by the flag or R53REG_ALLOW_SPECIAL; the flag wins. */
static void test_allow_special(void)
{
    struct cfg c;
    char err[512];
    const char *on[] = {"R53REG_ALLOW_SPECIAL", "1", NULL};
    const char *off[] = {"R53REG_ALLOW_SPECIAL", "false", NULL};
    const char *bad[] = {"R53REG_ALLOW_SPECIAL", "maybe", NULL};

    CHECK_INT(parse(&c, NULL, err, sizeof(err), NULL), CFG_RUN);
    CHECK_INT(c.allow_special, 0);
    cfg_release(&c);
    CHECK_INT(parse(&c, NULL, err, sizeof(err), "--allow-special", NULL), CFG_RUN);
    CHECK_INT(c.allow_special, 1);
    cfg_release(&c);
    CHECK_INT(parse(&c, on, err, sizeof(err), NULL), CFG_RUN);
    CHECK_INT(c.allow_special, 1);
    cfg_release(&c);
    CHECK_INT(parse(&c, off, err, sizeof(err), "--allow-special", NULL), CFG_RUN);
    CHECK_INT(c.allow_special, 1);
    cfg_release(&c);
    CHECK_INT(parse(&c, on, err, sizeof(err), "--allow-special=0", NULL), CFG_RUN);
    CHECK_INT(c.allow_special, 0);
    cfg_release(&c);
    CHECK_INT(parse(&c, bad, err, sizeof(err), NULL), CFG_EXIT_USAGE);
    CHECK(strstr(err, "R53REG_ALLOW_SPECIAL") != NULL);
}

static void test_token_file_scopes(void)
{
    struct cfg c;
    char err[512], dir[] = "/tmp/r53reg-cfg-XXXXXX", path[300];
    const char *env[] = {"R53REG_TOKENS", "env-token-0123456789", NULL};
    static const struct {
        const char *text, *needle; /* needle NULL: accepted */
    } files[] = {
        {"# fleet\nadmin ops ops-tok-0123456789\nself  fleet\tfleet-tok-0123456789\n\nread ro "
         "ro-tok-0123456789\nbare-tok-0123456789\n",
         NULL},
        {"admin ops\n", "line 1: expected '<scope> <name> <token>'"},
        {"\n\nroot ops tok-0123456789ab\n", "line 3: the first field (the scope) is not admin, self or read"},
        {"admin ops tok-0123456789ab extra\n", "found 4 fields"},
        {"self fl/eet tok-0123456789ab\n", "the token name (not repeated here)"},
        {"admin ops env-token-0123456789\n", "the same secret"},
        {"admin token-1 x-tok-0123456789ab\n", "two tokens are named 'token-1'"},
        /* Swapped columns and short tokens are refused, and the secret is never repeated
         * (every secret below contains "x-tok" or "X7tok"). */
        {"self X7tokQm8xK3pL0sVb fleet\n", "line 1: the name column (not repeated here) looks like a secret"},
        {"X7tokQm8xK3pL0sVb self fleet\n", "line 1: the first field (the scope) is not"},
        {"self x-tok/Qm8+K3pL0sVb== fleet\n", "line 1: the token name (not repeated here)"},
        {"self fleet x-tok-short\n", "line 1: token 'fleet': the token is shorter than 16"},
        {"self abcdefghijklmnopqrstuv fleet\n", "line 1: token 'abcdefghijklmnopqrstuv': the token column holds a word"},
        {"x-tok-short\n", "line 1: the token is shorter than 16"},
        {"a\0b\n", "NUL byte"},
    };

    if (!mkdtemp(dir)) {
        CHECK(0);
        return;
    }
    snprintf(path, sizeof(path), "%s/tokens", dir);
    for (size_t i = 0; i < sizeof(files) / sizeof(files[0]); i++) {
        FILE *f = fopen(path, "wb");
        size_t len = strlen(files[i].text);
        if (i == sizeof(files) / sizeof(files[0]) - 1)
            len = 4; /* "a\0b\n" */
        fwrite(files[i].text, 1, len, f);
        fclose(f);
        if (!files[i].needle) {
            CHECK_INT(parse(&c, env, err, sizeof(err), "--token-file", path, NULL), CFG_RUN);
            CHECK_INT(c.ntokens, 5);
            CHECK_INT(c.ntokens_static, 1);
            if (c.ntokens == 5) {
                CHECK_STR(c.token_list.v[0].name, "token-1");
                CHECK_STR(c.token_list.v[1].name, "ops");
                CHECK_STR(c.token_list.v[2].name, "fleet");
                CHECK_INT(c.token_list.v[2].scope, SRV_SCOPE_SELF);
                CHECK_STR(c.tokens[2], "fleet-tok-0123456789");
                CHECK_INT(c.token_list.v[3].scope, SRV_SCOPE_READ);
                CHECK_STR(c.token_list.v[4].name, "token-5");
                CHECK_STR(c.tokens[4], "bare-tok-0123456789");
            }
            cfg_release(&c);
            continue;
        }
        CHECK_INT(parse(&c, env, err, sizeof(err), "--token-file", path, NULL), CFG_EXIT_USAGE);
        if (!strstr(err, files[i].needle) || !strstr(err, "--token") ||
            strstr(err, "env-token") || strstr(err, "x-tok") || strstr(err, "X7tok")) {
            fprintf(stderr, "token file %zu: message '%s' lacks '%s' (or shows a token)\n", i,
                    err, files[i].needle);
            CHECK(0);
        }
    }
    unlink(path);
    rmdir(dir);
}

/* --peers / --peer-token: URLs validated, the token required (unless --allow-anonymous) and
 * never quoted in a message; the environment works like for every flag. */
static void test_peers_flags(void)
{
    struct cfg c;
    char err[512];
    const char *tok = "peer-secret-0123456789";
    const char *env[] = {"R53REG_PEERS", "http://127.0.0.1:8081,https://r2.internal:8443/",
                         "R53REG_PEER_TOKEN", "peer-secret-0123456789", NULL};
    static const char *const bad[] = {
        "ftp://127.0.0.1:8080", "http://", "http://127.0.0.1:0", "http://127.0.0.1:99999",
        "http://127.0.0.1:8080/path", "http://user@host:80", "http://h:80?x=1",
        "http://[::1", "http://[zz]:80", "127.0.0.1:8080", "http://a:80,,http://b:80",
        "http://a:80,", "http://a:80,http://a:80/",
    };

    CHECK_INT(parse(&c, env, err, sizeof(err), NULL), CFG_RUN);
    CHECK_INT(c.npeers, 2);
    if (c.npeers == 2) {
        CHECK_STR(c.peers[0], "http://127.0.0.1:8081");
        CHECK_STR(c.peers[1], "https://r2.internal:8443"); /* the trailing slash dropped */
    }
    CHECK_STR(c.peer_token, tok);
    cfg_release(&c);

    CHECK_INT(parse(&c, NULL, err, sizeof(err), "--peers", "http://[::1]:8080,http://127.0.0.2",
                    "--peer-token", tok, NULL),
              CFG_RUN);
    CHECK_INT(c.npeers, 2);
    cfg_release(&c);

    /* No token: refused, unless --allow-anonymous. */
    CHECK_INT(parse(&c, NULL, err, sizeof(err), "--peers", "http://127.0.0.1:8081", NULL),
              CFG_EXIT_USAGE);
    CHECK(strstr(err, "--peer-token") != NULL);
    CHECK_INT(parse(&c, NULL, err, sizeof(err), "--peers", "http://127.0.0.1:8081",
                    "--allow-anonymous", NULL),
              CFG_RUN);
    CHECK(c.peer_token == NULL);
    cfg_release(&c);

    /* A short token, or one with a blank: refused without quoting it. */
    CHECK_INT(parse(&c, NULL, err, sizeof(err), "--peers", "http://127.0.0.1:8081",
                    "--peer-token", "short-Secret9", NULL),
              CFG_EXIT_USAGE);
    CHECK(strstr(err, "--peer-token") != NULL && strstr(err, "short-Secret9") == NULL);
    CHECK_INT(parse(&c, NULL, err, sizeof(err), "--peer-token", "a long secret with blanks",
                    NULL),
              CFG_EXIT_USAGE);
    CHECK(strstr(err, "blanks") == NULL);

    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        if (parse(&c, NULL, err, sizeof(err), "--peers", bad[i], "--peer-token", tok, NULL) !=
                CFG_EXIT_USAGE ||
            !strstr(err, "--peers")) {
            fprintf(stderr, "--peers '%s' was not refused naming the flag: '%s'\n", bad[i], err);
            CHECK(0);
        }
    }
    /* Without --peers nothing changes. */
    CHECK_INT(parse(&c, NULL, err, sizeof(err), NULL), CFG_RUN);
    CHECK_INT(c.npeers, 0);
    CHECK(c.peers == NULL);
    cfg_release(&c);
}

int main(void)
{
    test_peers_flags();
    test_defaults();
    test_env_and_flags();
    test_api_limits();
    test_check_flags();
    test_bucketing_auto();
    test_tree_flags();
    test_bad_values();
    test_non_loopback_needs_token();
    test_security_flags();
    test_allow_special();
    test_token_file_scopes();
    return check_done("test_config");
}
