/*
 * watch.c: labelled reads and parked watches (contract: watch.h; design:
 * docs/design-operator.md, "Watches").
 *
 * The hub is process-wide: one list of parked watches ordered by deadline, one mutex (a leaf:
 * nothing else is locked while holding it) and one thread. The registry's change hook only
 * sets `kicked` and signals. A pass of the thread unlinks every watch that is due (its index
 * moved on, its registry changed since its tag was last compared, or its deadline passed),
 * renders each distinct read once outside the lock, answers the members, and puts back the
 * tag watches whose tag did not change.
 */
#include "handlers/watch.h"

#include <errno.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "handlers/text.h"
#include "registry/registry.h"
#include "util/clock.h"
#include "util/xalloc.h"

struct watch {
    struct watch *next, *prev; /* the hub's list, by deadline */
    struct api_async *async;
    api_render_fn render;
    struct api_request req;      /* what render reads; strings point to the copies below */
    unsigned long long index;    /* index watch: park while the generation is this; else 0 */
    char etag[24];               /* tag watch: park while the tag is this; else "" */
    unsigned long long seen_gen; /* tag watch: the generation its tag was compared at */
    int64_t deadline_ns;
    char *key;                   /* what it reads: path, detail and caller (grouping) */
    char *path, *param, *detail, *request_id, *if_none_match;
    struct ip_addr caller;
};

static struct {
    pthread_mutex_t lock;
    pthread_cond_t cond; /* CLOCK_MONOTONIC */
    /* guarded by lock */
    struct watch *head, *tail;
    int running, stopping, kicked;
    pthread_t thread;
    long parked;
} hub = {.lock = PTHREAD_MUTEX_INITIALIZER};

static pthread_once_t hub_once = PTHREAD_ONCE_INIT;

static void hub_init(void)
{
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&hub.cond, &ca);
    pthread_condattr_destroy(&ca);
}

/* The registry's change hook: note it and wake the thread. */
static void hub_changed(void)
{
    pthread_mutex_lock(&hub.lock);
    hub.kicked = 1;
    pthread_cond_signal(&hub.cond);
    pthread_mutex_unlock(&hub.lock);
}

/* ---- parsing ------------------------------------------------------------------------------ */

/* "30s", "500ms", "5m", or a bare number of seconds. */
static int parse_wait(const char *s, unsigned *ms)
{
    unsigned long long v = 0, scale = 1000;
    const char *p = s;
    if (*p < '0' || *p > '9')
        return -1;
    while (*p >= '0' && *p <= '9') {
        v = v * 10 + (unsigned)(*p++ - '0');
        if (v > API_WATCH_MAX_MS)
            return -1;
    }
    if (!strcmp(p, "ms"))
        scale = 1;
    else if (!strcmp(p, "m"))
        scale = 60000;
    else if (*p && strcmp(p, "s"))
        return -1;
    if (v * scale > API_WATCH_MAX_MS)
        return -1;
    *ms = (unsigned)(v * scale);
    return 0;
}

static int parse_index(const char *s, unsigned long long *out)
{
    unsigned long long v = 0;
    if (!*s || strlen(s) > 19)
        return -1;
    for (; *s; s++) {
        if (*s < '0' || *s > '9')
            return -1;
        v = v * 10 + (unsigned)(*s - '0');
    }
    *out = v;
    return 0;
}

/* Does an If-None-Match value (a list of tags, weak ones allowed, or "*") name tag? */
static int inm_matches(const char *inm, const char *tag)
{
    size_t tlen = strlen(tag);
    if (!inm)
        return 0;
    while (*inm) {
        while (*inm == ' ' || *inm == '\t' || *inm == ',')
            inm++;
        if (*inm == '*')
            return 1;
        if (!strncmp(inm, "W/", 2))
            inm += 2;
        if (!strncmp(inm, tag, tlen) &&
            (inm[tlen] == '\0' || inm[tlen] == ',' || inm[tlen] == ' ' || inm[tlen] == '\t'))
            return 1;
        while (*inm && *inm != ',')
            inm++;
    }
    return 0;
}

/* ---- labels ------------------------------------------------------------------------------- */

/* Turn res's body into a shared text (a cache may have given one already). */
static void to_text(struct api_response *res)
{
    if (res->text)
        return;
    if (res->raw) {
        res->text = api_text_new(res->raw, res->raw_len);
        free(res->raw);
        res->raw = NULL;
    } else if (res->body) {
        char *s = json_dumps(res->body, JSON_COMPACT);
        res->text = api_text_new(s, strlen(s));
        free(s);
        json_decref(res->body);
        res->body = NULL;
    }
}

