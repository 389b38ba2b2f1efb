/*
 * test_provider_tree.c: the alias tree's contract (registry/provider.h) held by both stores,
 * through the provider interface alone, with the same assertions: sets written into several
 * children (slots 100.., 5050, 10099) of both types and kinds, with aliases created in the
 * same batch after their targets, read back by a fresh provider (a restart); an alias created
 * before its target refused with nothing applied; a batch ending with an alias whose child
 * lost its last served set refused; the name's weighted group counting its sets and aliases
 * together (at most 100); a child's TTL independent of the name's and of other children's
 * while a second TTL inside one child is refused; an alias's compare-and-swap (a stale weight
 * is a conflict naming the alias); reload() of child slots; and a hundred children, one alias
 * each, read back.
 *
 * `test_provider_tree` runs it on the memory store (journaled to a file: the restarts replay
 * the journal, then its snapshot, and the journal's alias lines are checked).
 * `test_provider_tree route53 PATH/r53emu` runs it on the Route 53 provider against the
 * emulator (a restart is a new provider on the same zone), and also: the emulator's resolver
 * answers through the aliases written with the shares their weights give; a console edit of
 * an alias's weight is refused by Route 53 and mapped back to that alias; an alias whose
 * target another writer deleted is refused by Route 53 as the tree's rule; aliases with our
 * set identifiers but other targets are skipped on load; and the listing pages through
 * children with other records under the name around them.
 */
#include <jansson.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <curl/curl.h>

#include "check.h"
#include "emuproc.h"
#include "registry/provider.h"
#include "registry/provider_memory.h"
#include "registry/registry.h"
#include "util/log.h"

#define CHILD(c, b) reg_slot_of((c), (b))

/* One store under test, reopened as a restart would. */
struct store {
    const char *what;
    struct reg_options opt;
    char dir[64], path[96]; /* memory: the journal */
    struct emu *emu;        /* route53: the emulator; NULL for memory */
    struct reg_provider *p;
};

/* ---- records ------------------------------------------------------------------------------ */

/* A bucket's set from a comma-separated list of sorted addresses. */
static struct reg_record rec(enum reg_type t, enum reg_kind k, unsigned slot, unsigned weight,
                             unsigned ttl, const char *ips)
{
    struct reg_record r;
    char *copy = strdup(ips), *save = NULL;

    memset(&r, 0, sizeof(r));
    r.type = t;
    r.kind = k;
    r.bucket = slot;
    r.weight = weight;
    r.ttl = ttl;
    r.values = calloc(8, sizeof(*r.values));
    for (char *s = strtok_r(copy, ",", &save); s; s = strtok_r(NULL, ",", &save)) {
        if (ip_parse(s, strlen(s), &r.values[r.nvalues], NULL, 0) != RC_OK) {
            fprintf(stderr, "bad test ip %s\n", s);
            abort();
        }
        r.nvalues++;
    }
    free(copy);
    return r;
}

static struct reg_record alias(enum reg_type t, unsigned child, unsigned weight)
{
    struct reg_record r;
    memset(&r, 0, sizeof(r));
    r.type = t;
    r.kind = REG_KIND_SERVED;
    r.bucket = child;
    r.weight = weight;
    r.alias = 1;
    return r;
}

static const char *values_text(const struct reg_record *r, char *out, size_t n)
{
    size_t len = 0;
    out[0] = '\0';
    for (size_t i = 0; r && i < r->nvalues && len < n; i++) {
        char txt[IP_TEXT_MAX];
        len += (size_t)snprintf(out + len, n - len, "%s%s", i ? "," : "",
                                ip_format(&r->values[i], txt));
    }
    return out;
}

static const char *kind_word(enum reg_kind k)
{
    return k == REG_KIND_DOWN ? "down" : k == REG_KIND_DRAINING ? "draining" : "served";
}

