/*
 * main.c: the r53reg process. Parse the configuration, create the provider and the registry,
 * load the buckets, serve HTTP, reload the token file and the TLS certificate on SIGHUP, and
 * stop gracefully on SIGTERM/SIGINT. Everything else lives in the core library (server/,
 * handlers/, registry/, aws/, util/).
 *
 * Signals are blocked in every thread and taken synchronously here with sigwait(). The start
 * (credentials, the zone check, the initial load: network calls that may take minutes against
 * a slow upstream) runs in its own thread while this one waits for signals, so SIGTERM/SIGINT
 * during the start ends the process at once (nothing has been acknowledged yet).
 */
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include "handlers/api.h"
#include "registry/provider.h"
#include "registry/provider_memory.h"
#include "registry/provider_route53.h"
#include "registry/registry.h"
#include "server/config.h"
#include "server/httpd.h"
#include "server/peers.h"
#include "util/log.h"

/* Raise the soft fd limit to the hard one: connections are file descriptors. */
static void raise_fd_limit(void)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
    }
}

static enum rc_code open_provider(const struct cfg *cfg, struct reg_provider **prov, char *detail,
                                  size_t n)
{
    struct reg_route53_options ro;
    struct awscred_options co;

    if (cfg->provider == CFG_PROVIDER_MEMORY) {
        enum rc_code rc = reg_provider_memory_create(cfg->state_file, prov, detail, n);
        if (rc == RC_OK)
            reg_provider_memory_options(*prov, &cfg->reg);
        return rc;
    }
    memset(&ro, 0, sizeof(ro));
    memset(&co, 0, sizeof(co));
    ro.reg = &cfg->reg;
    ro.zone_id = cfg->zone_id;
    ro.endpoint = cfg->aws_endpoint;
    ro.region = cfg->aws_region;
    ro.rps = cfg->api_rps;
    ro.burst = cfg->api_burst; /* default 1: evenly spaced calls leave the account's burst to
                                  the other tools that share it */
    ro.change_rps = cfg->api_change_rps;
    ro.cred_options = &co;
    return reg_provider_route53_create(&ro, prov, detail, n);
}

/* --max-per-bucket above what fits --max-answer-bytes: allowed, but say what it costs. */
static void warn_answer_size(const struct reg_options *o)
{
    unsigned budget = o->max_answer_bytes ? o->max_answer_bytes : REG_ANSWER_BYTES_DEFAULT;
    unsigned fit_a = reg_answer_capacity(o->record_name, REG_A, budget);
    unsigned fit_aaaa = reg_answer_capacity(o->record_name, REG_AAAA, budget);
    if (o->max_per_bucket > fit_aaaa)
        log_warn("msg=\"--max-per-bucket holds more values than fit --max-answer-bytes: a full "
                 "record's DNS answer is truncated and asked again over TCP, and stub resolvers "
                 "without TCP fallback (musl before 1.2.4) fail to resolve it\" "
                 "max_per_bucket=%u max_answer_bytes=%u fit_a=%u fit_aaaa=%u "
                 "answer_bytes_a=%zu answer_bytes_aaaa=%zu",
                 o->max_per_bucket, budget, fit_a, fit_aaaa,
                 reg_answer_bytes(o->record_name, REG_A, o->max_per_bucket),
                 reg_answer_bytes(o->record_name, REG_AAAA, o->max_per_bucket));
}

/* What the start thread builds; main() owns it once done is set. */
struct startup {
    const struct cfg *cfg;
    struct reg_provider *prov;
    struct reg_registry *reg;
    struct srv_peers *peers; /* --peers, or NULL */
    char detail[REG_DETAIL_MAX];
    int ok;
    atomic_int phase; /* 0 opening the store, 1 loading the buckets */
    atomic_int done;
};

