/*
 * test_provider_kinds.c: the memory store's record sets of every kind (served, down,
 * draining; registry.h enum reg_kind), driven through the provider interface alone:
 * one batch moving an IP from a bucket's served set to its down set, a compare-and-swap
 * conflict on the down set refusing the whole batch and naming that set (in Route 53's words
 * and in struct reg_conflicts), reload() by kind, the journal keeping
 * kinds across a restart (apply lines and snapshot), and journals written before kinds existed
 * loading as served.
 *
 * `test_provider_kinds route53 PATH/r53emu` runs the Route 53 provider against the emulator
 * instead: the three names (<name>., _down.<name>., _draining.<name>.) are written, listed,
 * loaded by a fresh provider and reloaded by kind, a console edit of a down set refuses a
 * whole served+down batch (Route 53 names that set and the provider maps it back to (type,
 * kind, bucket)), reload() still works when Route 53 answers InvalidInput for an
 * identifier that names no set, and a batch moving a whole weighted group to a new TTL passes
 * (its DELETEs go first). A hostile listing (values the API refuses, one set listed twice)
 * loads only what a client could have registered, once, and logs each skip.
 */
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "aws/route53.h"
#include "check.h"
#include "emuproc.h"
#include "registry/provider.h"
#include "registry/provider_route53.h"
#include "registry/registry.h"
#include "util/log.h"

