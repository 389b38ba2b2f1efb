/*
 * registry.h: the domain. Buckets of backend IPs, their assignment, per-bucket locks, and the
 * provider that stores them (registry/provider.h).
 *
 * Thread-safety: every function here may be called from any thread once reg_load() returned,
 * except reg_create/reg_load/reg_destroy, which must not race with anything else.
 */
#ifndef R53REG_REGISTRY_REGISTRY_H
#define R53REG_REGISTRY_REGISTRY_H

#include <stddef.h>

#include "registry/checker.h"
#include "registry/insync.h"
#include "util/ip.h"
#include "util/rc.h"

#define REG_MAX_BUCKETS 100 /* weighted records of one name and type (Route 53) */
#define REG_MAX_VALUES 400  /* values in one record set (Route 53) */
#define REG_MAX_WEIGHT 255
#define REG_NAME_MAX 253
/* The longest record name: its _draining.<name> sibling must fit in REG_NAME_MAX. */
#define REG_RECORD_NAME_MAX (REG_NAME_MAX - 10)
#define REG_SET_ID_MAX (REG_NAME_MAX + 8)
/* Route 53 takes set identifiers of 1..128 characters. */
#define REG_SET_ID_LIMIT 128
#define REG_DETAIL_MAX 512
#define REG_CHANGE_ID_MAX 128
/* The EDNS0 buffer resolvers advertise since DNS Flag Day 2020. */
#define REG_ANSWER_BYTES_DEFAULT 1232

/*
 * The alias tree (docs/design-alias-tree.md). A bucket is addressed by its slot: slots
 * 0..REG_MAX_BUCKETS-1 are the name's own buckets; slot REG_MAX_BUCKETS * (1 + c) + b is bucket
 * b of child c, a weighted group of its own at <c>.<tree_label>.<record_name>, served through
 * an alias at the name (set identifier <record_name>_t<c>) that points at it.
 */
#define REG_TREE_CHILDREN 100
#define REG_MAX_SLOTS (REG_MAX_BUCKETS * (1 + REG_TREE_CHILDREN))
#define REG_TREE_LABEL_MAX 32
#define REG_TREE_LABEL_DEFAULT "_r53reg"
/* What a child's name adds to the record name: "<99>.<label>." */
#define REG_TREE_NAME_EXTRA(label_len) (3 + 1 + (label_len) + 1)

/* The child holding slot, or -1 for the name's own buckets. */
static inline int reg_slot_child(unsigned slot)
{
    return slot < REG_MAX_BUCKETS ? -1 : (int)(slot / REG_MAX_BUCKETS) - 1;
}
/* The bucket number of slot inside its group (0..REG_MAX_BUCKETS-1). */
static inline unsigned reg_slot_bucket(unsigned slot)
{
    return slot % REG_MAX_BUCKETS;
}
/* The slot of bucket b of child (-1: the name's own). */
static inline unsigned reg_slot_of(int child, unsigned b)
{
    return (unsigned)(child + 1) * REG_MAX_BUCKETS + b;
}

enum reg_type { REG_A = 0, REG_AAAA = 1 };
enum reg_bucketing { REG_BUCKETING_ORDERED, REG_BUCKETING_BALANCED, REG_BUCKETING_MODULO };
enum reg_weights { REG_WEIGHTS_PROPORTIONAL, REG_WEIGHTS_EQUAL };
/* registered = served; down = registered, taken out of DNS by health checks; draining =
 * registered, taken out of DNS by POST /backends/{ip}/drain. */
enum reg_state { REG_STATE_REGISTERED, REG_STATE_DEREGISTERED, REG_STATE_DOWN, REG_STATE_DRAINING };
/* ADD also returns a draining backend to service (into the down set when its checks fail);
 * ENSURE is ADD that leaves a registered backend where it is (PUT /backends); DOWN/UP move a
 * backend between its bucket's served and down sets (health checks); DRAIN moves it to the
 * draining set. */
