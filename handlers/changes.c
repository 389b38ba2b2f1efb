/*
 * changes.c: the table of accepted changes (?wait=none) and GET /changes/{id}; see changes.h.
 *
 * One mutex guards a chained hash table (id -> entry) and a FIFO list of the same entries
 * from oldest to newest. Entries only ever leave from the old end (age, count or bytes over
 * the limits), so pruning is a walk from the head. An entry holds its answer as rendered JSON
 * text: GET splices it into the change's body, so no json_t is shared between threads.
 * Completions find their entry by id, never by pointer, so an entry evicted while its
 * mutations were in flight is simply not updated.
 */
#include "handlers/changes.h"

#include <openssl/rand.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "handlers/placement.h"
#include "util/xalloc.h"

#define HASH_SIZE 65536u /* chains stay short up to API_CHANGES_MAX_ENTRIES */
#define TIME_TEXT_MAX 32

struct change {
    char id[API_CHANGE_ID_LEN + 1];
    struct change *hnext; /* hash chain */
    struct change *newer; /* FIFO, oldest first */
    struct timespec mono; /* submitted (CLOCK_MONOTONIC), for the age limit */
    char method[8];
    char path[160];
    char submitted_at[TIME_TEXT_MAX];
    char completed_at[TIME_TEXT_MAX]; /* "" while queued */
    int done;
    int failed;
    int http_status;
    char store_id[REG_CHANGE_ID_MAX];
    char *result; /* rendered JSON, or NULL */
    size_t result_len;
};

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
/* guarded by lock */
static struct change **table; /* HASH_SIZE chains, allocated on first use */
static struct change *oldest, *newest;
static size_t count, bytes;
static size_t max_entries = API_CHANGES_MAX_ENTRIES;
static size_t max_bytes = API_CHANGES_MAX_BYTES;
static unsigned max_age_s = API_CHANGES_MAX_AGE_S;

static unsigned hash_id(const char *id)
{
    uint32_t h = 2166136261u;
    for (; *id; id++)
        h = (h ^ (unsigned char)*id) * 16777619u;
    return h & (HASH_SIZE - 1);
}

static size_t entry_bytes(const struct change *c)
{
    return sizeof(*c) + c->result_len;
}