/* One loaded record as a line: "A served 5050 w1 t60 10.49.0.1" or "A alias 49 w1". */
static void record_line(const struct reg_record *r, char *out, size_t n)
{
    char vals[512];
    if (r->alias)
        snprintf(out, n, "%s alias %u w%u%s", reg_type_name(r->type), r->bucket, r->weight,
                 r->kind != REG_KIND_SERVED || r->nvalues || r->ttl ? " MALFORMED" : "");
    else
        snprintf(out, n, "%s %s %u w%u t%u %s", reg_type_name(r->type), kind_word(r->kind),
                 r->bucket, r->weight, r->ttl, values_text(r, vals, sizeof(vals)));
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* lines[0..n) sorted and joined with ";" (caller frees). */
static char *join_sorted(char **lines, size_t n)
{
    size_t len = 1;
    char *out;
    qsort(lines, n, sizeof(*lines), cmp_str);
    for (size_t i = 0; i < n; i++)
        len += strlen(lines[i]) + 1;
    out = calloc(1, len);
    for (size_t i = 0; i < n; i++) {
        strcat(out, lines[i]);
        strcat(out, ";");
    }
    return out;
}

/* The expected state from a NULL-terminated list of lines (caller frees). */
static char *expect(const char *const *lines)
{
    size_t n = 0;
    char **copy, *out;
    while (lines[n])
        n++;
    copy = calloc(n + 1, sizeof(*copy));
    for (size_t i = 0; i < n; i++)
        copy[i] = strdup(lines[i]);
    out = join_sorted(copy, n);
    for (size_t i = 0; i < n; i++)
        free(copy[i]);
    free(copy);
    return out;
}

/* Everything load() returns, as sorted lines (caller frees); *count: the records. */
static char *state(struct store *s, size_t *count)
{
    struct reg_record *recs = NULL;
    size_t n = 0;
    char detail[REG_DETAIL_MAX], **lines, *out;

    if (s->p->ops->load(s->p, &recs, &n, detail, sizeof(detail)) != RC_OK) {
        fprintf(stderr, "%s: load: %s\n", s->what, detail);
        CHECK(0);
    }
    lines = calloc(n + 1, sizeof(*lines));
    for (size_t i = 0; i < n; i++) {
        char line[600];
        record_line(&recs[i], line, sizeof(line));
        lines[i] = strdup(line);
        reg_record_release(&recs[i]);
    }
    free(recs);
    out = join_sorted(lines, n);
    for (size_t i = 0; i < n; i++)
        free(lines[i]);
    free(lines);
    if (count)
        *count = n;
    return out;
}

/* ---- the stores ----------------------------------------------------------------------------- */

static void store_open(struct store *s)
{
    char detail[REG_DETAIL_MAX];
    if (s->emu) {
        s->p = emu_route53(s->emu, &s->opt);
    } else {
        if (reg_provider_memory_create(s->path, &s->p, detail, sizeof(detail)) != RC_OK) {
            fprintf(stderr, "memory store %s: %s\n", s->path, detail);
            abort();
        }
        reg_provider_memory_options(s->p, &s->opt);
    }
    /* As the registry does: read the store before writing (the Route 53 provider's cache). */
    free(state(s, NULL));
}

static void store_restart(struct store *s)
{
    s->p->ops->destroy(s->p);
    store_open(s);
}

/* An empty store. */
static void store_wipe(struct store *s)
{
    s->p->ops->destroy(s->p);
    if (s->emu)
        CHECK_INT(emu_post(s->emu, "zones/" EMU_ZONE "/clear", "{}"), 0);
    else
        unlink(s->path);
    store_open(s);
}

static enum rc_code apply(struct store *s, const struct reg_change *c, size_t n,
                          struct reg_conflicts *cf, char *detail, size_t dlen)
{
    char change_id[REG_CHANGE_ID_MAX] = "";
    enum rc_code rc;
    detail[0] = '\0';
    rc = s->p->ops->apply(s->p, c, n, change_id, cf, detail, dlen);
    if (rc == RC_OK)
        CHECK(change_id[0] != '\0');
    return rc;
}

/* apply() must succeed. */
static void apply_ok(struct store *s, const struct reg_change *c, size_t n, const char *what)
{
    char detail[REG_DETAIL_MAX];
    enum rc_code rc = apply(s, c, n, NULL, detail, sizeof(detail));
    if (rc != RC_OK) {
        fprintf(stderr, "%s: %s refused: %s: %s\n", s->what, what, rc_slug(rc), detail);
        check_failures++;
    }
}

/* detail must hold want. */
static void check_says(const struct store *s, const char *detail, const char *want)
{
    if (!strstr(detail, want)) {
        fprintf(stderr, "%s: detail \"%s\" lacks \"%s\"\n", s->what, detail, want);
        check_failures++;
    }
}

/* The store (loaded by a fresh provider too) must hold exactly want. */
static void check_state(struct store *s, const char *want, const char *what)
{
    char *got = state(s, NULL);
    if (strcmp(got, want)) {
        fprintf(stderr, "%s: %s:\n  got  %s\n  want %s\n", s->what, what, got, want);
        check_failures++;
    }
    free(got);
}

/* The values reload() returns for one set ("" when it does not exist); checks the key. */
static const char *reload_text(struct store *s, enum reg_type t, enum reg_kind k, unsigned slot,
                               char *out, size_t n)
{
    struct reg_record r;
    char detail[REG_DETAIL_MAX];
    memset(&r, 0xa5, sizeof(r));
    CHECK_INT(s->p->ops->reload(s->p, t, k, slot, &r, detail, sizeof(detail)), RC_OK);
    CHECK_INT(r.type, t);
    CHECK_INT(r.kind, k);
    CHECK_INT(r.bucket, slot);
    CHECK_INT(r.alias, 0);
    values_text(&r, out, n);
    reg_record_release(&r);
    return out;
}

/* ---- the contract ---------------------------------------------------------------------------- */

/* What the first batch leaves (and every scenario after it restores). */
static const char *const first_lines[] = {
    "A served 0 w1 t60 10.0.0.1",
    "A served 100 w1 t60 10.1.0.1",
    "A served 101 w1 t60 10.1.0.2",
    "A served 5050 w1 t60 10.49.0.1",
    "A served 10099 w1 t60 10.99.0.1",
    "A down 100 w0 t60 10.1.0.9",
    "A draining 5050 w0 t60 10.49.0.9",
    "AAAA served 100 w1 t60 2001:db8:1::1",
    "AAAA served 10099 w1 t60 2001:db8:99::1",
    "AAAA down 10099 w0 t60 2001:db8:99::9",
    "A alias 0 w2",
    "A alias 49 w1",
    "A alias 99 w1",
    "AAAA alias 0 w1",
    "AAAA alias 99 w3",
    NULL,
};

/* Sets in children 0, 49 and 99 of both types and every kind, a set of the name's own, and
 * aliases after their targets, in one batch; read back after restarts. */
static void test_write_and_restart(struct store *s, const char *first)
{
    struct reg_record r[] = {
        rec(REG_A, REG_KIND_SERVED, 0, 1, 60, "10.0.0.1"),
        rec(REG_A, REG_KIND_SERVED, CHILD(0, 0), 1, 60, "10.1.0.1"),
        rec(REG_A, REG_KIND_SERVED, CHILD(0, 1), 1, 60, "10.1.0.2"),
        rec(REG_A, REG_KIND_SERVED, 5050, 1, 60, "10.49.0.1"),
        rec(REG_A, REG_KIND_SERVED, 10099, 1, 60, "10.99.0.1"),
        rec(REG_A, REG_KIND_DOWN, CHILD(0, 0), 0, 60, "10.1.0.9"),
        rec(REG_A, REG_KIND_DRAINING, 5050, 0, 60, "10.49.0.9"),
        rec(REG_AAAA, REG_KIND_SERVED, CHILD(0, 0), 1, 60, "2001:db8:1::1"),
        rec(REG_AAAA, REG_KIND_SERVED, 10099, 1, 60, "2001:db8:99::1"),
        rec(REG_AAAA, REG_KIND_DOWN, 10099, 0, 60, "2001:db8:99::9"),
        alias(REG_A, 0, 2),
        alias(REG_A, 49, 1),
        alias(REG_A, 99, 1),
        alias(REG_AAAA, 0, 1),
        alias(REG_AAAA, 99, 3),
    };
    struct reg_change c[sizeof(r) / sizeof(r[0])];
    size_t n = sizeof(r) / sizeof(r[0]);

    for (size_t i = 0; i < n; i++)
        c[i] = (struct reg_change){NULL, &r[i]};
    apply_ok(s, c, n, "the first batch");
    check_state(s, first, "after the first batch");
    for (int round = 0; round < 2; round++) {
        store_restart(s);
        check_state(s, first, "after a restart");
    }
    for (size_t i = 0; i < n; i++)
        reg_record_release(&r[i]);
}

/* An alias created before its target is refused, nothing applied; in the other order the
 * same batch passes. Leaves child 7 with one set and its alias. */
static void test_alias_order(struct store *s, const char *first)
{
    struct reg_record a7 = alias(REG_A, 7, 1);
    struct reg_record s7 = rec(REG_A, REG_KIND_SERVED, CHILD(7, 0), 1, 60, "10.7.0.1");
    struct reg_change wrong[] = {{NULL, &a7}, {NULL, &s7}}, right[] = {{NULL, &s7}, {NULL, &a7}};
    char detail[REG_DETAIL_MAX], *after;
    const char *const more[] = {"A served 800 w1 t60 10.7.0.1", "A alias 7 w1", NULL};

    CHECK_INT(apply(s, wrong, 2, NULL, detail, sizeof(detail)), RC_BAD_REQUEST);
    check_says(s, detail,
               "Tried to create an alias that targets 7._r53reg.app.example.com., "
               "type A in zone ");
    check_says(s, detail, "but that target was not found");
    check_state(s, first, "after an alias created before its target");
    apply_ok(s, right, 2, "a child's set, then its alias");
    {
        const char *lines[32];
        size_t k = 0;
        for (size_t i = 0; first_lines[i]; i++)
            lines[k++] = first_lines[i];
        for (size_t i = 0; more[i]; i++)
            lines[k++] = more[i];
        lines[k] = NULL;
        after = expect(lines);
    }
    check_state(s, after, "after a child's set and its alias");
    free(after);
    reg_record_release(&s7);
}

/* A batch may not end with an alias whose child holds no served set of its type; the alias
 * goes with the child's last set. Expects test_alias_order's child 7. */
static void test_dangling(struct store *s, const char *first)
{
    struct reg_record a7 = alias(REG_A, 7, 1), a7w = alias(REG_A, 7, 2);
    struct reg_record s7 = rec(REG_A, REG_KIND_SERVED, CHILD(7, 0), 1, 60, "10.7.0.1");
    struct reg_record d7 = rec(REG_A, REG_KIND_DOWN, CHILD(7, 0), 0, 60, "10.7.0.1");
    struct reg_record s0 = rec(REG_A, REG_KIND_SERVED, CHILD(0, 0), 1, 60, "10.1.0.1");
    static const char dangling[] = "set-identifier='app.example.com_t7'] would be left "
                                   "targeting 7._r53reg.app.example.com., which would hold no "
                                   "A record set";
    struct {
        const char *what;
        struct reg_change c[2];
        size_t n;
        const char *words;
    } cases[] = {
        {"the child's last set deleted", {{&s7, NULL}}, 1, dangling},
        {"the child's last served set moved to its down set",
         {{&s7, NULL}, {NULL, &d7}},
         2,
         dangling},
        /* every DELETE goes first: the new alias meets the child without its set */
        {"the alias rewritten, its child's last set deleted",
         {{&a7, &a7w}, {&s7, NULL}},
         2,
         "Tried to create an alias that targets 7._r53reg.app.example.com., type A in zone "},
    };
    char detail[REG_DETAIL_MAX], *before = state(s, NULL);

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        enum rc_code rc = apply(s, cases[i].c, cases[i].n, NULL, detail, sizeof(detail));
        if (rc != RC_BAD_REQUEST) {
            fprintf(stderr, "%s: %s: %s, not bad-request\n", s->what, cases[i].what, rc_slug(rc));
            check_failures++;
        }
        check_says(s, detail, cases[i].words);
        check_state(s, before, cases[i].what);
    }
    {
        /* a child that keeps one served set is fine: child 0 loses one of its two */
        struct reg_change one[] = {{&s0, NULL}}, back[] = {{NULL, &s0}};
        apply_ok(s, one, 1, "one of a child's two sets deleted");
        apply_ok(s, back, 1, "the set written back");
    }
    {
        struct reg_change both[] = {{&a7, NULL}, {&s7, NULL}};
        apply_ok(s, both, 2, "the alias deleted with its child's last set");
    }
    check_state(s, first, "after the alias and its child's last set went");
    free(before);
    reg_record_release(&s7);
    reg_record_release(&d7);
    reg_record_release(&s0);
}