enum reg_op { REG_OP_ADD, REG_OP_REMOVE, REG_OP_DOWN, REG_OP_UP, REG_OP_DRAIN, REG_OP_ENSURE };
/*
 * Each bucket is three record sets in the store, written together in one atomic batch
 * (docs/design-health.md): the served set (name <record_name>, weighted, the bucket's weight)
 * and two that are never served to clients, holding the bucket's registered backends that
 * health checks took down and the ones being drained (names _down.<record_name> and
 * _draining.<record_name>, same set identifier, weight 0).
 */
enum reg_kind { REG_KIND_SERVED = 0, REG_KIND_DOWN = 1, REG_KIND_DRAINING = 2 };
#define REG_KINDS 3
/* immediate: one store call per mutation, one bucket writer at a time, made by a pool of
 * threads (never the caller's).
 * group: mutations are queued and a committer thread merges everything pending into as few
 * store calls as the limits allow (docs/design-group-commit.md). */
enum reg_commit { REG_COMMIT_GROUP, REG_COMMIT_IMMEDIATE };

struct reg_options {
    char record_name[REG_NAME_MAX + 1]; /* lowercase, no trailing dot */
    unsigned buckets;                   /* 1..REG_MAX_BUCKETS: buckets taking new IPs */
    /* Values one record may hold, 1..REG_MAX_VALUES; 0: as many as fit max_answer_bytes, per
     * type (reg_capacity). */
    unsigned max_per_bucket;
    unsigned max_answer_bytes; /* the DNS answer budget; 0: REG_ANSWER_BYTES_DEFAULT */
    unsigned ttl;
    enum reg_bucketing bucketing;
    enum reg_weights weights;
    enum reg_commit commit;
    unsigned default_lease; /* seconds a registration lives without a heartbeat; 0: forever */
    /* Health checks never take down more than this share of a type's registered (not
     * draining) backends; past it they stay served (fail-open). >= 1: no limit. */
    double max_down_share;
    /* Re-read the whole store this often and adopt other writers' changes (replicas, the
     * console); 0: only at start and on conflicts. */
    unsigned resync_ms;
    /* An operation on an IP the index does not hold reads the store again before it answers
     * "not registered" (another writer may have placed it), at most once per confirm_ms for
     * all such operations; 0: never (this registry is the store's only writer). */
    unsigned confirm_ms;
    /* Serve through the alias tree: buckets in child names, aliases at the name
     * (enum reg_tree_mode). */
    int tree;
    char tree_label[REG_TREE_LABEL_MAX + 1]; /* "": REG_TREE_LABEL_DEFAULT */
};

/* reg_options.tree. ON: every type through the tree from the start (a flat zone moves in at
 * load). AUTO: a type grows into the tree while running when its own buckets fill, and folds
 * back when it fits them again (registry/tree_grow.c). */
enum reg_tree_mode { REG_TREE_OFF = 0, REG_TREE_ON = 1, REG_TREE_AUTO = 2 };

/* One weighted record set: name = the slot's group name (record_name or a child's, or its
 * _down./_draining. sibling, by kind), set identifier = reg_set_id(). An alias (alias = 1) is
 * a served set at record_name pointing at child `bucket` (0..REG_TREE_CHILDREN-1): a weight,
 * no TTL and no values (so it is never mistaken for a bucket: nvalues 0 means "no set"). */
struct reg_record {
    enum reg_type type;
    enum reg_kind kind;
    unsigned bucket; /* the slot; an alias: the child */
    unsigned weight;
    unsigned ttl;
    size_t nvalues;
    struct ip_addr *values; /* sorted by ip_cmp, unique; owned by whoever owns the record */
    int alias;
};

