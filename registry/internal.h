/*
 * internal.h: the registry's private contract. The structs its files share, the lock order
 * and the invariants, stated once; each function below is defined in the file named above it.
 * Nothing outside registry/ includes this header.
 *
 * State: for each type (A, AAAA) REG_MAX_BUCKETS buckets, each three committed record sets
 * (enum reg_kind: served, down, draining; nvalues == 0: the set does not exist, see
 * docs/design-health.md); an index ip -> {bucket, set, state}; per-bucket reservation counts
 * that placement reads.
 *
 * Lock order: a bucket lock, then the index lock, then the work lock (group commit), then
 * (inside hc_engine_*) the checker's own lock. The maintainer's lock is taken alone.
 * No lock is held across a provider call (network I/O), a sleep or a completion callback:
 * a bucket is kept by one writer at a time through its `writing` flag instead, so readers
 * (GET /buckets, lookups) never wait on Route 53.
 *
 * Invariants (whenever no lock is held):
 * - an index entry is PRESENT iff its IP is in one of the committed sets of its bucket, and
 *   `where` names that set;
 * - reserved[t][b] == committed values of bucket b's three sets (second copies of an IP
 *   indexed elsewhere included) + ADDING entries for b, so a backend that is down or draining
 *   keeps its place and always has room to come back;
 * - a bucket's committed sets change only in registry/bucket.c, through bucket_commit() and
 *   bucket_adopt(), which update the index under the same bucket-lock hold;
 * - an IP is acknowledged only after the provider applied the change;
 * - one IP has at most one operation in flight: later ones wait (index_cond in immediate mode,
 *   the entry's waiters in group mode), so duplicate requests serialize and answer
 *   consistently.
 */
#ifndef R53REG_REGISTRY_INTERNAL_H
#define R53REG_REGISTRY_INTERNAL_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <time.h>

#include "registry/batch_policy.h"
#include "registry/provider.h"
#include "registry/registry.h"
#include "util/clock.h"

enum entry_state { ENTRY_ADDING, ENTRY_PRESENT, ENTRY_REMOVING, ENTRY_MOVING };
enum transition { TRANS_NONE, TRANS_DOWN, TRANS_UP };
#define AMBIGUOUS_MAX 256
/* Compare-and-swap rounds a mutation gets before it fails with RC_CONFLICT. */
#define CONFLICT_ROUNDS 16
/* Immediate mode: store calls in flight at once (each is one mutation; the rate limiter paces
 * them). */
#define COMMIT_NOW_THREADS 16
/* A failed health move or lease removal is retried after this long (the store is failing:
 * do not hammer it). */
#define TRANSITION_RETRY_NS (5 * 1000000000LL)
/* How long after the owner's resync interval a backend registered here is still checked here. */
#define FLEET_HANDOVER_NS (10 * 1000000000LL)
#define ALL_KINDS ((1u << REG_KINDS) - 1)

/* A submitted mutation: queued on its bucket (group mode) or on the immediate-mode threads'
 * queue, answered through done() exactly once. */
struct intent {
    int64_t submitted_ns; /* CLOCK_MONOTONIC */
    enum reg_op op;
    struct ip_addr ip;
    unsigned chars; /* length of the IP's text (what a value costs in a call) */
    unsigned bucket;
    unsigned rounds; /* compare-and-swap conflicts met so far */
    int created;     /* REG_OP_ADD of an IP that was not registered */
    int fills;       /* created, and its bucket is full with it (the committer stops holding) */
    int to_down;     /* REG_OP_ADD of a draining IP whose checks fail: back to the down set */
    int expiry;      /* REG_OP_REMOVE of an expired lease: only if it is still expired */
    int kind_after;  /* settling: the set holding the IP after the commit, -1: none */
    int confirm;     /* an API request: on an unknown IP, read the store before answering 404 */
    int confirmed;   /* the store was read since it arrived (registry/confirm.c) */
    int confirmed_gone; /* a removal: the store was read after it, for copies left */
    struct reg_registry *reg;
    void (*again)(struct reg_registry *, struct intent *); /* how it runs once confirmed */
    reg_done_fn done;
    void *arg;
    struct intent *next;
};