/* The name's served sets and aliases of one type are one weighted group: at most 100. */
static void test_group_count(struct store *s, const char *first)
{
    struct reg_record top[97], s2 = rec(REG_A, REG_KIND_SERVED, CHILD(2, 0), 1, 60, "10.2.0.1");
    struct reg_record a2 = alias(REG_A, 2, 1), a6 = alias(REG_AAAA, 6, 1);
    struct reg_record s6 = rec(REG_AAAA, REG_KIND_SERVED, CHILD(6, 0), 1, 60, "2001:db8:6::1");
    struct reg_change c[100];
    char detail[REG_DETAIL_MAX], *full;
    size_t n = 0;

    /* slot 0 and three aliases are there: 96 more sets make 100 */
    for (unsigned b = 1; b <= 96; b++) {
        char ip[32];
        snprintf(ip, sizeof(ip), "10.0.1.%u", b);
        top[b] = rec(REG_A, REG_KIND_SERVED, b, 1, 60, ip);
        c[n++] = (struct reg_change){NULL, &top[b]};
    }
    apply_ok(s, c, n, "the name's group filled to 100 with its aliases");
    full = state(s, NULL);
    {
        /* a 101st member, an alias, is refused, its child's set with it */
        struct reg_change more[] = {{NULL, &s2}, {NULL, &a2}};
        CHECK_INT(apply(s, more, 2, NULL, detail, sizeof(detail)), RC_BAD_REQUEST);
        check_says(s, detail,
                   "Exceeded limit on number of weighted RRSets for "
                   "app.example.com., type A");
        check_state(s, full, "after a 101st member of the group");
    }
    {
        /* the other type is a group of its own */
        struct reg_change aaaa[] = {{NULL, &s6}, {NULL, &a6}}, undo[] = {{&a6, NULL}, {&s6, NULL}};
        apply_ok(s, aaaa, 2, "an AAAA alias next to a full A group");
        apply_ok(s, undo, 2, "the AAAA alias and its child's set deleted");
    }
    {
        /* in place of a set: still 100 */
        struct reg_change swap[] = {{&top[96], NULL}, {NULL, &s2}, {NULL, &a2}};
        apply_ok(s, swap, 3, "an alias in place of one of the name's sets");
    }
    n = 0;
    for (unsigned b = 1; b <= 95; b++)
        c[n++] = (struct reg_change){&top[b], NULL};
    c[n++] = (struct reg_change){&a2, NULL};
    c[n++] = (struct reg_change){&s2, NULL};
    apply_ok(s, c, n, "the group emptied again");
    check_state(s, first, "after the group was emptied again");
    for (unsigned b = 1; b <= 96; b++)
        reg_record_release(&top[b]);
    reg_record_release(&s2);
    reg_record_release(&s6);
    free(full);
}

