/*
 * config.c: the option table behind config.h. One row per option: flag name, kind, where the
 * value goes, default, bounds or choices, and help. --help is generated from the table, and so
 * is the environment variable name (R53REG_ + upper-cased flag with '_' for '-').
 *
 * Not thread-safe; runs once at startup.
 */
#include "server/config.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>

#include "util/cidr.h"
#include "util/log.h"
#include "util/xalloc.h"

enum kind { K_STR, K_UINT, K_SIZE, K_BOOL, K_CHOICE, K_FLAG, K_NUM };

struct opt {
    const char *name;
    enum kind kind;
    const char *def; /* default as text, NULL: none */
    unsigned long long min, max;
    const char *const *choices; /* K_CHOICE: NULL-terminated */
    const char *metavar;
    const char *help;
    double dmin, dmax; /* K_NUM: a decimal number (fractions allowed) in [dmin, dmax] */
};

static const char *const bucketing_choices[] = {"auto", "ordered", "balanced", "modulo", NULL};
static const char *const weights_choices[] = {"proportional", "equal", NULL};
static const char *const provider_choices[] = {"memory", "route53", NULL};
static const char *const level_choices[] = {"debug", "info", "warn", "error", NULL};
static const char *const commit_choices[] = {"group", "immediate", NULL};
static const char *const check_choices[] = {"off", "tcp", "http", "https", NULL};

enum opt_id {
    O_LISTEN, O_RECORD_NAME, O_TREE, O_TREE_AUTO, O_TREE_LABEL, O_BUCKETS, O_MAX_PER_BUCKET, O_MAX_ANSWER_BYTES, O_TTL, O_BUCKETING, O_WEIGHTS, O_COMMIT,
    O_DEFAULT_LEASE, O_CHECK, O_CHECK_PORT, O_CHECK_PATH, O_CHECK_STATUS, O_CHECK_INTERVAL_MS,
    O_CHECK_TIMEOUT_MS, O_CHECK_RISE, O_CHECK_FALL, O_CHECK_PARALLEL, O_MAX_DOWN_SHARE,
    O_RESYNC_INTERVAL,
    O_PROVIDER, O_STATE_FILE, O_ZONE_ID, O_AWS_ENDPOINT, O_AWS_REGION, O_API_RPS, O_API_BURST,
    O_API_CHANGE_RPS, O_INSYNC_TIMEOUT,
    O_TOKEN_FILE, O_TOKENS, O_ALLOW_ANONYMOUS, O_TRUSTED_PROXY, O_ALLOW_CIDR, O_ALLOW_SPECIAL,
    O_CLIENT_RPS,
    O_CLIENT_BURST, O_PEERS, O_PEER_TOKEN, O_TLS_CERT, O_TLS_KEY, O_MAX_CONNECTIONS, O_MAX_CONNECTIONS_PER_IP,
    O_CONNECTION_MEMORY, O_MAX_BODY, O_CLIENT_TIMEOUT, O_THREADS, O_SHUTDOWN_TIMEOUT, O_LOG_LEVEL,
    O_HELP, O_VERSION, O__COUNT
};