void api_watch_label(const struct api_request *req, struct api_response *res,
                     unsigned long long gen)
{
    res->index = gen;
    if (res->status != 200)
        return;
    to_text(res);
    if (!res->etag[0])
        api_etag(res->text->data, res->text->len - 1, res->etag);
    if (inm_matches(req->if_none_match, res->etag)) {
        res->status = 304;
        api_text_unref(res->text);
        res->text = NULL;
    }
}

/* ---- the hub ------------------------------------------------------------------------------ */

static void watch_free(struct watch *w)
{
    free(w->key);
    free(w->path);
    free(w->param);
    free(w->detail);
    free(w->request_id);
    free(w->if_none_match);
    free(w);
}

static void unlink_watch(struct watch *w)
{
    if (w->prev)
        w->prev->next = w->next;
    else
        hub.head = w->next;
    if (w->next)
        w->next->prev = w->prev;
    else
        hub.tail = w->prev;
    w->next = w->prev = NULL;
    hub.parked--;
}

/* Link w into the list after prev (NULL: at the head). */
static void link_after(struct watch *prev, struct watch *w)
{
    w->prev = prev;
    w->next = prev ? prev->next : hub.head;
    if (w->next)
        w->next->prev = w;
    else
        hub.tail = w;
    if (prev)
        prev->next = w;
    else
        hub.head = w;
    hub.parked++;
}

/* Insert by deadline, from the tail: watches mostly arrive in deadline order. */
static void insert_watch(struct watch *w)
{
    struct watch *at = hub.tail;
    while (at && at->deadline_ns > w->deadline_ns)
        at = at->prev;
    link_after(at, w);
}

static int cmp_deadline(const void *a, const void *b)
{
    const struct watch *x = *(struct watch *const *)a, *y = *(struct watch *const *)b;
    return x->deadline_ns < y->deadline_ns ? -1 : x->deadline_ns > y->deadline_ns;
}

/* Put v[0..n) back into the list: sorted, then merged in one pass (not n insertions). */
static void insert_sorted(struct watch **v, size_t n)
{
    struct watch *at = hub.head, *prev = NULL;
    qsort(v, n, sizeof(*v), cmp_deadline);
    for (size_t i = 0; i < n; i++) {
        struct watch *w = v[i];
        while (at && at->deadline_ns <= w->deadline_ns) {
            prev = at;
            at = at->next;
        }
        link_after(prev, w);
        prev = w;
    }
}

static int cmp_key(const void *a, const void *b)
{
    const struct watch *x = *(struct watch *const *)a, *y = *(struct watch *const *)b;
    return strcmp(x->key, y->key);
}

/* Answer w from a render: status, content type and shared text (NULL: no body). */
static void answer(struct watch *w, int status, const char *content_type, struct api_text *text,
                   const char *etag, unsigned long long gen)
{
    struct api_response res;
    memset(&res, 0, sizeof(res));
    res.status = status;
    res.content_type = content_type;
    res.index = gen;
    if (status == 200) {
        snprintf(res.etag, sizeof(res.etag), "%s", etag);
        /* A tag watch asked "until it differs from this tag"; an index watch may still
         * carry an If-None-Match of its own. */
        if (w->etag[0] ? !strcmp(w->etag, etag) : inm_matches(w->if_none_match, etag))
            res.status = 304;
        else
            res.text = api_text_ref(text);
    } else {
        /* A problem names its own request: render it for this one. */
        struct api_request req = w->req;
        req.request_id = w->request_id;
        w->render(&req, &res);
        res.index = gen;
        to_text(&res);
    }
    api_async_complete(w->async, &res);
}

/*
 * Answer the due watches v[0..n), rendering each distinct read once. Tag watches whose tag
 * did not change (and whose deadline has not passed, and not at shutdown) are left in v,
 * compacted to its front; returns how many.
 */
