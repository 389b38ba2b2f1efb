/*
 * peers.c: replicas that know each other (contract: peers.h).
 *
 * The poll thread owns poll_curl; the registry's maintainer thread owns lease_curl (through
 * srv_peers_heard). Everything under `lock` is shared: the peers' last answers and the member
 * list. No lock is held across a network call or a call into the registry or the limiter.
 */
#include "server/peers.h"

#include <curl/curl.h>
#include <openssl/crypto.h>
#include <openssl/rand.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "aws/ratelimit.h"
#include "util/clock.h"
#include "util/log.h"
#include "util/metrics.h"
#include "util/xalloc.h"

#define BODY_MAX (1024 * 1024)   /* bytes of a peer's answer read at most */
#define QUERY_MAX 3000           /* bytes of ?ips= per request: well inside a request line */
#define LIVE_POLLS 3             /* a peer is live while it answered within this many polls */
#define PEER_CUT_RECENT_MS 10000 /* a peer's cut older than this is not followed any more */
#define PEER_FOLLOW_EVERY_MS 10000 /* a given peer's cuts are followed at most this often */

struct peer {
    char *url;
    int self;                                  /* answered with our own id: ignored */
    char instance[SRV_PEERS_INSTANCE_MAX + 1]; /* "" before the first answer */
    int64_t last_ok_ns;                        /* CLOCK_MONOTONIC of the last answer; 0: none */
    unsigned long long cuts_seen;              /* its count of local Throttling cuts */
    int cuts_known;
    int64_t last_follow_ns; /* CLOCK_MONOTONIC of the last cut of ours that followed its; 0 */
    int failing_logged;
    unsigned early_fails; /* polls that failed before its first answer */
};

struct srv_peers {
    char instance[SRV_PEERS_INSTANCE_MAX + 1]; /* read-only */
    long long started_ms;                      /* read-only: Unix ms */
    char *authz; /* read-only: "Authorization: Bearer <token>", or NULL; wiped */
    struct reg_registry *reg;
    struct ratelimit *rl;
    unsigned poll_ms, timeout_ms;
    unsigned cycle_ms; /* guarded by lock: how long the last full round of polls took */
    CURL *poll_curl;  /* poll thread */
    CURL *lease_curl; /* the maintainer thread (srv_peers_heard) */
    pthread_t thread;
    int thread_started;

    pthread_mutex_t lock;
    pthread_cond_t cond;
    int stop;           /* guarded by lock */
    struct peer *peers; /* guarded by lock (the array itself is fixed) */
    size_t npeers;
    char **members;  /* guarded by lock: live ids, self included, sorted */
    size_t nmembers; /* guarded by lock */
    size_t budget_n; /* poll thread (and create): the fleet size the rate budget assumes */
};

static struct metrics_gauge_family *m_replicas;

/* ---- HTTP --------------------------------------------------------------------------------- */

struct body {
    char *p;
    size_t len, cap;
    int too_big;
};

static size_t body_write(char *data, size_t size, size_t nmemb, void *arg)
{
    struct body *b = arg;
    size_t n = size * nmemb;
    if (b->len + n > BODY_MAX) {
        b->too_big = 1;
        return 0; /* curl stops: the answer is not a peer's */
    }
    b->p = xgrow(b->p, &b->cap, b->len + n + 1, 1);
    memcpy(b->p + b->len, data, n);
    b->len += n;
    b->p[b->len] = '\0';
    return n;
}