/* Where an IP lives, as the API reports it. */
struct reg_placement {
    struct ip_addr ip;
    enum reg_type type;
    unsigned bucket;
    unsigned weight; /* the bucket's weight after the operation */
    enum reg_state state;
    char change_id[REG_CHANGE_ID_MAX]; /* the store's id of the change made, or "" (none) */
    long long lease_expires_at;        /* Unix milliseconds; 0: no lease */
    unsigned lease_seconds;            /* the lease's length; 0: no lease */
    long long since_ms; /* down or draining: Unix ms it entered that state (or, after a
                           restart, the time the registry loaded it); else 0 */
    int checked;        /* health checked; health is valid */
    int held;           /* its checks fail, but the fail-open guard keeps it served */
    struct hc_status health;
};

/* A copy of one bucket, for readers: rec is the served set; down and draining hold the
 * bucket's registered backends that are out of DNS. */
struct reg_bucket_view {
    struct reg_record rec;
    struct reg_record down;
    struct reg_record draining;
    unsigned capacity;   /* reg_capacity() of its type */
    size_t answer_bytes; /* the DNS answer's size for the served set (reg_answer_bytes) */
    int accepting;       /* eligible for new IPs and not full */
};

struct reg_registry;
struct reg_provider;

/* Create a registry over prov (ownership of prov passes to the registry). Never NULL. */
struct reg_registry *reg_create(const struct reg_options *opt, struct reg_provider *prov);
/* Destroy the registry and its provider. NULL is fine. */
void reg_destroy(struct reg_registry *reg);

/* Load every bucket from the provider; after success reg_loaded() is true. On error, detail
 * says why. */
enum rc_code reg_load(struct reg_registry *reg, char *detail, size_t n);
/* Loaded and the provider reachable. */
int reg_loaded(struct reg_registry *reg);
/* Did the store's last call succeed (Route 53 reachable)? Not a condition of readiness: while
 * the store is unreachable r53reg still serves reads and answers changes with the store's
 * error. */
int reg_upstream_reachable(struct reg_registry *reg);

/*
 * Register ip. RC_OK with *created = 1 when newly placed, 0 when it already was registered
 * (idempotent). RC_BUCKETS_FULL when no eligible bucket has room; provider errors pass
 * through with detail filled. Nothing changes on error.
 */
enum rc_code reg_register(struct reg_registry *reg, const struct ip_addr *ip,
                          struct reg_placement *out, int *created, char *detail, size_t n);

/* Deregister ip. RC_NOT_REGISTERED when absent. out describes what was removed. */
enum rc_code reg_deregister(struct reg_registry *reg, const struct ip_addr *ip,
                            struct reg_placement *out, char *detail, size_t n);

/*
 * ?wait=insync: call done(arg, rc, detail) once the store serves change change_id everywhere
 * (Route 53: GetChange INSYNC), or once timeout_ms from now passed (RC_UPSTREAM_TIMEOUT); the
 * other answers and the threads done runs on are registry/insync.h's. Never blocks. Waits
 * still pending in reg_destroy are answered there (RC_SHUTTING_DOWN).
 */
void reg_wait_insync(struct reg_registry *reg, const char *change_id, unsigned timeout_ms,
                     reg_insync_fn done, void *arg);

/* The outcome of one submitted mutation. */
struct reg_result {
    enum rc_code rc;
    int created; /* REG_OP_ADD: 1 when newly placed, 0 when it already was registered */
    struct reg_placement placement; /* on RC_OK */
    char detail[REG_DETAIL_MAX];    /* on error */
};

/* Called exactly once per submitted mutation, from the submitting thread (when the answer is
 * known at once) or from the committer thread (group mode) or an immediate-mode thread. res is valid only during
 * the call. Must not call back into the registry's mutating functions. */
typedef void (*reg_done_fn)(void *arg, const struct reg_result *res);

/*
 * Submit a mutation. done(arg, result) is called exactly once, possibly before reg_submit
 * returns. The caller's thread never waits for the store; operations on the same
 * IP are applied in submission order.
 */
void reg_submit(struct reg_registry *reg, enum reg_op op, const struct ip_addr *ip,
                reg_done_fn done, void *arg);