static size_t answer_due(struct watch **v, size_t n, int stopping)
{
    size_t kept = 0;
    int64_t now = clock_mono_ns();

    qsort(v, n, sizeof(*v), cmp_key);
    for (size_t i = 0; i < n;) {
        size_t j = i + 1;
        struct api_response res;
        unsigned long long gen = reg_generation(v[i]->req.reg);

        while (j < n && !strcmp(v[j]->key, v[i]->key))
            j++;
        memset(&res, 0, sizeof(res));
        v[i]->render(&v[i]->req, &res);
        if (res.status == 200) {
            to_text(&res);
            api_etag(res.text->data, res.text->len - 1, res.etag);
        }
        for (size_t k = i; k < j; k++) {
            struct watch *w = v[k];
            if (w->etag[0] && res.status == 200 && !strcmp(w->etag, res.etag) && !stopping &&
                w->deadline_ns > now) {
                w->seen_gen = gen;
                v[kept++] = w;
                continue;
            }
            answer(w, res.status, res.content_type, res.text, res.etag, gen);
            watch_free(w);
        }
        api_text_unref(res.text);
        json_decref(res.body);
        free(res.raw);
        i = j;
    }
    return kept;
}

static int due(const struct watch *w, int64_t now)
{
    unsigned long long gen = reg_generation(w->req.reg);
    if (w->deadline_ns <= now)
        return 1;
    return w->etag[0] ? gen != w->seen_gen : gen != w->index;
}

static void *hub_main(void *arg)
{
    struct watch **v = NULL;
    size_t cap = 0;
    (void)arg;

    pthread_mutex_lock(&hub.lock);
    for (;;) {
        int64_t now = clock_mono_ns();
        size_t n = 0, kept;
        int stopping;

        while (!hub.stopping && !hub.kicked && !(hub.head && hub.head->deadline_ns <= now)) {
            if (hub.head) {
                struct timespec ts = {(time_t)(hub.head->deadline_ns / 1000000000),
                                      (long)(hub.head->deadline_ns % 1000000000)};
                pthread_cond_timedwait(&hub.cond, &hub.lock, &ts);
            } else {
                pthread_cond_wait(&hub.cond, &hub.lock);
            }
            now = clock_mono_ns();
        }
        hub.kicked = 0;
        stopping = hub.stopping;
        for (struct watch *w = hub.head, *next; w; w = next) {
            next = w->next;
            if (stopping || due(w, now)) {
                unlink_watch(w);
                v = xgrow(v, &cap, n + 1, sizeof(*v));
                v[n++] = w;
            }
        }
        pthread_mutex_unlock(&hub.lock);
        kept = answer_due(v, n, stopping);
        pthread_mutex_lock(&hub.lock);
        insert_sorted(v, kept);
        if (stopping && !hub.head)
            break;
    }
    pthread_mutex_unlock(&hub.lock);
    free(v);
    return NULL;
}

/* Up to 1/16 of the wait, so watchers that started together do not all return together. */
static int64_t jitter_ns(unsigned wait_ms, const void *salt)
{
    uint64_t x = (uint64_t)clock_mono_ns() ^ (uint64_t)(uintptr_t)salt;
    x ^= x >> 33;
    x *= 0xff51afd7ed558ccdull;
    x ^= x >> 33;
    return wait_ms >= 16 ? (int64_t)(x % ((uint64_t)wait_ms * 1000000 / 16)) : 0;
}

static char *dup_or_null(const char *s, size_t n)
{
    char *d;
    if (!s)
        return NULL;
    d = xmalloc(n + 1);
    memcpy(d, s, n);
    d[n] = '\0';
    return d;
}

/* Park req until its index moves on (index != 0) or its tag changes (etag), or wait_ms. 0, or
 * -1 when the hub is stopping (the caller answers at once). */