/* GET url; the parsed JSON body of a 200 answer, or NULL (why in detail). */
static json_t *http_get_json(struct srv_peers *p, CURL *c, const char *url, char *detail, size_t n)
{
    struct curl_slist *hdrs = NULL;
    struct body b = {0};
    long status = 0;
    json_t *doc = NULL;
    CURLcode cc;

    curl_easy_reset(c);
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(c, CURLOPT_NOPROXY, "*");
    curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, (long)p->timeout_ms);
    curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS, (long)p->timeout_ms);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, body_write);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, &b);
    hdrs = curl_slist_append(hdrs, "Accept: application/json");
    if (p->authz)
        hdrs = curl_slist_append(hdrs, p->authz);
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, hdrs);
    cc = curl_easy_perform(c);
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, NULL);
    curl_slist_free_all(hdrs);
    if (cc != CURLE_OK) {
        snprintf(detail, n, "%s", b.too_big ? "answer too large" : curl_easy_strerror(cc));
    } else if (status != 200) {
        snprintf(detail, n, "HTTP %ld", status);
    } else {
        json_error_t err;
        doc = json_loadb(b.p ? b.p : "", b.len, 0, &err);
        if (!doc || !json_is_object(doc)) {
            snprintf(detail, n, "not a JSON object");
            json_decref(doc);
            doc = NULL;
        }
    }
    free(b.p);
    return doc;
}

/* ---- membership --------------------------------------------------------------------------- */

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

static int valid_instance(const char *s)
{
    size_t len = s ? strlen(s) : 0;
    return len >= 1 && len <= SRV_PEERS_INSTANCE_MAX &&
           strspn(s, "0123456789abcdefghijklmnopqrstuvwxyz-") == len;
}

/*
 * How long a peer stays live after its last answer: LIVE_POLLS polls plus one timeout, a poll
 * being what separates two polls of one URL: the last full round (polls are sequential: with
 * slow or dead URLs a round takes up to one timeout per URL) and the poll_ms pause after it.
 * A fixed window dropped healthy peers between two of their answers when several URLs were
 * dead or slow. Lock held.
 */
static int64_t live_window_ns(const struct srv_peers *p)
{
    return ((int64_t)LIVE_POLLS * ((int64_t)p->poll_ms + p->cycle_ms) + p->timeout_ms) * 1000000;
}

/* The live members now, sorted, self included. Lock held. */
static size_t live_members(struct srv_peers *p, int64_t now, char ***out)
{
    char **ids = xcalloc(p->npeers + 1, sizeof(*ids));
    size_t n = 0;
    int64_t window = live_window_ns(p);

    ids[n++] = xstrdup(p->instance);
    for (size_t i = 0; i < p->npeers; i++) {
        const struct peer *pe = &p->peers[i];
        int dup = 0;
        if (pe->self || !pe->instance[0] || !pe->last_ok_ns || now - pe->last_ok_ns > window)
            continue;
        for (size_t k = 0; k < n; k++)
            dup |= !strcmp(ids[k], pe->instance);
        if (!dup)
            ids[n++] = xstrdup(pe->instance);
    }
    qsort(ids, n, sizeof(*ids), cmp_str);
    *out = ids;
    return n;
}

static void ids_free(char **ids, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(ids[i]);
    free(ids);
}

/*
 * The fleet size the rate budget assumes: the live members, plus every URL that has not
 * answered yet but has not failed LIVE_POLLS polls either. At start the other replicas are
 * presumed there until they fail to answer, so replicas started together do not each take
 * the whole budget during their first polls (a dead URL costs a smaller share for a few
 * seconds). Lock held.
 */
static size_t budget_members(const struct srv_peers *p, size_t live)
{
    size_t n = live;
    for (size_t i = 0; i < p->npeers; i++) {
        const struct peer *pe = &p->peers[i];
        n += !pe->self && !pe->instance[0] && pe->early_fails < LIVE_POLLS;
    }
    return n;
}

static void budget_set(struct srv_peers *p, size_t n)
{
    if (n == p->budget_n)
        return;
    p->budget_n = n;
    if (p->rl)
        ratelimit_set_share(p->rl, 1.0 / (double)n);
    log_info("msg=\"fleet: rate budget shared\" replicas_assumed=%zu api_share=%.3f", n,
             1.0 / (double)n);
}