/* A record of kind k from a comma-separated list of sorted addresses ("" for none). */
static struct reg_record rec(enum reg_type t, enum reg_kind k, unsigned bucket, unsigned weight,
                             const char *ips)
{
    struct reg_record r;
    char *copy = strdup(ips), *save = NULL;

    memset(&r, 0, sizeof(r));
    r.type = t;
    r.kind = k;
    r.bucket = bucket;
    r.weight = weight;
    r.ttl = 60;
    r.values = calloc(REG_MAX_VALUES, sizeof(*r.values));
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

/* The values of r as "a,b,c" (for CHECK_STR). */
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

struct loaded {
    struct reg_record *recs;
    size_t n;
};

static void load(struct reg_provider *p, struct loaded *l)
{
    char detail[REG_DETAIL_MAX];
    CHECK_INT(p->ops->load(p, &l->recs, &l->n, detail, sizeof(detail)), RC_OK);
}

static void loaded_release(struct loaded *l)
{
    for (size_t i = 0; i < l->n; i++)
        reg_record_release(&l->recs[i]);
    free(l->recs);
    memset(l, 0, sizeof(*l));
}

static const struct reg_record *find(const struct loaded *l, enum reg_type t, enum reg_kind k,
                                     unsigned bucket)
{
    for (size_t i = 0; i < l->n; i++)
        if (l->recs[i].type == t && l->recs[i].kind == k && l->recs[i].bucket == bucket)
            return &l->recs[i];
    return NULL;
}

/* The values reload() returns for one set ("" when it does not exist); checks the key. */
static const char *reload_text(struct reg_provider *p, enum reg_type t, enum reg_kind k,
                               unsigned bucket, char *out, size_t n)
{
    struct reg_record r;
    char detail[REG_DETAIL_MAX];
    memset(&r, 0xa5, sizeof(r));
    CHECK_INT(p->ops->reload(p, t, k, bucket, &r, detail, sizeof(detail)), RC_OK);
    CHECK_INT(r.type, t);
    CHECK_INT(r.kind, k);
    CHECK_INT(r.bucket, bucket);
    values_text(&r, out, n);
    reg_record_release(&r);
    return out;
}

static struct reg_provider *open_store(const char *path)
{
    struct reg_provider *p = NULL;
    char detail[REG_DETAIL_MAX];
    if (reg_provider_memory_create(path, &p, detail, sizeof(detail)) != RC_OK) {
        fprintf(stderr, "memory store %s: %s\n", path ? path : "(none)", detail);
        abort();
    }
    return p;
}

static enum rc_code apply(struct reg_provider *p, const struct reg_change *c, size_t n,
                          char *detail, size_t dlen)
{
    char change_id[REG_CHANGE_ID_MAX] = "";
    enum rc_code rc = p->ops->apply(p, c, n, change_id, NULL, detail, dlen);
    if (rc == RC_OK)
        CHECK(change_id[0] != '\0');
    return rc;
}

/*
 * Served A bucket 2 = {10.0.0.1, 10.0.0.2}; then one batch moves 10.0.0.1 to the down set of
 * bucket 2 (served loses it, down gains it). Leaves the store in that state.
 */
static void setup_and_move(struct reg_provider *p)
{
    char detail[REG_DETAIL_MAX];
    struct reg_record served = rec(REG_A, REG_KIND_SERVED, 2, 2, "10.0.0.1,10.0.0.2");
    struct reg_record served2 = rec(REG_A, REG_KIND_SERVED, 2, 1, "10.0.0.2");
    struct reg_record down = rec(REG_A, REG_KIND_DOWN, 2, 0, "10.0.0.1");
    struct reg_change create[] = {{NULL, &served}};
    struct reg_change move[] = {{&served, &served2}, {NULL, &down}};

    CHECK_INT(apply(p, create, 1, detail, sizeof(detail)), RC_OK);
    CHECK_INT(apply(p, move, 2, detail, sizeof(detail)), RC_OK);
    reg_record_release(&served);
    reg_record_release(&served2);
    reg_record_release(&down);
}

/* Both kinds are visible to load() and reload() after the move. */
static void check_moved(struct reg_provider *p)
{
    struct loaded l;
    char txt[256];

    load(p, &l);
    CHECK_INT(l.n, 2);
    CHECK_STR(values_text(find(&l, REG_A, REG_KIND_SERVED, 2), txt, sizeof(txt)), "10.0.0.2");
    CHECK_STR(values_text(find(&l, REG_A, REG_KIND_DOWN, 2), txt, sizeof(txt)), "10.0.0.1");
    CHECK(find(&l, REG_A, REG_KIND_DRAINING, 2) == NULL);
    if (find(&l, REG_A, REG_KIND_SERVED, 2))
        CHECK_INT(find(&l, REG_A, REG_KIND_SERVED, 2)->weight, 1);
    if (find(&l, REG_A, REG_KIND_DOWN, 2))
        CHECK_INT(find(&l, REG_A, REG_KIND_DOWN, 2)->weight, 0);
    loaded_release(&l);

    CHECK_STR(reload_text(p, REG_A, REG_KIND_SERVED, 2, txt, sizeof(txt)), "10.0.0.2");
    CHECK_STR(reload_text(p, REG_A, REG_KIND_DOWN, 2, txt, sizeof(txt)), "10.0.0.1");
    CHECK_STR(reload_text(p, REG_A, REG_KIND_DRAINING, 2, txt, sizeof(txt)), "");
    CHECK_STR(reload_text(p, REG_AAAA, REG_KIND_DOWN, 2, txt, sizeof(txt)), "");
}

static void test_move_atomic(void)
{
    struct reg_provider *p = open_store(NULL);
    setup_and_move(p);
    check_moved(p);
    p->ops->destroy(p);
}

/* A stale expectation on the down set refuses the batch, served half included. */
static void test_conflict_on_down(void)
{
    struct reg_provider *p = open_store(NULL);
    char detail[REG_DETAIL_MAX], txt[256];
    struct reg_record served = rec(REG_A, REG_KIND_SERVED, 2, 1, "10.0.0.2");
    struct reg_record down = rec(REG_A, REG_KIND_DOWN, 2, 0, "10.0.0.1");
    struct reg_record down_stale = rec(REG_A, REG_KIND_DOWN, 2, 0, "10.0.0.9");
    struct reg_record down2 = rec(REG_A, REG_KIND_DOWN, 2, 0, "10.0.0.1,10.0.0.2");
    struct reg_record served_stale = rec(REG_A, REG_KIND_SERVED, 2, 1, "10.0.0.3");
    struct {
        const char *what;
        struct reg_change c[2];
        enum reg_kind want; /* the set the refusal names */
        const char *words;  /* and how, in Route 53's words */
    } cases[] = {
        /* the served change is right; the down change expects no set, but one exists */
        {"down expected absent",
         {{&served, NULL}, {NULL, &down2}},
         REG_KIND_DOWN,
         "[Tried to create resource record set [name='_down.r53reg.invalid.', type='A', "
         "set-identifier='r53reg.invalid_2'] but it already exists]"},
        /* the served change is right; the down change expects other values */
        {"down values differ",
         {{&served, NULL}, {&down_stale, &down2}},
         REG_KIND_DOWN,
         "[Tried to delete resource record set [name='_down.r53reg.invalid.', type='A', "
         "set-identifier='r53reg.invalid_2'] but the values provided do not match the current "
         "values]"},
        /* the down change is right; a stale served change refuses it */
        {"served values differ",
         {{&down, &down2}, {&served_stale, NULL}},
         REG_KIND_SERVED,
         "[Tried to delete resource record set [name='r53reg.invalid.', type='A', "
         "set-identifier='r53reg.invalid_2'] but the values provided do not match the current "
         "values]"},
    };

    setup_and_move(p);
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct reg_conflicts cf;
        detail[0] = '\0';
        CHECK_INT(p->ops->apply(p, cases[i].c, 2, NULL, &cf, detail, sizeof(detail)),
                  RC_CONFLICT);
        if (strcmp(detail, cases[i].words) != 0 || cf.named != 1 ||
            cf.kinds[REG_A][2] != 1u << cases[i].want) {
            fprintf(stderr, "case \"%s\": detail \"%s\", %u named, kinds 0x%x: should name "
                    "the set of kind %d of bucket 2\n",
                    cases[i].what, detail, cf.named, cf.kinds[REG_A][2], (int)cases[i].want);
            check_failures++;
        }
        /* nothing applied */
        check_moved(p);
    }
    /* With right expectations the same batch goes through. */
    {
        struct reg_change ok[] = {{&served, NULL}, {&down, &down2}};
        struct loaded l;
        CHECK_INT(apply(p, ok, 2, detail, sizeof(detail)), RC_OK);
        load(p, &l);
        CHECK_INT(l.n, 1);
        CHECK_STR(values_text(find(&l, REG_A, REG_KIND_DOWN, 2), txt, sizeof(txt)),
                  "10.0.0.1,10.0.0.2");
        loaded_release(&l);
        CHECK_STR(reload_text(p, REG_A, REG_KIND_SERVED, 2, txt, sizeof(txt)), "");
    }
    reg_record_release(&served);
    reg_record_release(&down);
    reg_record_release(&down_stale);
    reg_record_release(&down2);
    reg_record_release(&served_stale);
    p->ops->destroy(p);
}

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

