/*
 * test_insync.c: the insync waiter (registry/insync.c) against a fake provider.
 *
 * The fake's change_status() follows a rule per change id: INSYNC from a given time on (or
 * never), a failure, or a call that blocks for a while. It counts calls per id, records when
 * each call started and how many run at once. Every wait records its answer: the code, the
 * detail, when it came and how often (it must be exactly once).
 *
 * Timing: no case asserts how fast something is. Deadlines are checked from below (never
 * answered before the deadline) and by order with wide margins; the only upper bounds are
 * generous ones that prove waits do not run one after another.
 *
 * Usage: test_insync deadlines|slow_fast|shared|shutdown|rate_cap|failure|immediate|registry|idle
 */
#include <errno.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "check.h"
#include "registry/insync.h"
#include "registry/provider.h"
#include "registry/registry.h"

#define MAX_RULES 128
#define MAX_CALLS 4096
#define MAX_WAITS 256
#define ANSWER_WAIT_MS 30000 /* generous: sanitizer builds are slow */
#define NEVER INT64_MAX

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void sleep_ms(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
        ;
}

/* ---- the fake provider ------------------------------------------------------------------ */

struct rule {
    char id[64];
    int64_t insync_at_ms; /* now_ms() from which it is INSYNC; NEVER: never */
    unsigned block_ms;    /* each call takes this long */
    enum rc_code fail;    /* each call fails with this (RC_OK: does not fail) */
    unsigned calls;
};

struct fake {
    struct reg_provider base;
    pthread_mutex_t lock;
    /* guarded by lock */
    struct rule rules[MAX_RULES];
    size_t nrules;
    unsigned calls;
    int64_t call_at_ms[MAX_CALLS];
    unsigned in_flight, max_in_flight;
    unsigned blocked; /* calls inside a blocking rule now */
    int destroyed;
    int *destroyed_flag; /* set on destroy, when not NULL */
};

static enum rc_code fake_status(struct reg_provider *p, const char *id, int *insync, char *d,
                                size_t dn)
{
    struct fake *f = (struct fake *)p;
    struct rule *r = NULL;
    enum rc_code rc = RC_OK;
    unsigned block = 0;

    pthread_mutex_lock(&f->lock);
    CHECK(!f->destroyed);
    for (size_t i = 0; i < f->nrules; i++)
        if (!strcmp(f->rules[i].id, id))
            r = &f->rules[i];
    if (f->calls < MAX_CALLS)
        f->call_at_ms[f->calls] = now_ms();
    f->calls++;
    if (++f->in_flight > f->max_in_flight)
        f->max_in_flight = f->in_flight;
    *insync = 0;
    if (!r) {
        *insync = 1;
    } else {
        r->calls++;
        block = r->block_ms;
        if (r->fail) {
            rc = r->fail;
            snprintf(d, dn, "Route 53 GetChange failed: AccessDenied: not allowed (fake)");
        } else {
            *insync = r->insync_at_ms != NEVER && now_ms() >= r->insync_at_ms;
        }
    }
    if (block)
        f->blocked++;
    pthread_mutex_unlock(&f->lock);
    if (block)
        sleep_ms((int)block);
    pthread_mutex_lock(&f->lock);
    if (block)
        f->blocked--;
    f->in_flight--;
    pthread_mutex_unlock(&f->lock);
    return rc;
}

static void fake_destroy(struct reg_provider *p)
{
    struct fake *f = (struct fake *)p;
    pthread_mutex_lock(&f->lock);
    f->destroyed = 1;
    if (f->destroyed_flag)
        *f->destroyed_flag = 1;
    pthread_mutex_unlock(&f->lock);
}

/* The waiter's look, as the registry makes it from its provider's change_status(). */
static enum rc_code fake_look(void *ctx, const char *id, int *insync, char *d, size_t dn)
{
    struct fake *f = ctx;
    return f->base.ops->change_status(&f->base, id, insync, d, dn);
}