/* One alias at the name: whether it exists and its weight. */
struct tree_alias {
    unsigned char exists;
    unsigned char weight;
};

/* A mutation the maintainer started (a lease expiry, a health move): its completion's arg. */
struct chore {
    struct reg_registry *reg;
    struct ip_addr ip;
    enum reg_op op;
};

/* One IP in the index. Guarded by the registry's index_lock. */
struct entry {
    struct ip_addr ip;
    unsigned bucket;
    enum entry_state state;
    enum reg_kind where;       /* the set holding it (unless ADDING) */
    int64_t since_ms;          /* Unix ms it entered where, for down and draining */
    int64_t lease_deadline_ns; /* CLOCK_MONOTONIC; 0: no lease */
    unsigned lease_s;
    int lease_expiring; /* a removal for the expired lease is in flight */
    unsigned lease_unknown_tries; /* this expiry was postponed this often: a live peer could
                                     not answer (registry/leases.c) */
    int64_t heard_ns;   /* CLOCK_MONOTONIC of the last sign of life this replica heard; 0:
                           none (peers ask for it before expiring a lease: registry/fleet.c) */
    /* health checks */
    unsigned char checked;      /* handed to the checker */
    unsigned char health_down;  /* the checker's verdict */
    unsigned char held;         /* its verdict is down but the fail-open guard keeps it served */
    unsigned char transition;   /* enum transition: a move for the verdict is in flight */
    unsigned char undrain_down; /* an undrain to the down set is in flight (counts as down) */
    unsigned char foreign_down; /* another writer put it in the down set while we ran */
    unsigned char adopted;      /* learnt from the store (load, another writer's change), not
                                   registered through this registry since */
    unsigned char not_mine;     /* another live replica checks it (registry/fleet.c): no
                                   checks and no health moves from here */
    unsigned char own_check;    /* checked with a per-registration check (reg_set_check) */
    int64_t interim_until_ns;   /* registered here though another replica owns its checks:
                                   checked here until the owner has read it (one resync) */
    int64_t verdict_ns;         /* CLOCK_MONOTONIC of the latest verdict */
    int64_t streak_ms;          /* Unix ms of the first check of the streak behind it */
    int64_t retry_ns;           /* a failed move is retried from then on */
    int64_t lease_retry_ns;     /* a failed removal of an expired lease is retried from then on */
    struct intent *waiters;     /* group commit: later operations on this IP, in order */
    struct entry *next;
};

struct bucket {
    pthread_mutex_t lock;
    pthread_cond_t idle; /* signalled when writing clears */
    /* guarded by lock */
    struct reg_record rec[REG_KINDS]; /* served, down, draining */
    unsigned long long changes;       /* rec was installed or adopted this many times */
    /* A writer (the committer's batch, or an immediate-mode mutation) owns the bucket's store
     * state: the store may already hold its change though rec does not yet. Other writers
     * wait (bucket_claim) and resync leaves the bucket alone; readers go on. */
    int writing;
    struct intent *queue; /* group commit: intents not yet sent, in arrival order */
    struct intent **queue_tail;
    /* The served set's value text length, as of its `changes`-th install (the committer's
     * cost estimate: computed once per install, not once per look). */
    size_t served_chars;
    unsigned long long served_chars_of;
    int listed;                /* guarded by the registry's work_lock: on the dirty list */
    struct bucket *dirty_next; /* guarded by work_lock */
};