struct reg_stats {
    size_t queued;                      /* intents waiting for the committer */
    unsigned long long batches;         /* store calls made by the committer */
    unsigned long long batched_changes; /* record set changes in those calls */
    size_t served, down, draining;      /* registered backends by state */
    size_t held;                        /* failing checks but kept served (fail-open) */
};
void reg_stats(struct reg_registry *reg, struct reg_stats *out);

/*
 * Leases. A leased backend is deregistered (through the committer, like any change) when its
 * deadline passes without a heartbeat. Leases live in memory: after a restart every backend
 * gets --default-lease (or none) from the time of the restart.
 * reg_set_lease: give ip a lease of seconds (> 0) from now. reg_heartbeat: renew ip's lease
 * (or start the default one). Both fill out (lease fields and placement) and return
 * RC_NOT_REGISTERED when ip is not registered.
 */
enum rc_code reg_set_lease(struct reg_registry *reg, const struct ip_addr *ip, unsigned seconds,
                           struct reg_placement *out);
enum rc_code reg_heartbeat(struct reg_registry *reg, const struct ip_addr *ip,
                           struct reg_placement *out);
#define REG_MAX_LEASE 604800u /* a week */

/*
 * Replicas that know each other (docs/design-replicas.md, "Peers"; the network side is
 * server/peers.c).
 *
 * reg_heard: what this replica heard of each of ips[0..n): out[i].ago_ms = milliseconds since
 * its last sign of life here (heartbeat, registration, lease change), -1 when none (or the IP
 * is unknown here); out[i].lease_s = its lease here (0: none). Thread-safe.
 *
 * reg_set_peers: before a lease expiry is carried out, fn(arg, ips, n, out) asks the other
 * live replicas the same question (the most recent answer per IP; -1 when none heard it;
 * out[i].unknown = 1 when a live peer could not answer for ips[i]: its request failed or its
 * answer had no valid item for it). out[] arrives zeroed with ago_ms = -1. fn runs on the
 * maintainer thread with no lock held and may block (bounded by its own timeouts). When a
 * peer heard the backend within its lease, the lease is renewed from that time (no store
 * call); when none did but one could not answer, the expiry is retried a few seconds later,
 * REG_LEASE_UNKNOWN_TRIES times per expiry at most, then carried out. Call before reg_load.
 *
 * reg_set_members: the live members (instance ids, sorted, self included). With more than
 * one, each backend checked by default (--check) is checked by one member only, the
 * rendezvous owner (reg_rendezvous_owner); NULL/0 or a list without self: this replica checks
 * everything. Thread-safe.
 *
 * reg_rendezvous_owner: the index in ids[0..n) (n >= 1) of the member that owns ip: the one
 * with the highest hash of (id, ip). Every member computes the same answer from the same
 * list; when a member leaves, only its backends move. Pure.
 */
struct reg_heard {
    long long ago_ms;
    unsigned lease_s;
    int unknown; /* a live peer could not answer for this IP (reg_set_peers) */
};
#define REG_LEASE_UNKNOWN_TRIES 3 /* expiries postponed for an unanswered peer, per expiry */
#define REG_LEASE_UNKNOWN_RETRY_S 3 /* seconds until the postponed expiry asks again */
typedef void (*reg_peers_heard_fn)(void *arg, const struct ip_addr *ips, size_t n,
                                   struct reg_heard *out);
void reg_heard(struct reg_registry *reg, const struct ip_addr *ips, size_t n,
               struct reg_heard *out);
void reg_set_peers(struct reg_registry *reg, reg_peers_heard_fn fn, void *arg);
void reg_set_members(struct reg_registry *reg, const char *self, const char *const *ids, size_t n);
size_t reg_rendezvous_owner(const char *const *ids, size_t n, const struct ip_addr *ip);
/*
 * reg_lease_verdict: what an expiring lease of lease_s seconds becomes on the peers' answer h,
 * after `tries` postponements of this expiry (pure; leases.c uses it). KEEP: a peer heard it
 * within the lease, *ago_ns = how long ago (heard_ms_ago is clamped to REG_MAX_LEASE s first,
 * so no answer overflows); RETRY: nobody heard it but a live peer could not answer and tries <
 * REG_LEASE_UNKNOWN_TRIES; EXPIRE otherwise.
 */
