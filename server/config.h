/*
 * config.h: the configuration table. Each option is a flag --name and an environment variable
 * R53REG_<NAME> (dashes become underscores); flags win over the environment, the environment
 * over defaults. Parsing validates every value and names the flag in its message.
 */
#ifndef R53REG_SERVER_CONFIG_H
#define R53REG_SERVER_CONFIG_H

#include <stddef.h>
#include <stdio.h>
#include <sys/socket.h>

#include "registry/registry.h"
#include "server/auth.h"

enum cfg_provider { CFG_PROVIDER_MEMORY, CFG_PROVIDER_ROUTE53 };

#define CFG_PEERS_MAX 16     /* --peers entries */
#define CFG_PEER_URL_MAX 1000 /* bytes of one --peers entry */

struct cfg {
    char *listen; /* "ADDR:PORT" or "[V6]:PORT" as given */
    struct sockaddr_storage listen_addr;
    socklen_t listen_addr_len;
    int listen_loopback;

    struct reg_options reg; /* record name, buckets, capacity, ttl, policies */
    int bucketing_auto;     /* --bucketing auto: resolved once every flag is read */
    /* Health checks: check.kind HC_KIND_INHERIT means --check off (only backends registered
     * with a check of their own are checked); the rest are the engine's defaults. */
    struct hc_check check;
    char *check_path; /* owned; check.path points here */
    unsigned check_parallel;
    enum cfg_provider provider;
    char *state_file;
    char *zone_id;      /* route53 */
    char *aws_endpoint; /* route53; NULL: the real one */
    char *aws_region;
    double api_rps;        /* calls per second */
    double api_burst;      /* calls at once */
    double api_change_rps; /* record sets changed per second; 0: no budget */
    unsigned insync_timeout; /* seconds */

    char *token_file;
    /* Every token: R53REG_TOKENS/--tokens first (the first ntokens_static), then the token
     * file's. Owned; secrets wiped on release. */
    struct srv_token_list token_list;
    size_t ntokens_static;
    char **tokens; /* the secrets of token_list, in order (pointers into it) */
    size_t ntokens;
    int allow_anonymous;
    char *trusted_proxy; /* --trusted-proxy as given (validated), or NULL */
    char *allow_cidr;    /* --allow-cidr as given (validated), or NULL: any address */
    int allow_special;   /* loopback, link-local and 0.0.0.0/8 may be registered */
    unsigned client_rps;   /* mutations per second per caller address; 0: no limit */
    unsigned client_burst; /* bucket size of that limit */
    unsigned max_connections_per_ip; /* 0: no cap */
    char **peers;      /* --peers: base URLs without a trailing '/', validated; owned */
    size_t npeers;
    char *peer_token;  /* --peer-token; NULL: none; wiped on release */
    char *tls_cert; /* PEM files: both or neither */
    char *tls_key;

    unsigned max_connections;
    size_t connection_memory;
    size_t max_body;
    unsigned client_timeout;   /* seconds */
    unsigned threads;          /* MHD worker threads */
    unsigned shutdown_timeout; /* seconds */
    int log_level;
};

enum cfg_result { CFG_RUN = 0, CFG_EXIT_OK = 1, CFG_EXIT_USAGE = 2 };

/* getenv-like lookup; tests pass their own. */
typedef const char *(*cfg_getenv_fn)(const char *name);

/*
 * Fill cfg from defaults, the environment (through env, or getenv when NULL) and argv.
 * --help and --version print to out and return CFG_EXIT_OK; a bad value prints one message
 * naming the flag to err and returns CFG_EXIT_USAGE. On CFG_RUN the caller must
 * cfg_release(). On other results cfg holds nothing.
 */
enum cfg_result cfg_parse(struct cfg *cfg, int argc, char **argv, cfg_getenv_fn env, FILE *out,
                          FILE *err);

/* Free everything cfg owns (tokens are wiped). Accepts a zeroed cfg. */
void cfg_release(struct cfg *cfg);

#endif