static void write_file(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    fputs(text, f);
    fclose(f);
}

/* Line lineno (1-based) of text, into out. */
static const char *line_of(const char *text, int lineno, char *out, size_t n)
{
    const char *s = text;
    size_t len;
    for (int i = 1; i < lineno && s; i++) {
        s = strchr(s, '\n');
        if (s)
            s++;
    }
    if (!s) {
        out[0] = '\0';
        return out;
    }
    len = strcspn(s, "\n");
    snprintf(out, n, "%.*s", (int)len, s);
    return out;
}

static void test_journal_kinds(void)
{
    char dir[] = "/tmp/r53reg-kinds-XXXXXX", path[64], tmp[80], detail[REG_DETAIL_MAX], txt[256],
         line[4096];
    struct reg_provider *p;
    struct loaded l;
    char *text;

    if (!mkdtemp(dir)) {
        CHECK(0);
        return;
    }
    snprintf(path, sizeof(path), "%s/state.jsonl", dir);
    snprintf(tmp, sizeof(tmp), "%s.tmp", path);

    p = open_store(path);
    setup_and_move(p);
    {
        /* One batch across types, kinds and buckets, then a deletion of a down set. */
        struct reg_record drain6 = rec(REG_AAAA, REG_KIND_DRAINING, 0, 0, "2001:db8::1");
        struct reg_record down5 = rec(REG_A, REG_KIND_DOWN, 5, 0, "10.0.0.5");
        struct reg_change add[] = {{NULL, &drain6}, {NULL, &down5}};
        struct reg_change del[] = {{&down5, NULL}};
        CHECK_INT(apply(p, add, 2, detail, sizeof(detail)), RC_OK);
        CHECK_INT(apply(p, del, 1, detail, sizeof(detail)), RC_OK);
        reg_record_release(&drain6);
        reg_record_release(&down5);
    }
    p->ops->destroy(p);

    /* The journal: an empty snapshot, then one line per batch. Served records and changes
     * carry no "kind" member; the others do. */
    text = read_file(path);
    CHECK_STR(line_of(text, 1, line, sizeof(line)), "{\"snapshot\":[]}");
    CHECK_STR(line_of(text, 2, line, sizeof(line)),
              "{\"apply\":[{\"type\":\"A\",\"bucket\":2,\"record\":{\"type\":\"A\",\"bucket\":2,"
              "\"weight\":2,\"ttl\":60,\"values\":[\"10.0.0.1\",\"10.0.0.2\"]}}]}");
    CHECK_STR(
        line_of(text, 3, line, sizeof(line)),
        "{\"apply\":[{\"type\":\"A\",\"bucket\":2,\"record\":{\"type\":\"A\",\"bucket\":2,"
        "\"weight\":1,\"ttl\":60,\"values\":[\"10.0.0.2\"]}},"
        "{\"type\":\"A\",\"kind\":\"down\",\"bucket\":2,\"record\":{\"type\":\"A\","
        "\"kind\":\"down\",\"bucket\":2,\"weight\":0,\"ttl\":60,\"values\":[\"10.0.0.1\"]}}]}");
    CHECK(strstr(line_of(text, 4, line, sizeof(line)), "\"kind\":\"draining\"") != NULL);
    CHECK_STR(line_of(text, 5, line, sizeof(line)),
              "{\"apply\":[{\"type\":\"A\",\"kind\":\"down\",\"bucket\":5,\"record\":null}]}");
    CHECK_STR(line_of(text, 6, line, sizeof(line)), "");
    free(text);

    /* Restart: replaying the apply lines gives every kind back. */
    for (int round = 0; round < 2; round++) {
        p = open_store(path);
        load(p, &l);
        CHECK_INT(l.n, 3);
        CHECK_STR(values_text(find(&l, REG_A, REG_KIND_SERVED, 2), txt, sizeof(txt)), "10.0.0.2");
        CHECK_STR(values_text(find(&l, REG_A, REG_KIND_DOWN, 2), txt, sizeof(txt)), "10.0.0.1");
        CHECK_STR(values_text(find(&l, REG_AAAA, REG_KIND_DRAINING, 0), txt, sizeof(txt)),
                  "2001:db8::1");
        CHECK(find(&l, REG_A, REG_KIND_DOWN, 5) == NULL);
        loaded_release(&l);
        CHECK_STR(reload_text(p, REG_A, REG_KIND_DOWN, 2, txt, sizeof(txt)), "10.0.0.1");
        p->ops->destroy(p);

        /* Opening compacted the journal into one snapshot line holding every kind; the
         * second round loads from that snapshot. */
        text = read_file(path);
        CHECK_STR(line_of(text, 2, line, sizeof(line)), "");
        line_of(text, 1, line, sizeof(line));
        CHECK(strstr(line, "{\"type\":\"A\",\"bucket\":2,\"weight\":1,") != NULL);
        CHECK(strstr(line, "{\"type\":\"A\",\"kind\":\"down\",\"bucket\":2,\"weight\":0,") != NULL);
        CHECK(strstr(line, "{\"type\":\"AAAA\",\"kind\":\"draining\",\"bucket\":0,") != NULL);
        free(text);
    }
    unlink(path);
    unlink(tmp);
    rmdir(dir);
}