/* One TTL per group name: each child (and each kind of it) is a group of its own. */
static void test_ttl(struct store *s, const char *first)
{
    struct reg_record c3a = rec(REG_A, REG_KIND_SERVED, CHILD(3, 0), 1, 300, "10.3.0.1");
    struct reg_record c3b = rec(REG_A, REG_KIND_SERVED, CHILD(3, 1), 1, 300, "10.3.0.2");
    struct reg_record c3d = rec(REG_A, REG_KIND_DOWN, CHILD(3, 0), 0, 60, "10.3.0.9");
    struct reg_record c4a = rec(REG_A, REG_KIND_SERVED, CHILD(4, 0), 1, 30, "10.4.0.1");
    struct reg_record c4b = rec(REG_A, REG_KIND_SERVED, CHILD(4, 1), 1, 30, "10.4.0.2");
    struct reg_record c3c = rec(REG_A, REG_KIND_SERVED, CHILD(3, 2), 1, 60, "10.3.0.3");
    struct reg_record top = rec(REG_A, REG_KIND_SERVED, 1, 1, 300, "10.0.0.2");
    struct reg_change ok[] = {{NULL, &c3a}, {NULL, &c3b}, {NULL, &c3d}, {NULL, &c4a}};
    char detail[REG_DETAIL_MAX], *before;

    apply_ok(s, ok, 4, "children with TTLs of their own (300 and 30; the name's 60)");
    before = state(s, NULL);
    {
        struct reg_change second[] = {{NULL, &c3c}};
        struct reg_conflicts cf;
        CHECK_INT(apply(s, second, 1, &cf, detail, sizeof(detail)), RC_CONFLICT);
        check_says(s, detail, "3._r53reg.app.example.com");
        check_says(s, detail, "weighted sets must contain the same TTL");
        CHECK_INT(cf.named, 0);
        check_state(s, before, "after a second TTL inside a child");
    }
    {
        struct reg_change other[] = {{NULL, &top}};
        CHECK_INT(apply(s, other, 1, NULL, detail, sizeof(detail)), RC_CONFLICT);
        check_says(s, detail, "weighted sets must contain the same TTL");
        check_state(s, before, "after a child's TTL at the name");
    }
    {
        struct reg_change same[] = {{NULL, &c4b}};
        apply_ok(s, same, 1, "a child's second set with its TTL");
    }
    {
        struct reg_change undo[] = {
            {&c3a, NULL}, {&c3b, NULL}, {&c3d, NULL}, {&c4a, NULL}, {&c4b, NULL}};
        apply_ok(s, undo, 5, "the children's sets deleted");
    }
    check_state(s, first, "after the children's sets were deleted");
    free(before);
    reg_record_release(&c3a);
    reg_record_release(&c3b);
    reg_record_release(&c3d);
    reg_record_release(&c4a);
    reg_record_release(&c4b);
    reg_record_release(&c3c);
    reg_record_release(&top);
}