struct reg_registry {
    struct reg_options opt;
    unsigned capacity[2]; /* reg_capacity() per type, fixed at create */
    /* The TTL of each weighted group (name + type: a kind's sets of one type). Route 53 refuses
     * a set whose TTL differs from its group's, so r53reg writes with the group's TTL as the
     * zone has it (learnt at load and from every adoption), --ttl only for a new group. */
    atomic_uint group_ttl[2][REG_KINDS];
    /* Taken alone (a leaf): group_ttl is written only under it, and ttl_epoch counts the TTL
     * changes (reg_set_ttl), so a listing read before one cannot teach the old TTL back. */
    pthread_mutex_t ttl_lock;
    unsigned ttl_epoch;  /* guarded by ttl_lock */
    atomic_int ttl_busy; /* reg_set_ttl holds every bucket: the committer waits, unpaced */
    struct reg_provider *prov;
    atomic_int loaded;
    atomic_ullong generation; /* see reg_generation() */
    _Atomic(reg_change_hook_fn) change_hook; /* see reg_set_change_hook() */
    _Atomic(reg_event_hook_fn) event_hook;   /* see reg_set_event_hook() */

    /* The buckets of each type, one per slot (registry.h): nslots of them, REG_MAX_BUCKETS
     * (the name's own) or, in the alias tree, REG_MAX_SLOTS. */
    unsigned nslots;
    struct bucket *buckets[2];

    pthread_mutex_t index_lock;
    pthread_cond_t index_cond; /* an entry settled or left */
    /* guarded by index_lock */
    struct entry **table;
    size_t table_size; /* power of two */
    size_t count;
    unsigned *reserved[2]; /* nslots each */
    /* Buckets being filled: placement put a registration there that the committer has not
     * taken yet, so one more costs one element (registry/placement.c). nslots each. */
    unsigned char *filling[2];
    /* Registrations whose store call failed in a way that may still have applied it (5xx,
     * timeout): where they were placed, so a retry goes to the same bucket (meeting itself in
     * one compare-and-swap, never placed twice) and an adoption of one gets its lease. A ring:
     * the oldest is forgotten first. */
    struct {
        struct ip_addr ip;
        unsigned bucket;
        int used;
    } ambiguous[AMBIGUOUS_MAX];
    size_t ambiguous_next;

    /* Group commit: the committer thread and its work list. */
    pthread_t committer;
    int committer_started;
    pthread_mutex_t work_lock;
    pthread_cond_t work_cond;
    /* guarded by work_lock */
    struct bucket *dirty_head, **dirty_tail;
    int stopping;
    unsigned long long batches, batched_changes;
    size_t queued;           /* intents queued, not yet sent */
    struct batch_rate arrivals; /* the arrival rate the send rule and placement read */
    /* Events that end a hold (first work, a bucket turned full): the committer holds only
     * while this is unchanged since it planned. */
    unsigned long long kicks;
    size_t in_call; /* intents taken into a call, not yet answered or queued again */

    /* Immediate mode: the threads that make the store calls, and their queue (guarded by
     * now_lock). A caller's thread (an HTTP worker) never waits for Route 53. */
    struct now_queue {
        struct reg_registry *reg;
        pthread_t thread;
        pthread_cond_t cond;
        struct intent *head, **tail; /* one queue per thread: an IP always goes to one */
    } now_q[COMMIT_NOW_THREADS];
    unsigned now_started;
    pthread_mutex_t now_lock;
    int now_stopping;

    /* reg_set_ttl_async: changes running on their own threads (guarded by now_lock); reg_destroy
     * waits for none to be left. */
    unsigned ttl_jobs;
    int ttl_closed;
    pthread_cond_t ttl_cond; /* signalled when a job ends */

    /* The maintainer thread: lease expiry, the health reconciler, resync. */
    pthread_t maintainer;
    int maintainer_started;
    pthread_mutex_t maintainer_lock;
    pthread_cond_t maintainer_cond;
    int maintainer_stop;    /* guarded by maintainer_lock */
    int maintainer_kick;    /* guarded by maintainer_lock: a verdict changed, look now */
    int64_t next_resync_ns; /* maintainer thread */
    atomic_llong resynced_ms; /* Unix ms of the last resync that read the store; 0: none */
    atomic_ullong resyncs;    /* resyncs that read the store */