static const struct reg_provider_ops fake_ops = {
    .name = "fake",
    .change_status = fake_status,
    .destroy = fake_destroy,
};

static struct fake *fake_new(void)
{
    struct fake *f = calloc(1, sizeof(*f));
    f->base.ops = &fake_ops;
    pthread_mutex_init(&f->lock, NULL);
    return f;
}

static void fake_free(struct fake *f)
{
    pthread_mutex_destroy(&f->lock);
    free(f);
}

/* A rule for id: INSYNC after_ms from now (NEVER: never), calls blocking block_ms, or
 * failing with fail. */
static void fake_rule(struct fake *f, const char *id, int64_t after_ms, unsigned block_ms,
                      enum rc_code fail)
{
    struct rule *r;
    pthread_mutex_lock(&f->lock);
    r = &f->rules[f->nrules++];
    snprintf(r->id, sizeof(r->id), "%s", id);
    r->insync_at_ms = after_ms == NEVER ? NEVER : now_ms() + after_ms;
    r->block_ms = block_ms;
    r->fail = fail;
    pthread_mutex_unlock(&f->lock);
}

static unsigned fake_calls(struct fake *f, const char *id)
{
    unsigned n = 0;
    pthread_mutex_lock(&f->lock);
    for (size_t i = 0; i < f->nrules; i++)
        if (!strcmp(f->rules[i].id, id))
            n = f->rules[i].calls;
    pthread_mutex_unlock(&f->lock);
    return n;
}

static unsigned fake_blocked(struct fake *f)
{
    unsigned n;
    pthread_mutex_lock(&f->lock);
    n = f->blocked;
    pthread_mutex_unlock(&f->lock);
    return n;
}

/* ---- recorded answers ------------------------------------------------------------------- */

struct answers;

struct slot {
    struct answers *set;
    char id[64];
    unsigned timeout_ms;
    int64_t asked_ms;
    /* guarded by set->lock */
    unsigned times;
    enum rc_code rc;
    char detail[REG_DETAIL_MAX];
    int64_t at_ms;
    unsigned blocked_then; /* the fake's blocking calls in flight when it was answered */
    int destroyed_then;    /* the fake was destroyed when it was answered */
};

struct answers {
    pthread_mutex_t lock;
    pthread_cond_t cond;
    struct fake *fake; /* may be NULL */
    unsigned answered; /* guarded by lock */
    struct slot slots[MAX_WAITS];
};

static void answers_init(struct answers *a, struct fake *f)
{
    memset(a, 0, sizeof(*a));
    pthread_mutex_init(&a->lock, NULL);
    pthread_cond_init(&a->cond, NULL);
    a->fake = f;
    for (size_t i = 0; i < MAX_WAITS; i++)
        a->slots[i].set = a;
}

static void answers_release(struct answers *a)
{
    pthread_mutex_destroy(&a->lock);
    pthread_cond_destroy(&a->cond);
}

static void on_answer(void *arg, enum rc_code rc, const char *detail)
{
    struct slot *s = arg;
    struct answers *a = s->set;
    unsigned blocked = 0;
    int destroyed = 0;

    if (a->fake) {
        pthread_mutex_lock(&a->fake->lock);
        blocked = a->fake->blocked;
        destroyed = a->fake->destroyed;
        pthread_mutex_unlock(&a->fake->lock);
    }

    pthread_mutex_lock(&a->lock);
    s->times++;
    s->rc = rc;
    snprintf(s->detail, sizeof(s->detail), "%s", detail);
    s->at_ms = now_ms();
    s->blocked_then = blocked;
    s->destroyed_then = destroyed;
    a->answered++;
    pthread_cond_broadcast(&a->cond);
    pthread_mutex_unlock(&a->lock);
}

static void ask(struct reg_insync *w, struct answers *a, unsigned i, const char *id,
                unsigned timeout_ms)
{
    struct slot *s = &a->slots[i];
    snprintf(s->id, sizeof(s->id), "%s", id);
    s->timeout_ms = timeout_ms;
    s->asked_ms = now_ms();
    reg_insync_wait(w, id, timeout_ms, on_answer, s);
}