/* Open the store, create the registry and the checker, load the buckets. Logs its failure. */
static void *startup_run(void *arg)
{
    struct startup *st = arg;
    const struct cfg *cfg = st->cfg;

    if (open_provider(cfg, &st->prov, st->detail, sizeof(st->detail))) {
        log_error("msg=\"cannot open the store\" provider=%s detail=\"%s\"",
                  cfg->provider == CFG_PROVIDER_ROUTE53 ? "route53" : "memory", st->detail);
        goto out;
    }
    st->reg = reg_create(&cfg->reg, st->prov);
    warn_answer_size(&cfg->reg);
    {
        /* The checker always runs (idle without targets): a registration may bring its own
         * check even when --check is off. */
        struct hc_options ho;
        struct hc_engine *engine;
        memset(&ho, 0, sizeof(ho));
        ho.defaults = cfg->check;
        ho.max_parallel = cfg->check_parallel;
        ho.on_change = reg_health_changed;
        ho.arg = st->reg;
        engine = hc_engine_create(&ho);
        if (!engine) {
            log_error("msg=\"cannot start the health checker\"");
            goto out;
        }
        reg_set_checker(st->reg, engine, cfg->check.kind != HC_KIND_INHERIT, &cfg->check);
    }
    if (cfg->npeers) {
        /* Before the load starts the maintainer: it asks the peers before expiring a lease. */
        struct srv_peers_options po;
        memset(&po, 0, sizeof(po));
        po.urls = (const char *const *)cfg->peers;
        po.nurls = cfg->npeers;
        po.token = cfg->peer_token;
        po.reg = st->reg;
        po.limiter = reg_provider_route53_limiter(st->prov);
        st->peers = srv_peers_create(&po);
        if (!st->peers)
            goto out;
    }
    atomic_store(&st->phase, 1);
    if (reg_load(st->reg, st->detail, sizeof(st->detail))) {
        log_error("msg=\"cannot load the buckets\" detail=\"%s\"", st->detail);
        goto out;
    }
    st->ok = 1;
out:
    atomic_store(&st->done, 1);
    return NULL;
}

/* Run the start in a thread and wait for it or for SIGTERM/SIGINT. Returns 1 when started;
 * on a signal, logs it and ends the process (exit 0: the stop was asked for; the start thread
 * may be inside a network call that cannot be cut short, and nothing was acknowledged). */
static int startup_wait(struct startup *st, const sigset_t *sigs)
{
    pthread_t th;
    const struct timespec tick = {0, 50 * 1000000L};

    if (pthread_create(&th, NULL, startup_run, st) != 0) {
        log_error("msg=\"cannot start\" reason=\"pthread_create failed\"");
        return 0;
    }
    while (!atomic_load(&st->done)) {
        int sig = sigtimedwait(sigs, NULL, &tick);
        if (sig == SIGHUP) {
            log_info("msg=\"reload ignored: still starting\" signal=SIGHUP");
        } else if (sig == SIGTERM || sig == SIGINT) {
            log_info("msg=\"stopped during startup\" signal=%s phase=%s",
                     sig == SIGTERM ? "SIGTERM" : "SIGINT",
                     atomic_load(&st->phase) ? "loading-buckets" : "opening-store");
            fflush(stderr);
            _exit(0);
        }
    }
    pthread_join(th, NULL);
    return st->ok;
}