/* Recompute the fleet; on a change tell the registry and the limiter. Poll thread. */
static void membership_update(struct srv_peers *p)
{
    char **ids, **old;
    size_t n, oldn, budget;
    int same;

    pthread_mutex_lock(&p->lock);
    n = live_members(p, clock_mono_ns(), &ids);
    budget = budget_members(p, n);
    same = n == p->nmembers;
    for (size_t i = 0; same && i < n; i++)
        same = !strcmp(ids[i], p->members[i]);
    if (same) {
        pthread_mutex_unlock(&p->lock);
        ids_free(ids, n);
        budget_set(p, budget);
        return;
    }
    old = p->members;
    oldn = p->nmembers;
    p->members = ids;
    p->nmembers = n;
    pthread_mutex_unlock(&p->lock);
    ids_free(old, oldn);

    /* ids stays valid: only this thread replaces the list */
    reg_set_members(p->reg, p->instance, (const char *const *)ids, n);
    budget_set(p, budget);
    if (m_replicas)
        metrics_gauge_set(metrics_gauge_child(m_replicas), (double)n);
    log_info("msg=\"fleet: membership changed\" fleet_size=%zu api_share=%.3f instance=%s", n,
             1.0 / (double)n, p->instance);
}

/* One answer of GET /fleet/peer from peer i. Poll thread. */
static void peer_answered(struct srv_peers *p, size_t i, json_t *doc)
{
    const char *inst = json_string_value(json_object_get(doc, "instance"));
    json_t *thr = json_object_get(doc, "throttle");
    json_t *cuts_j = json_object_get(thr, "cuts"), *ago_j = json_object_get(thr, "last_cut_ms_ago");
    unsigned long long cuts =
        json_is_integer(cuts_j) ? (unsigned long long)json_integer_value(cuts_j) : 0;
    long long ago = json_is_integer(ago_j) ? (long long)json_integer_value(ago_j) : -1;
    int follow = 0, is_self = 0, changed = 0;
    struct peer *pe = &p->peers[i];

    if (!valid_instance(inst)) {
        log_warn("msg=\"fleet: a peer's answer has no valid instance id; ignored\" peer=%s",
                 pe->url);
        return;
    }
    pthread_mutex_lock(&p->lock);
    if (!strcmp(inst, p->instance)) {
        pe->self = is_self = 1;
    } else {
        if (strcmp(pe->instance, inst)) { /* first answer, or the peer restarted */
            snprintf(pe->instance, sizeof(pe->instance), "%s", inst);
            pe->cuts_known = 0;
            changed = 1;
        }
        pe->last_ok_ns = clock_mono_ns();
        pe->failing_logged = 0;
        /* at most once per PEER_FOLLOW_EVERY_MS per peer: a peer whose count rises on every
         * poll (forged, or a bug) cannot pin this replica at its minimum rate */
        if (pe->cuts_known && cuts > pe->cuts_seen && ago >= 0 && ago < PEER_CUT_RECENT_MS &&
            (!pe->last_follow_ns ||
             pe->last_ok_ns - pe->last_follow_ns >= (int64_t)PEER_FOLLOW_EVERY_MS * 1000000)) {
            follow = 1;
            pe->last_follow_ns = pe->last_ok_ns;
        }
        pe->cuts_seen = cuts;
        pe->cuts_known = 1;
    }
    pthread_mutex_unlock(&p->lock);
    if (is_self)
        log_info("msg=\"fleet: this peer URL is this replica; ignored\" peer=%s", pe->url);
    else if (changed)
        log_info("msg=\"fleet: peer answered\" peer=%s instance=%s", pe->url, inst);
    if (follow && p->rl && ratelimit_throttled_by_peer(p->rl))
        log_info("msg=\"fleet: a peer was throttled by Route 53; cut the rate here too\" "
                 "peer=%s rate=%.3f",
                 pe->url, ratelimit_rate(p->rl));
}