static void test_journal_old_format(void)
{
    char dir[] = "/tmp/r53reg-kinds-XXXXXX", path[64], tmp[80], detail[REG_DETAIL_MAX], txt[256];
    struct reg_provider *p;
    struct loaded l;
    static const struct {
        const char *what;
        const char *text;
        const char *want; /* in the detail */
    } bad[] = {
        {"unknown kind in a record",
         "{\"snapshot\":[{\"type\":\"A\",\"kind\":\"up\",\"bucket\":1,\"weight\":1,\"ttl\":60,"
         "\"values\":[\"10.0.0.7\"]}]}\n",
         "kind"},
        {"kind that is not a string",
         "{\"snapshot\":[{\"type\":\"A\",\"kind\":1,\"bucket\":1,\"weight\":1,\"ttl\":60,"
         "\"values\":[\"10.0.0.7\"]}]}\n",
         "line 1"},
        {"unknown member (strict unpacking)",
         "{\"snapshot\":[{\"type\":\"A\",\"kind\":\"down\",\"bucket\":1,\"weight\":0,\"ttl\":60,"
         "\"values\":[\"10.0.0.7\"],\"extra\":1}]}\n",
         "line 1"},
        {"unknown kind in a change",
         "{\"snapshot\":[]}\n{\"apply\":[{\"type\":\"A\",\"kind\":\"gone\",\"bucket\":1,"
         "\"record\":null}]}\n",
         "line 2"},
        {"non-string kind in a change",
         "{\"snapshot\":[]}\n{\"apply\":[{\"type\":\"A\",\"kind\":[],\"bucket\":1,"
         "\"record\":null}]}\n",
         "line 2"},
    };

    if (!mkdtemp(dir)) {
        CHECK(0);
        return;
    }
    snprintf(path, sizeof(path), "%s/state.jsonl", dir);
    snprintf(tmp, sizeof(tmp), "%s.tmp", path);

    /* Written before kinds existed: every record is served. */
    write_file(path, "{\"snapshot\":[{\"type\":\"A\",\"bucket\":1,\"weight\":1,\"ttl\":60,"
                     "\"values\":[\"10.0.0.7\"]}]}\n"
                     "{\"apply\":[{\"type\":\"A\",\"bucket\":3,\"record\":{\"type\":\"A\","
                     "\"bucket\":3,\"weight\":1,\"ttl\":60,\"values\":[\"10.0.0.8\"]}},"
                     "{\"type\":\"AAAA\",\"bucket\":0,\"record\":{\"type\":\"AAAA\","
                     "\"bucket\":0,\"weight\":1,\"ttl\":60,\"values\":[\"2001:db8::8\"]}}]}\n"
                     "{\"apply\":[{\"type\":\"A\",\"bucket\":1,\"record\":null}]}\n");
    p = open_store(path);
    load(p, &l);
    CHECK_INT(l.n, 2);
    for (size_t i = 0; i < l.n; i++)
        CHECK_INT(l.recs[i].kind, REG_KIND_SERVED);
    CHECK_STR(values_text(find(&l, REG_A, REG_KIND_SERVED, 3), txt, sizeof(txt)), "10.0.0.8");
    CHECK_STR(values_text(find(&l, REG_AAAA, REG_KIND_SERVED, 0), txt, sizeof(txt)), "2001:db8::8");
    CHECK(find(&l, REG_A, REG_KIND_SERVED, 1) == NULL);
    loaded_release(&l);
    CHECK_STR(reload_text(p, REG_A, REG_KIND_SERVED, 3, txt, sizeof(txt)), "10.0.0.8");
    CHECK_STR(reload_text(p, REG_A, REG_KIND_DOWN, 3, txt, sizeof(txt)), "");
    p->ops->destroy(p);
    /* ... and the rewritten snapshot still has no "kind" in it. */
    {
        char *text = read_file(path);
        CHECK(strstr(text, "kind") == NULL);
        CHECK(strstr(text, "10.0.0.8") != NULL);
        free(text);
    }

    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        p = NULL;
        detail[0] = '\0';
        write_file(path, bad[i].text);
        CHECK_INT(reg_provider_memory_create(path, &p, detail, sizeof(detail)), RC_IO);
        CHECK(p == NULL);
        if (!strstr(detail, bad[i].want)) {
            fprintf(stderr, "case \"%s\": detail \"%s\" lacks \"%s\"\n", bad[i].what, detail,
                    bad[i].want);
            check_failures++;
        }
    }
    unlink(path);
    unlink(tmp);
    rmdir(dir);
}