    /* Requests waiting for a fresh read of the store before "not registered"
     * (registry/confirm.c). */
    pthread_mutex_t confirm_lock;
    struct confirm_wait *confirm_head, **confirm_tail; /* guarded by confirm_lock */
    size_t confirm_n;                                  /* guarded by confirm_lock */
    int confirm_stopped;                               /* guarded by confirm_lock */
    int64_t confirm_next_ns;                           /* maintainer thread */

    /* An IP may be in a second bucket (registry/strays.c): set when a load or an adoption
     * met one, cleared by the repair pass that finds none. */
    atomic_int strays_dirty;
    /* CLOCK_MONOTONIC of the last adoption of another writer's change (0: none): removals
     * then check the store for copies another replica placed (strays_finish_removal). */
    atomic_llong foreign_seen_ns;
    atomic_int copies_loaded; /* the store held an address twice at load */
    int64_t strays_retry_ns; /* maintainer thread: the store failed a repair; wait */
    size_t strays_start;     /* maintainer thread: where the next repair pass starts */

    /* ?wait=insync (registry/insync.h): made in reg_create, destroyed in reg_destroy before
     * the provider. */
    struct reg_insync *insync;

    /* Health checks (may be NULL). Set before reg_load, destroyed in reg_destroy. */
    struct hc_engine *checker;
    int check_all;
    unsigned check_port;                          /* the defaults' port, 0: none */
    unsigned check_interval_ms, check_timeout_ms; /* the defaults' */
    size_t held;            /* maintainer thread: backends the guard keeps served */
    int64_t held_logged_ns; /* maintainer thread */

    /* Other replicas (registry/fleet.c). peers_* are set before reg_load. */
    reg_peers_heard_fn peers_heard; /* NULL: no peers */
    void *peers_arg;
    pthread_mutex_t fleet_lock; /* a leaf */
    char **members;             /* guarded by fleet_lock: live instance ids, sorted; NULL:
                                   alone (this replica checks everything) */
    size_t nmembers;            /* guarded by fleet_lock */
    size_t self_member;         /* guarded by fleet_lock: this replica's index in members */
    atomic_ullong fleet_gen;    /* membership changes */
    unsigned long long fleet_gen_seen; /* maintainer thread */
    int64_t interim_next_ns;           /* guarded by index_lock: the earliest interim_until_ns */

    /* The alias tree's top level (registry/tree.c). */
    pthread_mutex_t tree_lock; /* a leaf */
    struct tree_alias aliases[2][REG_TREE_CHILDREN]; /* guarded by tree_lock */
    atomic_int tree_dirty; /* the aliases may disagree with the children: check them */
    atomic_ullong tree_gen;  /* alias writes so far, and failed calls carrying some: a listing read across one is stale */
    atomic_int tree_writing; /* calls carrying alias changes in flight (committer, mover) */
    /* Type t takes new addresses in the children (registry/tree_grow.c): set from the start
     * with REG_TREE_ON; with REG_TREE_AUTO when the type grew (or the zone holds its tree). */
    atomic_int tree_on[2];
    atomic_ullong moves; /* buckets moved into the tree or out of it (written under index_lock) */
    /* guarded by index_lock: child c of type t is the target of a move in flight, so placement
     * leaves it alone. */
    unsigned char tree_moving[2][REG_TREE_CHILDREN];
    int64_t tree_retry_ns; /* maintainer thread: a failed move is tried again from then on */
    atomic_ullong leases_kept;  /* expiries called off on a peer's word */
};

/* ---- registry/record.c: one record set as a value ----------------------------------------- */

/* Binary search; returns the index of ip or, negated minus one, where it would go. */
long record_find(const struct reg_record *rec, const struct ip_addr *ip);
/* old +/- ip into out (a fresh record with old's identity, weight and TTL). */
void record_with(const struct reg_record *old, const struct ip_addr *ip, int add,
                 struct reg_record *out);

/* ---- registry/sets.c: a bucket's three sets as a value (pure) ----------------------------- */