static void poll_once(struct srv_peers *p)
{
    int64_t start = clock_mono_ns();
    unsigned took;

    for (size_t i = 0; i < p->npeers; i++) {
        char url[1100], detail[160];
        json_t *doc;
        int skip, log_fail = 0;

        pthread_mutex_lock(&p->lock);
        skip = p->peers[i].self || p->stop;
        pthread_mutex_unlock(&p->lock);
        if (skip)
            continue;
        snprintf(url, sizeof(url), "%s/fleet/peer", p->peers[i].url);
        doc = http_get_json(p, p->poll_curl, url, detail, sizeof(detail));
        if (doc) {
            peer_answered(p, i, doc);
            json_decref(doc);
            continue;
        }
        pthread_mutex_lock(&p->lock);
        if (!p->peers[i].failing_logged)
            p->peers[i].failing_logged = log_fail = 1;
        if (!p->peers[i].instance[0] && p->peers[i].early_fails < LIVE_POLLS)
            p->peers[i].early_fails++;
        pthread_mutex_unlock(&p->lock);
        if (log_fail)
            log_warn("msg=\"fleet: a peer does not answer\" peer=%s detail=\"%s\"", p->peers[i].url,
                     detail);
    }
    took = (unsigned)((clock_mono_ns() - start) / 1000000);
    pthread_mutex_lock(&p->lock);
    if (took > p->poll_ms && p->cycle_ms <= p->poll_ms)
        log_info("msg=\"fleet: a round of polls takes longer than the poll interval; peers stay "
                 "live longer\" round_ms=%u poll_ms=%u",
                 took, p->poll_ms);
    p->cycle_ms = took;
    pthread_mutex_unlock(&p->lock);
    membership_update(p);
}

static void *poll_main(void *arg)
{
    struct srv_peers *p = arg;

    for (;;) {
        struct timespec until;
        int64_t t;
        poll_once(p);
        t = clock_mono_ns() + (int64_t)p->poll_ms * 1000000;
        until.tv_sec = t / 1000000000;
        until.tv_nsec = t % 1000000000;
        pthread_mutex_lock(&p->lock);
        while (!p->stop && clock_mono_ns() < t)
            pthread_cond_timedwait(&p->cond, &p->lock, &until);
        if (p->stop) {
            pthread_mutex_unlock(&p->lock);
            return NULL;
        }
        pthread_mutex_unlock(&p->lock);
    }
}

/* ---- the public side ---------------------------------------------------------------------- */

const char *srv_peers_instance(const struct srv_peers *p)
{
    return p->instance;
}

size_t srv_peers_members(struct srv_peers *p, char ***ids)
{
    size_t n;
    pthread_mutex_lock(&p->lock);
    n = p->nmembers;
    *ids = xcalloc(n ? n : 1, sizeof(**ids));
    for (size_t i = 0; i < n; i++)
        (*ids)[i] = xstrdup(p->members[i]);
    pthread_mutex_unlock(&p->lock);
    return n;
}

size_t srv_peers_fleet_size(struct srv_peers *p)
{
    size_t n;
    pthread_mutex_lock(&p->lock);
    n = p->nmembers ? p->nmembers : 1;
    pthread_mutex_unlock(&p->lock);
    return n;
}

json_t *srv_peers_describe(void *arg)
{
    struct srv_peers *p = arg;
    json_t *members = json_array(), *thr;
    unsigned long long cuts = 0;
    int64_t last = 0;
    size_t n;

    pthread_mutex_lock(&p->lock);
    n = p->nmembers ? p->nmembers : 1;
    if (!p->nmembers)
        json_array_append_new(members, json_string(p->instance));
    for (size_t i = 0; i < p->nmembers; i++)
        json_array_append_new(members, json_string(p->members[i]));
    pthread_mutex_unlock(&p->lock);
    if (p->rl)
        ratelimit_cuts(p->rl, &cuts, &last);
    thr = json_pack("{s:I, s:o}", "cuts", (json_int_t)cuts, "last_cut_ms_ago",
                    last ? json_integer((json_int_t)((clock_mono_ns() - last) / 1000000))
                         : json_null());
    return json_pack("{s:s, s:s, s:I, s:I, s:o, s:f, s:o}", "instance", p->instance, "version",
                     R53REG_VERSION, "started", (json_int_t)p->started_ms, "fleet_size",
                     (json_int_t)n, "members", members, "api_share",
                     p->rl ? ratelimit_share(p->rl) : 1.0 / (double)n, "throttle", thr);
}

/* Ask one peer about ips[0..n) (one or more requests), merging into out. An IP the peer could
 * not answer for (the request failed, or no valid item for it at its place in the answer) is
 * marked unknown: the lease waits (registry/leases.c) rather than expiring on no answer. */