static const struct opt opts[O__COUNT] = {
    [O_LISTEN] = {"listen", K_STR, "127.0.0.1:8080", 0, 0, NULL, "ADDR:PORT",
                  "address to serve the API on ([V6]:PORT for IPv6; port 0 picks one)"},
    [O_RECORD_NAME] = {"record-name", K_STR, "app.example.com", 0, 0, NULL, "NAME",
                       "DNS name of the weighted record sets"},
    [O_TREE] = {"tree", K_FLAG, "0", 0, 1, NULL, NULL,
                "serve through an alias tree: buckets in up to 100 child names "
                "(<n>.<label>.<name>), weighted aliases at the name (100x the addresses)"},
    [O_TREE_AUTO] = {"tree-auto", K_FLAG, "0", 0, 1, NULL, NULL,
                     "grow a type into the alias tree while running when its buckets at the "
                     "name are 90% full, and fold it back below 70% of them"},
    [O_TREE_LABEL] = {"tree-label", K_STR, REG_TREE_LABEL_DEFAULT, 0, 0, NULL, "LABEL",
                      "the label of the child names (--tree)"},
    [O_BUCKETS] = {"buckets", K_UINT, "100", 1, REG_MAX_BUCKETS, NULL, "N",
                   "buckets per type that take new IPs (1..100; with --tree, per child)"},
    [O_MAX_PER_BUCKET] = {"max-per-bucket", K_UINT, "0", 0, REG_MAX_VALUES, NULL, "N",
                          "values per bucket (1..400; 0: as many as fit --max-answer-bytes)"},
    [O_MAX_ANSWER_BYTES] = {"max-answer-bytes", K_UINT, "1232", 512, 65535, NULL, "BYTES",
                            "DNS answer budget per record: 1232 fits one UDP packet for every "
                            "resolver since DNS Flag Day 2020 (65 A or 37 AAAA values)"},
    [O_TTL] = {"ttl", K_UINT, "60", 0, 2147483647ULL, NULL, "SECONDS",
               "TTL of a new weighted group (a group in the zone keeps its own; PUT /ttl "
               "changes it)"},
    [O_BUCKETING] = {"bucketing", K_CHOICE, "auto", 0, 0, bucketing_choices, "POLICY",
                     "ordered: the first bucket with room, the same on every replica (needs "
                     "--weights proportional); balanced: least-filled bucket; modulo: address "
                     "mod buckets; auto: ordered, but balanced with --weights equal or "
                     "--commit immediate"},
    [O_WEIGHTS] = {"weights", K_CHOICE, "proportional", 0, 0, weights_choices, "POLICY",
                   "proportional: weight = values in bucket; equal: weight 1"},
    [O_DEFAULT_LEASE] = {"default-lease", K_UINT, "0", 0, REG_MAX_LEASE, NULL, "SECONDS",
                         "registrations without a heartbeat within this expire (0: never)"},
    [O_CHECK] = {"check", K_CHOICE, "off", 0, 0, check_choices, "KIND",
                 "health-check every backend: tcp connect, or http/https GET of --check-path "
                 "(off: only backends registered with a check)"},
    [O_CHECK_PORT] = {"check-port", K_UINT, "0", 0, 65535, NULL, "N",
                      "port the checks connect to (needed with --check)"},
    [O_CHECK_PATH] = {"check-path", K_STR, "/", 0, 0, NULL, "PATH", "HTTP(S) check path"},
    [O_CHECK_STATUS] = {"check-status", K_STR, "200-399", 0, 0, NULL, "MIN-MAX",
                        "HTTP(S) statuses that pass"},
    [O_CHECK_INTERVAL_MS] = {"check-interval-ms", K_UINT, "2000", 10, 86400000, NULL, "MS",
                             "time between the starts of two checks of a backend"},
    [O_CHECK_TIMEOUT_MS] = {"check-timeout-ms", K_UINT, "1000", 1, 3600000, NULL, "MS",
                            "a check slower than this fails (connect included)"},
    [O_CHECK_RISE] = {"check-rise", K_UINT, "2", 1, 1000, NULL, "N",
                      "consecutive passing checks that return a down backend to DNS"},
    [O_CHECK_FALL] = {"check-fall", K_UINT, "3", 1, 1000, NULL, "N",
                      "consecutive failing checks that take a backend out of DNS"},
    [O_CHECK_PARALLEL] = {"check-parallel", K_UINT, "500", 1, 100000, NULL, "N",
                          "checks in flight at most"},
    [O_MAX_DOWN_SHARE] = {"max-down-share", K_NUM, "0.5", 0, 0, NULL, "F",
                          "fail-open: checks never take out more than this share of a type's "
                          "backends (0..1; 1: no limit)",
                          0, 1},
    [O_RESYNC_INTERVAL] = {"resync-interval", K_UINT, "60", 0, 86400, NULL, "SECONDS",
                           "re-read the zone this often and adopt other writers' changes "
                           "(replicas, the console; 0: only at start and on conflicts)"},
    [O_COMMIT] = {"commit", K_CHOICE, "group", 0, 0, commit_choices, "MODE",
                  "group: merge pending changes into few API calls; immediate: one call per "
                  "change"},
    [O_PROVIDER] = {"provider", K_CHOICE, "memory", 0, 0, provider_choices, "NAME",
                    "memory (embedded store) or route53"},
    [O_STATE_FILE] = {"state-file", K_STR, NULL, 0, 0, NULL, "PATH",
                      "journal file that makes the memory store survive restarts"},
    [O_ZONE_ID] = {"zone-id", K_STR, NULL, 0, 0, NULL, "ZONE",
                   "Route 53 hosted zone id (required with --provider route53)"},
    [O_AWS_ENDPOINT] = {"aws-endpoint", K_STR, NULL, 0, 0, NULL, "URL",
                        "Route 53 endpoint [https://route53.amazonaws.com]"},
    [O_AWS_REGION] = {"aws-region", K_STR, "us-east-1", 0, 0, NULL, "REGION",
                      "signing region of the Route 53 endpoint"},
    [O_API_RPS] = {"api-rps", K_NUM, "5", 0, 0, NULL, "N",
                   "Route 53 API calls per second, shared by all calls (fractions allowed; cut "
                   "on Throttling, regained slowly)",
                   0.01, 1000},
    [O_API_BURST] = {"api-burst", K_NUM, "1", 0, 0, NULL, "N",
                     "Route 53 calls that may go at once before --api-rps applies (1: evenly "
                     "spaced)",
                     1, 1000},
    [O_API_CHANGE_RPS] = {"api-change-rps", K_NUM, "10", 0, 0, NULL, "N",
                          "record sets changed per second in Route 53 (each DELETE or CREATE of "
                          "a set counts; an account-wide budget whose size AWS does not "
                          "publish; 0: no budget)",
                          0, 100000},
    [O_INSYNC_TIMEOUT] = {"insync-timeout", K_UINT, "120", 1, 3600, NULL, "SECONDS",
                          "how long ?wait=insync waits for Route 53 to report INSYNC"},
    [O_TOKEN_FILE] = {"token-file", K_STR, NULL, 0, 0, NULL, "PATH",
                      "bearer tokens, one '<admin|self|read> <name> <token>' per line (or a bare "
                      "token: admin); re-read on SIGHUP"},
    [O_TOKENS] = {"tokens", K_STR, NULL, 0, 0, NULL, "T1,T2",
                  "bearer tokens, comma separated, each scope:name:token or bare (admin); "
                  "prefer the env var or a file"},
    [O_ALLOW_ANONYMOUS] = {"allow-anonymous", K_FLAG, "0", 0, 1, NULL, NULL,
                           "allow mutations without a token on a non-loopback address or behind "
                           "--trusted-proxy"},
    [O_TRUSTED_PROXY] = {"trusted-proxy", K_STR, NULL, 0, 0, NULL, "CIDR[,CIDR]",
                         "peers whose X-Forwarded-For names the caller (right-most untrusted "
                         "entry)"},
    [O_ALLOW_CIDR] = {"allow-cidr", K_STR, NULL, 0, 0, NULL, "CIDR[,CIDR]",
                      "only addresses inside may be registered [any]"},
    [O_ALLOW_SPECIAL] = {"allow-special", K_FLAG, "0", 0, 1, NULL, NULL,
                         "allow registering loopback (127.0.0.0/8, ::1), link-local "
                         "(169.254.0.0/16, fe80::/10) and 0.0.0.0/8 addresses (tests, "
                         "single-host setups)"},
    [O_CLIENT_RPS] = {"client-rps", K_UINT, "20", 0, 1000000, NULL, "N",
                      "mutations per second per caller address (token bucket; 0: no limit)"},
    [O_CLIENT_BURST] = {"client-burst", K_UINT, "40", 1, 1000000, NULL, "N",
                        "mutations a caller may send at once before --client-rps applies"},
    [O_PEERS] = {"peers", K_STR, NULL, 0, 0, NULL, "URL[,URL]",
                 "base URLs (http(s)://host:port) of every replica writing the zone, the same "
                 "list on each (its own URL may be in it): they share --api-rps, confirm lease "
                 "expiries with each other and split the health checks"},
    [O_PEER_TOKEN] = {"peer-token", K_STR, NULL, 0, 0, NULL, "SECRET",
                      "bearer token the replicas of --peers send each other (16+ bytes; "
                      "required with --peers unless --allow-anonymous); prefer the env var"},
    [O_TLS_CERT] = {"tls-cert", K_STR, NULL, 0, 0, NULL, "PATH",
                    "serve HTTPS with this PEM certificate (chain); re-read on SIGHUP"},
    [O_TLS_KEY] = {"tls-key", K_STR, NULL, 0, 0, NULL, "PATH",
                   "the PEM private key of --tls-cert; re-read on SIGHUP"},
    [O_MAX_CONNECTIONS] = {"max-connections", K_UINT, "16000", 1, 100000, NULL, "N",
                           "concurrent connections (parked requests hold one each)"},
    [O_MAX_CONNECTIONS_PER_IP] = {"max-connections-per-ip", K_UINT, "64", 0, 100000, NULL, "N",
                                  "concurrent connections per TCP peer address (0: no cap)"},
    [O_CONNECTION_MEMORY] = {"connection-memory", K_SIZE, "8192", 4096, 1048576, NULL, "BYTES",
                             "memory per connection: caps the request line and headers"},
    [O_MAX_BODY] = {"max-body", K_SIZE, "1048576", 1, 1ULL << 30, NULL, "BYTES",
                    "largest request body"},
    [O_CLIENT_TIMEOUT] = {"client-timeout", K_UINT, "30", 1, 3600, NULL, "SECONDS",
                          "idle or slow connections are closed after this"},
    [O_THREADS] = {"threads", K_UINT, "4", 1, 256, NULL, "N", "HTTP worker threads"},
    [O_SHUTDOWN_TIMEOUT] = {"shutdown-timeout", K_UINT, "10", 0, 3600, NULL, "SECONDS",
                            "how long SIGTERM waits for requests in flight"},
    [O_LOG_LEVEL] = {"log-level", K_CHOICE, "info", 0, 0, level_choices, "LEVEL",
                     "debug, info, warn or error"},
    [O_HELP] = {"help", K_FLAG, NULL, 0, 0, NULL, NULL, "print this help and exit"},
    [O_VERSION] = {"version", K_FLAG, NULL, 0, 0, NULL, NULL, "print the version and exit"},
};