enum reg_lease_verdict { REG_LEASE_EXPIRE, REG_LEASE_KEEP, REG_LEASE_RETRY };
enum reg_lease_verdict reg_lease_verdict(const struct reg_heard *h, unsigned lease_s,
                                         unsigned tries, int64_t *ago_ns);
/* Lease expiries called off because a peer heard the backend. */
unsigned long long reg_leases_kept_by_peers(struct reg_registry *reg);

/*
 * Health checks (docs/design-health.md). reg_set_checker hands the registry an engine (it owns
 * it from then on and destroys it in reg_destroy) whose hc_options.on_change is
 * reg_health_changed with arg = the registry; call it before reg_load. With check_all every
 * registered backend is checked with the engine's defaults; otherwise only those given an
 * override with reg_set_check. A backend the checker finds down moves to its bucket's down set
 * (through the committer, within --max-down-share), and back when it recovers.
 */
void reg_set_checker(struct reg_registry *reg, struct hc_engine *engine, int check_all,
                     const struct hc_check *defaults);
void reg_health_changed(void *reg, const struct ip_addr *ip, int up, const char *last_error);
/* Would override be accepted by reg_set_check? RC_OK, or RC_BAD_REQUEST with detail (invalid,
 * no port from it or the defaults, a timeout longer than the interval, or no checker). Pure. */
enum rc_code reg_check_valid(const struct reg_registry *reg, const struct hc_check *override,
                             char *detail, size_t n);
/* Check ip with override (0/NULL fields: the engine's defaults). RC_NOT_REGISTERED, or
 * RC_BAD_REQUEST with detail when the override is invalid or no checker is set. */
enum rc_code reg_set_check(struct reg_registry *reg, const struct ip_addr *ip,
                           const struct hc_check *override, char *detail, size_t n);

/*
 * Call fn(arg, rc, detail) once the store was read again (after this call, shared with every
 * request waiting meanwhile) and what other writers changed was adopted: the caller then looks
 * again before it answers "not registered". rc: RC_OK, or why the read failed. Returns RC_OK
 * when fn will be called (from the maintainer thread, no lock held), RC_NOT_REGISTERED when
 * no read is needed (confirm_ms 0), RC_TOO_MANY_REQUESTS or RC_SHUTTING_DOWN otherwise.
 */
typedef void (*reg_confirm_fn)(void *arg, enum rc_code rc, const char *detail);
enum rc_code reg_confirm(struct reg_registry *reg, reg_confirm_fn fn, void *arg);

/* Look ip up. RC_NOT_REGISTERED when absent (or its registration is still in flight). */
enum rc_code reg_lookup(struct reg_registry *reg, const struct ip_addr *ip,
                        struct reg_placement *out);

/* Copy every non-empty bucket (A first, then AAAA, by index). Each bucket is copied under its
 * lock, so no view is half-applied. Returns the count; free with reg_views_free(). */
size_t reg_snapshot(struct reg_registry *reg, struct reg_bucket_view **views);
void reg_views_free(struct reg_bucket_view *views, size_t n);
/* The aliases at the name of type t (tree mode), by child: out has room for
 * REG_TREE_CHILDREN; returns how many. */
struct reg_alias_view {
    unsigned child;
    unsigned weight;
};
size_t reg_tree_aliases(struct reg_registry *reg, enum reg_type t, struct reg_alias_view *out);

/* Does type t take new addresses in the tree's children now (always with REG_TREE_ON; with
 * REG_TREE_AUTO once it grew)? */
int reg_tree_on(struct reg_registry *reg, enum reg_type t);

/*
 * A number that changes whenever any bucket changes (after the change is visible to
 * reg_snapshot) and never repeats, even across registries of one process. Read it before a
 * snapshot to label what the snapshot shows at least; caches compare it for equality.
 */