int sets_find(const struct reg_record *tr, const struct ip_addr *ip);
size_t sets_count(const struct reg_record *tr);
void sets_copy(struct reg_record *dst, const struct reg_record *src);
void sets_release(struct reg_record *tr);
int sets_differ(const struct reg_record *old, const struct reg_record *next);
size_t sets_changes(const struct reg_record *old, const struct reg_record *next,
                    struct reg_change *chg, unsigned *mask);
unsigned sets_apply_op(struct reg_record *tr, const struct intent *in);
void sets_apply_intents(const struct reg_options *opt, const unsigned *ttl,
                        const struct reg_record *rec, const struct intent *in,
                        struct reg_record *out);
void sets_cost(const struct reg_record *old, const struct reg_record *next, size_t *elements,
               size_t *chars);
unsigned sets_changed_mask(const struct reg_record *cur, const struct reg_record *fresh);
int sets_moved_across(const struct reg_record *cur, const struct reg_record *fresh, unsigned have);
unsigned sets_hiding(const struct reg_record *old, const struct reg_record *fresh);
int sets_vanished(const struct reg_record *old, const struct reg_record *fresh);

/* ---- registry/index.c: ip -> entry (caller holds index_lock) ------------------------------ */

struct entry *index_find(struct reg_registry *reg, const struct ip_addr *ip);
struct entry *index_insert(struct reg_registry *reg, const struct ip_addr *ip, unsigned bucket,
                           enum entry_state state);
void index_drop(struct reg_registry *reg, struct entry *e);
void index_entry_moved(struct entry *e, int kind);
struct entry *index_settled(struct reg_registry *reg, const struct ip_addr *ip);
void index_free_all(struct reg_registry *reg);

/* ---- registry/placement.c: where a new IP goes (caller holds index_lock) ------------------ */

int placement_choose(struct reg_registry *reg, const struct ip_addr *ip);
void placement_note_ambiguous(struct reg_registry *reg, const struct intent *intents,
                              enum rc_code rc);
int placement_take_ambiguous(struct reg_registry *reg, const struct ip_addr *ip, unsigned *bucket);

/* ---- registry/intent.c: per-IP single flight: admit, settle, answer ----------------------- */

const char *intent_op_name(enum reg_op op);
enum reg_state intent_state_of(int kind);
void intent_say_not_registered(const struct ip_addr *ip, char *detail, size_t n);
void intent_fill_placement(struct reg_placement *out, const struct ip_addr *ip, unsigned bucket,
                           unsigned weight, enum reg_state state);
void intent_finish(struct intent *in, struct reg_result *res);
void intent_fail(struct intent *in, enum rc_code rc, const char *detail);
int intent_admit_or_answer(struct reg_registry *reg, struct intent *in, struct entry *e,
                           void (*again)(struct reg_registry *, struct intent *));
struct intent *intent_settle(struct reg_registry *reg, struct bucket *bk, struct intent *intents,
                             int committed);
void intent_result(const struct intent *in, unsigned weight, const char *change_id,
                   struct reg_result *res);
void intent_log_change(const struct reg_registry *reg, enum reg_op op, const struct ip_addr *ip,
                       const struct bucket *bk);

/* ---- registry/bucket.c: the only writer of a bucket's committed sets ---------------------- */

struct intent *bucket_commit(struct reg_registry *reg, struct bucket *bk, struct reg_record *next,
                             struct intent *intents, enum rc_code rc);
void bucket_adopt(struct reg_registry *reg, struct bucket *bk, struct reg_record *fresh,
                  unsigned mask, unsigned epoch);
enum rc_code bucket_read(struct reg_registry *reg, enum reg_type t, unsigned b,
                         struct reg_record *fresh, char *detail, size_t n);
enum rc_code bucket_reread(struct reg_registry *reg, struct bucket *bk, unsigned mask, char *detail,
                           size_t n);
void bucket_load(struct reg_registry *reg, struct reg_record *rec, size_t *dups, size_t *nk);
void bucket_claim(struct bucket *bk);
/* bucket_claim() if no other writer holds bk now; 0 (and nothing taken) if one does. */
int bucket_try_claim(struct bucket *bk);
void bucket_unclaim(struct bucket *bk);
void bucket_release_locked(struct bucket *bk);
void bucket_backoff(unsigned rounds);