static void env_name(const char *flag, char *out, size_t n)
{
    size_t o = (size_t)snprintf(out, n, "R53REG_");
    for (const char *p = flag; *p && o + 1 < n; p++)
        out[o++] = *p == '-' ? '_' : (char)toupper((unsigned char)*p);
    out[o] = '\0';
}

static void usage(FILE *out)
{
    char env[64];
    fprintf(out, "Usage: r53reg [OPTION]...\n"
                 "Keep Route 53 weighted record sets in line with registered backend IPs.\n\n"
                 "Options (each also as an environment variable; flags win):\n");
    for (int i = 0; i < O__COUNT; i++) {
        char left[64];
        snprintf(left, sizeof(left), "--%s%s%s", opts[i].name, opts[i].metavar ? " " : "",
                 opts[i].metavar ? opts[i].metavar : "");
        fprintf(out, "  %-30s %s", left, opts[i].help);
        if (opts[i].def && opts[i].kind != K_FLAG)
            fprintf(out, " [%s]", opts[i].def);
        if (i != O_HELP && i != O_VERSION) {
            env_name(opts[i].name, env, sizeof(env));
            fprintf(out, " (%s)", env);
        }
        fputc('\n', out);
    }
}

/* Parse a decimal in [min, max]; -1 on error. */
static int parse_uint(const char *s, unsigned long long min, unsigned long long max,
                      unsigned long long *out)
{
    char *end;
    if (!*s || !isdigit((unsigned char)*s))
        return -1;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno || *end || v < min || v > max)
        return -1;
    *out = v;
    return 0;
}

static int parse_bool(const char *s, int *out)
{
    if (!strcmp(s, "1") || !strcasecmp(s, "true") || !strcasecmp(s, "yes") || !*s) {
        *out = 1;
        return 0;
    }
    if (!strcmp(s, "0") || !strcasecmp(s, "false") || !strcasecmp(s, "no")) {
        *out = 0;
        return 0;
    }
    return -1;
}

static int choice_index(const struct opt *o, const char *s)
{
    for (int i = 0; o->choices[i]; i++)
        if (!strcmp(o->choices[i], s))
            return i;
    return -1;
}