/* Wait until n answers came (at most ANSWER_WAIT_MS); returns how many did. */
static unsigned await_answers(struct answers *a, unsigned n)
{
    int64_t until = now_ms() + ANSWER_WAIT_MS;
    unsigned got;
    pthread_mutex_lock(&a->lock);
    while (a->answered < n && now_ms() < until) {
        pthread_mutex_unlock(&a->lock);
        sleep_ms(5);
        pthread_mutex_lock(&a->lock);
    }
    got = a->answered;
    pthread_mutex_unlock(&a->lock);
    return got;
}

static struct slot slot_copy(struct answers *a, unsigned i)
{
    struct slot s;
    pthread_mutex_lock(&a->lock);
    s = a->slots[i];
    pthread_mutex_unlock(&a->lock);
    return s;
}

static void check_says_made(const struct slot *s)
{
    CHECK(strstr(s->detail, "accepted") != NULL);
    CHECK(strstr(s->detail, "durable") != NULL);
    CHECK(strstr(s->detail, s->id) != NULL);
    CHECK(strstr(s->detail, "rejected") == NULL);
}

/* ---- cases ------------------------------------------------------------------------------ */

/*
 * Many waits at once, each with its own deadline: 20 on changes that never get INSYNC
 * (deadlines 100 ms .. 2 s, asked longest first) and 10 on changes that get INSYNC after
 * 300 ms (deadlines 30 s). Each is answered once, never before its deadline, a short deadline
 * never after a clearly longer one, and the INSYNC ones with RC_OK.
 */
static void test_deadlines(void)
{
    struct fake *f = fake_new();
    struct reg_insync *w = reg_insync_create(fake_look, f, NULL);
    static struct answers a;
    char id[32];

    answers_init(&a, f);
    for (unsigned i = 0; i < 20; i++) {
        snprintf(id, sizeof(id), "C-never-%u", i);
        fake_rule(f, id, NEVER, 0, RC_OK);
    }
    for (unsigned i = 0; i < 10; i++) {
        snprintf(id, sizeof(id), "C-soon-%u", i);
        fake_rule(f, id, 300, 0, RC_OK);
    }
    for (unsigned i = 0; i < 20; i++) {
        snprintf(id, sizeof(id), "C-never-%u", i);
        ask(w, &a, i, id, (20 - i) * 100); /* 2000, 1900, ..., 100 ms */
    }
    for (unsigned i = 0; i < 10; i++) {
        snprintf(id, sizeof(id), "C-soon-%u", i);
        ask(w, &a, 20 + i, id, 30000);
    }
    CHECK_INT(await_answers(&a, 30), 30);
    for (unsigned i = 0; i < 30; i++) {
        struct slot s = slot_copy(&a, i);
        CHECK_INT(s.times, 1);
        if (i < 20) {
            CHECK_INT(s.rc, RC_UPSTREAM_TIMEOUT);
            CHECK(s.at_ms - s.asked_ms >= s.timeout_ms);
            check_says_made(&s);
            CHECK(strstr(s.detail, "did not confirm") != NULL);
        } else {
            CHECK_INT(s.rc, RC_OK);
            CHECK_STR(s.detail, "");
        }
    }
    /* Independent: a deadline 500 ms shorter is never answered after a longer one. */
    for (unsigned i = 0; i < 20; i++)
        for (unsigned j = 0; j < 20; j++) {
            struct slot si = slot_copy(&a, i), sj = slot_copy(&a, j);
            if (si.asked_ms + si.timeout_ms + 500 <= sj.asked_ms + sj.timeout_ms)
                CHECK(si.at_ms <= sj.at_ms);
        }
    {
        struct reg_insync_stats st;
        reg_insync_stats(w, &st);
        CHECK_INT(st.waiting, 0);
        CHECK_INT(st.answered, 30);
        CHECK_INT(st.changes, 0); /* every change left once its waiters were answered */
    }
    reg_insync_destroy(w);
    for (unsigned i = 0; i < 30; i++)
        CHECK_INT(slot_copy(&a, i).times, 1);
    answers_release(&a);
    fake_free(f);
}