/* An alias's compare-and-swap: what the batch expects must be what the store holds. */
static void test_alias_cas(struct store *s, const char *first)
{
    struct reg_record a0 = alias(REG_A, 0, 2), a0_stale = alias(REG_A, 0, 5);
    struct reg_record a0_3 = alias(REG_A, 0, 3), a5 = alias(REG_A, 5, 1);
    struct reg_record s0 = rec(REG_A, REG_KIND_SERVED, 0, 1, 60, "10.0.0.1");
    struct reg_record s0b = rec(REG_A, REG_KIND_SERVED, 0, 1, 60, "10.0.0.1,10.0.0.5");
    struct {
        const char *what;
        struct reg_change c[2];
        size_t n;
        unsigned child;
        const char *words;
    } cases[] = {
        {"a stale weight", {{&a0_stale, &a0_3}, {&s0, &s0b}}, 2, 0, "app.example.com_t0"},
        {"expects no alias where one is", {{NULL, &a0_3}}, 1, 0, "app.example.com_t0"},
        {"deletes an alias that is not there", {{&a5, NULL}}, 1, 5, "app.example.com_t5"},
    };
    char detail[REG_DETAIL_MAX];

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct reg_conflicts cf;
        enum rc_code rc = apply(s, cases[i].c, cases[i].n, &cf, detail, sizeof(detail));
        if (rc != RC_CONFLICT || cf.named != 1 || !cf.aliases[REG_A][cases[i].child]) {
            fprintf(stderr, "%s: %s: %s, %u named, alias %u %s: %s\n", s->what, cases[i].what,
                    rc_slug(rc), cf.named, cases[i].child,
                    cf.aliases[REG_A][cases[i].child] ? "named" : "not named", detail);
            check_failures++;
        }
        check_says(s, detail, cases[i].words);
        check_state(s, first, cases[i].what);
    }
    {
        struct reg_change right[] = {{&a0, &a0_3}}, back[] = {{&a0_3, &a0}};
        char *want;
        const char *lines[32];
        size_t k = 0;
        apply_ok(s, right, 1, "an alias's weight with the right expectation");
        for (size_t i = 0; first_lines[i]; i++)
            lines[k++] = strcmp(first_lines[i], "A alias 0 w2") ? first_lines[i] : "A alias 0 w3";
        lines[k] = NULL;
        want = expect(lines);
        store_restart(s);
        check_state(s, want, "after an alias's new weight and a restart");
        free(want);
        apply_ok(s, back, 1, "the alias's weight back");
    }
    reg_record_release(&s0);
    reg_record_release(&s0b);
}

static void test_reload(struct store *s)
{
    char txt[256];
    CHECK_STR(reload_text(s, REG_A, REG_KIND_SERVED, 5050, txt, sizeof(txt)), "10.49.0.1");
    CHECK_STR(reload_text(s, REG_A, REG_KIND_DRAINING, 5050, txt, sizeof(txt)), "10.49.0.9");
    CHECK_STR(reload_text(s, REG_A, REG_KIND_DOWN, CHILD(0, 0), txt, sizeof(txt)), "10.1.0.9");
    CHECK_STR(reload_text(s, REG_AAAA, REG_KIND_DOWN, 10099, txt, sizeof(txt)), "2001:db8:99::9");
    CHECK_STR(reload_text(s, REG_AAAA, REG_KIND_SERVED, CHILD(0, 0), txt, sizeof(txt)),
              "2001:db8:1::1");
    CHECK_STR(reload_text(s, REG_A, REG_KIND_SERVED, 5051, txt, sizeof(txt)), "");
    CHECK_STR(reload_text(s, REG_AAAA, REG_KIND_SERVED, 5050, txt, sizeof(txt)), "");
    CHECK_STR(reload_text(s, REG_A, REG_KIND_SERVED, 0, txt, sizeof(txt)), "10.0.0.1");
}

/* A hundred children, a set and an alias each (the name's whole group), read back. */
static void test_many_children(struct store *s)
{
    struct reg_record sets[REG_TREE_CHILDREN], aliases[REG_TREE_CHILDREN];
    struct reg_change c[2 * REG_TREE_CHILDREN];
    const char *lines[2 * REG_TREE_CHILDREN + 1];
    char text[2 * REG_TREE_CHILDREN][64], *want, txt[64];
    size_t n = 0, count = 0;

    for (unsigned ch = 0; ch < REG_TREE_CHILDREN; ch++) {
        char ip[32];
        unsigned slot = CHILD((int)ch, ch % REG_MAX_BUCKETS);
        snprintf(ip, sizeof(ip), "10.200.%u.1", ch);
        sets[ch] = rec(REG_A, REG_KIND_SERVED, slot, 1, 60, ip);
        aliases[ch] = alias(REG_A, ch, 1 + ch % 7);
        c[ch] = (struct reg_change){NULL, &sets[ch]};
        c[REG_TREE_CHILDREN + ch] = (struct reg_change){NULL, &aliases[ch]};
        snprintf(text[n], sizeof(text[n]), "A served %u w1 t60 %s", slot, ip);
        lines[n] = text[n];
        n++;
        snprintf(text[n], sizeof(text[n]), "A alias %u w%u", ch, 1 + ch % 7);
        lines[n] = text[n];
        n++;
    }
    lines[n] = NULL;
    apply_ok(s, c, 2 * REG_TREE_CHILDREN, "a hundred children and their aliases");
    want = expect(lines);
    store_restart(s);
    check_state(s, want, "a hundred children after a restart");
    free(state(s, &count));
    CHECK_INT(count, 2 * REG_TREE_CHILDREN);
    CHECK_STR(reload_text(s, REG_A, REG_KIND_SERVED, CHILD(99, 99), txt, sizeof(txt)),
              "10.200.99.1");
    free(want);
    for (unsigned ch = 0; ch < REG_TREE_CHILDREN; ch++)
        reg_record_release(&sets[ch]);
}