static int valid_dns_name(const char *s, char *norm, size_t n)
{
    size_t len = strlen(s), label = 0;
    if (len && s[len - 1] == '.')
        len--;
    if (len == 0 || len > REG_RECORD_NAME_MAX || len >= n)
        return -1;
    for (size_t i = 0; i < len; i++) {
        char c = (char)tolower((unsigned char)s[i]);
        if (c == '.') {
            if (label == 0)
                return -1;
            label = 0;
        } else if ((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '_') {
            if (++label > 63)
                return -1;
        } else {
            return -1;
        }
        norm[i] = c;
    }
    norm[len] = '\0';
    return label ? 0 : -1;
}

static int parse_listen(struct cfg *cfg, const char *s)
{
    char host[64];
    const char *colon;
    unsigned long long port;

    memset(&cfg->listen_addr, 0, sizeof(cfg->listen_addr));
    if (*s == '[') {
        const char *close = strchr(s, ']');
        if (!close || close[1] != ':' || (size_t)(close - s - 1) >= sizeof(host))
            return -1;
        memcpy(host, s + 1, (size_t)(close - s - 1));
        host[close - s - 1] = '\0';
        colon = close + 1;
    } else {
        colon = strrchr(s, ':');
        if (!colon || (size_t)(colon - s) >= sizeof(host))
            return -1;
        memcpy(host, s, (size_t)(colon - s));
        host[colon - s] = '\0';
    }
    if (parse_uint(colon + 1, 0, 65535, &port))
        return -1;
    if (*s == '[') {
        struct sockaddr_in6 *a6 = (struct sockaddr_in6 *)&cfg->listen_addr;
        if (inet_pton(AF_INET6, host, &a6->sin6_addr) != 1)
            return -1;
        a6->sin6_family = AF_INET6;
        a6->sin6_port = htons((uint16_t)port);
        cfg->listen_addr_len = sizeof(*a6);
        cfg->listen_loopback = IN6_IS_ADDR_LOOPBACK(&a6->sin6_addr);
    } else {
        struct sockaddr_in *a4 = (struct sockaddr_in *)&cfg->listen_addr;
        if (inet_pton(AF_INET, host, &a4->sin_addr) != 1)
            return -1;
        a4->sin_family = AF_INET;
        a4->sin_port = htons((uint16_t)port);
        cfg->listen_addr_len = sizeof(*a4);
        cfg->listen_loopback = (ntohl(a4->sin_addr.s_addr) >> 24) == 127;
    }
    return 0;
}

/* R53REG_TOKENS / --tokens: comma-separated entries (server/auth.h). */
static int add_tokens(struct cfg *cfg, const char *v, FILE *err)
{
    char detail[200];
    size_t entry = 1;
    for (const char *p = v;; entry++) {
        const char *comma = strchr(p, ',');
        if (srv_tokens_add_entry(&cfg->token_list, p, comma ? (size_t)(comma - p) : strlen(p),
                                 detail, sizeof(detail))) {
            fprintf(err, "r53reg: --tokens: entry %zu: %s\n", entry, detail);
            return -1;
        }
        if (!comma)
            return 0;
        p = comma + 1;
    }
}

/* Both lists of ranges are checked here so a typo exits 2 naming its flag. */
static int check_cidrs(const char *flag, const char *v, FILE *err)
{
    struct cidr_set set;
    char detail[200];
    if (cidr_set_parse(&set, v, detail, sizeof(detail))) {
        fprintf(err, "r53reg: --%s: %s\n", flag, detail);
        return -1;
    }
    cidr_set_release(&set);
    return 0;
}

static void peers_clear(struct cfg *cfg)
{
    for (size_t i = 0; i < cfg->npeers; i++)
        free(cfg->peers[i]);
    free(cfg->peers);
    cfg->peers = NULL;
    cfg->npeers = 0;
}

/* One --peers entry s[0..len): http(s)://host[:port] with an optional trailing '/', host a
 * name, an IPv4 address or [IPv6]; stored without the slash. -1 with a message. */
static int add_peer(struct cfg *cfg, const char *s, size_t len, FILE *err)
{
    char url[CFG_PEER_URL_MAX + 1];
    const char *host, *end, *port = NULL;
    size_t hlen;

    if (len && s[len - 1] == '/')
        len--;
    if (len > CFG_PEER_URL_MAX) {
        fprintf(err, "r53reg: --peers: an entry is longer than %d bytes\n", CFG_PEER_URL_MAX);
        return -1;
    }
    memcpy(url, s, len);
    url[len] = '\0';
    if (!strncmp(url, "http://", 7))
        host = url + 7;
    else if (!strncmp(url, "https://", 8))
        host = url + 8;
    else
        goto bad;
    end = url + len;
    if (*host == '[') {
        const char *close = strchr(host, ']');
        char v6[64];
        if (!close || (size_t)(close - host - 1) >= sizeof(v6))
            goto bad;
        memcpy(v6, host + 1, (size_t)(close - host - 1));
        v6[close - host - 1] = '\0';
        {
            struct in6_addr a;
            if (inet_pton(AF_INET6, v6, &a) != 1)
                goto bad;
        }
        if (close[1] == ':')
            port = close + 2;
        else if (close[1])
            goto bad;
    } else {
        const char *colon = strchr(host, ':');
        hlen = colon ? (size_t)(colon - host) : (size_t)(end - host);
        if (!hlen || strspn(host, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
                                  "0123456789.-") != hlen)
            goto bad;
        if (colon)
            port = colon + 1;
    }
    if (port) {
        unsigned long long p;
        if (parse_uint(port, 1, 65535, &p))
            goto bad;
    }
    if (cfg->npeers == CFG_PEERS_MAX) {
        fprintf(err, "r53reg: --peers: more than %d replicas\n", CFG_PEERS_MAX);
        return -1;
    }
    for (size_t i = 0; i < cfg->npeers; i++)
        if (!strcmp(cfg->peers[i], url)) {
            fprintf(err, "r53reg: --peers: '%s' is listed twice\n", url);
            return -1;
        }
    cfg->peers = xrealloc(cfg->peers, (cfg->npeers + 1) * sizeof(*cfg->peers));
    cfg->peers[cfg->npeers++] = xstrdup(url);
    return 0;
bad:
    fprintf(err, "r53reg: --peers: '%s' is not a base URL http(s)://HOST[:PORT] (no path, "
                 "query or user)\n", url);
    return -1;
}

static int set_peers(struct cfg *cfg, const char *v, FILE *err)
{
    peers_clear(cfg);
    for (const char *p = v; *p;) {
        const char *comma = strchr(p, ',');
        size_t len = comma ? (size_t)(comma - p) : strlen(p);
        while (len && (*p == ' ')) /* "a, b" */
            p++, len--;
        if (!len) {
            fprintf(err, "r53reg: --peers: an empty entry\n");
            return -1;
        }
        if (add_peer(cfg, p, len, err))
            return -1;
        if (!comma)
            break;
        p = comma + 1;
        if (!*p) {
            fprintf(err, "r53reg: --peers: an empty entry\n");
            return -1;
        }
    }
    return 0;
}

static void wipe_str(char **s)
{
    if (*s) {
        memset(*s, 0, strlen(*s));
        free(*s);
        *s = NULL;
    }
}

static void set_str(char **dst, const char *v)
{
    free(*dst);
    *dst = *v ? xstrdup(v) : NULL;
}

/* Store value v of option i into cfg; -1 with a message naming the flag. */
static int set_opt(struct cfg *cfg, int i, const char *v, FILE *err)
{
    const struct opt *o = &opts[i];
    unsigned long long u = 0;
    double d = 0;
    int b = 0, c = 0;

    switch (o->kind) {
    case K_UINT:
    case K_SIZE:
        if (parse_uint(v, o->min, o->max, &u)) {
            fprintf(err, "r53reg: --%s: '%s' is not a whole number in %llu..%llu\n", o->name, v,
                    o->min, o->max);
            return -1;
        }
        break;
    case K_BOOL:
    case K_FLAG:
        if (parse_bool(v, &b)) {
            fprintf(err, "r53reg: --%s: '%s' is not a boolean (1/0/true/false)\n", o->name, v);
            return -1;
        }
        break;
    case K_CHOICE:
        c = choice_index(o, v);
        if (c < 0) {
            fprintf(err, "r53reg: --%s: '%s' is not one of:", o->name, v);
            for (int k = 0; o->choices[k]; k++)
                fprintf(err, " %s", o->choices[k]);
            fputc('\n', err);
            return -1;
        }
        break;
    case K_NUM: {
        char *end;
        errno = 0;
        d = strtod(v, &end);
        if (!*v || isspace((unsigned char)*v) || *end || errno || !(d >= o->dmin && d <= o->dmax)) {
            fprintf(err, "r53reg: --%s: '%s' is not a number in %g..%g\n", o->name, v, o->dmin,
                    o->dmax);
            return -1;
        }
        break;
    }
    case K_STR:
        break;
    }

    switch ((enum opt_id)i) {
    case O_LISTEN:
        if (parse_listen(cfg, v)) {
            fprintf(err, "r53reg: --listen: '%s' is not ADDR:PORT or [V6ADDR]:PORT\n", v);
            return -1;
        }
        free(cfg->listen);
        cfg->listen = xstrdup(v);
        break;
    case O_RECORD_NAME:
        if (valid_dns_name(v, cfg->reg.record_name, sizeof(cfg->reg.record_name))) {
            fprintf(err, "r53reg: --record-name: '%s' is not a DNS name (labels of a-z 0-9 - _, "
                         "at most 63 each and %d in all, so that _draining.<name> fits in 253)\n",
                    v, REG_RECORD_NAME_MAX);
            return -1;
        }
        break;
    /* Both flags are kept apart until validation refuses the pair. */
    case O_TREE: cfg->reg.tree = b ? cfg->reg.tree | REG_TREE_ON : cfg->reg.tree & ~REG_TREE_ON; break;
    case O_TREE_AUTO:
        cfg->reg.tree = b ? cfg->reg.tree | REG_TREE_AUTO : cfg->reg.tree & ~REG_TREE_AUTO;
        break;
    case O_TREE_LABEL: {
        size_t len = strlen(v);
        int bad = len == 0 || len > REG_TREE_LABEL_MAX;
        for (size_t k = 0; k < len; k++)
            bad |= !(islower((unsigned char)v[k]) || isdigit((unsigned char)v[k]) ||
                     v[k] == '-' || v[k] == '_');
        if (bad) {
            fprintf(err, "r53reg: --tree-label: '%s' is not one DNS label of a-z 0-9 - _ (at "
                         "most %d)\n", v, REG_TREE_LABEL_MAX);
            return -1;
        }
        snprintf(cfg->reg.tree_label, sizeof(cfg->reg.tree_label), "%s", v);
        break;
    }
    case O_BUCKETS: cfg->reg.buckets = (unsigned)u; break;
    case O_MAX_PER_BUCKET: cfg->reg.max_per_bucket = (unsigned)u; break;
    case O_MAX_ANSWER_BYTES: cfg->reg.max_answer_bytes = (unsigned)u; break;
    case O_TTL: cfg->reg.ttl = (unsigned)u; break;
    case O_BUCKETING:
        cfg->bucketing_auto = c == 0;
        cfg->reg.bucketing = c ? (enum reg_bucketing)(c - 1) : REG_BUCKETING_ORDERED;
        break;
    case O_WEIGHTS: cfg->reg.weights = (enum reg_weights)c; break;
    case O_DEFAULT_LEASE: cfg->reg.default_lease = (unsigned)u; break;
    case O_CHECK: cfg->check.kind = c ? (enum hc_kind)c : HC_KIND_INHERIT; break;
    case O_CHECK_PORT: cfg->check.port = (unsigned)u; break;
    case O_CHECK_PATH:
        if (*v != '/' || strlen(v) > HC_PATH_MAX || strspn(v, "!\"#$%&'()*+,-./0123456789:;<=>?@"
                                                          "ABCDEFGHIJKLMNOPQRSTUVWXYZ[\\]^_`"
                                                          "abcdefghijklmnopqrstuvwxyz{|}~") !=
                                                       strlen(v)) {
            fprintf(err, "r53reg: --check-path: '%s' must start with '/' and hold only printable "
                         "ASCII without spaces\n", v);
            return -1;
        }
        free(cfg->check_path);
        cfg->check_path = xstrdup(v);
        cfg->check.path = cfg->check_path;
        break;
    case O_CHECK_STATUS:
        if (hc_parse_status_range(v, &cfg->check.status_min, &cfg->check.status_max)) {
            fprintf(err, "r53reg: --check-status: '%s' is not a range MIN-MAX within 100-599\n",
                    v);
            return -1;
        }
        break;
    case O_CHECK_INTERVAL_MS: cfg->check.interval_ms = (unsigned)u; break;
    case O_CHECK_TIMEOUT_MS: cfg->check.timeout_ms = (unsigned)u; break;
    case O_CHECK_RISE: cfg->check.rise = (unsigned)u; break;
    case O_CHECK_FALL: cfg->check.fall = (unsigned)u; break;
    case O_CHECK_PARALLEL: cfg->check_parallel = (unsigned)u; break;
    case O_MAX_DOWN_SHARE: cfg->reg.max_down_share = d; break;
    case O_RESYNC_INTERVAL: cfg->reg.resync_ms = (unsigned)u * 1000; break;
    case O_COMMIT: cfg->reg.commit = c ? REG_COMMIT_IMMEDIATE : REG_COMMIT_GROUP; break;
    case O_PROVIDER: cfg->provider = (enum cfg_provider)c; break;
    case O_STATE_FILE:
        free(cfg->state_file);
        cfg->state_file = *v ? xstrdup(v) : NULL;
        break;
    case O_ZONE_ID:
        if (*v && (strlen(v) > 64 || strspn(v, "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789/hostedzn") !=
                                          strlen(v))) {
            fprintf(err, "r53reg: --zone-id: '%s' is not a hosted zone id (Z...)\n", v);
            return -1;
        }
        free(cfg->zone_id);
        cfg->zone_id = *v ? xstrdup(v) : NULL;
        break;
    case O_AWS_ENDPOINT:
        if (*v && strncmp(v, "https://", 8) && strncmp(v, "http://", 7)) {
            fprintf(err, "r53reg: --aws-endpoint: '%s' is not an http(s) URL\n", v);
            return -1;
        }
        free(cfg->aws_endpoint);
        cfg->aws_endpoint = *v ? xstrdup(v) : NULL;
        break;
    case O_AWS_REGION:
        free(cfg->aws_region);
        cfg->aws_region = xstrdup(v);
        break;
    case O_API_RPS: cfg->api_rps = d; break;
    case O_API_BURST: cfg->api_burst = d; break;
    case O_API_CHANGE_RPS: cfg->api_change_rps = d; break;
    case O_INSYNC_TIMEOUT: cfg->insync_timeout = (unsigned)u; break;
    case O_TOKEN_FILE:
        free(cfg->token_file);
        cfg->token_file = *v ? xstrdup(v) : NULL;
        break;
    case O_TOKENS:
        if (add_tokens(cfg, v, err))
            return -1;
        break;
    case O_ALLOW_ANONYMOUS: cfg->allow_anonymous = b; break;
    case O_ALLOW_SPECIAL: cfg->allow_special = b; break;
    case O_TRUSTED_PROXY:
        if (check_cidrs(o->name, v, err))
            return -1;
        set_str(&cfg->trusted_proxy, v);
        break;
    case O_ALLOW_CIDR:
        if (check_cidrs(o->name, v, err))
            return -1;
        set_str(&cfg->allow_cidr, v);
        break;
    case O_CLIENT_RPS: cfg->client_rps = (unsigned)u; break;
    case O_CLIENT_BURST: cfg->client_burst = (unsigned)u; break;
    case O_PEERS:
        if (set_peers(cfg, v, err))
            return -1;
        break;
    case O_PEER_TOKEN: {
        size_t len = strlen(v);
        int bad = 0;
        for (size_t k = 0; k < len; k++)
            bad |= (unsigned char)v[k] <= ' ' || v[k] == 0x7f;
        if (len && (len < SRV_TOKEN_MIN || len > SRV_TOKEN_MAX || bad)) {
            /* never quote it: it is a secret */
            fprintf(err, "r53reg: --peer-token: must be %d..%d bytes without whitespace or "
                         "control characters\n", SRV_TOKEN_MIN, SRV_TOKEN_MAX);
            return -1;
        }
        wipe_str(&cfg->peer_token);
        cfg->peer_token = len ? xstrdup(v) : NULL;
        break;
    }
    case O_TLS_CERT: set_str(&cfg->tls_cert, v); break;
    case O_TLS_KEY: set_str(&cfg->tls_key, v); break;
    case O_MAX_CONNECTIONS: cfg->max_connections = (unsigned)u; break;
    case O_MAX_CONNECTIONS_PER_IP: cfg->max_connections_per_ip = (unsigned)u; break;
    case O_CONNECTION_MEMORY: cfg->connection_memory = (size_t)u; break;
    case O_MAX_BODY: cfg->max_body = (size_t)u; break;
    case O_CLIENT_TIMEOUT: cfg->client_timeout = (unsigned)u; break;
    case O_THREADS: cfg->threads = (unsigned)u; break;
    case O_SHUTDOWN_TIMEOUT: cfg->shutdown_timeout = (unsigned)u; break;
    case O_LOG_LEVEL: cfg->log_level = c; break;
    case O_HELP:
    case O_VERSION:
    case O__COUNT:
        break;
    }
    return 0;
}

static int find_opt(const char *name, size_t len)
{
    for (int i = 0; i < O__COUNT; i++)
        if (strlen(opts[i].name) == len && !strncmp(opts[i].name, name, len))
            return i;
    return -1;
}

enum cfg_result cfg_parse(struct cfg *cfg, int argc, char **argv, cfg_getenv_fn env, FILE *out,
                          FILE *err)
{
    char ename[64];

    memset(cfg, 0, sizeof(*cfg));
    if (!env)
        env = (cfg_getenv_fn)getenv;
    /* Defaults, then the environment. */
    for (int i = 0; i < O__COUNT; i++)
        if (opts[i].def && set_opt(cfg, i, opts[i].def, err))
            goto usage;
    for (int i = 0; i < O__COUNT; i++) {
        const char *v;
        if (i == O_HELP || i == O_VERSION)
            continue;
        env_name(opts[i].name, ename, sizeof(ename));
        v = env(ename);
        if (v && set_opt(cfg, i, v, err)) {
            fprintf(err, "r53reg: (from the environment variable %s)\n", ename);
            goto usage;
        }
    }
    /* Flags. */
    for (int a = 1; a < argc; a++) {
        const char *arg = argv[a], *val = NULL, *eq;
        int i;
        if (strncmp(arg, "--", 2) != 0) {
            fprintf(err, "r53reg: unexpected argument '%s' (options start with --)\n", arg);
            goto usage;
        }
        eq = strchr(arg + 2, '=');
        i = find_opt(arg + 2, eq ? (size_t)(eq - arg - 2) : strlen(arg + 2));
        if (i < 0) {
            fprintf(err, "r53reg: unknown option '%s'\n", arg);
            goto usage;
        }
        if (i == O_HELP) {
            usage(out);
            cfg_release(cfg);
            return CFG_EXIT_OK;
        }
        if (i == O_VERSION) {
            fprintf(out, "r53reg %s\n", R53REG_VERSION);
            cfg_release(cfg);
            return CFG_EXIT_OK;
        }
        if (eq) {
            val = eq + 1;
        } else if (opts[i].kind == K_FLAG) {
            val = "1";
        } else if (a + 1 < argc) {
            val = argv[++a];
        } else {
            fprintf(err, "r53reg: --%s needs a value\n", opts[i].name);
            goto usage;
        }
        if (set_opt(cfg, i, val, err))
            goto usage;
    }
    cfg->ntokens_static = cfg->token_list.n;
    if (cfg->token_file) {
        char detail[300];
        if (srv_tokens_load_file(&cfg->token_list, cfg->token_file, detail, sizeof(detail))) {
            fprintf(err, "r53reg: --token-file: %s\n", detail);
            goto usage;
        }
    }
    {
        char detail[200];
        if (srv_tokens_check(&cfg->token_list, detail, sizeof(detail))) {
            fprintf(err, "r53reg: --tokens/--token-file: %s\n", detail);
            goto usage;
        }
    }
    cfg->ntokens = cfg->token_list.n;
    cfg->tokens = xcalloc(cfg->ntokens ? cfg->ntokens : 1, sizeof(*cfg->tokens));
    for (size_t i = 0; i < cfg->ntokens; i++)
        cfg->tokens[i] = cfg->token_list.v[i].secret;
    if (!cfg->tls_cert != !cfg->tls_key) {
        fprintf(err, "r53reg: --tls-cert and --tls-key go together (HTTPS needs both)\n");
        goto usage;
    }
    if (cfg->provider == CFG_PROVIDER_ROUTE53 && !cfg->zone_id) {
        fprintf(err, "r53reg: --provider route53 needs --zone-id (the hosted zone holding "
                     "--record-name)\n");
        goto usage;
    }
    if (cfg->check.kind != HC_KIND_INHERIT && !cfg->check.port) {
        fprintf(err, "r53reg: --check %s needs --check-port (the port of the backends to "
                     "check)\n", check_choices[cfg->check.kind]);
        goto usage;
    }
    if (cfg->check.timeout_ms > cfg->check.interval_ms) {
        fprintf(err, "r53reg: --check-timeout-ms %u exceeds --check-interval-ms %u (a check must "
                     "end before the next starts)\n", cfg->check.timeout_ms,
                cfg->check.interval_ms);
        goto usage;
    }
    /* Ordered placement fills buckets unevenly: only weight = values keeps shares equal. In
     * immediate mode it would put every registration of a burst behind one bucket's writer,
     * one call each: auto spreads them instead. */
    /* Route 53 may have other writers (replicas, the console): "not registered" only after a
     * fresh read, at most one listing (a few calls) per 10 call tokens of --api-rps, 1 s at
     * least. The embedded store has none: this process is its only writer. */
    if (cfg->provider == CFG_PROVIDER_ROUTE53) {
        double ms = 10000.0 / cfg->api_rps;
        cfg->reg.confirm_ms = ms < 1000 ? 1000 : ms > 60000 ? 60000 : (unsigned)ms;
    }
    if (cfg->bucketing_auto && (cfg->reg.weights == REG_WEIGHTS_EQUAL ||
                                cfg->reg.commit == REG_COMMIT_IMMEDIATE))
        cfg->reg.bucketing = REG_BUCKETING_BALANCED;
    if (cfg->reg.bucketing == REG_BUCKETING_ORDERED && cfg->reg.weights == REG_WEIGHTS_EQUAL) {
        fprintf(err, "r53reg: --bucketing ordered needs --weights proportional (ordered "
                     "placement fills buckets unevenly, so equal weights would give the IPs "
                     "of a fuller bucket a smaller share)\n");
        goto usage;
    }
    if (cfg->reg.tree == (REG_TREE_ON | REG_TREE_AUTO)) {
        fprintf(err, "r53reg: --tree and --tree-auto: choose one (--tree serves through the "
                     "tree from the start, --tree-auto grows into it when the name fills)\n");
        goto usage;
    }
    {
        /* The longest set identifier: "<name>_t99" (an alias) or "99.<label>.<name>_99". */
        size_t rn = strlen(cfg->reg.record_name);
        size_t longest =
            cfg->reg.tree ? rn + 3 + REG_TREE_NAME_EXTRA(strlen(reg_tree_label(&cfg->reg)))
                          : rn + 3;
        if (longest > REG_SET_ID_LIMIT) {
            fprintf(err, "r53reg: --record-name: '%s' is too long: its set identifiers (%s) "
                         "would be %zu characters, and Route 53 takes at most %d\n",
                    cfg->reg.record_name,
                    cfg->reg.tree ? "99.<label>.<name>_99" : "<name>_99", longest,
                    REG_SET_ID_LIMIT);
            goto usage;
        }
    }
    /* The set identifier's limit also keeps a child's name within REG_RECORD_NAME_MAX. */
    if (cfg->reg.tree) {
        if (cfg->reg.commit != REG_COMMIT_GROUP) {
            fprintf(err, "r53reg: --tree%s needs --commit group (the committer writes the "
                         "aliases with the buckets they serve)\n",
                    cfg->reg.tree == REG_TREE_AUTO ? "-auto" : "");
            goto usage;
        }
        if (cfg->reg.weights == REG_WEIGHTS_EQUAL) {
            fprintf(err, "r53reg: --tree%s needs --weights proportional (each alias is weighted "
                         "by what its child serves)\n",
                    cfg->reg.tree == REG_TREE_AUTO ? "-auto" : "");
            goto usage;
        }
        if (cfg->reg.bucketing == REG_BUCKETING_MODULO) {
            fprintf(err, "r53reg: --tree%s needs --bucketing ordered or balanced (children "
                         "are filled evenly, which an address's modulo cannot follow)\n",
                    cfg->reg.tree == REG_TREE_AUTO ? "-auto" : "");
            goto usage;
        }
    }
    if (cfg->state_file && cfg->provider != CFG_PROVIDER_MEMORY) {
        fprintf(err, "r53reg: --state-file applies to --provider memory only\n");
        goto usage;
    }
    if (!cfg->listen_loopback && cfg->ntokens == 0 && !cfg->allow_anonymous) {
        fprintf(err,
                "r53reg: --listen %s is not a loopback address and no token is configured: "
                "anyone who can reach it could change DNS. Configure --token-file (or "
                "R53REG_TOKENS), or pass --allow-anonymous to accept that.\n",
                cfg->listen);
        goto usage;
    }
    if (cfg->npeers && !cfg->peer_token && !cfg->allow_anonymous) {
        fprintf(err, "r53reg: --peers needs --peer-token (or R53REG_PEER_TOKEN), the secret the "
                     "replicas show each other, or --allow-anonymous to accept anyone on the "
                     "/fleet/ endpoints\n");
        goto usage;
    }
    /* A trusted proxy means remote callers, even on a loopback listener. */
    if (cfg->trusted_proxy && cfg->ntokens == 0 && !cfg->allow_anonymous) {
        fprintf(err,
                "r53reg: --trusted-proxy %s forwards remote callers and no token is configured: "
                "anyone behind the proxy could change DNS. Configure --token-file (or "
                "R53REG_TOKENS), or pass --allow-anonymous to accept that.\n",
                cfg->trusted_proxy);
        goto usage;
    }
    return CFG_RUN;
usage:
    cfg_release(cfg);
    return CFG_EXIT_USAGE;
}

void cfg_release(struct cfg *cfg)
{
    if (!cfg)
        return;
    srv_tokens_release(&cfg->token_list);
    free(cfg->tokens);
    peers_clear(cfg);
    wipe_str(&cfg->peer_token);
    free(cfg->trusted_proxy);
    free(cfg->allow_cidr);
    free(cfg->tls_cert);
    free(cfg->tls_key);
    free(cfg->listen);
    free(cfg->state_file);
    free(cfg->token_file);
    free(cfg->zone_id);
    free(cfg->aws_endpoint);
    free(cfg->aws_region);
    free(cfg->check_path);
    memset(cfg, 0, sizeof(*cfg));
}
