/*
 * emu_faults.c: fault injection, the account-wide rate limit and call statistics of r53emu.
 *
 * Faults (probabilities in [0, 1], drawn from one seeded PRNG, so a sequential test sees the
 * same faults for the same --seed):
 *   latency_ms, latency_jitter_ms  added to every API call (answered later, never blocking)
 *   reset                          close the connection without answering, before anything
 *   err5xx                         500 InternalFailure or 503 ServiceUnavailable
 *   throttle                       400 Throttling "Rate exceeded" (as the real limit answers)
 *   prior                          400 PriorRequestNotComplete (ChangeResourceRecordSets only)
 *   reset_after_apply              apply the change, then close without answering
 *   icb_shape                      envelope | root | random: InvalidChangeBatch body shape
 * Other keys: rate, burst, insync_after_ms, xml_order (strict | lenient), seed (re-seeds the
 * PRNG).
 * "force" (control API only) makes the next N matching calls hit a fault regardless of its
 * probability, for tests that need one exact failure.
 * Throttling follows Route 53's model since 2026: a token bucket of requests over
 * every API call of the account (rate tokens per second up to burst; rate 0 disables it),
 * and a separate bucket of record changes (change_rate per second up to change_burst;
 * change_rate 0 disables it) charged by every ChangeResourceRecordSets that gets past the
 * first one. A change is one Change element (change_unit=changes, the default: one record
 * set created, deleted or upserted) or, with change_unit=records, one ResourceRecord element
 * counted as the request quota counts them (an UPSERT twice). A batch larger than
 * change_burst passes when the bucket is full and leaves it in debt, so no batch is refused
 * forever. Either bucket empty: 400 Throttling "Rate exceeded". retry_after (ms; 0: off,
 * -1: the time until the bucket would admit the call, 1000 for an injected Throttling) adds
 * an x-amz-retry-after header to every Throttling answer.
 * ListResourceRecordSets faults (emu_store_list does them): list_paging normal | cycle | stuck,
 * list_max_items (a page cap below maxitems, so small zones page), list_identifier lenient |
 * strict (an identifier that names no record set is InvalidInput).
 *
 * Threading: one mutex guards the configuration, the PRNG, the bucket and the counters. It is a
 * leaf lock (nothing is called while it is held).
 */
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "emu.h"
#include "util/xalloc.h"

#define MAX_OUTCOMES 40

static const char *const fault_names[EMU_FAULT__COUNT] = {"latency",  "reset", "err5xx",
                                                          "throttle", "prior", "reset_after_apply"};
static const char *const op_names[EMU_OP__COUNT] = {
    "ChangeResourceRecordSets", "ListResourceRecordSets", "GetChange", "GetHostedZone", "Unknown"};

struct cfg {
    double p[EMU_FAULT__COUNT]; /* p[EMU_FAULT_LATENCY] unused */
    long long latency_ms, jitter_ms;
    enum emu_icb_shape icb;
    double rate, burst;
    double change_rate, change_burst;
    int change_records; /* change_unit=records */
    long long retry_after_ms;
    enum emu_list_paging list_paging;
    unsigned list_epoch;
    long long list_max_items;
    int list_strict_id;
    long long insync_ms;
    int xml_lenient;
    long long seed;
    int reseed;
    long force[EMU_FAULT__COUNT];
};

struct outcome {
    const char *name; /* static string */
    unsigned long long n;
};

struct emu_faults {
    pthread_mutex_t lock;
    struct cfg cfg;                                    /* guarded by lock */
    struct emu_rng rng;                                /* guarded by lock */
    double tokens;                                     /* guarded by lock */
    long long refill_ms;                               /* guarded by lock */
    double ctokens;                                    /* guarded by lock */
    long long crefill_ms;                              /* guarded by lock */
    struct outcome calls[EMU_OP__COUNT][MAX_OUTCOMES]; /* guarded by lock */
    size_t ncalls[EMU_OP__COUNT];                      /* guarded by lock */
    unsigned long long total, throttled, throttled_changes, faults[EMU_FAULT__COUNT],
        changes_applied, change_items, records_applied, records_deleted,
        direct_writes; /* guarded by lock */
};