static void run_contract(struct store *s)
{
    char *first = expect(first_lines);
    test_write_and_restart(s, first);
    test_alias_order(s, first);
    test_dangling(s, first);
    test_group_count(s, first);
    test_ttl(s, first);
    test_alias_cas(s, first);
    test_reload(s);
    free(first);
}

/* ---- the memory store ------------------------------------------------------------------------ */

static char *read_file(const char *path)
{
    FILE *f = fopen(path, "r");
    char *buf;
    long size;
    if (!f)
        return strdup("");
    fseek(f, 0, SEEK_END);
    size = ftell(f);
    fseek(f, 0, SEEK_SET);
    buf = calloc(1, (size_t)size + 1);
    if (fread(buf, 1, (size_t)size, f) != (size_t)size)
        buf[0] = '\0';
    fclose(f);
    return buf;
}

static void test_memory(void)
{
    struct store s;
    char tmp[128], *text;

    memset(&s, 0, sizeof(s));
    s.what = "memory";
    snprintf(s.opt.record_name, sizeof(s.opt.record_name), "app.example.com");
    snprintf(s.dir, sizeof(s.dir), "/tmp/r53reg-tree-XXXXXX");
    if (!mkdtemp(s.dir)) {
        CHECK(0);
        return;
    }
    snprintf(s.path, sizeof(s.path), "%s/state.jsonl", s.dir);
    snprintf(tmp, sizeof(tmp), "%s.tmp", s.path);
    store_open(&s);
    run_contract(&s);

    /* The journal: aliases as {"type","alias","weight"} records and {"type","alias","record"}
     * changes, kept in the snapshot. */
    store_wipe(&s);
    {
        struct reg_record s1 = rec(REG_A, REG_KIND_SERVED, CHILD(1, 2), 1, 60, "10.1.2.1");
        struct reg_record a1 = alias(REG_A, 1, 4);
        struct reg_change add[] = {{NULL, &s1}, {NULL, &a1}};
        apply_ok(&s, add, 2, "a child's set and its alias");
        text = read_file(s.path);
        CHECK(strstr(text, "{\"apply\":[{\"type\":\"A\",\"bucket\":202,\"record\":{\"type\":\"A\","
                           "\"bucket\":202,\"weight\":1,\"ttl\":60,\"values\":[\"10.1.2.1\"]}},"
                           "{\"type\":\"A\",\"alias\":1,\"record\":{\"type\":\"A\",\"alias\":1,"
                           "\"weight\":4}}]}\n") != NULL);
        free(text);
        store_restart(&s);
        text = read_file(s.path);
        CHECK(strstr(text, "{\"snapshot\":[{\"type\":\"A\",\"bucket\":202,\"weight\":1,"
                           "\"ttl\":60,\"values\":[\"10.1.2.1\"]},{\"type\":\"A\",\"alias\":1,"
                           "\"weight\":4}]}\n") == text);
        free(text);
        reg_record_release(&s1);
    }
    store_wipe(&s);
    test_many_children(&s);

    s.p->ops->destroy(s.p);
    unlink(s.path);
    unlink(tmp);
    rmdir(s.dir);
}

/* ---- the Route 53 provider against r53emu ------------------------------------------------------
 */

static size_t collect(char *p, size_t size, size_t n, void *arg)
{
    struct buf_s {
        char *p;
        size_t len;
    } *b = arg;
    b->p = realloc(b->p, b->len + size * n + 1);
    memcpy(b->p + b->len, p, size * n);
    b->len += size * n;
    b->p[b->len] = '\0';
    return size * n;
}

/* GET /_emu/<path> as JSON (NULL on failure). */
static json_t *emu_get(const struct emu *e, const char *path)
{
    struct {
        char *p;
        size_t len;
    } body = {NULL, 0};
    char url[512];
    long status = 0;
    json_t *doc = NULL;
    CURL *h = curl_easy_init();

    snprintf(url, sizeof(url), "%s/_emu/%s", e->endpoint, path);
    curl_easy_setopt(h, CURLOPT_URL, url);
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, collect);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, &body);
    curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, 10000L);
    if (curl_easy_perform(h) == CURLE_OK &&
        curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &status) == CURLE_OK && status == 200 &&
        body.p)
        doc = json_loads(body.p, 0, NULL);
    if (!doc)
        fprintf(stderr, "r53emu GET /_emu/%s: HTTP %ld %s\n", path, status, body.p ? body.p : "");
    curl_easy_cleanup(h);
    free(body.p);
    return doc;
}

/* The share obj[key] (0 when absent). */
static double share(json_t *obj, const char *key)
{
    return json_number_value(json_object_get(obj, key));
}

#define CHECK_SHARE(obj, key, want)                                                                \
    do {                                                                                           \
        double got_ = share((obj), (key));                                                         \
        if (got_ < (want)-1e-9 || got_ > (want) + 1e-9) {                                          \
            fprintf(stderr, "%s:%d: share of %s is %g, not %g\n", __FILE__, __LINE__, (key), got_, \
                    (double)(want));                                                               \
            check_failures++;                                                                      \
        }                                                                                          \
    } while (0)