static int park(const struct api_request *req, api_render_fn render, int per_caller,
                unsigned long long index, const char *etag, unsigned long long gen,
                unsigned wait_ms)
{
    struct watch *w = xcalloc(1, sizeof(*w));
    char caller[IP_TEXT_MAX] = "";
    size_t klen;

    w->async = req->async;
    w->render = render;
    w->index = index;
    if (etag)
        snprintf(w->etag, sizeof(w->etag), "%s", etag);
    w->seen_gen = gen;
    w->deadline_ns = clock_mono_ns() + (int64_t)wait_ms * 1000000 + jitter_ns(wait_ms, w);
    w->path = dup_or_null(req->path, strlen(req->path));
    w->param = dup_or_null(req->param, req->param_len);
    w->detail = dup_or_null(req->detail, req->detail ? strlen(req->detail) : 0);
    w->request_id = dup_or_null(req->request_id, req->request_id ? strlen(req->request_id) : 0);
    w->if_none_match =
        dup_or_null(req->if_none_match, req->if_none_match ? strlen(req->if_none_match) : 0);
    memset(&w->req, 0, sizeof(w->req));
    w->req.method = "GET";
    w->req.reg = req->reg;
    w->req.path = w->path;
    w->req.param = w->param;
    w->req.param_len = req->param_len;
    w->req.detail = w->detail;
    w->req.request_id = w->request_id;
    if (req->caller) {
        w->caller = *req->caller;
        w->req.caller = &w->caller;
        ip_format(req->caller, caller);
    }
    klen = strlen(w->path) + (w->detail ? strlen(w->detail) : 0) + strlen(caller) + 40;
    w->key = xmalloc(klen);
    snprintf(w->key, klen, "%p\x1f%s\x1f%s\x1f%s", (void *)req->reg, w->path,
             w->detail ? w->detail : "", per_caller ? caller : "");

    pthread_once(&hub_once, hub_init);
    reg_set_change_hook(req->reg, hub_changed);
    pthread_mutex_lock(&hub.lock);
    if (hub.stopping) {
        pthread_mutex_unlock(&hub.lock);
        watch_free(w);
        return -1;
    }
    if (!hub.running) {
        if (pthread_create(&hub.thread, NULL, hub_main, NULL) != 0) {
            pthread_mutex_unlock(&hub.lock);
            watch_free(w);
            return -1;
        }
        hub.running = 1;
    }
    insert_watch(w);
    /* A change between the caller's look and now has already signalled: look again. */
    if (reg_generation(req->reg) != gen) {
        hub.kicked = 1;
        pthread_cond_signal(&hub.cond);
    } else if (hub.head == w) {
        pthread_cond_signal(&hub.cond); /* the earliest deadline now */
    }
    pthread_mutex_unlock(&hub.lock);
    return 0;
}

/* Parse ?index= and ?wait= into *index and *wait_ms: 0, or -1 with res holding the 400. */
static int parse_query(const struct api_request *req, struct api_response *res,
                       unsigned long long *index, unsigned *wait_ms)
{
    *index = 0;
    *wait_ms = API_WATCH_DEFAULT_MS;
    if (req->index && parse_index(req->index, index)) {
        api_problem(res, req, RC_BAD_REQUEST,
                    "index must be a decimal number, as X-R53reg-Index gives it");
        return -1;
    }
    if (req->wait && parse_wait(req->wait, wait_ms)) {
        api_problem(res, req, RC_BAD_REQUEST,
                    "wait must be a duration of at most 10m, such as 500ms, 30s or 5m (a bare "
                    "number is seconds)");
        return -1;
    }
    return 0;
}

int api_watch_check(const struct api_request *req, struct api_response *res)
{
    unsigned long long index;
    unsigned wait_ms;
    return parse_query(req, res, &index, &wait_ms);
}

void api_watch_serve(const struct api_request *req, struct api_response *res,
                     api_render_fn render, int per_caller)
{
    unsigned long long index, gen;
    unsigned wait_ms;

    if (parse_query(req, res, &index, &wait_ms))
        return;
    gen = reg_generation(req->reg);
    if (req->index && index == gen && wait_ms > 0 &&
        park(req, render, per_caller, index, NULL, gen, wait_ms) == 0) {
        res->status = API_PENDING;
        return;
    }
    render(req, res);
    api_watch_label(req, res, gen);
    /* The tag the client has is still current, and it asked to wait: a tag watch. */
    if (!req->index && req->wait && wait_ms > 0 && res->status == 304 &&
        park(req, render, per_caller, 0, res->etag, gen, wait_ms) == 0) {
        memset(res, 0, sizeof(*res));
        res->status = API_PENDING;
    }
}

long api_watch_parked(void)
{
    long n;
    pthread_mutex_lock(&hub.lock);
    n = hub.parked;
    pthread_mutex_unlock(&hub.lock);
    return n;
}

void api_watch_shutdown(void)
{
    pthread_t t;
    pthread_mutex_lock(&hub.lock);
    hub.stopping = 1;
    if (!hub.running) {
        pthread_mutex_unlock(&hub.lock);
        return;
    }
    t = hub.thread;
    pthread_cond_signal(&hub.cond);
    pthread_mutex_unlock(&hub.lock);
    pthread_join(t, NULL);
    pthread_mutex_lock(&hub.lock);
    hub.running = 0; /* stopping stays: nothing parks until api_watch_start() */
    pthread_mutex_unlock(&hub.lock);
}

void api_watch_start(void)
{
    pthread_mutex_lock(&hub.lock);
    hub.stopping = 0;
    pthread_mutex_unlock(&hub.lock);
}