struct emu_faults *emu_faults_create(uint64_t seed)
{
    struct emu_faults *f = xcalloc(1, sizeof(*f));
    pthread_mutex_init(&f->lock, NULL);
    f->cfg.insync_ms = 100;
    f->cfg.seed = (long long)seed;
    emu_rng_seed(&f->rng, seed);
    return f;
}

void emu_faults_destroy(struct emu_faults *f)
{
    if (!f)
        return;
    pthread_mutex_destroy(&f->lock);
    free(f);
}

const char *emu_op_name(enum emu_action_kind op)
{
    return op_names[op];
}

/* --- configuration ------------------------------------------------------------------------- */

static int parse_prob(const char *v, double *out)
{
    char *end = NULL;
    double x = strtod(v, &end);
    if (!*v || *end || !(x >= 0.0 && x <= 1.0))
        return -1;
    *out = x;
    return 0;
}

static int parse_nonneg(const char *v, long long max, long long *out)
{
    char *end = NULL;
    long long x;
    if (!*v || strspn(v, "0123456789") != strlen(v))
        return -1;
    x = strtoll(v, &end, 10);
    if (x < 0 || x > max)
        return -1;
    *out = x;
    return 0;
}

static int set_key(struct cfg *c, const char *key, const char *v, char *why, size_t why_len)
{
    long long x;

    for (int k = EMU_FAULT_RESET; k < EMU_FAULT__COUNT; k++) {
        if (!strcmp(key, fault_names[k])) {
            if (parse_prob(v, &c->p[k]))
                goto bad;
            return 0;
        }
    }
    if (!strcmp(key, "latency_ms")) {
        if (parse_nonneg(v, 600000, &c->latency_ms))
            goto bad;
    } else if (!strcmp(key, "latency_jitter_ms")) {
        if (parse_nonneg(v, 600000, &c->jitter_ms))
            goto bad;
    } else if (!strcmp(key, "icb_shape")) {
        if (!strcmp(v, "envelope"))
            c->icb = EMU_ICB_ENVELOPE;
        else if (!strcmp(v, "root"))
            c->icb = EMU_ICB_ROOT;
        else if (!strcmp(v, "random"))
            c->icb = EMU_ICB_RANDOM;
        else
            goto bad;
    } else if (!strcmp(key, "insync_after_ms")) {
        if (parse_nonneg(v, 86400000LL, &c->insync_ms))
            goto bad;
    } else if (!strcmp(key, "xml_order")) {
        if (!strcmp(v, "strict"))
            c->xml_lenient = 0;
        else if (!strcmp(v, "lenient"))
            c->xml_lenient = 1;
        else
            goto bad;
    } else if (!strcmp(key, "seed")) {
        if (parse_nonneg(v, 0x7fffffffffffffffLL, &x))
            goto bad;
        c->seed = x;
        c->reseed = 1;
    } else if (!strcmp(key, "rate") || !strcmp(key, "burst") || !strcmp(key, "change_rate") ||
               !strcmp(key, "change_burst")) {
        char *end = NULL;
        double d = strtod(v, &end);
        if (!*v || *end || !(d >= 0.0 && d <= 1e9) || (strstr(key, "burst") && d < 1.0))
            goto bad;
        if (!strcmp(key, "rate"))
            c->rate = d;
        else if (!strcmp(key, "burst"))
            c->burst = d;
        else if (!strcmp(key, "change_rate"))
            c->change_rate = d;
        else
            c->change_burst = d;
    } else if (!strcmp(key, "change_unit")) {
        if (!strcmp(v, "changes"))
            c->change_records = 0;
        else if (!strcmp(v, "records"))
            c->change_records = 1;
        else
            goto bad;
    } else if (!strcmp(key, "list_paging")) {
        if (!strcmp(v, "normal"))
            c->list_paging = EMU_LIST_NORMAL;
        else if (!strcmp(v, "cycle"))
            c->list_paging = EMU_LIST_CYCLE;
        else if (!strcmp(v, "stuck"))
            c->list_paging = EMU_LIST_STUCK;
        else
            goto bad;
        c->list_epoch++;
    } else if (!strcmp(key, "list_max_items")) {
        if (parse_nonneg(v, 300, &c->list_max_items))
            goto bad;
    } else if (!strcmp(key, "list_identifier")) {
        if (!strcmp(v, "lenient"))
            c->list_strict_id = 0;
        else if (!strcmp(v, "strict"))
            c->list_strict_id = 1;
        else
            goto bad;
    } else if (!strcmp(key, "retry_after")) {
        if (!strcmp(v, "-1") || !strcmp(v, "auto"))
            c->retry_after_ms = -1;
        else if (parse_nonneg(v, 3600000, &c->retry_after_ms))
            goto bad;
    } else {
        snprintf(why, why_len,
                 "unknown fault key '%s' (known: latency_ms, latency_jitter_ms, reset, err5xx, "
                 "throttle, prior, reset_after_apply, icb_shape, rate, burst, change_rate, "
                 "change_burst, change_unit, retry_after, list_paging, list_max_items, "
                 "list_identifier, insync_after_ms, xml_order, seed, force)",
                 key);
        return -1;
    }
    return 0;
bad:
    snprintf(why, why_len, "bad value '%s' for %s", v, key);
    return -1;
}