static void ask_peer(struct srv_peers *p, const char *base, const struct ip_addr *ips, size_t n,
                     struct reg_heard *out)
{
    size_t at = 0;
    while (at < n) {
        char *url = xmalloc(strlen(base) + QUERY_MAX + 64 + IP_TEXT_MAX), detail[160];
        size_t len = (size_t)sprintf(url, "%s/fleet/leases?ips=", base), first = at;
        json_t *doc, *arr;
        /* as many as fit QUERY_MAX, at least one */
        while (at < n && (at == first || len - strlen(base) < QUERY_MAX)) {
            char txt[IP_TEXT_MAX];
            ip_format(&ips[at], txt);
            len += (size_t)sprintf(url + len, "%s%s", at == first ? "" : ",", txt);
            at++;
        }
        doc = http_get_json(p, p->lease_curl, url, detail, sizeof(detail));
        free(url);
        if (!doc) {
            log_warn("msg=\"fleet: a live peer could not be asked about leases; their expiry "
                     "waits\" peer=%s detail=\"%s\"",
                     base, detail);
            for (size_t i = first; i < n; i++)
                out[i].unknown = 1;
            return;
        }
        arr = json_object_get(doc, "leases");
        if (json_array_size(arr) != at - first)
            log_warn("msg=\"fleet: a peer's lease answer has the wrong length; unanswered IPs "
                     "wait\" peer=%s asked=%zu answered=%zu",
                     base, at - first, json_array_size(arr));
        for (size_t k = 0; k < at - first; k++) {
            json_t *it = json_array_get(arr, k), *ago = json_object_get(it, "heard_ms_ago");
            json_t *lease = json_object_get(it, "lease_seconds");
            struct ip_addr ip;
            const char *txt = json_string_value(json_object_get(it, "ip"));
            size_t i = first + k;
            if (!txt || ip_parse(txt, strlen(txt), &ip, NULL, 0) != RC_OK ||
                ip_cmp(&ip, &ips[i]) != 0 || !(json_is_integer(ago) || json_is_null(ago))) {
                out[i].unknown = 1; /* missing, misplaced or malformed: no answer */
                continue;
            }
            /* null: never heard; beyond the longest lease (or negative): nonsense, taken as
             * not heard (and the arithmetic in leases.c stays far from overflow) */
            if (json_is_null(ago) || json_integer_value(ago) < 0 ||
                json_integer_value(ago) > (json_int_t)REG_MAX_LEASE * 1000)
                continue;
            if (out[i].ago_ms < 0 || json_integer_value(ago) < out[i].ago_ms) {
                out[i].ago_ms = json_integer_value(ago);
                if (json_is_integer(lease) && json_integer_value(lease) > 0 &&
                    json_integer_value(lease) <= REG_MAX_LEASE)
                    out[i].lease_s = (unsigned)json_integer_value(lease);
            }
        }
        json_decref(doc);
    }
}

void srv_peers_heard(void *arg, const struct ip_addr *ips, size_t n, struct reg_heard *out)
{
    struct srv_peers *p = arg;
    char *urls[SRV_PEERS_MAX];
    size_t nurls = 0;
    int64_t now = clock_mono_ns(), window;

    for (size_t i = 0; i < n; i++)
        out[i].ago_ms = -1, out[i].lease_s = 0, out[i].unknown = 0;
    /* one URL per live instance */
    pthread_mutex_lock(&p->lock);
    window = live_window_ns(p);
    for (size_t i = 0; i < p->npeers && nurls < SRV_PEERS_MAX; i++) {
        const struct peer *pe = &p->peers[i];
        int dup = 0;
        if (pe->self || !pe->instance[0] || !pe->last_ok_ns || now - pe->last_ok_ns > window)
            continue;
        for (size_t k = 0; k < i; k++)
            dup |= !p->peers[k].self && !strcmp(p->peers[k].instance, pe->instance) &&
                   p->peers[k].last_ok_ns && now - p->peers[k].last_ok_ns <= window;
        if (!dup)
            urls[nurls++] = xstrdup(pe->url);
    }
    pthread_mutex_unlock(&p->lock);
    for (size_t i = 0; i < nurls; i++) {
        ask_peer(p, urls[i], ips, n, out);
        free(urls[i]);
    }
}