/*
 * A slow change does not delay a fast one: while a GetChange of one change hangs (2 s), a
 * change that is INSYNC is answered, and a short deadline on the hanging change passes on
 * time; both while the slow call is still in flight.
 */
static void test_slow_fast(void)
{
    struct fake *f = fake_new();
    struct reg_insync *w = reg_insync_create(fake_look, f, NULL);
    static struct answers a;
    struct slot s;
    int64_t t0;

    answers_init(&a, f);
    fake_rule(f, "C-slow", NEVER, 2000, RC_OK);
    fake_rule(f, "C-fast", 0, 0, RC_OK);
    ask(w, &a, 0, "C-slow", 60000);
    t0 = now_ms();
    while (fake_blocked(f) == 0 && now_ms() - t0 < ANSWER_WAIT_MS)
        sleep_ms(1);
    CHECK_INT(fake_blocked(f), 1);
    ask(w, &a, 1, "C-fast", 60000);
    ask(w, &a, 2, "C-slow", 300);
    CHECK_INT(await_answers(&a, 2), 2);
    s = slot_copy(&a, 1);
    CHECK_INT(s.times, 1);
    CHECK_INT(s.rc, RC_OK);
    CHECK_INT(s.blocked_then, 1); /* the slow call was still in flight */
    s = slot_copy(&a, 2);
    CHECK_INT(s.times, 1);
    CHECK_INT(s.rc, RC_UPSTREAM_TIMEOUT);
    CHECK(s.at_ms - s.asked_ms >= 300);
    CHECK_INT(s.blocked_then, 1);
    CHECK_INT(slot_copy(&a, 0).times, 0);
    reg_insync_destroy(w); /* waits for the slow call */
    s = slot_copy(&a, 0);
    CHECK_INT(s.times, 1);
    CHECK_INT(s.rc, RC_SHUTTING_DOWN);
    CHECK_INT(fake_blocked(f), 0);
    answers_release(&a);
    fake_free(f);
}

/*
 * Waits for one change share its polls: 60 waits on a change that is INSYNC after 700 ms and
 * 60 on one INSYNC after 200 ms, interleaved, make a handful of polls, not 120 series. A wait
 * arriving after INSYNC was seen is answered at once, without a poll.
 */
static void test_shared(void)
{
    struct fake *f = fake_new();
    struct reg_insync *w = reg_insync_create(fake_look, f, NULL);
    static struct answers a;
    struct slot s;
    unsigned before;

    answers_init(&a, f);
    fake_rule(f, "C-shared", 700, 0, RC_OK);
    fake_rule(f, "C-other", 200, 0, RC_OK);
    for (unsigned i = 0; i < 120; i++)
        ask(w, &a, i, i % 2 ? "C-other" : "C-shared", 60000);
    CHECK_INT(await_answers(&a, 120), 120);
    for (unsigned i = 0; i < 120; i++) {
        s = slot_copy(&a, i);
        CHECK_INT(s.times, 1);
        CHECK_INT(s.rc, RC_OK);
    }
    /* Polls at 0, 0.5 and 1.5 s at most: INSYNC by the third. */
    CHECK(fake_calls(f, "C-shared") >= 1 && fake_calls(f, "C-shared") <= 3);
    CHECK(fake_calls(f, "C-other") >= 1 && fake_calls(f, "C-other") <= 2);
    before = fake_calls(f, "C-shared");
    ask(w, &a, 120, "C-shared", 60000);
    s = slot_copy(&a, 120);
    CHECK_INT(s.times, 1); /* answered before reg_insync_wait returned */
    CHECK_INT(s.rc, RC_OK);
    CHECK_INT(fake_calls(f, "C-shared"), before);
    reg_insync_destroy(w);
    answers_release(&a);
    fake_free(f);
}

