/*
 * test_tree_keys.c: the names and set identifiers of the alias tree (registry/registry.h,
 * slots): what r53reg writes for each slot and alias, and which sets of a zone it takes as its
 * own. Parsing what it writes gives back the same slot; anything else (another name, a
 * non-canonical number, a child beyond the tree) is not ours.
 */
#include <stdio.h>
#include <string.h>

#include "check.h"
#include "registry/registry.h"

static struct reg_options opt(const char *label)
{
    struct reg_options o;
    memset(&o, 0, sizeof(o));
    snprintf(o.record_name, sizeof(o.record_name), "app.example.com");
    if (label)
        snprintf(o.tree_label, sizeof(o.tree_label), "%s", label);
    return o;
}

static void test_names(void)
{
    struct reg_options o = opt(NULL);
    char buf[REG_SET_ID_MAX + 1];
    CHECK_INT(reg_slot_child(0), -1);
    CHECK_INT(reg_slot_child(99), -1);
    CHECK_INT(reg_slot_child(100), 0);
    CHECK_INT(reg_slot_child(REG_MAX_SLOTS - 1), REG_TREE_CHILDREN - 1);
    CHECK_INT(reg_slot_bucket(reg_slot_of(7, 42)), 42);
    CHECK_INT(reg_slot_child(reg_slot_of(7, 42)), 7);
    CHECK_INT(reg_slot_of(-1, 5), 5);

    reg_set_id(&o, 5, buf, sizeof(buf));
    CHECK_STR(buf, "app.example.com_5");
    reg_set_id(&o, reg_slot_of(7, 42), buf, sizeof(buf));
    CHECK_STR(buf, "7._r53reg.app.example.com_42");
    reg_slot_name(&o, 5, REG_KIND_DOWN, buf, sizeof(buf));
    CHECK_STR(buf, "_down.app.example.com");
    reg_slot_name(&o, reg_slot_of(0, 0), REG_KIND_SERVED, buf, sizeof(buf));
    CHECK_STR(buf, "0._r53reg.app.example.com");
    reg_slot_name(&o, reg_slot_of(99, 3), REG_KIND_DRAINING, buf, sizeof(buf));
    CHECK_STR(buf, "_draining.99._r53reg.app.example.com");
    reg_child_name(&o, 12, buf, sizeof(buf));
    CHECK_STR(buf, "12._r53reg.app.example.com");
    reg_alias_set_id(&o, 12, buf, sizeof(buf));
    CHECK_STR(buf, "app.example.com_t12");

    o = opt("shards");
    reg_set_id(&o, reg_slot_of(1, 2), buf, sizeof(buf));
    CHECK_STR(buf, "1.shards.app.example.com_2");
}

/* Every slot and kind, and every alias, parses back to itself. */
static void test_round_trip(void)
{
    struct reg_options o = opt(NULL);
    char name[REG_NAME_MAX + 1], sid[REG_SET_ID_MAX + 1], fq[REG_NAME_MAX + 2];
    unsigned bad = 0;
    for (unsigned s = 0; s < REG_MAX_SLOTS; s++)
        for (int k = 0; k < REG_KINDS; k++) {
            enum reg_kind kind = REG_KIND_SERVED;
            unsigned slot = ~0u, child = ~0u;
            reg_slot_name(&o, s, (enum reg_kind)k, name, sizeof(name));
            reg_set_id(&o, s, sid, sizeof(sid));
            snprintf(fq, sizeof(fq), "%s.", name);
            if (reg_key_parse(&o, (s & 1) ? fq : name, sid, &kind, &slot, &child) != 1 ||
                slot != s || (int)kind != k)
                bad++;
        }
    CHECK_INT(bad, 0);
    for (unsigned c = 0; c < REG_TREE_CHILDREN; c++) {
        enum reg_kind kind;
        unsigned slot, child = ~0u;
        reg_alias_set_id(&o, c, sid, sizeof(sid));
        CHECK_INT(reg_key_parse(&o, "APP.example.com.", sid, &kind, &slot, &child), 2);
        CHECK_INT(child, c);
    }
}

static void test_not_ours(void)
{
    struct reg_options o = opt(NULL);
    enum reg_kind kind;
    unsigned slot, child;
    static const char *const cases[][2] = {
        {"app.example.com", "app.example.com_100"},             /* bucket beyond 99 */
        {"app.example.com", "app.example.com_07"},              /* leading zero */
        {"app.example.com", "app.example.com_"},                /* no number */
        {"app.example.com", "other.example.com_1"},             /* another name's id */
        {"other.example.com", "app.example.com_1"},             /* another name */
        {"app.example.com", "app.example.com_t100"},            /* child beyond the tree */
        {"app.example.com", "app.example.com_t01"},             /* leading zero */
        {"_down.app.example.com", "app.example.com_t1"},        /* an alias is served only */
        {"100._r53reg.app.example.com", "100._r53reg.app.example.com_1"},
        {"01._r53reg.app.example.com", "01._r53reg.app.example.com_1"},
        {"1._r53reg.app.example.com", "2._r53reg.app.example.com_1"}, /* id of another child */
        {"1._r53reg.app.example.com", "app.example.com_1"},
        {"1.other.app.example.com", "1.other.app.example.com_1"},     /* another label */
        {"x._r53reg.app.example.com", "x._r53reg.app.example.com_1"},
        {"1._r53reg.app.example.com.extra", "1._r53reg.app.example.com_1"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        int got = reg_key_parse(&o, cases[i][0], cases[i][1], &kind, &slot, &child);
        if (got)
            printf("taken as ours: %s %s\n", cases[i][0], cases[i][1]);
        CHECK_INT(got, 0);
    }
}

int main(void)
{
    test_names();
    test_round_trip();
    test_not_ours();
    return check_done("test_tree_keys");
}