unsigned long long reg_generation(const struct reg_registry *reg);

/* Called after every generation change, on the thread that made it and possibly under the
 * registry's locks: it may only note the change and signal (watch.h's hub does). */
typedef void (*reg_change_hook_fn)(void);
/* Set the one change hook (NULL: none); safe while the registry runs. */
void reg_set_change_hook(struct reg_registry *reg, reg_change_hook_fn fn);

/* A change the registry made on its own, once the store has it: a health check moved a
 * backend out of DNS or back, or a lease ran out and the backend was deregistered. */
struct reg_event {
    const char *what;           /* "taken out of DNS", "back in DNS", "lease expired" */
    const char *by;             /* "health check" or "lease" */
    const struct ip_addr *ip;
    const char *change_id;      /* the store's change id, or "" */
};
/* Called on the registry's threads (never under its locks); it must be quick. */
typedef void (*reg_event_hook_fn)(const struct reg_event *ev);
/* Set the one event hook (NULL: none); safe while the registry runs. */
void reg_set_event_hook(struct reg_registry *reg, reg_event_hook_fn fn);
void registry_event(struct reg_registry *reg, const struct reg_event *ev);

/* How many more registrations the eligible buckets of a type can take. */
unsigned reg_free_capacity(struct reg_registry *reg, enum reg_type type);

const struct reg_options *reg_options(const struct reg_registry *reg);
/* reg_set_ttl's account of one weighted group (name + type). */
struct reg_ttl_group {
    enum reg_type type;
    enum reg_kind kind;
    unsigned from, to;                 /* its TTL before and after */
    size_t sets, values;               /* its record sets and their values */
    char change_id[REG_CHANGE_ID_MAX]; /* the call that moved it; "" when nothing was written */
};

/*
 * Move every weighted group of the name (both types; served, down and draining sets) to ttl.
 * Route 53 refuses a set whose TTL differs from its group's, so each group that has sets is
 * rewritten whole in one atomic call (DELETE every set, CREATE it again with ttl); groups are
 * packed into as few calls as the limits allow. Mutations wait meanwhile (group mode: queued).
 * A group that cannot fit one call (1,000 elements, 32,000 characters: twice its values) is
 * refused before anything is written: RC_GROUP_TOO_LARGE with detail naming it. Other
 * writers' changes met on the way are adopted (RC_CONFLICT after 16 rounds). groups[2 *
 * REG_KINDS] receives an account of each group (*ngroups of them). Synchronous: it makes the
 * store calls on the caller's thread.
 */
enum rc_code reg_set_ttl(struct reg_registry *reg, unsigned ttl, struct reg_ttl_group *groups,
                         size_t *ngroups, char *detail, size_t n);

/* reg_set_ttl on a thread of its own; done(arg, rc, groups, ngroups, detail) is called there
 * exactly once (at once with RC_SHUTTING_DOWN or RC_INTERNAL when no thread can run it). The
 * registry waits for it before it is destroyed. For callers that must not wait for the store
 * (an HTTP worker). */
typedef void (*reg_ttl_done_fn)(void *arg, enum rc_code rc, const struct reg_ttl_group *groups,
                                size_t ngroups, const char *detail);
void reg_set_ttl_async(struct reg_registry *reg, unsigned ttl, reg_ttl_done_fn done, void *arg);

/* The TTL the served sets of type are written with: the zone's (its weighted group has one
 * TTL), or --ttl while the group has no set. */
unsigned reg_ttl(const struct reg_registry *reg, enum reg_type type);
const char *reg_provider_name(const struct reg_registry *reg);

/* The set identifier of slot into out (REG_SET_ID_MAX + 1 bytes): "<record_name>_<b>", or
 * "<child name>_<b>" for a child's bucket. */