static struct reg_insync *late_waiter;
static struct answers late_answers;

/* The first shutdown answer asks again: a wait during the shutdown is answered at once. */
static void on_answer_then_ask(void *arg, enum rc_code rc, const char *detail)
{
    on_answer(arg, rc, detail);
    ask(late_waiter, &late_answers, 0, "C-late", 60000);
}

/*
 * Shutdown answers every pending wait (RC_SHUTTING_DOWN, once, before destroy returns) and
 * joins: a poll in flight has returned when destroy returns. A callback that waits again
 * during the shutdown is answered at once.
 */
static void test_shutdown(void)
{
    struct fake *f = fake_new();
    struct reg_insync *w = reg_insync_create(fake_look, f, NULL);
    static struct answers a;
    char id[32];
    int64_t t0;

    answers_init(&a, f);
    answers_init(&late_answers, f);
    late_waiter = w;
    fake_rule(f, "C-hang", NEVER, 1000, RC_OK);
    for (unsigned i = 0; i < 10; i++) {
        snprintf(id, sizeof(id), "C-pending-%u", i);
        fake_rule(f, id, NEVER, 0, RC_OK);
        ask(w, &a, i, id, 60000);
    }
    a.slots[10].set = &a;
    snprintf(a.slots[10].id, sizeof(a.slots[10].id), "C-hang");
    a.slots[10].asked_ms = now_ms();
    reg_insync_wait(w, "C-hang", 60000, on_answer_then_ask, &a.slots[10]);
    t0 = now_ms();
    while (fake_blocked(f) == 0 && now_ms() - t0 < ANSWER_WAIT_MS)
        sleep_ms(1);
    CHECK_INT(fake_blocked(f), 1);
    reg_insync_destroy(w);
    pthread_mutex_lock(&f->lock);
    CHECK_INT(f->in_flight, 0); /* joined: no call still running */
    pthread_mutex_unlock(&f->lock);
    for (unsigned i = 0; i <= 10; i++) {
        struct slot s = slot_copy(&a, i);
        CHECK_INT(s.times, 1);
        CHECK_INT(s.rc, RC_SHUTTING_DOWN);
        check_says_made(&s);
    }
    {
        struct slot s = slot_copy(&late_answers, 0);
        CHECK_INT(s.times, 1);
        CHECK_INT(s.rc, RC_SHUTTING_DOWN);
    }
    answers_release(&a);
    answers_release(&late_answers);
    fake_free(f);
}

/*
 * The global cap: 40 changes, each INSYNC after 1.5 s, under a cap of 10 polls/s with 4
 * pollers. Uncapped they would be polled 40 at a time; capped, the calls from the first to
 * the last fit 10 per second (plus the first), and every wait still ends INSYNC.
 */