/* Install a validated configuration (lock held). */
static void commit(struct emu_faults *f, const struct cfg *c)
{
    int rate_changed = c->rate != f->cfg.rate || c->burst != f->cfg.burst;
    int change_changed = c->change_rate != f->cfg.change_rate ||
                         c->change_burst != f->cfg.change_burst ||
                         c->change_records != f->cfg.change_records;
    f->cfg = *c;
    if (f->cfg.rate > 0 && f->cfg.burst < 1.0)
        f->cfg.burst = f->cfg.rate < 1.0 ? 1.0 : f->cfg.rate;
    if (f->cfg.change_rate > 0 && f->cfg.change_burst < 1.0)
        f->cfg.change_burst = f->cfg.change_rate < 1.0 ? 1.0 : f->cfg.change_rate;
    if (rate_changed) {
        f->tokens = f->cfg.burst;
        f->refill_ms = emu_mono_ms();
    }
    if (change_changed) {
        f->ctokens = f->cfg.change_burst;
        f->crefill_ms = emu_mono_ms();
    }
    if (f->cfg.reseed) {
        emu_rng_seed(&f->rng, (uint64_t)f->cfg.seed);
        f->cfg.reseed = 0;
    }
}

int emu_faults_parse_spec(struct emu_faults *f, const char *spec, char *why, size_t why_len)
{
    char *copy = xstrdup(spec), *save = NULL;
    struct cfg c;
    int rc = -1;

    pthread_mutex_lock(&f->lock);
    c = f->cfg;
    for (char *tok = strtok_r(copy, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
        char *eq = strchr(tok, '=');
        if (!eq) {
            snprintf(why, why_len, "expected key=value, got '%s'", tok);
            goto out;
        }
        *eq = '\0';
        if (set_key(&c, tok, eq + 1, why, why_len))
            goto out;
    }
    commit(f, &c);
    rc = 0;
out:
    pthread_mutex_unlock(&f->lock);
    free(copy);
    return rc;
}

int emu_faults_apply_json(struct emu_faults *f, json_t *obj, char *why, size_t why_len)
{
    const char *key;
    json_t *val;
    struct cfg c;
    int rc = -1;

    if (!json_is_object(obj)) {
        snprintf(why, why_len, "body must be a JSON object");
        return -1;
    }
    pthread_mutex_lock(&f->lock);
    c = f->cfg;
    json_object_foreach(obj, key, val)
    {
        char num[64];
        const char *v;
        if (!strcmp(key, "force")) {
            const char *fk;
            json_t *fv;
            if (!json_is_object(val)) {
                snprintf(why, why_len, "force must be an object {fault: count}");
                goto out;
            }
            json_object_foreach(val, fk, fv)
            {
                int k;
                for (k = EMU_FAULT_RESET; k < EMU_FAULT__COUNT; k++) {
                    if (!strcmp(fk, fault_names[k]))
                        break;
                }
                if (k == EMU_FAULT__COUNT || !json_is_integer(fv) || json_integer_value(fv) < 0) {
                    snprintf(why, why_len, "force: bad entry '%s'", fk);
                    goto out;
                }
                c.force[k] = (long)json_integer_value(fv);
            }
            continue;
        }
        if (json_is_string(val)) {
            v = json_string_value(val);
        } else if (json_is_integer(val)) {
            snprintf(num, sizeof(num), "%lld", (long long)json_integer_value(val));
            v = num;
        } else if (json_is_real(val)) {
            snprintf(num, sizeof(num), "%.17g", json_real_value(val));
            v = num;
        } else {
            snprintf(why, why_len, "bad value type for %s", key);
            goto out;
        }
        if (set_key(&c, key, v, why, why_len))
            goto out;
    }
    commit(f, &c);
    rc = 0;
out:
    pthread_mutex_unlock(&f->lock);
    return rc;
}

json_t *emu_faults_config_json(struct emu_faults *f)
{
    json_t *o = json_object(), *force = json_object();
    static const char *const shapes[] = {"envelope", "root", "random"};

    pthread_mutex_lock(&f->lock);
    json_object_set_new(o, "latency_ms", json_integer(f->cfg.latency_ms));
    json_object_set_new(o, "latency_jitter_ms", json_integer(f->cfg.jitter_ms));
    for (int k = EMU_FAULT_RESET; k < EMU_FAULT__COUNT; k++) {
        json_object_set_new(o, fault_names[k], json_real(f->cfg.p[k]));
        if (f->cfg.force[k])
            json_object_set_new(force, fault_names[k], json_integer(f->cfg.force[k]));
    }
    json_object_set_new(o, "force", force);
    json_object_set_new(o, "icb_shape", json_string(shapes[f->cfg.icb]));
    json_object_set_new(o, "rate", json_real(f->cfg.rate));
    json_object_set_new(o, "burst", json_real(f->cfg.burst));
    json_object_set_new(o, "change_rate", json_real(f->cfg.change_rate));
    json_object_set_new(o, "change_burst", json_real(f->cfg.change_burst));
    json_object_set_new(o, "change_unit",
                        json_string(f->cfg.change_records ? "records" : "changes"));
    json_object_set_new(o, "retry_after", json_integer(f->cfg.retry_after_ms));
    {
        static const char *const paging[] = {"normal", "cycle", "stuck"};
        json_object_set_new(o, "list_paging", json_string(paging[f->cfg.list_paging]));
    }
    json_object_set_new(o, "list_max_items", json_integer(f->cfg.list_max_items));
    json_object_set_new(o, "list_identifier",
                        json_string(f->cfg.list_strict_id ? "strict" : "lenient"));
    json_object_set_new(o, "insync_after_ms", json_integer(f->cfg.insync_ms));
    json_object_set_new(o, "xml_order", json_string(f->cfg.xml_lenient ? "lenient" : "strict"));
    json_object_set_new(o, "seed", json_integer(f->cfg.seed));
    pthread_mutex_unlock(&f->lock);
    return o;
}

void emu_faults_set_rate(struct emu_faults *f, double rate, double burst)
{
    struct cfg c;
    pthread_mutex_lock(&f->lock);
    c = f->cfg;
    c.rate = rate;
    c.burst = burst;
    commit(f, &c);
    pthread_mutex_unlock(&f->lock);
}

void emu_faults_set_change_rate(struct emu_faults *f, double rate, double burst)
{
    struct cfg c;
    pthread_mutex_lock(&f->lock);
    c = f->cfg;
    c.change_rate = rate;
    c.change_burst = burst;
    commit(f, &c);
    pthread_mutex_unlock(&f->lock);
}

void emu_faults_set_insync_ms(struct emu_faults *f, long long ms)
{
    pthread_mutex_lock(&f->lock);
    f->cfg.insync_ms = ms;
    pthread_mutex_unlock(&f->lock);
}

long long emu_faults_insync_ms(struct emu_faults *f)
{
    long long ms;
    pthread_mutex_lock(&f->lock);
    ms = f->cfg.insync_ms;
    pthread_mutex_unlock(&f->lock);
    return ms;
}

/* --- draws --------------------------------------------------------------------------------- */

long long emu_faults_latency(struct emu_faults *f)
{
    long long ms;

    pthread_mutex_lock(&f->lock);
    ms = f->cfg.latency_ms;
    if (f->cfg.jitter_ms > 0)
        ms += (long long)(emu_rng_next(&f->rng) % (uint64_t)(f->cfg.jitter_ms + 1));
    if (ms > 0)
        f->faults[EMU_FAULT_LATENCY]++;
    pthread_mutex_unlock(&f->lock);
    return ms;
}

int emu_faults_draw(struct emu_faults *f, enum emu_fault k)
{
    int hit = 0;

    pthread_mutex_lock(&f->lock);
    if (f->cfg.force[k] > 0) {
        f->cfg.force[k]--;
        hit = 1;
    } else if (f->cfg.p[k] > 0.0) {
        hit = emu_rng_unit(&f->rng) < f->cfg.p[k];
    }
    if (hit)
        f->faults[k]++;
    pthread_mutex_unlock(&f->lock);
    return hit;
}

/*
 * Bring a bucket up to now and take n tokens. A call is admitted when the bucket holds n, or
 * is full (a batch larger than the bucket then leaves it in debt). Otherwise nothing is taken
 * and *wait_ms says when it would be admitted. Lock held.
 */
static int bucket_take(double *tokens, long long *refill_ms, double rate, double burst, double n,
                       long long *wait_ms)
{
    long long now = emu_mono_ms();
    double need = n < burst ? n : burst;

    *tokens += (double)(now - *refill_ms) * rate / 1000.0;
    if (*tokens > burst)
        *tokens = burst;
    *refill_ms = now;
    if (*tokens >= need) {
        *tokens -= n;
        return 1;
    }
    {
        double w = (need - *tokens) * 1000.0 / rate;
        *wait_ms = (long long)w + ((double)(long long)w < w);
    }
    return 0;
}

/* The x-amz-retry-after value for a throttled call that would be admitted after wait_ms.
 * Lock held. */
static long long retry_after(const struct emu_faults *f, long long wait_ms)
{
    if (f->cfg.retry_after_ms < 0)
        return wait_ms > 0 ? wait_ms : 1;
    return f->cfg.retry_after_ms;
}

int emu_faults_take_token(struct emu_faults *f, long long *retry_after_ms)
{
    long long wait = 0;
    int ok = 1;

    *retry_after_ms = 0;
    pthread_mutex_lock(&f->lock);
    if (f->cfg.rate > 0 &&
        !bucket_take(&f->tokens, &f->refill_ms, f->cfg.rate, f->cfg.burst, 1.0, &wait)) {
        ok = 0;
        f->throttled++;
        *retry_after_ms = retry_after(f, wait);
    }
    pthread_mutex_unlock(&f->lock);
    return ok;
}

int emu_faults_take_changes(struct emu_faults *f, size_t changes, size_t records,
                            long long *retry_after_ms)
{
    long long wait = 0;
    int ok = 1;

    *retry_after_ms = 0;
    pthread_mutex_lock(&f->lock);
    if (f->cfg.change_rate > 0 &&
        !bucket_take(&f->ctokens, &f->crefill_ms, f->cfg.change_rate, f->cfg.change_burst,
                     (double)(f->cfg.change_records ? records : changes), &wait)) {
        ok = 0;
        f->throttled++;
        f->throttled_changes++;
        *retry_after_ms = retry_after(f, wait);
    }
    pthread_mutex_unlock(&f->lock);
    return ok;
}

long long emu_faults_injected_retry_after(struct emu_faults *f)
{
    long long ms;

    pthread_mutex_lock(&f->lock);
    ms = retry_after(f, 1000);
    pthread_mutex_unlock(&f->lock);
    return ms;
}

enum emu_icb_shape emu_faults_icb_shape(struct emu_faults *f)
{
    enum emu_icb_shape s;

    pthread_mutex_lock(&f->lock);
    s = f->cfg.icb;
    if (s == EMU_ICB_RANDOM)
        s = (emu_rng_next(&f->rng) & 1) ? EMU_ICB_ROOT : EMU_ICB_ENVELOPE;
    pthread_mutex_unlock(&f->lock);
    return s;
}

int emu_faults_coin(struct emu_faults *f)
{
    int bit;
    pthread_mutex_lock(&f->lock);
    bit = (int)(emu_rng_next(&f->rng) & 1);
    pthread_mutex_unlock(&f->lock);
    return bit;
}

void emu_faults_list_opts(struct emu_faults *f, struct emu_list_opts *out)
{
    pthread_mutex_lock(&f->lock);
    out->paging = f->cfg.list_paging;
    out->paging_epoch = f->cfg.list_epoch;
    out->max_items = (long)f->cfg.list_max_items;
    out->strict_identifier = f->cfg.list_strict_id;
    pthread_mutex_unlock(&f->lock);
}

void emu_faults_set_xml_lenient(struct emu_faults *f, int lenient)
{
    pthread_mutex_lock(&f->lock);
    f->cfg.xml_lenient = lenient;
    pthread_mutex_unlock(&f->lock);
}

int emu_faults_xml_lenient(struct emu_faults *f)
{
    int v;
    pthread_mutex_lock(&f->lock);
    v = f->cfg.xml_lenient;
    pthread_mutex_unlock(&f->lock);
    return v;
}

/* --- statistics ---------------------------------------------------------------------------- */

void emu_stats_call(struct emu_faults *f, enum emu_action_kind op, const char *outcome)
{
    size_t i;

    pthread_mutex_lock(&f->lock);
    f->total++;
    for (i = 0; i < f->ncalls[op]; i++) {
        if (!strcmp(f->calls[op][i].name, outcome))
            break;
    }
    if (i == f->ncalls[op] && i < MAX_OUTCOMES) {
        f->calls[op][i].name = outcome;
        f->calls[op][i].n = 0;
        f->ncalls[op]++;
    }
    if (i < MAX_OUTCOMES)
        f->calls[op][i].n++;
    pthread_mutex_unlock(&f->lock);
}

void emu_stats_change_applied(struct emu_faults *f, const struct emu_batch *batch)
{
    unsigned long long values = 0, deleted = 0;

    for (size_t i = 0; i < batch->n; i++) {
        values += batch->changes[i].nvalues;
        if (batch->changes[i].action == EMU_DELETE)
            deleted += batch->changes[i].nvalues;
    }
    pthread_mutex_lock(&f->lock);
    f->changes_applied++;
    f->change_items += batch->n;
    f->records_applied += values;
    f->records_deleted += deleted;
    pthread_mutex_unlock(&f->lock);
}

void emu_stats_direct_write(struct emu_faults *f)
{
    pthread_mutex_lock(&f->lock);
    f->direct_writes++;
    pthread_mutex_unlock(&f->lock);
}

json_t *emu_stats_json(struct emu_faults *f)
{
    json_t *o = json_object(), *calls = json_object(), *faults = json_object();

    pthread_mutex_lock(&f->lock);
    for (int op = 0; op < EMU_OP__COUNT; op++) {
        json_t *byout;
        if (!f->ncalls[op])
            continue;
        byout = json_object();
        for (size_t i = 0; i < f->ncalls[op]; i++)
            json_object_set_new(byout, f->calls[op][i].name,
                                json_integer((json_int_t)f->calls[op][i].n));
        json_object_set_new(calls, op_names[op], byout);
    }
    for (int k = 0; k < EMU_FAULT__COUNT; k++)
        json_object_set_new(faults, fault_names[k], json_integer((json_int_t)f->faults[k]));
    json_object_set_new(o, "calls_total", json_integer((json_int_t)f->total));
    json_object_set_new(o, "calls", calls);
    json_object_set_new(o, "throttled", json_integer((json_int_t)f->throttled));
    json_object_set_new(o, "throttled_changes", json_integer((json_int_t)f->throttled_changes));
    json_object_set_new(o, "faults", faults);
    json_object_set_new(o, "changes_applied", json_integer((json_int_t)f->changes_applied));
    json_object_set_new(o, "change_items_applied", json_integer((json_int_t)f->change_items));
    json_object_set_new(o, "records_applied", json_integer((json_int_t)f->records_applied));
    json_object_set_new(o, "records_deleted", json_integer((json_int_t)f->records_deleted));
    json_object_set_new(o, "direct_writes", json_integer((json_int_t)f->direct_writes));
    pthread_mutex_unlock(&f->lock);
    return o;
}

void emu_stats_reset(struct emu_faults *f)
{
    pthread_mutex_lock(&f->lock);
    memset(f->calls, 0, sizeof(f->calls));
    memset(f->ncalls, 0, sizeof(f->ncalls));
    f->total = f->throttled = f->throttled_changes = f->changes_applied = f->change_items =
        f->records_applied = f->records_deleted = f->direct_writes = 0;
    memset(f->faults, 0, sizeof(f->faults));
    pthread_mutex_unlock(&f->lock);
}