/* The emulator's resolver answers through the aliases r53reg wrote: the name's weighted group
 * (a set of its own, weight 1, and aliases of weights 2, 1, 1) and each child's sets, so every
 * leaf gets a fifth. */
static void check_resolver(struct store *s)
{
    json_t *a = emu_get(s->emu, "resolve?name=app.example.com&type=A&exact=1");
    json_t *aaaa = emu_get(s->emu, "resolve?name=app.example.com&type=AAAA&exact=1");
    json_t *rec;

    if (!a || !aaaa) {
        CHECK(0);
        json_decref(a);
        json_decref(aaaa);
        return;
    }
    rec = json_object_get(a, "records");
    CHECK_INT(json_object_size(rec), 5);
    CHECK_SHARE(rec, "app.example.com_0", 0.2);
    CHECK_SHARE(rec, "app.example.com_t0/0._r53reg.app.example.com_0", 0.2);
    CHECK_SHARE(rec, "app.example.com_t0/0._r53reg.app.example.com_1", 0.2);
    CHECK_SHARE(rec, "app.example.com_t49/49._r53reg.app.example.com_50", 0.2);
    CHECK_SHARE(rec, "app.example.com_t99/99._r53reg.app.example.com_99", 0.2);
    CHECK_SHARE(json_object_get(a, "answers"), "10.49.0.1", 0.2);
    CHECK_SHARE(json_object_get(a, "answers"), "10.99.0.1", 0.2);
    CHECK_SHARE(a, "no_answer", 0);
    /* AAAA: only aliases, weights 1 and 3 */
    CHECK_SHARE(json_object_get(aaaa, "answers"), "2001:db8:1::1", 0.25);
    CHECK_SHARE(json_object_get(aaaa, "answers"), "2001:db8:99::1", 0.75);
    CHECK_SHARE(aaaa, "no_answer", 0);
    json_decref(a);
    json_decref(aaaa);
}

/* Route 53 itself refuses what the provider's cache could not know: a console edit of an
 * alias's weight (a conflict naming that alias), and a target another writer deleted (the
 * tree's rule: a conflict naming the alias, so the registry reads the zone again). */
static void test_route53_refusals(struct store *s, const char *first)
{
    char detail[REG_DETAIL_MAX];
    struct reg_record a0 = alias(REG_A, 0, 2), a0_3 = alias(REG_A, 0, 3);
    struct reg_conflicts cf;

    CHECK_INT(emu_post(s->emu, "zones/" EMU_ZONE "/rrsets",
                       "[{\"name\": \"app.example.com\", \"type\": \"A\", \"set_identifier\": "
                       "\"app.example.com_t0\", \"weight\": 9, \"alias_target\": "
                       "{\"hosted_zone_id\": \"" EMU_ZONE "\", \"dns_name\": "
                       "\"0._r53reg.app.example.com.\", \"evaluate_target_health\": false}}]"),
              0);
    {
        struct reg_change c[] = {{&a0, &a0_3}};
        CHECK_INT(apply(s, c, 1, &cf, detail, sizeof(detail)), RC_CONFLICT);
        CHECK_INT(cf.named, 1);
        CHECK_INT(cf.unnamed, 0);
        CHECK_INT(cf.aliases[REG_A][0], 1);
        check_says(s, detail, "app.example.com_t0");
    }
    CHECK_INT(emu_post(s->emu, "zones/" EMU_ZONE "/rrsets",
                       "[{\"name\": \"app.example.com\", \"type\": \"A\", \"set_identifier\": "
                       "\"app.example.com_t0\", \"weight\": 2, \"alias_target\": "
                       "{\"hosted_zone_id\": \"" EMU_ZONE "\", \"dns_name\": "
                       "\"0._r53reg.app.example.com.\", \"evaluate_target_health\": false}}]"),
              0);
    store_restart(s);
    check_state(s, first, "after the console put the weight back");
    {
        /* another spelling of the zone (Route 53 keeps it as written): the DELETE repeats it */
        struct reg_change c[] = {{&a0, &a0_3}}, back[] = {{&a0_3, &a0}};
        CHECK_INT(emu_post(s->emu, "zones/" EMU_ZONE "/rrsets",
                           "[{\"name\": \"app.example.com\", \"type\": \"A\", "
                           "\"set_identifier\": \"app.example.com_t0\", \"weight\": 2, "
                           "\"alias_target\": {\"hosted_zone_id\": \"/hostedzone/" EMU_ZONE
                           "\", \"dns_name\": \"0._r53reg.app.example.com.\", "
                           "\"evaluate_target_health\": false}}]"),
                  0);
        store_restart(s);
        check_state(s, first, "with the zone id spelled /hostedzone/...");
        apply_ok(s, c, 1, "an alias written with another spelling of the zone, rewritten");
        apply_ok(s, back, 1, "the alias's weight back");
    }
    {
        struct reg_record s8 = rec(REG_A, REG_KIND_SERVED, CHILD(8, 0), 1, 60, "10.8.0.1");
        struct reg_record a8 = alias(REG_A, 8, 1);
        struct reg_change set[] = {{NULL, &s8}}, link[] = {{NULL, &a8}};
        apply_ok(s, set, 1, "child 8's set");
        CHECK_INT(emu_post(s->emu, "zones/" EMU_ZONE "/rrsets",
                           "{\"delete\": [{\"name\": \"8._r53reg.app.example.com\", \"type\": "
                           "\"A\", \"set_identifier\": \"8._r53reg.app.example.com_0\"}]}"),
                  0);
        /* A conflict naming the alias: the registry reads the zone again and plans anew. */
        CHECK_INT(apply(s, link, 1, &cf, detail, sizeof(detail)), RC_CONFLICT);
        CHECK_INT(cf.aliases[REG_A][8], 1);
        check_says(s, detail, "that target was not found");
        store_restart(s);
        check_state(s, first, "after Route 53 refused an alias to a deleted target");
        reg_record_release(&s8);
    }
}