/* ---- the Route 53 provider against r53emu ----------------------------------------------- */

/* The zone's record sets as "name type set-id weight ttl values;" lines (SOA/NS left out). */
static void zone_text(struct r53_client *c, char *out, size_t n)
{
    struct r53_rrset_page page = {0};
    struct r53_error err;
    size_t len = 0;

    out[0] = '\0';
    r53xml_error_init(&err);
    CHECK_INT(r53_list_rrsets(c, EMU_ZONE, NULL, NULL, NULL, 300, &page, &err), RC_OK);
    for (size_t i = 0; i < page.n && len < n; i++) {
        const struct r53_rrset *rs = &page.rrsets[i];
        if (!rs->set_identifier)
            continue;
        len += (size_t)snprintf(out + len, n - len, "%s %s %s %u %ld", rs->name, rs->type,
                                rs->set_identifier, rs->weight, rs->ttl);
        for (size_t v = 0; v < rs->nvalues && len < n; v++)
            len += (size_t)snprintf(out + len, n - len, "%s%s", v ? "," : " ", rs->values[v]);
        if (len < n)
            len += (size_t)snprintf(out + len, n - len, ";");
    }
    r53xml_page_release(&page);
    r53xml_error_release(&err);
}

/* Someone else (a console user) rewrites the down set of A bucket 2. */
static void console_edit_down(struct r53_client *c, const char *ip)
{
    const char *values[] = {ip};
    struct r53_rrset rs;
    struct r53_change ch;
    struct r53_change_info info;
    struct r53_error err;

    memset(&rs, 0, sizeof(rs));
    rs.name = "_down.app.example.com.";
    rs.type = "A";
    rs.set_identifier = "app.example.com_2";
    rs.has_weight = 1;
    rs.has_ttl = 1;
    rs.ttl = 60;
    rs.values = values;
    rs.nvalues = 1;
    ch.action = R53_ACTION_UPSERT;
    ch.rrset = &rs;
    r53xml_error_init(&err);
    CHECK_INT(r53_change_rrsets(c, EMU_ZONE, &ch, 1, NULL, &info, &err), RC_OK);
    r53xml_error_release(&err);
}