/* ---- registry/commit_now.c: immediate mode ------------------------------------------------ */

void commit_now_submit(struct reg_registry *reg, struct intent *in);
enum rc_code commit_now_start(struct reg_registry *reg);
void commit_now_stop(struct reg_registry *reg);

/* ---- registry/ttl.c ----------------------------------------------------------------------- */

void ttl_jobs_drain(struct reg_registry *reg);

/* ---- registry/committer.c: group commit --------------------------------------------------- */

void committer_submit(struct reg_registry *reg, struct intent *in);
enum rc_code committer_start(struct reg_registry *reg);
void committer_stop(struct reg_registry *reg);

/* ---- registry/leases.c -------------------------------------------------------------------- */

void lease_start(struct reg_registry *reg, struct entry *e);
void lease_renew(struct reg_registry *reg, struct entry *e);
void lease_fill(struct reg_placement *out, int64_t deadline_ns, unsigned lease_s);
void leases_reap(struct reg_registry *reg);

/* ---- registry/fleet.c: other replicas --------------------------------------------------- */

int fleet_owns(struct reg_registry *reg, const struct ip_addr *ip);
void fleet_rebalance(struct reg_registry *reg);

/* ---- registry/reconcile.c: checker verdicts -> moves, the fail-open guard ----------------- */

void reconcile_track(struct reg_registry *reg, struct entry *e);
int reconcile_guard_allows_down(const struct reg_registry *reg, enum reg_type t, unsigned extra);
void reconcile_run(struct reg_registry *reg);

/* ---- registry/resync.c -------------------------------------------------------------------- */

enum rc_code resync_run(struct reg_registry *reg, int owned, char *why, size_t why_n);
int resync_ttls(struct reg_registry *reg);
int resync_ttl_explained(struct reg_registry *reg, const struct reg_record *written, unsigned mask);
/* The detail of a TTL refusal that r53reg's own sets do not explain. */
void resync_say_foreign_ttl(char *detail, size_t n);
int resync_is_ttl_refusal(const char *detail);

/* ---- registry/confirm.c: a fresh read before "not registered" (maintainer thread) --------- */

void confirm_run(struct reg_registry *reg);
int64_t confirm_due_ns(struct reg_registry *reg);
void confirm_stop(struct reg_registry *reg);

/* ---- registry/strays.c: an IP in a second bucket --------------------------------------------- */

int strays_take(struct reg_registry *reg, const struct ip_addr *ip);
void strays_finish_removal(struct reg_registry *reg, struct intent *in, struct reg_result *res);
void strays_repair(struct reg_registry *reg);

/* ---- registry/maintainer.c: the thread running leases, reconcile and resync --------------- */

/* Start the thread (RC_INTERNAL when it cannot be created); stop and join it. */
enum rc_code maintainer_start(struct reg_registry *reg);
void maintainer_stop(struct reg_registry *reg);
void maintainer_kick(struct reg_registry *reg);
void maintainer_chore(struct reg_registry *reg, const struct ip_addr *ip, enum reg_op op,
                      int expiry, reg_done_fn done);

/* ---- registry/tree.c: the alias tree's top level ------------------------------------------ */

/* One alias change of a call: old (has_old) becomes new (has_new). */
struct tree_step {
    enum reg_type type;
    unsigned child;
    int has_old, has_new;
    struct reg_record old, new;
};
struct tree_plan {
    size_t n;
    int dirty; /* took the tree_dirty flag: give it back if the call fails */
    struct tree_step steps[2 * REG_TREE_CHILDREN];
};
/* Add to a call's budget what its alias changes may cost (nothing unless tree mode). */
void tree_reserve(struct reg_registry *reg, size_t *elements, size_t *chars);
/* The alias changes a call must carry when it changes each child's served values by
 * delta[type][child]. No lock held; takes bucket locks and tree_lock. */