/* Sets keyed as our aliases but not ours (another target, another zone, values) are skipped
 * on load, and logged. */
static void test_route53_foreign_aliases(struct store *s, const char *first)
{
    char logpath[] = "/tmp/r53tree-log.XXXXXX", *log;
    int fd = mkstemp(logpath), saved;

    CHECK_INT(emu_post(s->emu, "zones/" EMU_ZONE "/rrsets",
                       "[{\"name\": \"app.example.com\", \"type\": \"A\", \"set_identifier\": "
                       "\"app.example.com_t5\", \"weight\": 1, \"alias_target\": "
                       "{\"hosted_zone_id\": \"" EMU_ZONE "\", \"dns_name\": \"www.example.com.\", "
                       "\"evaluate_target_health\": false}}, "
                       "{\"name\": \"app.example.com\", \"type\": \"A\", \"set_identifier\": "
                       "\"app.example.com_t6\", \"weight\": 1, \"alias_target\": "
                       "{\"hosted_zone_id\": \"ZOTHER\", \"dns_name\": "
                       "\"6._r53reg.app.example.com.\", \"evaluate_target_health\": false}}, "
                       "{\"name\": \"app.example.com\", \"type\": \"AAAA\", \"set_identifier\": "
                       "\"app.example.com_t7\", \"weight\": 1, \"ttl\": 60, \"values\": "
                       "[\"2001:db8::7\"]}]"),
              0);
    CHECK(fd >= 0);
    fflush(stderr);
    saved = dup(2);
    dup2(fd, 2);
    store_restart(s);
    check_state(s, first, "with aliases of our identifiers but other targets");
    fflush(stderr);
    dup2(saved, 2);
    close(saved);
    close(fd);
    log = read_file(logpath);
    unlink(logpath);
    fputs(log, stderr);
    check_says(s, log,
               "alias with our set identifier skipped: an alias to another name than "
               "its child");
    check_says(s, log, "alias with our set identifier skipped: an alias into another hosted zone");
    check_says(s, log, "alias with our set identifier skipped: not a weighted alias");
    free(log);
    CHECK_INT(emu_post(s->emu, "zones/" EMU_ZONE "/rrsets",
                       "{\"delete\": [{\"name\": \"app.example.com\", \"type\": \"A\", "
                       "\"set_identifier\": \"app.example.com_t5\"}, {\"name\": "
                       "\"app.example.com\", \"type\": \"A\", \"set_identifier\": "
                       "\"app.example.com_t6\"}, {\"name\": \"app.example.com\", \"type\": "
                       "\"AAAA\", \"set_identifier\": \"app.example.com_t7\"}]}"),
              0);
}

static void test_route53(const char *emu_exe)
{
    struct emu e;
    struct store s;
    char *first = expect(first_lines);

    if (emu_start(emu_exe, &e)) {
        CHECK(0);
        free(first);
        return;
    }
    memset(&s, 0, sizeof(s));
    s.what = "route53";
    s.emu = &e;
    snprintf(s.opt.record_name, sizeof(s.opt.record_name), "app.example.com");
    store_open(&s);
    run_contract(&s);
    check_resolver(&s);
    test_route53_refusals(&s, first);
    test_route53_foreign_aliases(&s, first);

    /* A hundred children, listed in pages of 7 among other records under the name: before it
     * (app-x sorts first), at its names, under its children, and past it. */
    store_wipe(&s);
    CHECK_INT(emu_post(&e, "zones/" EMU_ZONE "/rrsets",
                       "[{\"name\": \"app-x.example.com\", \"type\": \"A\", \"ttl\": 60, "
                       "\"values\": [\"192.0.2.1\"]}, "
                       "{\"name\": \"foo.app.example.com\", \"type\": \"A\", \"ttl\": 60, "
                       "\"values\": [\"192.0.2.2\"]}, "
                       "{\"name\": \"x.7._r53reg.app.example.com\", \"type\": \"A\", \"ttl\": "
                       "60, \"values\": [\"192.0.2.3\"]}, "
                       "{\"name\": \"_down.app.example.com\", \"type\": \"TXT\", \"ttl\": 60, "
                       "\"values\": [\"\\\"note\\\"\"]}, "
                       "{\"name\": \"zzz.example.com\", \"type\": \"A\", \"ttl\": 60, "
                       "\"values\": [\"192.0.2.4\"]}]"),
              0);
    CHECK_INT(emu_post(&e, "faults", "{\"list_max_items\": 7}"), 0);
    test_many_children(&s);
    CHECK_INT(emu_post(&e, "faults", "{\"list_max_items\": 0}"), 0);

    s.p->ops->destroy(s.p);
    CHECK(emu_stop(&e));
    free(first);
}

int main(int argc, char **argv)
{
    if (argc == 3 && !strcmp(argv[1], "route53")) {
        log_set_level(LOG_WARN);
        test_route53(argv[2]);
        return check_done("test_provider_tree route53");
    }
    if (argc != 1) {
        fprintf(stderr, "usage: test_provider_tree [route53 PATH/r53emu]\n");
        return 2;
    }
    log_set_level(LOG_WARN);
    test_memory();
    return check_done("test_provider_tree");
}