static void test_route53(const char *emu_exe)
{
    static const struct sigv4_creds creds = {EMU_AKID, EMU_SECRET, NULL};
    struct reg_options o;
    struct emu e;
    struct reg_provider *p;
    struct r53_client *client = NULL;
    struct r53_client_options co;
    struct loaded l;
    char detail[REG_DETAIL_MAX], txt[256], zone[4096];
    struct reg_record served12 = rec(REG_A, REG_KIND_SERVED, 2, 2, "10.0.0.1,10.0.0.2");
    struct reg_record served2 = rec(REG_A, REG_KIND_SERVED, 2, 1, "10.0.0.2");
    struct reg_record down1 = rec(REG_A, REG_KIND_DOWN, 2, 0, "10.0.0.1");
    struct reg_record down12 = rec(REG_A, REG_KIND_DOWN, 2, 0, "10.0.0.1,10.0.0.2");
    struct reg_record drain6 = rec(REG_AAAA, REG_KIND_DRAINING, 2, 0, "2001:db8::1");

    if (emu_start(emu_exe, &e)) {
        CHECK(0);
        return;
    }
    memset(&o, 0, sizeof(o));
    snprintf(o.record_name, sizeof(o.record_name), "app.example.com");
    o.buckets = 4;
    o.max_per_bucket = 10;
    o.ttl = 60;
    memset(&co, 0, sizeof(co));
    co.endpoint = e.endpoint;
    co.static_creds = &creds;
    co.rps = -1;
    CHECK_INT(r53_client_create(&co, &client, detail, sizeof(detail)), RC_OK);

    /* Create the served set, then move 10.0.0.1 to the down set in one batch that also starts
     * an AAAA draining set. */
    p = emu_route53(&e, &o);
    {
        struct reg_change create[] = {{NULL, &served12}};
        struct reg_change move[] = {{&served12, &served2}, {NULL, &down1}, {NULL, &drain6}};
        struct reg_change stale[] = {{&served2, NULL}, {NULL, &down1}};
        CHECK_INT(apply(p, create, 1, detail, sizeof(detail)), RC_OK);
        CHECK_INT(apply(p, move, 3, detail, sizeof(detail)), RC_OK);
        /* expecting no down set where the provider knows one: refused before the wire */
        CHECK_INT(apply(p, stale, 2, detail, sizeof(detail)), RC_CONFLICT);
        CHECK(strstr(detail, "_down.app.example.com.") != NULL);
    }
    p->ops->destroy(p);
    /* The zone holds three names, same set identifier, weight 0 for the hidden kinds, in
     * ListResourceRecordSets order. */
    zone_text(client, zone, sizeof(zone));
    CHECK_STR(zone, "app.example.com. A app.example.com_2 1 60 10.0.0.2;"
                    "_down.app.example.com. A app.example.com_2 0 60 10.0.0.1;"
                    "_draining.app.example.com. AAAA app.example.com_2 0 60 2001:db8::1;");

    /* A fresh provider loads every kind and reloads by kind. */
    p = emu_route53(&e, &o);
    load(p, &l);
    CHECK_INT(l.n, 3);
    CHECK_STR(values_text(find(&l, REG_A, REG_KIND_SERVED, 2), txt, sizeof(txt)), "10.0.0.2");
    CHECK_STR(values_text(find(&l, REG_A, REG_KIND_DOWN, 2), txt, sizeof(txt)), "10.0.0.1");
    CHECK_STR(values_text(find(&l, REG_AAAA, REG_KIND_DRAINING, 2), txt, sizeof(txt)),
              "2001:db8::1");
    if (find(&l, REG_A, REG_KIND_DOWN, 2))
        CHECK_INT(find(&l, REG_A, REG_KIND_DOWN, 2)->weight, 0);
    loaded_release(&l);
    CHECK_STR(reload_text(p, REG_A, REG_KIND_SERVED, 2, txt, sizeof(txt)), "10.0.0.2");
    CHECK_STR(reload_text(p, REG_A, REG_KIND_DOWN, 2, txt, sizeof(txt)), "10.0.0.1");
    CHECK_STR(reload_text(p, REG_A, REG_KIND_DRAINING, 2, txt, sizeof(txt)), "");
    CHECK_STR(reload_text(p, REG_AAAA, REG_KIND_DRAINING, 2, txt, sizeof(txt)), "2001:db8::1");
    CHECK_STR(reload_text(p, REG_AAAA, REG_KIND_DOWN, 2, txt, sizeof(txt)), "");

    /* A console edit of the down set: the served+down batch is refused by Route 53 as a
     * whole; after reload() the batch made from what the zone holds goes through. */
    console_edit_down(client, "10.0.0.7");
    {
        struct reg_change batch[] = {{&served2, NULL}, {&down1, &down12}};
        struct reg_record fresh;
        struct reg_conflicts cf;
        CHECK_INT(p->ops->apply(p, batch, 2, NULL, &cf, detail, sizeof(detail)), RC_CONFLICT);
        CHECK(strstr(detail, "_down.app.example.com.") != NULL);
        /* Route 53's message names the set; the provider maps it back to (A, down, 2) */
        CHECK_INT(cf.named, 1);
        CHECK_INT(cf.unnamed, 0);
        CHECK_INT(cf.kinds[REG_A][2], 1u << REG_KIND_DOWN);
        zone_text(client, zone, sizeof(zone));
        CHECK(strstr(zone, "app.example.com. A app.example.com_2 1 60 10.0.0.2;") == zone);
        CHECK_INT(p->ops->reload(p, REG_A, REG_KIND_DOWN, 2, &fresh, detail, sizeof(detail)),
                  RC_OK);
        CHECK_STR(values_text(&fresh, txt, sizeof(txt)), "10.0.0.7");
        batch[1].old = &fresh;
        CHECK_INT(apply(p, batch, 2, detail, sizeof(detail)), RC_OK);
        reg_record_release(&fresh);
    }
    zone_text(client, zone, sizeof(zone));
    CHECK_STR(zone, "_down.app.example.com. A app.example.com_2 0 60 10.0.0.1,10.0.0.2;"
                    "_draining.app.example.com. AAAA app.example.com_2 0 60 2001:db8::1;");

    /* Route 53 answering InvalidInput for an identifier that names no set: reload() lists the
     * name and type instead, finds a set that exists and reports one that does not. */
    CHECK_INT(emu_post(&e, "faults", "{\"list_identifier\": \"strict\"}"), 0);
    CHECK_STR(reload_text(p, REG_A, REG_KIND_DOWN, 2, txt, sizeof(txt)), "10.0.0.1,10.0.0.2");
    CHECK_STR(reload_text(p, REG_A, REG_KIND_DOWN, 1, txt, sizeof(txt)), "");
    CHECK_STR(reload_text(p, REG_A, REG_KIND_SERVED, 2, txt, sizeof(txt)), "");
    CHECK_STR(reload_text(p, REG_AAAA, REG_KIND_DRAINING, 2, txt, sizeof(txt)), "2001:db8::1");
    CHECK_STR(reload_text(p, REG_AAAA, REG_KIND_DRAINING, 3, txt, sizeof(txt)), "");
    {
        /* the set reloaded through the fallback is the one the next DELETE repeats */
        struct reg_record fresh;
        struct reg_change del[] = {{NULL, NULL}};
        CHECK_INT(p->ops->reload(p, REG_A, REG_KIND_DOWN, 2, &fresh, detail, sizeof(detail)),
                  RC_OK);
        del[0].old = &fresh;
        CHECK_INT(apply(p, del, 1, detail, sizeof(detail)), RC_OK);
        reg_record_release(&fresh);
    }
    CHECK_INT(emu_post(&e, "faults", "{\"list_identifier\": \"lenient\"}"), 0);
    zone_text(client, zone, sizeof(zone));
    CHECK_STR(zone, "_draining.app.example.com. AAAA app.example.com_2 0 60 2001:db8::1;");
    p->ops->destroy(p);

    /* A whole weighted group moved to a new TTL in one batch: Route 53 judges each CREATE
     * against the sets as the earlier changes left them, so every DELETE must come first. */
    CHECK_INT(emu_post(&e, "zones/" EMU_ZONE "/clear", "{}"), 0);
    CHECK_INT(emu_post(&e, "zones/" EMU_ZONE "/rrsets",
                       "[{\"name\": \"app.example.com\", \"type\": \"A\", \"ttl\": 300, "
                       "\"weight\": 1, \"set_identifier\": \"app.example.com_0\", "
                       "\"values\": [\"10.0.1.1\"]}, {\"name\": \"app.example.com\", "
                       "\"type\": \"A\", \"ttl\": 300, \"weight\": 1, \"set_identifier\": "
                       "\"app.example.com_1\", \"values\": [\"10.0.1.2\"]}]"),
              0);
    p = emu_route53(&e, &o);
    load(p, &l);
    CHECK_INT(l.n, 2);
    {
        struct reg_record b0 = rec(REG_A, REG_KIND_SERVED, 0, 1, "10.0.1.1");
        struct reg_record b1 = rec(REG_A, REG_KIND_SERVED, 1, 1, "10.0.1.2");
        struct reg_change ttl[] = {{find(&l, REG_A, REG_KIND_SERVED, 0), &b0},
                                   {find(&l, REG_A, REG_KIND_SERVED, 1), &b1}};
        CHECK_INT(apply(p, ttl, 2, detail, sizeof(detail)), RC_OK);
        reg_record_release(&b0);
        reg_record_release(&b1);
    }
    loaded_release(&l);
    zone_text(client, zone, sizeof(zone));
    CHECK_STR(zone, "app.example.com. A app.example.com_0 1 60 10.0.1.1;"
                    "app.example.com. A app.example.com_1 1 60 10.0.1.2;");
    p->ops->destroy(p);

    /* A hostile listing: values the API refuses (unspecified, broadcast, multicast,
     * IPv4-mapped, not canonical) are skipped, and one set listed twice (the identifier in
     * another case maps to the same bucket) loads once, the first listed; each skip is logged,
     * quoted. Loopback, link-local and 0.0.0.0/8 values, which the API registers only with
     * --allow-special, are kept as the zone holds them. */
    CHECK_INT(emu_post(&e, "zones/" EMU_ZONE "/clear", "{}"), 0);
    CHECK_INT(emu_post(&e, "zones/" EMU_ZONE "/rrsets",
                       "[{\"name\": \"app.example.com\", \"type\": \"A\", \"ttl\": 60, "
                       "\"weight\": 1, \"set_identifier\": \"app.example.com_0\", \"values\": "
                       "[\"0.0.0.0\", \"255.255.255.255\", \"224.0.0.1\", \"10.0.0.1\", "
                       "\"127.0.0.1\", \"169.254.1.1\", \"0.1.2.3\"]}, "
                       "{\"name\": \"app.example.com\", \"type\": \"AAAA\", \"ttl\": 60, "
                       "\"weight\": 1, \"set_identifier\": \"app.example.com_0\", \"values\": "
                       "[\"::ffff:10.0.0.8\", \"2001:db8:0:0:0:0:0:1\", \"2001:db8::2\", "
                       "\"::1\", \"fe80::1\"]}, "
                       "{\"name\": \"app.example.com\", \"type\": \"A\", \"ttl\": 60, "
                       "\"weight\": 1, \"set_identifier\": \"app.example.com_1\", \"values\": "
                       "[\"10.0.0.5\"]}, "
                       "{\"name\": \"app.example.com\", \"type\": \"A\", \"ttl\": 60, "
                       "\"weight\": 1, \"set_identifier\": \"APP.example.com_1\", \"values\": "
                       "[\"10.0.0.6\"]}]"),
              0);
    {
        char logpath[] = "/tmp/r53kinds-log.XXXXXX";
        int fd = mkstemp(logpath), saved;
        char *log;
        CHECK(fd >= 0);
        fflush(stderr);
        saved = dup(2);
        dup2(fd, 2);
        p = emu_route53(&e, &o);
        load(p, &l);
        fflush(stderr);
        dup2(saved, 2);
        close(saved);
        close(fd);
        log = read_file(logpath);
        unlink(logpath);
        fputs(log, stderr);
        CHECK_INT(l.n, 3);
        CHECK_STR(values_text(find(&l, REG_A, REG_KIND_SERVED, 0), txt, sizeof(txt)),
                  "0.1.2.3,10.0.0.1,127.0.0.1,169.254.1.1");
        CHECK_STR(values_text(find(&l, REG_AAAA, REG_KIND_SERVED, 0), txt, sizeof(txt)),
                  "::1,2001:db8::2,fe80::1");
        /* APP.example.com_1 sorts first (bytewise), so it is the one kept */
        CHECK_STR(values_text(find(&l, REG_A, REG_KIND_SERVED, 1), txt, sizeof(txt)), "10.0.0.6");
        for (const char *const *v =
                 (const char *const[]){"value=0.0.0.0", "value=255.255.255.255", "value=224.0.0.1",
                                       "value=::ffff:10.0.0.8", "value=2001:db8:0:0:0:0:0:1", NULL};
             *v; v++)
            if (!strstr(log, *v)) {
                fprintf(stderr, "log lacks %s\n", *v);
                CHECK(0);
            }
        for (const char *const *v =
                 (const char *const[]){"value=127.0.0.1", "value=169.254.1.1", "value=0.1.2.3",
                                       "value=::1", "value=fe80::1", NULL};
             *v; v++)
            if (strstr(log, *v)) {
                fprintf(stderr, "log skips %s\n", *v);
                CHECK(0);
            }
        CHECK(strstr(log, "record set listed twice") != NULL);
        CHECK(strstr(log, "set_id=app.example.com_1") != NULL);
        free(log);
        loaded_release(&l);
        p->ops->destroy(p);
    }

    r53_client_destroy(client);
    CHECK(emu_stop(&e));
    reg_record_release(&served12);
    reg_record_release(&served2);
    reg_record_release(&down1);
    reg_record_release(&down12);
    reg_record_release(&drain6);
}

int main(int argc, char **argv)
{
    if (argc == 3 && !strcmp(argv[1], "route53")) {
        log_set_level(LOG_WARN);
        test_route53(argv[2]);
        return check_done("test_provider_kinds route53");
    }
    if (argc != 1) {
        fprintf(stderr, "usage: test_provider_kinds [route53 PATH/r53emu]\n");
        return 2;
    }
    test_move_atomic();
    test_conflict_on_down();
    test_journal_kinds();
    test_journal_old_format();
    return check_done("test_provider_kinds");
}