void tree_plan_build(struct reg_registry *reg, const long (*delta)[REG_TREE_CHILDREN],
                     struct tree_plan *p);
/* The plan's deletions (deletions = 1) or its other changes into out; returns how many. */
size_t tree_plan_changes(const struct tree_plan *p, int deletions, struct reg_change *out);
/* The call carrying p succeeded: its aliases are the committed state. */
void tree_plan_installed(struct reg_registry *reg, const struct tree_plan *p);
/* The call carrying p failed: nothing of it applied. */
void tree_plan_failed(struct reg_registry *reg, const struct tree_plan *p);
/* Take the aliases among recs (a whole listing) as the committed state. */
void tree_adopt_aliases(struct reg_registry *reg, const struct reg_record *recs, size_t n,
                        unsigned long long gen_seen);
/* The aliases may disagree with the children: the committer weighs them (a call of its own
 * when it has no bucket to write). Caller holds no registry lock but may hold a bucket's. */
void tree_kick(struct reg_registry *reg);
/* A copy of the aliases of type t (REG_TREE_CHILDREN of them). */
void tree_aliases(struct reg_registry *reg, enum reg_type t, struct tree_alias *out);

/* ---- registry/tree_grow.c ------------------------------------------------------------------ */
/* REG_TREE_AUTO, after the load: a type whose zone holds its tree takes new addresses there. */
void tree_grow_loaded(struct reg_registry *reg);
/* REG_TREE_AUTO, from the maintainer: grow a type whose own buckets filled, fold one that fits
 * them again; a few moves (calls) per pass. No lock held. */
void tree_grow_pass(struct reg_registry *reg);

/* ---- registry/tree_migrate.c ---------------------------------------------------------------- */
/* At load, before the registry takes the listing *recs (n sets): move the zone into the shape
 * the options ask for (the name's own buckets into children with --tree, children's buckets
 * back to the name without), one atomic batch per step, and read the zone again into *recs.
 * RC_BAD_REQUEST with detail when the shape cannot be reached (a tree too big for the flat
 * name, no free child); other codes as the store's. */
enum rc_code tree_migrate(struct reg_registry *reg, struct reg_record **recs, size_t *n,
                          char *detail, size_t dn);

/* ---- registry/metrics.c ------------------------------------------------------------------- */

void rmetrics_attach(struct reg_registry *reg);
void rmetrics_detach(void);
void rmetrics_outcome(enum reg_op op, int64_t submitted_ns, enum rc_code rc);
void rmetrics_batch(size_t changes, size_t elements, enum rc_code rc);
void rmetrics_health_move(int64_t verdict_ns, int64_t streak_ms);
void rmetrics_fail_open(void);
void rmetrics_leases_kept(size_t n);

/* ---- registry/registry.c ------------------------------------------------------------------ */

void registry_generation_bump(struct reg_registry *reg);
/* The TTLs the sets of type t are written with (group_ttl), into ttl[REG_KINDS]. */
void registry_group_ttls(struct reg_registry *reg, enum reg_type t, unsigned *ttl);
/* Learn group TTLs from records the store holds (n of them), read when the TTL epoch was
 * epoch (registry_ttl_epoch): each group takes the TTL most of its sets carry; a change from
 * what was known is logged once, naming both values. Nothing is learnt when a TTL change
 * happened since (the records predate it). Returns how many groups changed. */
int registry_learn_ttls(struct reg_registry *reg, const struct reg_record *recs, size_t n,
                        unsigned epoch);
unsigned registry_ttl_epoch(struct reg_registry *reg);
/* Have other writers changed the store lately (an adoption in the last 10 minutes)? */
int registry_others_active(struct reg_registry *reg);
/* Submit op on ip as reg_submit() does, for the registry's own chores: an unknown IP is
 * answered "not registered" from the index (no fresh read); expiry: a lease removal, done
 * only if the lease is still expired when its turn comes. */
void registry_submit(struct reg_registry *reg, enum reg_op op, const struct ip_addr *ip,
                     reg_done_fn done, void *arg, int expiry);

#endif