struct srv_peers *srv_peers_create(const struct srv_peers_options *o)
{
    struct srv_peers *p = xcalloc(1, sizeof(*p));
    pthread_condattr_t ca;

    if (o->instance) {
        snprintf(p->instance, sizeof(p->instance), "%s", o->instance);
    } else {
        unsigned char r[16];
        if (RAND_bytes(r, sizeof(r)) != 1) {
            log_error("msg=\"fleet: no random bytes for the instance id\"");
            free(p);
            return NULL;
        }
        for (size_t i = 0; i < sizeof(r); i++)
            sprintf(p->instance + 2 * i, "%02x", r[i]);
    }
    p->started_ms = clock_wall_ms();
    if (o->token) {
        p->authz = xmalloc(strlen(o->token) + 32);
        sprintf(p->authz, "Authorization: Bearer %s", o->token);
    }
    p->reg = o->reg;
    p->rl = o->limiter;
    p->poll_ms = o->poll_ms ? o->poll_ms : 2000;
    p->timeout_ms = o->timeout_ms ? o->timeout_ms : 1000;
    p->npeers = o->nurls < SRV_PEERS_MAX ? o->nurls : SRV_PEERS_MAX;
    p->peers = xcalloc(p->npeers ? p->npeers : 1, sizeof(*p->peers));
    for (size_t i = 0; i < p->npeers; i++)
        p->peers[i].url = xstrdup(o->urls[i]);
    pthread_mutex_init(&p->lock, NULL);
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&p->cond, &ca);
    pthread_condattr_destroy(&ca);
    curl_global_init(CURL_GLOBAL_DEFAULT);
    p->poll_curl = curl_easy_init();
    p->lease_curl = curl_easy_init();
    if (!m_replicas)
        m_replicas = metrics_gauge_create(metrics_default(), "r53reg_fleet_replicas",
                                          "Replicas in the fleet (this one and the live peers "
                                          "of --peers)",
                                          NULL);
    metrics_gauge_set(metrics_gauge_child(m_replicas), 1);
    /* Until the first polls tell: every URL another replica (one of them may be this one). */
    p->budget_n = 1;
    budget_set(p, p->npeers + 1);
    if (!p->poll_curl || !p->lease_curl) {
        log_error("msg=\"fleet: cannot create HTTP handles\"");
        srv_peers_destroy(p);
        return NULL;
    }
    if (o->reg)
        reg_set_peers(o->reg, srv_peers_heard, p);
    if (pthread_create(&p->thread, NULL, poll_main, p) != 0) {
        log_error("msg=\"fleet: cannot start the poll thread\"");
        srv_peers_destroy(p);
        return NULL;
    }
    p->thread_started = 1;
    log_info("msg=\"fleet: polling peers\" peers=%zu instance=%s poll_ms=%u", p->npeers,
             p->instance, p->poll_ms);
    return p;
}

void srv_peers_stop(struct srv_peers *p)
{
    if (!p || !p->thread_started)
        return;
    pthread_mutex_lock(&p->lock);
    p->stop = 1;
    pthread_cond_broadcast(&p->cond);
    pthread_mutex_unlock(&p->lock);
    pthread_join(p->thread, NULL);
    p->thread_started = 0;
}

void srv_peers_destroy(struct srv_peers *p)
{
    if (!p)
        return;
    srv_peers_stop(p);
    curl_easy_cleanup(p->poll_curl);
    curl_easy_cleanup(p->lease_curl);
    for (size_t i = 0; i < p->npeers; i++)
        free(p->peers[i].url);
    free(p->peers);
    ids_free(p->members, p->nmembers);
    if (p->authz) {
        OPENSSL_cleanse(p->authz, strlen(p->authz));
        free(p->authz);
    }
    pthread_mutex_destroy(&p->lock);
    pthread_cond_destroy(&p->cond);
    free(p);
}
