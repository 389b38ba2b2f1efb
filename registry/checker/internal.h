/*
 * internal.h: the health check engine's private contract (the public one is registry/checker.h).
 * The structs its files share, the thread and lock model and the invariants, stated once; each
 * function below is defined in the file named above it. Nothing outside registry/checker/
 * includes this header.
 *
 * One engine thread runs an epoll loop (engine.c). It owns two 4-ary min-heaps of targets
 * (schedule.c):
 * - due: idle targets keyed by the time their next check is due;
 * - deadline: targets with a TCP connect in flight, keyed by the connect's deadline.
 * Checks due within a small slack of now start together (hcs_start_slack()); deadlines and
 * curl's timer are kept to the millisecond.
 * HTTP(S) checks are libcurl easy handles on one multi handle driven from the same epoll set
 * (CURLMOPT_SOCKETFUNCTION adds curl's sockets, CURLMOPT_TIMERFUNCTION sets curl_due_ns, and
 * curl_multi_socket_action() is called on their events and when curl_due_ns passes); curl
 * enforces their timeouts. Each loop turn: apply queued adds/removes, expire TCP deadlines,
 * run curl's timer, start due checks (and those due within the slack) while fewer than
 * max_parallel are in flight, sleep in epoll_wait() until the earliest of those times or an
 * event (the wakeup eventfd included).
 *
 * Epoll data: a TCP check's target pointer (aligned, low bits 0); curl socket s as
 * (s << 2) | TAG_CURL; the eventfd as TAG_WAKE. Targets are freed only by the engine thread
 * while it applies removals at the top of a turn, never in the middle of an event batch, so a
 * pointer in a batch is never stale; curl sockets are looked up by number, so a socket curl
 * closed during a batch costs at most a spurious curl_multi_socket_action().
 *
 * Locking: one mutex, lock, guards the hash table ip -> target, the add and remove queues,
 * every target's reported state (up, counts, last error, times, removed) and the down count.
 * Other fields of a target (cfg, run state, heap position, in-flight resources) belong to the
 * engine thread and are touched without the lock. The lock is never held across I/O or a
 * callback. Lifetime: hc_engine_remove() unlinks the target from the table (so no thread can
 * find it again) and queues it; the engine thread cancels its check and frees it.
 *
 * Invariants (engine thread, between turns): a target is in exactly one of: the add queue
 * (not yet scheduled), the due heap (T_IDLE), the deadline heap (T_TCP, fd open and in the
 * epoll set), curl's multi handle (T_HTTP); in_flight == number of T_TCP + T_HTTP targets
 * <= max_parallel.
 */
#ifndef R53REG_REGISTRY_CHECKER_INTERNAL_H
#define R53REG_REGISTRY_CHECKER_INTERNAL_H

#include <curl/curl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>

#include "registry/checker.h"
#include "util/clock.h"
#include "util/metrics.h"

#define TAG_WAKE 2u
#define TAG_CURL 1u
#define MS_NS INT64_C(1000000)
/* The most a check may start before it is due (see hcs_start_slack()). */
#define START_SLACK_MAX_NS (20 * MS_NS)

/* A resolved check configuration: every field set. */
struct cfg {
    enum hc_kind kind; /* HC_TCP, HC_HTTP or HC_HTTPS */
    unsigned port;     /* 0 only in the engine's defaults */
    char *path;        /* owned */
    int status_min, status_max;
    unsigned interval_ms, timeout_ms, rise, fall;
    int tls_verify; /* 0 or 1 */
};

enum run_state { T_NEW, T_IDLE, T_TCP, T_HTTP };

/* An HTTP(S) check in flight (defined in probe_http.c). */
struct http_call;

struct target {
    struct ip_addr ip;

    /* guarded by the engine's lock */
    struct target *hnext;    /* hash chain */
    struct target *add_next; /* on add_queue when queued_add */
    struct target *rm_next;  /* on rm_queue once removed */
    int queued_add;
    int removed;
    int has_pending_cfg;
    struct cfg *pending_cfg; /* replacement override (NULL: the defaults) */
    int up;
    unsigned cons_ok, cons_fail;
    uint64_t checks, failures;
    int last_ok;
    char last_error[HC_ERROR_MAX];
    int64_t last_check_ms, last_change_ms, added_ms;
    int64_t run_started_ms; /* the first check of the current run of equal results */

    /* engine thread only */
    struct cfg *cfg; /* own override or &engine->defcfg */
    enum run_state state;
    size_t hidx;            /* position in the heap it is in */
    int64_t key;            /* that heap's key (CLOCK_MONOTONIC ns; the slot holds a copy) */
    int64_t due_ns;         /* when the latest check was due (it may start a little early) */
    int64_t started_ns;     /* start of the latest check */
    int fd;                 /* T_TCP */
    struct http_call *call; /* T_HTTP */
};

/* A heap slot: the target and a copy of its key (schedule.c). */
struct heap_slot {
    int64_t key;
    struct target *t;
};

struct heap {
    struct heap_slot *v;
    size_t n, cap;
};

