/*
 * provider.h: how the registry talks to a DNS store. Two implementations: memory (the embedded
 * store, registry/provider_memory.c) and route53 (registry/provider_route53.c).
 *
 * A provider stores the weighted record sets of one name, both types, and of each bucket's
 * down and draining sets (registry.h, enum reg_kind): a record is identified by (type, kind,
 * bucket), where bucket is a slot (registry.h): the name's own buckets and, in the alias tree,
 * its children's. The tree's aliases at the name are records with alias = 1, identified by
 * (type, child). apply() plays a batch as Route 53 does: every deletion first, then every
 * creation, in batch order. A store refuses (RC_BAD_REQUEST with detail, as Route 53's
 * InvalidChangeBatch) a batch that would create an alias whose child then holds no served set of
 * the alias's type, or that leaves at its end an alias pointing at such a child; only the names
 * the batch writes are judged, so a dangling alias already stored does not block unrelated
 * batches. It counts the name's served sets and aliases of one type together against
 * REG_MAX_BUCKETS (one weighted group), and refuses a set whose TTL differs from another set of
 * the same group name (RC_CONFLICT with the detail, naming no set). apply() is atomic and
 * conditional: every change names the record it expects to replace (old, or NULL when it
 * expects none) and the record to put in its place (new, or NULL to delete). If any old does
 * not match the stored record, nothing is applied and RC_CONFLICT is returned. That is the
 * compare-and-swap that Route 53's DELETE+CREATE batch gives, and the memory store enforces
 * the same rule so the registry is tested against it.
 *
 * When apply() fails with RC_CONFLICT, the registry calls reload() for the bucket, adopts what
 * the store holds (another replica's or a person's changes), and re-applies its mutation on
 * top: never a blind overwrite. The store names the record sets that did not match (struct
 * reg_conflicts), so a batch over many buckets re-reads only those.
 *
 * Thread-safety: apply(), load(), reload(), change_status() and ready() may be called from
 * several threads at once.
 */
#ifndef R53REG_REGISTRY_PROVIDER_H
#define R53REG_REGISTRY_PROVIDER_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "registry/registry.h"
#include "util/rc.h"

struct reg_change {
    const struct reg_record *old; /* expected current record, or NULL: expect none */
    const struct reg_record *new; /* replacement, or NULL: delete */
};

/*
 * The record sets a refused apply() names (RC_CONFLICT): the store says each changed underneath
 * the batch (a change's old does not match what it holds: Route 53's "values provided do not
 * match", "not found", "already exists"). kinds[type][bucket] has bit (1u << kind) for each set
 * named. unnamed counts the store's complaints of that kind that name no set the provider can
 * map to (type, kind, bucket) (Route 53's older wording names none). A weighted-TTL refusal
 * is not a conflict of a set and is not counted here: the detail tells it.
 */
struct reg_conflicts {
    unsigned char kinds[2][REG_MAX_SLOTS];
    unsigned char aliases[2][REG_TREE_CHILDREN]; /* 1: the alias to that child was named */
    unsigned named;   /* sets named (bits set above) */
    unsigned unnamed; /* complaints naming no set of ours */
};

static inline void reg_conflicts_clear(struct reg_conflicts *c)
{
    if (c)
        memset(c, 0, sizeof(*c));
}

/* Note set (t, kind, bucket) as named (once). c may be NULL. */
static inline void reg_conflicts_add(struct reg_conflicts *c, enum reg_type t, enum reg_kind kind,
                                     unsigned bucket)
{
    if (!c || (unsigned)t > REG_AAAA || (unsigned)kind >= REG_KINDS || bucket >= REG_MAX_SLOTS ||
        (c->kinds[t][bucket] & (1u << kind)))
        return;
    c->kinds[t][bucket] |= (unsigned char)(1u << kind);
    c->named++;
}

/* Note the alias of type t to child as named (once). c may be NULL. */
static inline void reg_conflicts_add_alias(struct reg_conflicts *c, enum reg_type t,
                                           unsigned child)
{
    if (!c || (unsigned)t > REG_AAAA || child >= REG_TREE_CHILDREN || c->aliases[t][child])
        return;
    c->aliases[t][child] = 1;
    c->named++;
}

struct reg_provider;

struct reg_provider_ops {
    const char *name;
    /* Every stored record set (caller frees each with reg_record_release, then the array). */
    enum rc_code (*load)(struct reg_provider *p, struct reg_record **records, size_t *n,
                         char *detail, size_t detail_len);
    /* Apply all changes or none; see above. On success change_id (REG_CHANGE_ID_MAX bytes, may
     * be NULL) names the change for change_status(); detail says why on failure. conflicts
     * (may be NULL) is cleared, and on RC_CONFLICT filled with the sets the store named. */
    enum rc_code (*apply)(struct reg_provider *p, const struct reg_change *changes, size_t n,
                          char *change_id, struct reg_conflicts *conflicts, char *detail,
                          size_t detail_len);
    /* Look once whether change change_id is served by every name server: *insync 1 when it
     * is, 0 while it is pending. One API call (Route 53: GetChange, with the client's own
     * retries) and no sleep between looks: the insync waiter (registry/insync.h) decides when
     * to look again. On error *insync is 0 and detail says why. */
    enum rc_code (*change_status)(struct reg_provider *p, const char *change_id, int *insync,
                                  char *detail, size_t detail_len);
    /* Read one record set afresh from the store (after RC_CONFLICT). *out is set (type, kind,
     * bucket always); nvalues == 0 means the record does not exist. Caller releases *out.
     * Buckets only: the registry reads aliases again through load(). */
    enum rc_code (*reload)(struct reg_provider *p, enum reg_type type, enum reg_kind kind,
                           unsigned bucket, struct reg_record *out, char *detail,
                           size_t detail_len);
    /* Optional (NULL: never waits): block until a call to apply() could be made without
     * waiting for the API rate limit, without using up that chance. The committer calls it
     * before draining, so whatever arrives meanwhile joins the batch. */
    void (*pace)(struct reg_provider *p);
    /* Optional (NULL: never waits): how long until pace() would return, without waiting or
     * taking anything. The committer's send rule counts it into how long a change may wait. */
    int64_t (*write_wait_ns)(struct reg_provider *p);
    /* Is the store reachable now? */
    int (*ready)(struct reg_provider *p);
    /* Flush and free. */
    void (*destroy)(struct reg_provider *p);
};

/* Implementations embed this as their first member. */
struct reg_provider {
    const struct reg_provider_ops *ops;
    /* change_status() calls per second the insync waiter may make, all changes together;
     * 0: no cap (a store without an API budget). Set at create, read-only afterwards. */
    double status_rate;
};

/*
 * The embedded store. With state_file NULL it lives in memory only; otherwise every applied
 * batch is appended to the journal at state_file and fsynced before apply() returns, and the
 * journal is compacted when it grows. Returns RC_IO (with detail) when the file cannot be
 * opened or is corrupt.
 */
enum rc_code reg_provider_memory_create(const char *state_file, struct reg_provider **out,
                                        char *detail, size_t detail_len);

/* registry/provider_memory.h: what only the embedded store takes (the names its refusals give). */

#endif