void reg_set_id(const struct reg_options *opt, unsigned bucket, char *out, size_t n);
/* The alias of type t to child with weight: a served set at record_name, no TTL, no values. */
struct reg_record reg_alias_record(enum reg_type t, unsigned child, unsigned weight);
/* The tree label in use (opt->tree_label or REG_TREE_LABEL_DEFAULT). */
const char *reg_tree_label(const struct reg_options *opt);
/* "<child>.<label>.<record_name>" into out (REG_NAME_MAX + 1 bytes). */
void reg_child_name(const struct reg_options *opt, unsigned child, char *out, size_t n);
/* The record name of slot's set of kind (no trailing dot): the group name with kind's prefix. */
void reg_slot_name(const struct reg_options *opt, unsigned slot, enum reg_kind kind, char *out,
                   size_t n);
/* The set identifier of the alias to child: "<record_name>_t<child>". */
void reg_alias_set_id(const struct reg_options *opt, unsigned child, char *out, size_t n);
/*
 * Which of the registry's sets (name, set identifier) is, in a zone: name case-insensitive,
 * with or without its trailing dot. Returns 1 and fills kind and slot for a bucket's set, 2
 * and fills *child for an alias's key (record_name, <record_name>_t<c>), 0 for anything else.
 * Numbers are canonical (no leading zeros). Pure.
 */
int reg_key_parse(const struct reg_options *opt, const char *name, const char *set_id,
                  enum reg_kind *kind, unsigned *slot, unsigned *child);
/* The weight a bucket of type with nvalues values gets under opt. */
unsigned reg_weight_for(const struct reg_options *opt, enum reg_type type, size_t nvalues);

/*
 * DNS answers (registry/answer.c). reg_answer_bytes: the wire size of the answer to a query
 * for record_name when the record picked holds nvalues values of type (header, question,
 * answers, an authority section naming four name servers, EDNS0). reg_answer_capacity: the
 * most values whose answer fits budget bytes (at most REG_MAX_VALUES). reg_capacity: the
 * values one bucket of type may hold under opt (--max-per-bucket, or what fits the answer
 * budget). Pure.
 */
size_t reg_answer_bytes(const char *record_name, enum reg_type type, size_t nvalues);
unsigned reg_answer_capacity(const char *record_name, enum reg_type type, unsigned budget);
unsigned reg_capacity(const struct reg_options *opt, enum reg_type type);
const char *reg_type_name(enum reg_type type);
/* "" for REG_KIND_SERVED, "_down." and "_draining." for the others: the prefix of the record
 * name of a kind's sets. */
const char *reg_kind_prefix(enum reg_kind kind);
enum reg_type reg_type_of(const struct ip_addr *ip);

/* Record helpers (deep copies; release accepts a zeroed record). */
void reg_record_copy(struct reg_record *dst, const struct reg_record *src);
void reg_record_release(struct reg_record *rec);
int reg_record_equal(const struct reg_record *a, const struct reg_record *b);

/*
 * What the registry is doing, for an operator's status page (registry/activity.c): the
 * committer's work and the last resync. One short lock (the committer's) and a few atomics;
 * thread-safe.
 *   commit         "group" or "immediate" (--commit)
 *   queued         mutations waiting for the committer (group mode)
 *   in_call        mutations in a store call not yet answered (group mode)
 *   batches        store calls the committer made, and batched_changes the record set
 *                  changes in them
 *   write_wait_ms  how long until a write could go under the store's rate limit (0: now, or
 *                  a store without one)
 *   resync_ms      --resync-interval (0: only at start and on conflicts)
 *   resyncs        reads of the whole store since start (periodic, before a "not
 *                  registered", after a TTL change), and resynced_ms the Unix ms of the last
 *                  one (0: none yet)
 */
struct reg_activity {
    const char *commit;
    size_t queued, in_call;
    unsigned long long batches, batched_changes;
    double write_wait_ms;
    unsigned resync_ms;
    unsigned long long resyncs;
    long long resynced_ms;
};
void reg_activity(struct reg_registry *reg, struct reg_activity *out);

#endif