struct hc_engine {
    struct cfg defcfg;
    unsigned max_parallel;
    int start_down;
    hc_change_fn on_change;
    void *arg;

    pthread_t thread;
    int thread_started;
    atomic_int stop;
    int epfd, evfd;
    CURLM *multi;
    int curl_inited;

    pthread_mutex_t lock;
    /* guarded by lock */
    struct target **table;
    size_t table_size; /* power of two */
    size_t count;
    unsigned down;
    struct target *add_queue; /* LIFO; order does not matter (each gets a random start) */
    struct target *rm_queue;

    /* engine thread only */
    struct heap due, deadline;
    unsigned in_flight;
    int64_t curl_due_ns; /* -1: no curl timer */
    uint64_t rng;
    int64_t last_local_log_ns;

    /* written by the engine thread, read by hc_engine_stats() */
    atomic_ullong checks, failures, tr_up, tr_down, local_errors;
    atomic_uint in_flight_pub, max_in_flight;

    struct metrics_counter *m_ok, *m_fail, *m_up, *m_down;
    struct metrics_gauge *m_targets, *m_downg;
};

/* ---- registry/checker/config.c: check settings (pure) ------------------------------------ */

/* "tcp", "http", "https" or "inherit". */
const char *hcc_kind_name(enum hc_kind k);
/* out = base with the non-zero fields of o (o already validated); out->path is a fresh copy. */
void hcc_cfg_resolve(const struct cfg *base, const struct hc_check *o, struct cfg *out);
/* Free what c owns (not c itself). NULL is fine. */
void hcc_cfg_release(struct cfg *c);

/* ---- registry/checker/engine.c: lifecycle and the loop thread ---------------------------- */

/* Wake the engine thread out of epoll_wait(). Any thread. */
void hce_wake(struct hc_engine *e);

/* ---- registry/checker/schedule.c: heaps, scheduling, verdicts (engine thread) ------------ */

void hcs_heap_push(struct heap *h, struct target *t);
void hcs_heap_remove(struct heap *h, struct target *t);
/* The target with the smallest key; NULL when h is empty. */
struct target *hcs_heap_top(const struct heap *h);
/* How early t's next check may start: checks due within this of now start in the same loop
 * turn, so the engine wakes once per batch instead of once per check. interval / 128, at most
 * START_SLACK_MAX_NS (an interval of 5 s: 20 ms). */
int64_t hcs_start_slack(const struct target *t);
/* Put a new target on the due heap at a random time within one interval from now. */
void hcs_schedule_first(struct hc_engine *e, struct target *t, int64_t now);
/* A check of t that could not start for a local reason (what failed, errno err): no verdict on
 * t, logged at most once a second, counted, retried at the next interval. */
void hcs_local_error(struct hc_engine *e, struct target *t, const char *what, int err);
/* Record the verdict of a finished check of t (idle again, its resources released), schedule
 * the next one, and report a transition (calls on_change with no lock held). */
void hcs_record(struct hc_engine *e, struct target *t, int ok, const char *err);
/* A check started or ended: the in-flight count and its published copies. */
void hcs_in_flight_inc(struct hc_engine *e);
void hcs_in_flight_dec(struct hc_engine *e);
/* strerror text with a lowercase first letter ("connection refused"). */
void hcs_errno_text(int err, char *out, size_t n);

/* ---- registry/checker/probe_tcp.c: TCP connect checks (engine thread) -------------------- */

/* Start a TCP check of t (state T_NEW, started_ns set): in flight (T_TCP), or decided or
 * failed locally at once. */
void hct_start(struct hc_engine *e, struct target *t);
/* Release a TCP check's socket and slot (t back to T_NEW, no verdict). */
void hct_end(struct hc_engine *e, struct target *t);
/* An epoll event on t's socket. */
void hct_event(struct hc_engine *e, struct target *t, uint32_t events);
/* Fail the TCP checks whose deadline is at or before now. */
void hct_expire(struct hc_engine *e, int64_t now);
/* Close with a reset instead of FIN: no TIME_WAIT on our side. */
void hct_set_linger0(int fd);

/* ---- registry/checker/probe_http.c: HTTP(S) checks on the curl multi handle -------------- */

/* Start an HTTP(S) check of t (state T_NEW, started_ns set): in flight (T_HTTP), or failed
 * locally at once. */
void hch_start(struct hc_engine *e, struct target *t);
/* Release an HTTP check's handle and slot (t back to T_NEW, no verdict). */
void hch_end(struct hc_engine *e, struct target *t);
/* Drive curl on socket s (CURL_SOCKET_TIMEOUT: its timer) and record finished checks. */
void hch_action(struct hc_engine *e, curl_socket_t s, int mask);
/* CURLMOPT_SOCKETFUNCTION and CURLMOPT_TIMERFUNCTION; their data is the engine. */
int hch_socket_cb(CURL *easy, curl_socket_t s, int what, void *userp, void *socketp);
int hch_timer_cb(CURLM *multi, long timeout_ms, void *userp);

#endif