int main(int argc, char **argv)
{
    struct cfg cfg;
    struct reg_provider *prov = NULL;
    struct reg_registry *reg = NULL;
    struct srv_httpd *httpd = NULL;
    struct srv_httpd_options hopt;
    char detail[REG_DETAIL_MAX] = "";
    sigset_t sigs;
    int sig = 0, status = 1;
    enum cfg_result cr;
    struct startup st;
    struct api_fleet fleet;
    int started;

    memset(&st, 0, sizeof(st));
    cr = cfg_parse(&cfg, argc, argv, NULL, stdout, stderr);
    if (cr == CFG_EXIT_OK)
        return 0;
    if (cr != CFG_RUN)
        return 2;
    log_set_level((enum log_level)cfg.log_level);
    raise_fd_limit();

    sigemptyset(&sigs);
    sigaddset(&sigs, SIGTERM);
    sigaddset(&sigs, SIGINT);
    sigaddset(&sigs, SIGHUP);
    pthread_sigmask(SIG_BLOCK, &sigs, NULL);
    signal(SIGPIPE, SIG_IGN);

    st.cfg = &cfg;
    started = startup_wait(&st, &sigs);
    prov = st.prov;
    reg = st.reg;
    if (!started)
        goto out;

    memset(&hopt, 0, sizeof(hopt));
    hopt.addr = (const struct sockaddr *)&cfg.listen_addr;
    hopt.addr_len = cfg.listen_addr_len;
    hopt.threads = cfg.threads;
    hopt.max_connections = cfg.max_connections;
    hopt.connection_memory = cfg.connection_memory;
    hopt.client_timeout = cfg.client_timeout;
    hopt.max_body = cfg.max_body;
    hopt.insync_timeout_ms = cfg.insync_timeout * 1000;
    /* R53REG_TOKENS/--tokens are kept across reloads; the file is re-read on SIGHUP. */
    hopt.scoped_tokens = cfg.token_list.v;
    hopt.nscoped_tokens = cfg.ntokens_static;
    hopt.token_file = cfg.token_file;
    hopt.trusted_proxies = cfg.trusted_proxy;
    hopt.allow_cidr = cfg.allow_cidr;
    hopt.allow_special = cfg.allow_special;
    hopt.client_rps = cfg.client_rps;
    hopt.client_burst = cfg.client_burst;
    hopt.max_connections_per_ip = cfg.max_connections_per_ip;
    hopt.tls_cert = cfg.tls_cert;
    hopt.tls_key = cfg.tls_key;
    if (st.peers) {
        fleet.describe = srv_peers_describe;
        fleet.arg = st.peers;
        hopt.fleet = &fleet;
        hopt.peer_token = cfg.peer_token;
    }
    if (srv_httpd_start(&hopt, reg, &httpd, detail, sizeof(detail))) {
        log_error("msg=\"cannot listen\" listen=%s detail=\"%s\"", cfg.listen, detail);
        goto out;
    }
    {
        char where[80];
        const char *colon = strrchr(cfg.listen, ':');
        snprintf(where, sizeof(where), "%.*s:%u", (int)(colon - cfg.listen), cfg.listen,
                 srv_httpd_port(httpd));
        static const char *const checks[] = {"off", "tcp", "http", "https"};
        log_info("msg=listening listen=%s provider=%s record_name=%s buckets=%u "
                 "capacity_a=%u capacity_aaaa=%u auth=%s tokens=%zu scheme=%s check=%s "
                 "version=%s",
                 where, reg_provider_name(reg), cfg.reg.record_name, cfg.reg.buckets,
                 reg_capacity(&cfg.reg, REG_A), reg_capacity(&cfg.reg, REG_AAAA),
                 cfg.ntokens ? "bearer" : "anonymous", cfg.ntokens, cfg.tls_cert ? "https" : "http",
                 checks[cfg.check.kind], R53REG_VERSION);
    }

    for (;;) {
        if (sigwait(&sigs, &sig) != 0)
            continue;
        if (sig == SIGHUP) {
            /* Logs its own outcome; a bad file keeps what is in use. */
            log_info("msg=reload signal=SIGHUP");
            srv_httpd_reload(httpd, detail, sizeof(detail));
            continue;
        }
        log_info("msg=\"shutting down\" signal=%s", sig == SIGTERM ? "SIGTERM" : "SIGINT");
        break;
    }
    srv_httpd_stop(httpd, cfg.shutdown_timeout);
    httpd = NULL;
    status = 0;
out:
    srv_httpd_stop(httpd, 0);
    srv_peers_stop(st.peers); /* its thread calls into the registry */
    reg_destroy(reg); /* destroys the provider too: flushes the journal */
    srv_peers_destroy(st.peers); /* after the maintainer, which asks the peers */
    if (!reg && prov)
        prov->ops->destroy(prov);
    cfg_release(&cfg);
    if (status == 0)
        log_info("msg=stopped");
    return status;
}