static void rfc3339_now(char out[TIME_TEXT_MAX])
{
    struct timespec ts;
    struct tm tm;
    size_t n;
    clock_gettime(CLOCK_REALTIME, &ts);
    gmtime_r(&ts.tv_sec, &tm);
    n = strftime(out, TIME_TEXT_MAX, "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(out + n, TIME_TEXT_MAX - n, ".%03uZ", (unsigned)(ts.tv_nsec / 1000000) % 1000u);
}

static double age_s(const struct change *c, const struct timespec *now)
{
    return (double)(now->tv_sec - c->mono.tv_sec) + (double)(now->tv_nsec - c->mono.tv_nsec) / 1e9;
}

/* Drop the oldest entry. Caller holds lock. */
static void drop_oldest(void)
{
    struct change *c = oldest, **pp = &table[hash_id(c->id)];
    while (*pp != c)
        pp = &(*pp)->hnext;
    *pp = c->hnext;
    oldest = c->newer;
    if (!oldest)
        newest = NULL;
    count--;
    bytes -= entry_bytes(c);
    free(c->result);
    free(c);
}

/* Evict what exceeds the limits. Caller holds lock. */
static void prune(void)
{
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    while (oldest &&
           (count > max_entries || bytes > max_bytes || age_s(oldest, &now) >= (double)max_age_s))
        drop_oldest();
}

static struct change *find(const char *id)
{
    struct change *c;
    if (!table)
        return NULL;
    for (c = table[hash_id(id)]; c; c = c->hnext)
        if (!strcmp(c->id, id))
            return c;
    return NULL;
}

static void new_id(char id[API_CHANGE_ID_LEN + 1])
{
    static const char hex[] = "0123456789abcdef";
    unsigned char raw[API_CHANGE_ID_LEN / 2];
    if (RAND_bytes(raw, sizeof(raw)) != 1) {
        /* Ids must not be guessable; a process without randomness cannot give them. */
        fprintf(stderr, "r53reg: RAND_bytes failed\n");
        abort();
    }
    for (size_t i = 0; i < sizeof(raw); i++) {
        id[2 * i] = hex[raw[i] >> 4];
        id[2 * i + 1] = hex[raw[i] & 15];
    }
    id[API_CHANGE_ID_LEN] = '\0';
}

void api_changes_create(const struct api_request *req, char id[API_CHANGE_ID_LEN + 1])
{
    struct change *c = xcalloc(1, sizeof(*c));
    unsigned h;

    clock_gettime(CLOCK_MONOTONIC, &c->mono);
    rfc3339_now(c->submitted_at);
    snprintf(c->method, sizeof(c->method), "%s", req->method ? req->method : "");
    snprintf(c->path, sizeof(c->path), "%s", req->path ? req->path : "");
    pthread_mutex_lock(&lock);
    if (!table)
        table = xcalloc(HASH_SIZE, sizeof(*table));
    do
        new_id(c->id);
    while (find(c->id));                      /* 2^-128 per pair; the loop is for form's sake */
    memcpy(id, c->id, API_CHANGE_ID_LEN + 1); /* before prune(): c may go at once */
    h = hash_id(c->id);
    c->hnext = table[h];
    table[h] = c;
    if (newest)
        newest->newer = c;
    else
        oldest = c;
    newest = c;
    count++;
    bytes += entry_bytes(c);
    prune();
    pthread_mutex_unlock(&lock);
}

void api_changes_finish(const char *id, int failed, int http_status, json_t *result,
                        const char *store_change_id)
{
    char *text = result ? json_dumps(result, JSON_COMPACT) : NULL;
    size_t len = text ? strlen(text) : 0;
    char done_at[TIME_TEXT_MAX];
    struct change *c;

    json_decref(result);
    rfc3339_now(done_at);
    pthread_mutex_lock(&lock);
    c = find(id);
    if (c && !c->done) {
        c->done = 1;
        c->failed = failed;
        c->http_status = http_status;
        memcpy(c->completed_at, done_at, sizeof(done_at));
        snprintf(c->store_id, sizeof(c->store_id), "%s", store_change_id ? store_change_id : "");
        c->result = text;
        c->result_len = len;
        bytes += len;
        text = NULL;
        prune();
    }
    pthread_mutex_unlock(&lock);
    free(text);
}

void api_changes_accepted(struct api_response *res, const char *id)
{
    char href[sizeof(res->location)];
    snprintf(href, sizeof(href), "/changes/%s", id);
    json_decref(res->body);
    res->status = 202;
    res->content_type = "application/json";
    res->body = json_pack("{s:s, s:s, s:s}", "change_id", id, "status", "queued", "href", href);
    snprintf(res->location, sizeof(res->location), "%s", href);
}

/* ---- ?wait=none for one IP --------------------------------------------------------------- */

struct one {
    char id[API_CHANGE_ID_LEN + 1];
    struct reg_registry *reg;
    enum reg_op op;
    char path[160];
    char request_id[32];
};

static void one_done(void *arg, const struct reg_result *r)
{
    struct one *o = arg;
    struct api_request req;
    struct api_response res;

    memset(&req, 0, sizeof(req));
    memset(&res, 0, sizeof(res));
    req.path = o->path;
    req.request_id = o->request_id;
    if (r->rc) {
        api_problem(&res, &req, r->rc, r->detail);
        api_changes_finish(o->id, 1, res.status, res.body, r->placement.change_id);
    } else {
        int status = o->op == REG_OP_ADD && r->created ? 201 : 200;
        struct reg_placement pl = r->placement;
        if (o->op != REG_OP_REMOVE)
            api_placement_enrich(o->reg, &pl);
        api_changes_finish(o->id, 0, status, api_placement_json(o->reg, &pl),
                           r->placement.change_id);
    }
    free(o);
}

void api_changes_accept(const struct api_request *req, struct api_response *res, enum reg_op op,
                        const struct ip_addr *ip)
{
    struct one *o = xcalloc(1, sizeof(*o));
    char id[API_CHANGE_ID_LEN + 1];

    o->reg = req->reg;
    o->op = op;
    snprintf(o->path, sizeof(o->path), "%s", req->path ? req->path : "");
    snprintf(o->request_id, sizeof(o->request_id), "%s", req->request_id ? req->request_id : "");
    api_changes_create(req, o->id);
    memcpy(id, o->id, sizeof(id)); /* o may be freed inside reg_submit */
    api_changes_accepted(res, id);
    reg_submit(req->reg, op, ip, one_done, o);
}

/* ---- GET /changes/{id} ------------------------------------------------------------------- */

static int valid_id(const char *s, size_t n)
{
    if (n != API_CHANGE_ID_LEN)
        return 0;
    for (size_t i = 0; i < n; i++)
        if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
            return 0;
    return 1;
}

void api_changes_get(const struct api_request *req, struct api_response *res)
{
    char id[API_CHANGE_ID_LEN + 1];
    struct change copy;
    struct change *c;
    char *head, *out;
    size_t hlen;
    json_t *o;

    if (!req->param || !valid_id(req->param, req->param_len)) {
        api_problem(res, req, RC_NOT_FOUND, "no such change (ids are 32 lowercase hex digits)");
        return;
    }
    memcpy(id, req->param, API_CHANGE_ID_LEN);
    id[API_CHANGE_ID_LEN] = '\0';
    pthread_mutex_lock(&lock);
    prune();
    c = find(id);
    if (c) {
        copy = *c;
        if (c->result) {
            copy.result = xmalloc(c->result_len + 1);
            memcpy(copy.result, c->result, c->result_len + 1);
        }
    }
    pthread_mutex_unlock(&lock);
    if (!c) {
        api_problem(res, req, RC_NOT_FOUND,
                    "no such change: unknown, or older than the newest 100000 or one hour");
        return;
    }
    o = json_pack("{s:s, s:s, s:s, s:s, s:s}", "id", copy.id, "status",
                  !copy.done    ? "queued"
                  : copy.failed ? "failed"
                                : "committed",
                  "method", copy.method, "path", copy.path, "submitted_at", copy.submitted_at);
    if (copy.done) {
        json_object_set_new(o, "completed_at", json_string(copy.completed_at));
        json_object_set_new(o, "http_status", json_integer(copy.http_status));
        if (copy.store_id[0])
            json_object_set_new(o, "route53_change_id", json_string(copy.store_id));
    }
    head = json_dumps(o, JSON_COMPACT);
    json_decref(o);
    hlen = strlen(head);
    if (copy.result) {
        /* {...} + ,"result":<text>} */
        static const char key[] = ",\"result\":";
        out = xmalloc(hlen - 1 + sizeof(key) - 1 + copy.result_len + 2);
        memcpy(out, head, hlen - 1);
        memcpy(out + hlen - 1, key, sizeof(key) - 1);
        memcpy(out + hlen - 1 + sizeof(key) - 1, copy.result, copy.result_len);
        hlen = hlen - 1 + sizeof(key) - 1 + copy.result_len;
        out[hlen++] = '}';
        out[hlen] = '\0';
        free(head);
        free(copy.result);
    } else {
        out = head;
    }
    res->status = 200;
    res->content_type = "application/json";
    res->raw = out;
    res->raw_len = hlen;
}

void api_changes_set_limits(size_t entries, unsigned age_s_limit, size_t nbytes)
{
    pthread_mutex_lock(&lock);
    if (entries)
        max_entries = entries;
    if (age_s_limit)
        max_age_s = age_s_limit;
    if (nbytes)
        max_bytes = nbytes;
    prune();
    pthread_mutex_unlock(&lock);
}