static void test_rate_cap(void)
{
    struct fake *f = fake_new();
    struct reg_insync_options o = {.max_polls_per_s = 10, .pollers = 4};
    struct reg_insync *w = reg_insync_create(fake_look, f, &o);
    static struct answers a;
    char id[32];
    int64_t start = now_ms(), span;
    unsigned calls;

    answers_init(&a, f);
    for (unsigned i = 0; i < 40; i++) {
        snprintf(id, sizeof(id), "C-capped-%u", i);
        fake_rule(f, id, 1500, 0, RC_OK);
        ask(w, &a, i, id, 120000);
    }
    CHECK_INT(await_answers(&a, 40), 40);
    for (unsigned i = 0; i < 40; i++) {
        struct slot s = slot_copy(&a, i);
        CHECK_INT(s.times, 1);
        CHECK_INT(s.rc, RC_OK);
    }
    reg_insync_destroy(w);
    pthread_mutex_lock(&f->lock);
    calls = f->calls;
    span = f->call_at_ms[calls - 1] - start;
    pthread_mutex_unlock(&f->lock);
    CHECK(calls >= 40);
    if (!((double)calls <= 10.0 * (double)span / 1000.0 + 1.0)) {
        fprintf(stderr, "rate_cap: %u calls in %lld ms exceed 10/s\n", calls, (long long)span);
        check_failures++;
    }
    /* Every one-second window from a call on holds at most 10 calls, plus a few for the
     * scheduling delay between handing a poll out and the call starting. */
    pthread_mutex_lock(&f->lock);
    for (unsigned i = 0; i < calls && i < MAX_CALLS; i++) {
        unsigned in_window = 0;
        for (unsigned j = i; j < calls && j < MAX_CALLS; j++)
            if (f->call_at_ms[j] - f->call_at_ms[i] < 1000)
                in_window++;
        if (in_window > 13) {
            fprintf(stderr, "rate_cap: %u calls within 1 s from call %u\n", in_window, i);
            check_failures++;
            break;
        }
    }
    pthread_mutex_unlock(&f->lock);
    answers_release(&a);
    fake_free(f);
}

/* A failed poll answers the change's waiters: the change was made, only its propagation is
 * unknown (502 insync-unknown, never "rejected"). The failing call takes 1 s, so all five
 * waits are there when it returns: one poll serves them all. */
static void test_failure(void)
{
    struct fake *f = fake_new();
    struct reg_insync *w = reg_insync_create(fake_look, f, NULL);
    static struct answers a;

    answers_init(&a, f);
    fake_rule(f, "C-denied", NEVER, 1000, RC_UPSTREAM);
    for (unsigned i = 0; i < 5; i++)
        ask(w, &a, i, "C-denied", 60000);
    CHECK_INT(await_answers(&a, 5), 5);
    for (unsigned i = 0; i < 5; i++) {
        struct slot s = slot_copy(&a, i);
        CHECK_INT(s.times, 1);
        CHECK_INT(s.rc, RC_INSYNC_UNKNOWN);
        check_says_made(&s);
        CHECK(strstr(s.detail, "only its propagation is unknown") != NULL);
        CHECK(strstr(s.detail, "AccessDenied") != NULL);
    }
    CHECK_INT(fake_calls(f, "C-denied"), 1);
    CHECK_INT(rc_http_status(RC_INSYNC_UNKNOWN), 502);
    CHECK(strstr(rc_title(RC_INSYNC_UNKNOWN), "rejected") == NULL);
    reg_insync_destroy(w);
    answers_release(&a);
    fake_free(f);
}

static int64_t cpu_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/*
 * Waits answered INSYNC long before their deadlines leave nothing behind: once those
 * deadlines have passed, the waiter's threads sleep (the process uses well under half of one
 * core over a second) and it holds no change.
 */
static void test_idle(void)
{
    struct fake *f = fake_new();
    struct reg_insync *w = reg_insync_create(fake_look, f, NULL);
    static struct answers a;
    struct reg_insync_stats st;
    int64_t cpu0, wall0, cpu, wall;

    answers_init(&a, f);
    for (unsigned i = 0; i < 5; i++)
        ask(w, &a, i, "C-quick", 300); /* no rule: INSYNC at the first poll */
    CHECK_INT(await_answers(&a, 5), 5);
    for (unsigned i = 0; i < 5; i++)
        CHECK_INT(slot_copy(&a, i).rc, RC_OK);
    sleep_ms(500); /* past every deadline */
    cpu0 = cpu_ms();
    wall0 = now_ms();
    sleep_ms(1000);
    cpu = cpu_ms() - cpu0;
    wall = now_ms() - wall0;
    if (cpu * 2 > wall) {
        fprintf(stderr, "idle: the process used %lld ms of CPU in %lld ms\n", (long long)cpu,
                (long long)wall);
        check_failures++;
    }
    reg_insync_stats(w, &st);
    CHECK_INT(st.changes, 0);
    CHECK_INT(st.waiting, 0);
    reg_insync_destroy(w);
    answers_release(&a);
    fake_free(f);
}

