/*
 * index.c: the ip -> entry hash table (chained, power-of-two size, grown at load factor 1).
 * Every function here runs with the registry's index_lock held by the caller.
 */
#include "registry/internal.h"

#include <stdlib.h>

#include "util/xalloc.h"

static struct entry **index_slot(struct reg_registry *reg, const struct ip_addr *ip)
{
    struct entry **pp = &reg->table[ip_hash(ip) & (reg->table_size - 1)];
    while (*pp && ip_cmp(&(*pp)->ip, ip))
        pp = &(*pp)->next;
    return pp;
}

struct entry *index_find(struct reg_registry *reg, const struct ip_addr *ip)
{
    return *index_slot(reg, ip);
}

static void index_grow(struct reg_registry *reg)
{
    size_t nsize = reg->table_size * 2;
    struct entry **nt = xcalloc(nsize, sizeof(*nt));
    for (size_t i = 0; i < reg->table_size; i++) {
        struct entry *e = reg->table[i];
        while (e) {
            struct entry *next = e->next;
            size_t h = ip_hash(&e->ip) & (nsize - 1);
            e->next = nt[h];
            nt[h] = e;
            e = next;
        }
    }
    free(reg->table);
    reg->table = nt;
    reg->table_size = nsize;
}

/* A new entry for ip (not in the index) in bucket, state; counts it (not its place). */
struct entry *index_insert(struct reg_registry *reg, const struct ip_addr *ip, unsigned bucket,
                           enum entry_state state)
{
    if (reg->count + 1 > reg->table_size)
        index_grow(reg);
    struct entry **pp = index_slot(reg, ip);
    struct entry *e = xcalloc(1, sizeof(*e));
    e->ip = *ip;
    e->bucket = bucket;
    e->state = state;
    e->where = REG_KIND_SERVED;
    *pp = e;
    reg->count++;
    return e;
}

static void index_remove(struct reg_registry *reg, const struct ip_addr *ip)
{
    struct entry **pp = index_slot(reg, ip);
    struct entry *e = *pp;
    if (!e)
        return;
    *pp = e->next;
    free(e);
    reg->count--;
}

/* Free every entry and the table (the registry is being destroyed: no lock needed). */
void index_free_all(struct reg_registry *reg)
{
    for (size_t i = 0; i < reg->table_size; i++) {
        struct entry *e = reg->table[i];
        while (e) {
            struct entry *next = e->next;
            free(e);
            e = next;
        }
    }
    free(reg->table);
    reg->table = NULL;
    reg->table_size = 0;
}

/* A backend leaves the index: stop checking it, then drop its entry and its place. */
void index_drop(struct reg_registry *reg, struct entry *e)
{
    enum reg_type t = reg_type_of(&e->ip);
    unsigned b = e->bucket;
    if (e->checked)
        hc_engine_remove(reg->checker, &e->ip);
    index_remove(reg, &e->ip);
    reg->reserved[t][b]--;
}

/* The entry now lives in set kind. */
void index_entry_moved(struct entry *e, int kind)
{
    if (kind != REG_KIND_DOWN)
        e->foreign_down = 0;
    if (e->where == (enum reg_kind)kind)
        return;
    e->where = (enum reg_kind)kind;
    e->since_ms = kind == REG_KIND_SERVED ? 0 : clock_wall_ms();
}

/*
 * Wait until ip has no operation in flight; returns its entry (PRESENT) or NULL. Caller holds
 * index_lock.
 */
struct entry *index_settled(struct reg_registry *reg, const struct ip_addr *ip)
{
    for (;;) {
        struct entry *e = index_find(reg, ip);
        if (!e || e->state == ENTRY_PRESENT)
            return e;
        pthread_cond_wait(&reg->index_cond, &reg->index_lock);
    }
}