/* Nothing to wait for: an empty or NULL id, or no provider, is answered RC_OK at once. */
static void test_immediate(void)
{
    struct fake *f = fake_new();
    struct reg_insync *w = reg_insync_create(fake_look, f, NULL);
    struct reg_insync *none = reg_insync_create(NULL, NULL, NULL);
    static struct answers a;

    answers_init(&a, f);
    ask(w, &a, 0, "", 1000);
    a.slots[1].asked_ms = now_ms();
    reg_insync_wait(w, NULL, 1000, on_answer, &a.slots[1]);
    ask(none, &a, 2, "C-any", 1000);
    for (unsigned i = 0; i < 3; i++) {
        struct slot s = slot_copy(&a, i);
        CHECK_INT(s.times, 1);
        CHECK_INT(s.rc, RC_OK);
    }
    CHECK_INT(f->calls, 0);
    reg_insync_destroy(w);
    reg_insync_destroy(none);
    reg_insync_destroy(NULL);
    answers_release(&a);
    fake_free(f);
}

/*
 * Through the registry: reg_wait_insync answers INSYNC from the waiter's threads, and
 * reg_destroy answers a pending wait before it destroys the provider.
 */
static void test_registry(void)
{
    struct fake *f = fake_new();
    struct reg_options opt;
    struct reg_registry *reg;
    static struct answers a;
    int destroyed = 0;
    struct slot s;

    answers_init(&a, f);
    memset(&opt, 0, sizeof(opt));
    snprintf(opt.record_name, sizeof(opt.record_name), "app.example.com");
    opt.buckets = 1;
    opt.max_per_bucket = 10;
    opt.ttl = 60;
    f->destroyed_flag = &destroyed;
    fake_rule(f, "C-never", NEVER, 0, RC_OK);
    reg = reg_create(&opt, &f->base);
    a.slots[0].asked_ms = now_ms();
    reg_wait_insync(reg, "C-done", 60000, on_answer, &a.slots[0]);
    CHECK_INT(await_answers(&a, 1), 1);
    CHECK_INT(slot_copy(&a, 0).rc, RC_OK);
    snprintf(a.slots[1].id, sizeof(a.slots[1].id), "C-never");
    reg_wait_insync(reg, "C-never", 60000, on_answer, &a.slots[1]);
    for (int64_t t0 = now_ms(); fake_calls(f, "C-never") == 0 && now_ms() - t0 < ANSWER_WAIT_MS;)
        sleep_ms(1);
    CHECK(fake_calls(f, "C-never") >= 1);
    reg_destroy(reg);
    CHECK_INT(destroyed, 1);
    s = slot_copy(&a, 1);
    CHECK_INT(s.times, 1);
    CHECK_INT(s.rc, RC_SHUTTING_DOWN);
    CHECK_INT(s.destroyed_then, 0); /* answered before the provider went */
    check_says_made(&s);
    answers_release(&a);
    fake_free(f);
}

int main(int argc, char **argv)
{
    static const struct {
        const char *name;
        void (*fn)(void);
    } tests[] = {
        {"deadlines", test_deadlines}, {"slow_fast", test_slow_fast}, {"shared", test_shared},
        {"shutdown", test_shutdown},   {"rate_cap", test_rate_cap},   {"failure", test_failure},
        {"immediate", test_immediate}, {"registry", test_registry},   {"idle", test_idle},
    };
    const char *what = argc > 1 ? argv[1] : "";
    for (size_t i = 0; i < sizeof(tests) / sizeof(tests[0]); i++) {
        if (!strcmp(what, tests[i].name)) {
            tests[i].fn();
            return check_done("test_insync");
        }
    }
    fprintf(stderr, "usage: test_insync deadlines|slow_fast|shared|shutdown|rate_cap|failure|"
                    "immediate|registry|idle\n");
    return 2;
}
