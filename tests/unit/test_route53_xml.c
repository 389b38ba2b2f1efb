/*
 * test_route53_xml.c: aws/route53_xml against the real Route 53 samples and a table of own
 * cases.
 *
 *   test_route53_xml <sample-file>   the expectations for one file of testdata/route53 (one
 *                                    ctest per file: route53xml.<file>); a file without
 *                                    expectations here fails, so new samples get attention
 *   test_route53_xml --self          builder, quota, escaping, octal names, malformed input
 *   test_route53_xml --skip <why>    print why and exit 77 (ctest SKIP_RETURN_CODE)
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>
#include <libxml/parser.h>
#include <libxml/tree.h>

#include "aws/route53.h"
#include "aws/route53_xml.h"
#include "check.h"
#include "util/xalloc.h"

#define SKIP_CODE 77
#define FILE_CAP (4 << 20)
#define NELEM(a) (sizeof(a) / sizeof((a)[0]))

static char *read_all(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    char *data = NULL;
    size_t n = 0;

    if (!f) {
        fprintf(stderr, "%s: %s\n", path, strerror(errno));
        return NULL;
    }
    data = xmalloc(FILE_CAP + 1);
    n = fread(data, 1, FILE_CAP + 1, f);
    fclose(f);
    if (n > FILE_CAP) {
        fprintf(stderr, "%s: larger than %d bytes\n", path, FILE_CAP);
        free(data);
        return NULL;
    }
    data[n] = '\0';
    *len = n;
    return data;
}

/* --- flattening: the leaf elements of a document as "Path/To/Leaf=text", in order --------- */

struct flat {
    char **v;
    size_t n, cap;
};

static void flat_release(struct flat *f)
{
    for (size_t i = 0; i < f->n; i++)
        free(f->v[i]);
    free(f->v);
    memset(f, 0, sizeof(*f));
}

static void flatten_node(xmlNodePtr n, const char *prefix, struct flat *f)
{
    char path[512];
    int has_elem = 0;
    xmlNodePtr c;

    snprintf(path, sizeof(path), "%s%s%s", prefix, *prefix ? "/" : "", (const char *)n->name);
    for (c = n->children; c; c = c->next) {
        if (c->type == XML_ELEMENT_NODE) {
            has_elem = 1;
            flatten_node(c, path, f);
        }
    }
    if (!has_elem) {
        xmlChar *t = xmlNodeGetContent(n);
        const char *s = t ? (const char *)t : "";
        size_t a = 0, b = strlen(s);
        char *line;

        while (a < b && strchr(" \t\r\n", s[a]))
            a++;
        while (b > a && strchr(" \t\r\n", s[b - 1]))
            b--;
        line = xmalloc(strlen(path) + (b - a) + 2);
        sprintf(line, "%s=%.*s", path, (int)(b - a), s + a);
        f->v = xgrow(f->v, &f->cap, f->n + 1, sizeof(*f->v));
        f->v[f->n++] = line;
        xmlFree(t);
    }
}

/* 0 on success; *ns receives the root's namespace URI (caller frees) when ns != NULL. */
static int flatten(const char *xml, size_t len, struct flat *f, char **ns)
{
    xmlDocPtr doc = xmlReadMemory(xml, (int)len, NULL, NULL,
                                  XML_PARSE_NONET | XML_PARSE_NOERROR | XML_PARSE_NOWARNING);
    xmlNodePtr root;

    memset(f, 0, sizeof(*f));
    if (!doc)
        return -1;
    root = xmlDocGetRootElement(doc);
    if (ns)
        *ns = root->ns && root->ns->href ? xstrdup((const char *)root->ns->href) : NULL;
    flatten_node(root, "", f);
    xmlFreeDoc(doc);
    return 0;
}

static void check_same_elements(const char *built, size_t blen, const char *sample, size_t slen)
{
    struct flat a, b;
    char *ns = NULL;

    CHECK(flatten(built, blen, &a, &ns) == 0);
    CHECK(flatten(sample, slen, &b, NULL) == 0);
    CHECK_STR(ns, R53_XMLNS);
    CHECK_INT(a.n, b.n);
    for (size_t i = 0; i < a.n && i < b.n; i++)
        CHECK_STR(a.v[i], b.v[i]);
    if (a.n != b.n || check_failures) {
        fprintf(stderr, "built:\n%s\n", built);
    }
    free(ns);
    flat_release(&a);
    flat_release(&b);
}

/* The child element names of the first <parent> in xml, in order, joined by ','. */
static void child_order(const char *xml, size_t len, const char *parent, char *out, size_t n)
{
    xmlDocPtr doc = xmlReadMemory(xml, (int)len, NULL, NULL, XML_PARSE_NONET);
    xmlNodePtr stack[64], node, c;
    size_t sp = 0;

    out[0] = '\0';
    if (!doc)
        return;
    stack[sp++] = xmlDocGetRootElement(doc);
    while (sp) {
        node = stack[--sp];
        if (strcmp((const char *)node->name, parent) == 0) {
            for (c = node->children; c; c = c->next) {
                if (c->type != XML_ELEMENT_NODE)
                    continue;
                if (out[0])
                    strncat(out, ",", n - strlen(out) - 1);
                strncat(out, (const char *)c->name, n - strlen(out) - 1);
            }
            break;
        }
        for (c = node->last; c; c = c->prev)
            if (c->type == XML_ELEMENT_NODE && sp < NELEM(stack))
                stack[sp++] = c;
    }
    xmlFreeDoc(doc);
}

/* --- sample expectations ------------------------------------------------------------------ */

static const char *v_texts1[] = {"my texts"};
static const char *v_texts2[] = {"my better texts"};

static void sample_delete_create(const char *xml, size_t len)
{
    struct r53_rrset del = {.name = "jclouds.org.",
                            .type = "TXT",
                            .has_ttl = 1,
                            .ttl = 0,
                            .values = v_texts1,
                            .nvalues = 1};
    struct r53_rrset cre = {.name = "jclouds.org.",
                            .type = "TXT",
                            .has_ttl = 1,
                            .ttl = 0,
                            .values = v_texts2,
                            .nvalues = 1};
    struct r53_change ch[] = {{R53_ACTION_DELETE, &del}, {R53_ACTION_CREATE, &cre}};
    struct r53_batch_size sz;
    char *built = NULL;
    size_t blen = 0;

    CHECK_INT(r53xml_build_change_batch(ch, 2, NULL, &built, &blen, NULL, 0), RC_OK);
    CHECK(built && strncmp(built, "<?xml version=\"1.0\" encoding=\"UTF-8\"?>", 38) == 0);
    if (built)
        check_same_elements(built, blen, xml, len);
    r53xml_batch_size(ch, 2, &sz);
    CHECK_INT(sz.elements, 2);
    CHECK_INT(sz.value_chars, strlen("my texts") + strlen("my better texts"));
    free(built);
}

static const char *v_1234[] = {"1.2.3.4"};
static const char *v_cname[] = {"cname.target"};
static const char *v_text[] = {"text record"};
static const char *v_2222[] = {"2.2.2.2"};

static void sample_change_request(const char *xml, size_t len)
{
    struct r53_rrset vanilla = {.name = "vanilla.example.com",
                                .type = "A",
                                .has_ttl = 1,
                                .ttl = 60,
                                .values = v_1234,
                                .nvalues = 1};
    struct r53_rrset alias = {.name = "alias.example.com",
                              .type = "AAAA",
                              .alias = {"Z123OTHER", "target.other", 1},
                              .flags = R53_RRSET_F_ALIAS};
    struct r53_rrset wrr = {.name = "wrr.example.com",
                            .type = "CNAME",
                            .set_identifier = "weight-1",
                            .has_weight = 1,
                            .weight = 10,
                            .has_ttl = 1,
                            .ttl = 60,
                            .values = v_cname,
                            .nvalues = 1};
    struct r53_rrset lbr = {.name = "lbr.example.com",
                            .type = "TXT",
                            .set_identifier = "region-1",
                            .region = "us-west-2",
                            .has_ttl = 1,
                            .ttl = 60,
                            .values = v_text,
                            .nvalues = 1,
                            .flags = R53_RRSET_F_REGION};
    struct r53_rrset fo = {.name = "failover.example.com",
                           .type = "A",
                           .set_identifier = "primary",
                           .failover = "PRIMARY",
                           .has_ttl = 1,
                           .ttl = 60,
                           .values = v_2222,
                           .nvalues = 1,
                           .health_check_id = "hc-1234",
                           .flags = R53_RRSET_F_FAILOVER};
    struct r53_change ch[] = {{R53_ACTION_CREATE, &vanilla},
                              {R53_ACTION_CREATE, &alias},
                              {R53_ACTION_CREATE, &wrr},
                              {R53_ACTION_CREATE, &lbr},
                              {R53_ACTION_CREATE, &fo}};
    struct r53_batch_size sz;
    char *built = NULL;
    size_t blen = 0;

    CHECK_INT(r53xml_build_change_batch(ch, NELEM(ch), "None", &built, &blen, NULL, 0), RC_OK);
    if (built)
        check_same_elements(built, blen, xml, len);
    r53xml_batch_size(ch, NELEM(ch), &sz);
    CHECK_INT(sz.elements, 5); /* the alias counts as one element */
    /* and its DNSName's characters, budgeted as if Route 53 counted them */
    CHECK_INT(sz.value_chars, strlen("1.2.3.4") + strlen("target.other") +
                                  strlen("cname.target") + strlen("text record") +
                                  strlen("2.2.2.2"));
    free(built);
}

/* The syntax template is not XML: every parser must fail cleanly, and the opening tags of its
 * ResourceRecordSet must come in the builder's order. */
static void sample_weighted_syntax(const char *txt, size_t len)
{
    static const char *vals[] = {"192.0.2.9", "192.0.2.10"};
    struct r53_rrset r = {.name = "app.example.com.",
                          .type = "A",
                          .set_identifier = "rack2",
                          .has_weight = 1,
                          .weight = 7,
                          .has_ttl = 1,
                          .ttl = 60,
                          .values = vals,
                          .nvalues = 2,
                          .health_check_id = "hc"};
    struct r53_change ch = {R53_ACTION_UPSERT, &r};
    struct r53_change_info ci;
    struct r53_rrset_page page;
    struct r53_hosted_zone hz;
    struct r53_error err;
    char tmpl[512] = "", built_order[512] = "", *built = NULL;
    const char *p, *q, *end;
    size_t blen;

    r53xml_error_init(&err);
    CHECK_INT(r53xml_parse_change_info(txt, len, &ci, NULL, 0), RC_PARSE);
    CHECK_INT(r53xml_parse_list_rrsets(txt, len, &page, NULL, 0), RC_PARSE);
    CHECK_INT(r53xml_parse_hosted_zone(txt, len, &hz, NULL, 0), RC_PARSE);
    CHECK_INT(r53xml_parse_error(txt, len, &err), RC_PARSE);

    /* opening tags between <ResourceRecordSet> and </ResourceRecordSet> */
    p = strstr(txt, "<ResourceRecordSet>");
    end = strstr(txt, "</ResourceRecordSet>");
    CHECK(p && end && p < end);
    if (p && end) {
        for (p += strlen("<ResourceRecordSet>"); (p = strchr(p, '<')) && p < end; p++) {
            if (p[1] == '/')
                continue;
            q = strchr(p, '>');
            if (tmpl[0])
                strcat(tmpl, ",");
            strncat(tmpl, p + 1, (size_t)(q - p - 1));
        }
    }
    CHECK_STR(tmpl, "Name,Type,SetIdentifier,Weight,TTL,ResourceRecords,ResourceRecord,Value,"
                    "HealthCheckId");
    CHECK_INT(r53xml_build_change_batch(&ch, 1, NULL, &built, &blen, NULL, 0), RC_OK);
    if (built) {
        /* same scan over the built document (two values: one ResourceRecord,Value pair) */
        p = strstr(built, "<ResourceRecordSet>");
        end = strstr(built, "</ResourceRecordSet>");
        for (p += strlen("<ResourceRecordSet>"); (p = strchr(p, '<')) && p < end; p++) {
            if (p[1] == '/')
                continue;
            q = strchr(p, '>');
            if (built_order[0])
                strcat(built_order, ",");
            strncat(built_order, p + 1, (size_t)(q - p - 1));
        }
        CHECK_STR(built_order, "Name,Type,SetIdentifier,Weight,TTL,ResourceRecords,"
                               "ResourceRecord,Value,ResourceRecord,Value,HealthCheckId");
    }
    free(built);
    r53xml_error_release(&err);
}

static void sample_change_response(const char *xml, size_t len)
{
    struct r53_change_info ci;

    CHECK_INT(r53xml_parse_change_info(xml, len, &ci, NULL, 0), RC_OK);
    CHECK_STR(ci.id, "C1111111111111");
    CHECK_INT(ci.status, R53_CHANGE_PENDING);
    CHECK_STR(ci.status_text, "PENDING");
    CHECK_STR(ci.submitted_at, "2014-05-05T10:11:12.123Z");
}

static void sample_get_change(const char *xml, size_t len)
{
    struct r53_change_info ci;

    CHECK_INT(r53xml_parse_change_info(xml, len, &ci, NULL, 0), RC_OK);
    CHECK_STR(ci.id, "C2682N5HXP0BZ4");
    CHECK_INT(ci.status, R53_CHANGE_INSYNC);
    CHECK_STR(ci.submitted_at, "2017-03-10T01:36:41.958Z");
}

static void sample_list(const char *xml, size_t len)
{
    struct r53_rrset_page p;
    char detail[256] = "";

    CHECK_INT(r53xml_parse_list_rrsets(xml, len, &p, detail, sizeof(detail)), RC_OK);
    CHECK_INT(p.n, 6);
    CHECK(!p.is_truncated);
    CHECK_INT(p.max_items, 100);
    CHECK(!p.next_name && !p.next_type && !p.next_identifier);
    if (p.n == 6) {
        CHECK_STR(p.rrsets[0].name, "test.example.com.");
        CHECK_STR(p.rrsets[0].type, "A");
        CHECK_INT(p.rrsets[0].ttl, 60);
        CHECK_INT(p.rrsets[0].nvalues, 1);
        CHECK_STR(p.rrsets[0].values[0], "10.0.0.1");
        CHECK_INT(p.rrsets[0].flags, 0);
        CHECK(!r53xml_rrset_is_weighted(&p.rrsets[0])); /* simple: no SetIdentifier */
        CHECK_STR(p.rrsets[1].values[0], "10.0.0.2");

        CHECK_STR(p.rrsets[2].name, "us-west-2-evaluate-health.example.com.");
        CHECK_STR(p.rrsets[2].set_identifier, "latency-example-us-west-2-evaluate-health");
        CHECK_INT(p.rrsets[2].flags, R53_RRSET_F_ALIAS | R53_RRSET_F_REGION);
        CHECK_STR(p.rrsets[2].region, "us-west-2");
        CHECK_STR(p.rrsets[2].alias.hosted_zone_id, "ABCDEFG123456");
        CHECK_STR(p.rrsets[2].alias.dns_name,
                  "example-123456-evaluate-health.us-west-2.elb.amazonaws.com.");
        CHECK_INT(p.rrsets[2].alias.evaluate_target_health, 1);
        CHECK_STR(p.rrsets[2].health_check_id, "abcdefgh-abcd-abcd-abcd-abcdefghijkl");
        CHECK(!p.rrsets[2].has_ttl);
        CHECK_INT(p.rrsets[2].nvalues, 0);
        CHECK_INT(p.rrsets[3].alias.evaluate_target_health, 0);

        CHECK_STR(p.rrsets[4].name, "failover.example.com.");
        CHECK_INT(p.rrsets[4].flags, R53_RRSET_F_FAILOVER);
        CHECK_STR(p.rrsets[4].failover, "PRIMARY");
        CHECK_STR(p.rrsets[4].values[0], "10.0.0.4");
        CHECK_STR(p.rrsets[5].health_check_id, "076a32f8-86f7-4c9e-9fa2-c163d5be67d9");
        for (size_t i = 0; i < p.n; i++)
            CHECK(!r53xml_rrset_is_weighted(&p.rrsets[i]));
    }
    r53xml_page_release(&p);
}

static void sample_list_truncated(const char *xml, size_t len)
{
    struct r53_rrset_page p;

    CHECK_INT(r53xml_parse_list_rrsets(xml, len, &p, NULL, 0), RC_OK);
    CHECK_INT(p.n, 3);
    CHECK(p.is_truncated);
    CHECK_STR(p.next_name, "wrr.example.com.");
    CHECK_STR(p.next_type, "A");
    CHECK_STR(p.next_identifier, "secondary");
    CHECK_INT(p.max_items, 3);
    if (p.n == 3) {
        CHECK_STR(p.rrsets[0].type, "NS");
        CHECK_INT(p.rrsets[0].nvalues, 4);
        CHECK_STR(p.rrsets[0].values[3], "ns-102.awsdns-96.com.");
        CHECK_STR(p.rrsets[1].values[0],
                  "ns-1929.awsdns-93.net. hostmaster.awsdns.net. 1 10800 3600 604800 1800");
        CHECK_STR(p.rrsets[2].name, "wrr.example.com.");
        CHECK_STR(p.rrsets[2].set_identifier, "primary");
        CHECK(p.rrsets[2].has_weight);
        CHECK_INT(p.rrsets[2].weight, 100);
        CHECK_INT(p.rrsets[2].ttl, 300);
        CHECK_STR(p.rrsets[2].values[0], "127.0.0.1");
        CHECK(r53xml_rrset_is_weighted(&p.rrsets[2]));
        CHECK(!r53xml_rrset_is_weighted(&p.rrsets[0]));
    }
    r53xml_page_release(&p);
}

static void sample_list_page2(const char *xml, size_t len)
{
    struct r53_rrset_page p;

    CHECK_INT(r53xml_parse_list_rrsets(xml, len, &p, NULL, 0), RC_OK);
    CHECK_INT(p.n, 1);
    CHECK(!p.is_truncated);
    CHECK_INT(p.max_items, 3);
    if (p.n == 1) {
        CHECK_STR(p.rrsets[0].set_identifier, "secondary");
        CHECK_INT(p.rrsets[0].weight, 50);
        CHECK_STR(p.rrsets[0].values[0], "127.0.0.2");
        CHECK(r53xml_rrset_is_weighted(&p.rrsets[0]));
    }
    r53xml_page_release(&p);
}

static void sample_list_apiref(const char *xml, size_t len)
{
    struct r53_rrset_page p;

    CHECK_INT(r53xml_parse_list_rrsets(xml, len, &p, NULL, 0), RC_OK);
    CHECK_INT(p.n, 1);
    CHECK(p.is_truncated);
    CHECK_STR(p.next_name, "example.com.");
    CHECK_STR(p.next_type, "NS");
    CHECK(p.next_identifier == NULL);
    CHECK_INT(p.max_items, 1);
    if (p.n == 1) {
        CHECK_STR(p.rrsets[0].type, "SOA");
        CHECK_INT(p.rrsets[0].ttl, 900);
    }
    r53xml_page_release(&p);
}

/* Every error sample: no other parser accepts it. */
static void not_a_response(const char *xml, size_t len)
{
    struct r53_change_info ci;
    struct r53_rrset_page p;
    struct r53_hosted_zone hz;

    CHECK_INT(r53xml_parse_change_info(xml, len, &ci, NULL, 0), RC_PARSE);
    CHECK_INT(r53xml_parse_list_rrsets(xml, len, &p, NULL, 0), RC_PARSE);
    CHECK_INT(r53xml_parse_hosted_zone(xml, len, &hz, NULL, 0), RC_PARSE);
}

struct err_expect {
    enum r53_errcode kind;
    int http_status;
    const char *type, *code, *request_id;
    size_t nmessages;
    const char *msg0, *msg1;
    int retryable, throttle, cas;
    enum rc_code rc;
};

/* r53xml_message_rrset(m) names want ({name, type, set identifier or NULL}; want[0] NULL:
 * none). */
static void check_named(const char *m, const char *const *want)
{
    struct r53_named_rrset got;
    int named = r53xml_message_rrset(m, &got);

    if (named != (want[0] != NULL))
        fprintf(stderr, "message: %s\n", m);
    CHECK_INT(named, want[0] != NULL);
    if (!named || !want[0]) {
        CHECK_STR(got.name, ""); /* zeroed */
        return;
    }
    CHECK_STR(got.name, want[0]);
    CHECK_STR(got.type, want[1]);
    CHECK_INT(got.has_set_identifier, want[2] != NULL);
    CHECK_STR(got.set_identifier, want[2] ? want[2] : "");
}

static void check_error_sample(const char *xml, size_t len, const struct err_expect *x,
                               const char *const (*named)[3])
{
    static const char *const none[3] = {NULL};
    struct r53_error e;
    char line[512];

    r53xml_error_init(&e);
    e.http_status = x->http_status;
    CHECK_INT(r53xml_parse_error(xml, len, &e), RC_OK);
    CHECK_INT(e.kind, x->kind);
    CHECK_INT(e.http_status, x->http_status);
    if (x->type)
        CHECK_STR(e.type, x->type);
    CHECK_STR(e.code, x->code);
    if (x->request_id)
        CHECK_STR(e.request_id, x->request_id);
    else
        CHECK(e.request_id == NULL);
    CHECK_INT(e.nmessages, x->nmessages);
    if (e.nmessages >= 1)
        CHECK_STR(e.messages[0], x->msg0);
    if (e.nmessages >= 2)
        CHECK_STR(e.messages[1], x->msg1);
    CHECK(e.message != NULL);
    CHECK_INT(r53xml_error_retryable(&e), x->retryable);
    CHECK_INT(r53xml_error_is_throttle(&e), x->throttle);
    CHECK_INT(r53xml_error_is_cas_conflict(&e), x->cas);
    CHECK_INT(r53_error_rc(&e), x->rc);
    for (size_t i = 0; i < e.nmessages; i++)
        check_named(e.messages[i], named && i < 2 ? named[i] : none);
    r53xml_error_format(&e, line, sizeof(line));
    CHECK(strstr(line, x->code) != NULL);
    r53xml_error_release(&e);
    not_a_response(xml, len);
}

/* The record sets the InvalidChangeBatch samples' first two messages name: {name, type, set
 * identifier or NULL}. Every other message of a sample names none. */
static const struct {
    const char *file;
    const char *named[2][3];
} named_samples[] = {
    {"error-invalid-change-batch-errorresponse.xml", {{"k.bestwestdays.net.", "A", NULL}}},
    {"error-invalid-change-batch-two-messages.xml",
     {{"duplicate.example.com.", "A", NULL}, {"noexist.example.com.", "A", NULL}}},
    {"error-invalid-change-batch.xml", {{"duplicate.example.com.", "A", NULL}}},
};

static const struct {
    const char *file;
    struct err_expect x;
} error_samples[] = {
    {"error-invalid-change-batch-errorresponse.xml",
     {R53_E_INVALID_CHANGE_BATCH, 400, "Sender", "InvalidChangeBatch",
      "7eb28fd5-9ce6-11e4-a8e8-9f105805808f", 1,
      "Tried to delete resource record set [name='k.bestwestdays.net.', type='A'] but it was "
      "not found",
      NULL, 0, 0, 1, RC_CONFLICT}},
    {"error-invalid-change-batch-two-messages.xml",
     {R53_E_INVALID_CHANGE_BATCH, 400, NULL, "InvalidChangeBatch", NULL, 2,
      "Tried to create resource record set duplicate.example.com. type A, but it already "
      "exists",
      "Tried to delete resource record set noexist.example.com. type A, but it was not found", 0, 0,
      1, RC_CONFLICT}},
    {"error-invalid-change-batch.xml",
     {R53_E_INVALID_CHANGE_BATCH, 400, NULL, "InvalidChangeBatch",
      "b25f48e8-84fd-11e6-80d9-574e0c4664cb", 1,
      "Tried to create resource record set duplicate.example.com. type A, but it already "
      "exists",
      NULL, 0, 0, 1, RC_CONFLICT}},
    {"error-invalid-input-apiref.xml",
     {R53_E_INVALID_INPUT, 400, "Sender", "InvalidInput", "410c2a4b-e435-49c9-8382-3770d80d7d4c", 1,
      "The input is not valid.", NULL, 0, 0, 0, RC_UPSTREAM}},
    {"error-no-such-hosted-zone.xml",
     {R53_E_NO_SUCH_HOSTED_ZONE, 404, "Sender", "NoSuchHostedZone",
      "d1862286-da13-11e4-a87a-f78bcee90724", 1, "The specified hosted zone does not exist.", NULL,
      0, 0, 0, RC_UPSTREAM}},
    {"error-prior-request-not-complete.xml",
     {R53_E_PRIOR_REQUEST_NOT_COMPLETE, 400, "Sender", "PriorRequestNotComplete",
      "12d222a0-f3d9-11e4-a611-c321a3a00f9c", 1,
      "The request was rejected because Route 53 was still processing a prior request.", NULL, 1, 0,
      0, RC_UNAVAILABLE}},
    {"error-throttling.xml",
     {R53_E_THROTTLING, 400, "Sender", "Throttling", "19d0a9a0-f3d9-11e4-a611-c321a3a00f9c", 1,
      "Rate exceeded", NULL, 1, 1, 0, RC_UNAVAILABLE}},
};

/* --- the JSON samples: botocore's model agrees with what the builder writes and sends ----- */

static json_t *load_json(const char *path)
{
    json_error_t je;
    json_t *j = json_load_file(path, 0, &je);

    if (!j)
        fprintf(stderr, "%s:%d: %s\n", path, je.line, je.text);
    return j;
}

/* Is the comma list `order` a subsequence of the shape's member names, in model order? */
static int follows_model(json_t *shapes, const char *shape, const char *order)
{
    json_t *members = json_object_get(json_object_get(shapes, shape), "members");
    const char *key, *p = order;
    json_t *val;
    char name[64];
    size_t n;

    if (!members)
        return 0;
    json_object_foreach(members, key, val)
    {
        (void)val;
        n = strcspn(p, ",");
        if (n == 0)
            break;
        snprintf(name, sizeof(name), "%.*s", (int)n, p);
        if (strcmp(name, key) == 0)
            p += n + (p[n] == ',');
    }
    if (*p)
        fprintf(stderr, "%s: '%s' is out of model order or not a member\n", shape, p);
    return *p == '\0';
}

static void sample_service_model(const char *path)
{
    static const char *vals[] = {"192.0.2.1", "192.0.2.2"};
    struct r53_rrset all = {.name = "a.example.com.",
                            .type = "A",
                            .set_identifier = "a_1",
                            .has_weight = 1,
                            .weight = 3,
                            .region = "us-east-1",
                            .failover = "PRIMARY",
                            .has_ttl = 1,
                            .ttl = 60,
                            .values = vals,
                            .nvalues = 2,
                            .health_check_id = "hc",
                            .flags = R53_RRSET_F_REGION | R53_RRSET_F_FAILOVER};
    struct r53_rrset alias = {.name = "b.example.com.",
                              .type = "A",
                              .alias = {"Z1", "x.example.net.", 0},
                              .health_check_id = "hc",
                              .flags = R53_RRSET_F_ALIAS};
    struct r53_change ch[] = {{R53_ACTION_UPSERT, &all}, {R53_ACTION_CREATE, &alias}};
    json_t *model = load_json(path), *shapes, *req, *members, *m;
    char *xml = NULL, order[512];
    size_t len = 0;
    static const struct {
        const char *shape;
        enum r53_errcode kind;
    } errors[] = {
        {"InvalidChangeBatch", R53_E_INVALID_CHANGE_BATCH},
        {"InvalidInput", R53_E_INVALID_INPUT},
        {"NoSuchHostedZone", R53_E_NO_SUCH_HOSTED_ZONE},
        {"NoSuchChange", R53_E_NO_SUCH_CHANGE},
        {"PriorRequestNotComplete", R53_E_PRIOR_REQUEST_NOT_COMPLETE},
        {"Throttling", R53_E_THROTTLING},
    };
    static const struct {
        const char *member, *location;
    } list_params[] = {{"StartRecordName", "name"},
                       {"StartRecordType", "type"},
                       {"StartRecordIdentifier", "identifier"},
                       {"MaxItems", "maxitems"}};

    CHECK(model != NULL);
    if (!model)
        return;
    shapes = json_object_get(model, "shapes");
    CHECK_INT(r53xml_build_change_batch(ch, 2, "c", &xml, &len, NULL, 0), RC_OK);
    child_order(xml, len, "ChangeBatch", order, sizeof(order));
    CHECK_STR(order, "Comment,Changes");
    CHECK(follows_model(shapes, "ChangeBatch", order));
    child_order(xml, len, "Change", order, sizeof(order));
    CHECK_STR(order, "Action,ResourceRecordSet");
    CHECK(follows_model(shapes, "Change", order));
    child_order(xml, len, "ResourceRecordSet", order, sizeof(order));
    CHECK_STR(order, "Name,Type,SetIdentifier,Weight,Region,Failover,TTL,ResourceRecords,"
                     "HealthCheckId");
    CHECK(follows_model(shapes, "ResourceRecordSet", order));
    child_order(xml, len, "AliasTarget", order, sizeof(order));
    CHECK_STR(order, "HostedZoneId,DNSName,EvaluateTargetHealth");
    CHECK(follows_model(shapes, "AliasTarget", order));
    /* the alias record's own order: ...Type, AliasTarget, HealthCheckId */
    CHECK(strstr(xml, "<Type>A</Type><AliasTarget>") != NULL);
    CHECK(strstr(xml, "</AliasTarget><HealthCheckId>hc</HealthCheckId>") != NULL);
    CHECK(follows_model(shapes, "ResourceRecordSet", "Name,Type,AliasTarget,HealthCheckId"));

    /* the namespace and the operation paths the client uses */
    req = json_object_get(
        json_object_get(json_object_get(model, "operations"), "ChangeResourceRecordSets"), "input");
    CHECK_STR(json_string_value(json_object_get(json_object_get(req, "xmlNamespace"), "uri")),
              R53_XMLNS);
    CHECK_STR(json_string_value(json_object_get(
                  json_object_get(json_object_get(json_object_get(model, "operations"),
                                                  "ChangeResourceRecordSets"),
                                  "http"),
                  "requestUri")),
              "/2013-04-01/hostedzone/{Id}/rrset/");
    CHECK_STR(json_string_value(json_object_get(
                  json_object_get(json_object_get(json_object_get(model, "operations"),
                                                  "ListResourceRecordSets"),
                                  "http"),
                  "requestUri")),
              "/2013-04-01/hostedzone/{Id}/rrset");
    CHECK_STR(json_string_value(json_object_get(
                  json_object_get(
                      json_object_get(json_object_get(model, "operations"), "GetChange"), "http"),
                  "requestUri")),
              "/2013-04-01/change/{Id}");

    /* the query parameter names of ListResourceRecordSets */
    members = json_object_get(json_object_get(shapes, "ListResourceRecordSetsRequest"), "members");
    for (size_t i = 0; i < NELEM(list_params); i++) {
        m = json_object_get(members, list_params[i].member);
        CHECK_STR(json_string_value(json_object_get(m, "location")), "querystring");
        CHECK_STR(json_string_value(json_object_get(m, "locationName")), list_params[i].location);
    }
    /* error shapes the model declares map to their own kinds */
    for (size_t i = 0; i < NELEM(errors); i++) {
        if (json_object_get(shapes, errors[i].shape))
            CHECK_INT(r53xml_errcode_from(errors[i].shape, NULL), errors[i].kind);
    }
    /* the limits the header states */
    CHECK_INT(json_integer_value(
                  json_object_get(json_object_get(shapes, "ResourceRecordSetWeight"), "max")),
              R53_MAX_WEIGHT);
    CHECK_INT(json_integer_value(json_object_get(json_object_get(shapes, "TTL"), "max")),
              R53_MAX_TTL);
    CHECK_INT(json_integer_value(
                  json_object_get(json_object_get(shapes, "ResourceRecordSetIdentifier"), "max")),
              R53_SET_ID_MAX);
    CHECK_INT(
        json_integer_value(json_object_get(json_object_get(shapes, "ResourceDescription"), "max")),
        R53_COMMENT_MAX);
    free(xml);
    json_decref(model);
}

static void sample_paginators(const char *path)
{
    json_t *j = load_json(path), *p, *in, *out;
    static const char *const in_names[] = {"StartRecordName", "StartRecordType",
                                           "StartRecordIdentifier"};
    static const char *const out_names[] = {"NextRecordName", "NextRecordType",
                                            "NextRecordIdentifier"};

    CHECK(j != NULL);
    if (!j)
        return;
    p = json_object_get(json_object_get(j, "pagination"), "ListResourceRecordSets");
    in = json_object_get(p, "input_token");
    out = json_object_get(p, "output_token");
    CHECK_STR(json_string_value(json_object_get(p, "more_results")), "IsTruncated");
    CHECK_STR(json_string_value(json_object_get(p, "limit_key")), "MaxItems");
    CHECK_INT(json_array_size(in), 3);
    CHECK_INT(json_array_size(out), 3);
    for (size_t i = 0; i < 3; i++) {
        CHECK_STR(json_string_value(json_array_get(in, i)), in_names[i]);
        CHECK_STR(json_string_value(json_array_get(out, i)), out_names[i]);
    }
    json_decref(j);
}

static void sample_waiters(const char *path)
{
    json_t *j = load_json(path), *w, *acc;
    char xml[512];
    struct r53_change_info ci;
    const char *expected;

    CHECK(j != NULL);
    if (!j)
        return;
    w = json_object_get(json_object_get(j, "waiters"), "ResourceRecordSetsChanged");
    CHECK_STR(json_string_value(json_object_get(w, "operation")), "GetChange");
    acc = json_array_get(json_object_get(w, "acceptors"), 0);
    CHECK_STR(json_string_value(json_object_get(acc, "argument")), "ChangeInfo.Status");
    expected = json_string_value(json_object_get(acc, "expected"));
    CHECK(expected != NULL);
    if (expected) {
        snprintf(xml, sizeof(xml),
                 "<GetChangeResponse xmlns=\"%s\"><ChangeInfo><Id>/change/C1</Id><Status>%s"
                 "</Status></ChangeInfo></GetChangeResponse>",
                 R53_XMLNS, expected);
        CHECK_INT(r53xml_parse_change_info(xml, strlen(xml), &ci, NULL, 0), RC_OK);
        CHECK_INT(ci.status, R53_CHANGE_INSYNC);
        CHECK_STR(ci.id, "C1");
    }
    json_decref(j);
}

static int run_sample(const char *path)
{
    const char *base = strrchr(path, '/') ? strrchr(path, '/') + 1 : path;
    char *data;
    size_t len = 0, i;
    char name[128];

    snprintf(name, sizeof(name), "route53xml.%s", base);
    if (strstr(base, ".json")) {
        if (strcmp(base, "service-2.json") == 0)
            sample_service_model(path);
        else if (strcmp(base, "paginators-1.json") == 0)
            sample_paginators(path);
        else if (strcmp(base, "waiters-2.json") == 0)
            sample_waiters(path);
        else
            CHECK(!"no expectations for this sample");
        return check_done(name);
    }
    if (!(data = read_all(path, &len))) {
        CHECK(!"sample unreadable");
        return check_done(name);
    }
    for (i = 0; i < NELEM(error_samples); i++) {
        if (strcmp(base, error_samples[i].file) == 0) {
            const char *const(*named)[3] = NULL;
            for (size_t k = 0; k < NELEM(named_samples); k++)
                if (strcmp(base, named_samples[k].file) == 0)
                    named = named_samples[k].named;
            check_error_sample(data, len, &error_samples[i].x, named);
            break;
        }
    }
    if (i < NELEM(error_samples))
        ;
    else if (strcmp(base, "change-rrsets-request-delete-create.xml") == 0)
        sample_delete_create(data, len);
    else if (strcmp(base, "change-rrsets-request.xml") == 0)
        sample_change_request(data, len);
    else if (strcmp(base, "change-rrsets-request-weighted-syntax.txt") == 0)
        sample_weighted_syntax(data, len);
    else if (strcmp(base, "change-rrsets-response.xml") == 0)
        sample_change_response(data, len);
    else if (strcmp(base, "get-change-response.xml") == 0)
        sample_get_change(data, len);
    else if (strcmp(base, "list-rrsets-response.xml") == 0)
        sample_list(data, len);
    else if (strcmp(base, "list-rrsets-truncated-response.xml") == 0)
        sample_list_truncated(data, len);
    else if (strcmp(base, "list-rrsets-truncated-page2-response.xml") == 0)
        sample_list_page2(data, len);
    else if (strcmp(base, "list-rrsets-truncated-response-apiref.xml") == 0)
        sample_list_apiref(data, len);
    else {
        fprintf(stderr, "%s: no expectations for this sample: add them\n", base);
        CHECK(!"no expectations for this sample");
    }
    free(data);
    return check_done(name);
}

/* --- own cases ---------------------------------------------------------------------------- */

static void test_builder_escaping(void)
{
    static const char *vals[] = {"\"v=spf1 a&b <c> 'd'\"", "caf\xc3\xa9 \xe2\x82\xac", "cr\r\nlf"};
    struct r53_rrset r = {.name = "t&t.example.com.",
                          .type = "TXT",
                          .has_ttl = 1,
                          .ttl = 5,
                          .values = vals,
                          .nvalues = 3};
    struct r53_change ch = {R53_ACTION_CREATE, &r};
    struct flat f;
    char *xml = NULL;
    size_t len = 0;

    CHECK_INT(r53xml_build_change_batch(&ch, 1, "a <comment> & more", &xml, &len, NULL, 0), RC_OK);
    CHECK(xml && strstr(xml, "<Comment>a &lt;comment&gt; &amp; more</Comment>"));
    CHECK(xml && strstr(xml, "<Name>t&amp;t.example.com.</Name>"));
    CHECK(xml && strstr(xml, "<Value>&quot;v=spf1 a&amp;b &lt;c&gt; &apos;d&apos;&quot;</Value>"));
    CHECK(xml && strstr(xml, "<Value>cr&#13;\nlf</Value>"));
    CHECK_INT(len, xml ? strlen(xml) : 0);
    /* and it reads back to the same texts */
    CHECK(xml && flatten(xml, len, &f, NULL) == 0);
    if (xml) {
        int seen = 0;
        for (size_t i = 0; i < f.n; i++) {
            if (strstr(f.v[i], "/Value=\"v=spf1 a&b <c> 'd'\""))
                seen |= 1;
            if (strstr(f.v[i], "/Value=caf\xc3\xa9 \xe2\x82\xac"))
                seen |= 2;
            if (strstr(f.v[i], "/Value=cr\r\nlf"))
                seen |= 4;
        }
        CHECK_INT(seen, 7);
        flat_release(&f);
    }
    free(xml);
}

static void test_builder_rejects(void)
{
    static const char *ok_vals[] = {"192.0.2.1"};
    static const char *ctl_vals[] = {"a\x01"
                                     "b"};
    static const char *utf_vals[] = {"\xff\xfe"};
    static const char *over_vals[] = {"\xc0\xaf"}; /* overlong '/' */
    char long_id[R53_SET_ID_MAX + 2], long_comment[R53_COMMENT_MAX + 2], detail[256];
    struct {
        const char *what;
        struct r53_rrset r;
        enum r53_action action;
        const char *comment;
    } cases[] = {
        {"control char",
         {.name = "a.", .type = "TXT", .has_ttl = 1, .values = ctl_vals, .nvalues = 1},
         R53_ACTION_CREATE,
         NULL},
        {"invalid utf-8",
         {.name = "a.", .type = "TXT", .has_ttl = 1, .values = utf_vals, .nvalues = 1},
         R53_ACTION_CREATE,
         NULL},
        {"overlong utf-8",
         {.name = "a.", .type = "TXT", .has_ttl = 1, .values = over_vals, .nvalues = 1},
         R53_ACTION_CREATE,
         NULL},
        {"weight 256",
         {.name = "a.",
          .type = "A",
          .set_identifier = "x",
          .has_weight = 1,
          .weight = 256,
          .has_ttl = 1,
          .values = ok_vals,
          .nvalues = 1},
         R53_ACTION_CREATE,
         NULL},
        {"ttl < 0",
         {.name = "a.", .type = "A", .has_ttl = 1, .ttl = -1, .values = ok_vals, .nvalues = 1},
         R53_ACTION_CREATE,
         NULL},
        {"set id too long",
         {.name = "a.",
          .type = "A",
          .set_identifier = long_id,
          .has_ttl = 1,
          .values = ok_vals,
          .nvalues = 1},
         R53_ACTION_CREATE,
         NULL},
        {"empty set id",
         {.name = "a.",
          .type = "A",
          .set_identifier = "",
          .has_ttl = 1,
          .values = ok_vals,
          .nvalues = 1},
         R53_ACTION_CREATE,
         NULL},
        {"comment too long",
         {.name = "a.", .type = "A", .has_ttl = 1, .values = ok_vals, .nvalues = 1},
         R53_ACTION_CREATE,
         long_comment},
        {"no values", {.name = "a.", .type = "A", .has_ttl = 1}, R53_ACTION_CREATE, NULL},
        {"values without ttl",
         {.name = "a.", .type = "A", .values = ok_vals, .nvalues = 1},
         R53_ACTION_CREATE,
         NULL},
        {"no name",
         {.type = "A", .has_ttl = 1, .values = ok_vals, .nvalues = 1},
         R53_ACTION_CREATE,
         NULL},
        {"geo flag",
         {.name = "a.",
          .type = "A",
          .has_ttl = 1,
          .values = ok_vals,
          .nvalues = 1,
          .flags = R53_RRSET_F_GEO},
         R53_ACTION_CREATE,
         NULL},
        {"bad action",
         {.name = "a.", .type = "A", .has_ttl = 1, .values = ok_vals, .nvalues = 1},
         (enum r53_action)7,
         NULL},
    };
    char *xml = (char *)"sentinel";
    struct r53_change ch;

    memset(long_id, 'x', sizeof(long_id) - 1);
    long_id[sizeof(long_id) - 1] = '\0';
    memset(long_comment, 'c', sizeof(long_comment) - 1);
    long_comment[sizeof(long_comment) - 1] = '\0';
    for (size_t i = 0; i < NELEM(cases); i++) {
        ch.action = cases[i].action;
        ch.rrset = &cases[i].r;
        detail[0] = '\0';
        if (r53xml_build_change_batch(&ch, 1, cases[i].comment, &xml, NULL, detail,
                                      sizeof(detail)) != RC_BAD_REQUEST) {
            fprintf(stderr, "case '%s' was accepted\n", cases[i].what);
            CHECK(0);
        }
        CHECK(xml == NULL);
        CHECK(detail[0] != '\0');
        free(xml);
    }
    CHECK_INT(r53xml_build_change_batch(&ch, 0, NULL, &xml, NULL, NULL, 0), RC_BAD_REQUEST);
    /* 128 characters is fine */
    long_id[R53_SET_ID_MAX] = '\0';
    cases[5].r.set_identifier = long_id;
    ch.action = R53_ACTION_DELETE;
    ch.rrset = &cases[5].r;
    CHECK_INT(r53xml_build_change_batch(&ch, 1, NULL, &xml, NULL, NULL, 0), RC_OK);
    free(xml);
}

static void test_quota(void)
{
    static const char *ip8[] = {"10.0.0.1"};
    const char **many = xcalloc(1001, sizeof(*many));
    struct r53_rrset one = {.name = "a.", .type = "A", .has_ttl = 1, .values = ip8, .nvalues = 1};
    struct r53_rrset big = {.name = "a.", .type = "A", .has_ttl = 1, .values = many};
    struct r53_change c;
    struct r53_batch_size sz;
    char *long_val = xmalloc(32002);
    static const struct {
        enum r53_action action;
        size_t nvalues;
        size_t elements, chars;
        int fits;
    } cases[] = {
        {R53_ACTION_CREATE, 3, 3, 24, 1},         {R53_ACTION_DELETE, 3, 3, 24, 1},
        {R53_ACTION_UPSERT, 3, 6, 48, 1},         {R53_ACTION_CREATE, 1000, 1000, 8000, 1},
        {R53_ACTION_CREATE, 1001, 1001, 8008, 0}, {R53_ACTION_UPSERT, 500, 1000, 8000, 1},
        {R53_ACTION_UPSERT, 501, 1002, 8016, 0},
    };

    for (size_t i = 0; i < 1001; i++)
        many[i] = "10.0.0.1";
    for (size_t i = 0; i < NELEM(cases); i++) {
        big.nvalues = cases[i].nvalues;
        c = (struct r53_change){cases[i].action, &big};
        r53xml_batch_size(&c, 1, &sz);
        CHECK_INT(sz.elements, cases[i].elements);
        CHECK_INT(sz.value_chars, cases[i].chars);
        CHECK_INT(r53xml_batch_size_fits(&sz), cases[i].fits);
    }
    /* DELETE old + CREATE new (the CAS pair) counts both sides once */
    {
        struct r53_change pair[] = {{R53_ACTION_DELETE, &one}, {R53_ACTION_CREATE, &one}};
        r53xml_batch_size(pair, 2, &sz);
        CHECK_INT(sz.elements, 2);
        CHECK_INT(sz.value_chars, 16);
        sz.elements = sz.value_chars = 0;
        r53xml_change_size(&pair[0], &sz);
        r53xml_change_size(&pair[1], &sz);
        CHECK_INT(sz.elements, 2);
    }
    /* characters: exactly 32,000 fits, one more does not, and UPSERT doubles */
    memset(long_val, 'x', 32001);
    long_val[32000] = '\0';
    many[0] = long_val;
    big.nvalues = 1;
    c = (struct r53_change){R53_ACTION_CREATE, &big};
    r53xml_batch_size(&c, 1, &sz);
    CHECK_INT(sz.value_chars, 32000);
    CHECK(r53xml_batch_size_fits(&sz));
    long_val[32000] = 'x';
    long_val[32001] = '\0';
    r53xml_batch_size(&c, 1, &sz);
    CHECK(!r53xml_batch_size_fits(&sz));
    long_val[16000] = '\0';
    c.action = R53_ACTION_UPSERT;
    r53xml_batch_size(&c, 1, &sz);
    CHECK_INT(sz.value_chars, 32000);
    CHECK(r53xml_batch_size_fits(&sz));
    long_val[16000] = 'x';
    long_val[16001] = '\0';
    r53xml_batch_size(&c, 1, &sz);
    CHECK_INT(sz.value_chars, 32002);
    CHECK(!r53xml_batch_size_fits(&sz));
    r53xml_batch_size(NULL, 0, &sz);
    CHECK_INT(sz.elements, 0);
    free(long_val);
    free(many);
}

static void test_names_and_ids(void)
{
    static const struct {
        const char *in, *out;
    } names[] = {
        {"\\052.example.com.", "*.example.com."},
        {"a\\100b.example.com.", "a@b.example.com."},
        {"\\056dot.example.com.", "\\056dot.example.com."}, /* '.' stays escaped */
        {"nul\\000.example.com.", "nul\\000.example.com."},
        {"back\\134slash.", "back\\134slash."},
        {"short\\05", "short\\05"},
        {"bad\\089.", "bad\\089."},
        {"plain.example.com.", "plain.example.com."},
        {"\\052", "*"},
        {"", ""},
    };
    static const struct {
        const char *in, *out;
    } ids[] = {
        {"/hostedzone/Z1PA6795UKMFR9", "Z1PA6795UKMFR9"},
        {"hostedzone/Z1", "Z1"},
        {"/change/C2682N5HXP0BZ4", "C2682N5HXP0BZ4"},
        {"C1", "C1"},
        {"/other/X", "/other/X"},
    };
    char *s;

    for (size_t i = 0; i < NELEM(names); i++) {
        s = r53xml_decode_name(names[i].in);
        CHECK_STR(s, names[i].out);
        free(s);
    }
    for (size_t i = 0; i < NELEM(ids); i++)
        CHECK_STR(r53xml_strip_id_prefix(ids[i].in), ids[i].out);
    CHECK(r53xml_strip_id_prefix(NULL) == NULL);
}

/* ListResourceRecordSets order: reversed name as a string with dots, type, identifier. */
static void test_list_order(void)
{
    static const struct {
        const char *na, *ta, *ia, *nb, *tb, *ib;
        int want;
    } cases[] = {
        {"www.example.com.", "A", NULL, "example.com.", "A", NULL, 1},
        {"a-b.example.com.", "A", NULL, "a.example.com.", "A", NULL, -1}, /* '-' < '.' */
        {"x.a-b.example.com.", "A", NULL, "a.example.com.", "A", NULL, -1},
        {"a.b.example.com.", "A", NULL, "z.example.com.", "A", NULL, -1}, /* com.example.b.a. */
        {"WWW.Example.com", "A", "s", "www.example.com.", "A", "s", 0},
        {"\\052.example.com.", "A", NULL, "*.example.com", "A", NULL, 0},
        {"app.example.com.", NULL, NULL, "app.example.com.", "A", NULL, -1}, /* a name start */
        {"app.example.com.", "A", NULL, "app.example.com.", "A", "app_0", -1},
        {"app.example.com.", "A", "app_9", "app.example.com.", "AAAA", "app_0", -1},
        {"app.example.com.", "A", "app_10", "app.example.com.", "A", "app_2", -1}, /* bytewise */
        {"app.example.com.", "TXT", NULL, "app.example.com.", "AAAA", NULL, 1},
        {"app.example.com.", "A", "x", "app.example.com.", "A", "x", 0},
    };
    for (size_t i = 0; i < NELEM(cases); i++) {
        int got = r53xml_list_order_cmp(cases[i].na, cases[i].ta, cases[i].ia, cases[i].nb,
                                        cases[i].tb, cases[i].ib);
        if (got != cases[i].want)
            fprintf(stderr, "order case %zu: %s %s %s vs %s %s %s\n", i, cases[i].na,
                    cases[i].ta ? cases[i].ta : "-", cases[i].ia ? cases[i].ia : "-", cases[i].nb,
                    cases[i].tb ? cases[i].tb : "-", cases[i].ib ? cases[i].ib : "-");
        CHECK_INT(got, cases[i].want);
        CHECK_INT(r53xml_list_order_cmp(cases[i].nb, cases[i].tb, cases[i].ib, cases[i].na,
                                        cases[i].ta, cases[i].ia),
                  -cases[i].want);
    }
}

static void test_parse_variants(void)
{
    static const char prefixed[] =
        "<?xml version=\"1.0\"?>\n"
        "<r:ListResourceRecordSetsResponse xmlns:r=\"urn:any-namespace\">"
        "<r:ResourceRecordSets>"
        "<r:ResourceRecordSet><r:Name>\\052.example.com.</r:Name><r:Type>A</r:Type>"
        "<r:SetIdentifier>w_1</r:SetIdentifier><r:Weight>0</r:Weight><r:TTL>60</r:TTL>"
        "<r:ResourceRecords><r:ResourceRecord><r:Value><![CDATA[192.0.2.1]]></r:Value>"
        "</r:ResourceRecord><r:ResourceRecord><r:Value>192.0.2.2</r:Value></r:ResourceRecord>"
        "</r:ResourceRecords></r:ResourceRecordSet>"
        "<r:ResourceRecordSet><r:Name>geo.example.com.</r:Name><r:Type>A</r:Type>"
        "<r:SetIdentifier>g</r:SetIdentifier><r:GeoLocation><r:CountryCode>DE</r:CountryCode>"
        "</r:GeoLocation><r:TTL>60</r:TTL><r:ResourceRecords><r:ResourceRecord><r:Value>1.1.1.1"
        "</r:Value></r:ResourceRecord></r:ResourceRecords></r:ResourceRecordSet>"
        "<r:ResourceRecordSet><r:Name>new.example.com.</r:Name><r:Type>A</r:Type>"
        "<r:SetIdentifier>n</r:SetIdentifier><r:Weight>1</r:Weight><r:FutureThing>x"
        "</r:FutureThing><r:TTL>60</r:TTL><r:ResourceRecords><r:ResourceRecord><r:Value>1.1.1.1"
        "</r:Value></r:ResourceRecord></r:ResourceRecords></r:ResourceRecordSet>"
        "</r:ResourceRecordSets><r:IsTruncated>true</r:IsTruncated>"
        "<r:NextRecordName>\\052.example.com.</r:NextRecordName><r:NextRecordType>AAAA"
        "</r:NextRecordType><r:MaxItems>300</r:MaxItems></r:ListResourceRecordSetsResponse>";
    static const char zone[] =
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
        "<GetHostedZoneResponse xmlns=\"https://route53.amazonaws.com/doc/2013-04-01/\">"
        "<HostedZone><Id>/hostedzone/Z1D633PJN98FT9</Id><Name>\\052.example.com.</Name>"
        "<CallerReference>2017-03-01T11:22:14Z</CallerReference><Config><Comment>c</Comment>"
        "<PrivateZone>true</PrivateZone></Config><ResourceRecordSetCount>17"
        "</ResourceRecordSetCount></HostedZone><DelegationSet><NameServers><NameServer>"
        "ns-2048.awsdns-64.com</NameServer></NameServers></DelegationSet>"
        "</GetHostedZoneResponse>";
    struct r53_rrset_page p;
    struct r53_hosted_zone hz;

    CHECK_INT(r53xml_parse_list_rrsets(prefixed, strlen(prefixed), &p, NULL, 0), RC_OK);
    CHECK_INT(p.n, 3);
    if (p.n == 3) {
        CHECK_STR(p.rrsets[0].name, "*.example.com.");
        CHECK_INT(p.rrsets[0].nvalues, 2);
        CHECK_STR(p.rrsets[0].values[0], "192.0.2.1");
        CHECK(r53xml_rrset_is_weighted(&p.rrsets[0])); /* weight 0 is a weight */
        CHECK_INT(p.rrsets[1].flags, R53_RRSET_F_GEO);
        CHECK(!r53xml_rrset_is_weighted(&p.rrsets[1]));
        CHECK_INT(p.rrsets[2].flags, R53_RRSET_F_UNKNOWN);
        CHECK(!r53xml_rrset_is_weighted(&p.rrsets[2]));
    }
    CHECK(p.is_truncated);
    CHECK_STR(p.next_name, "*.example.com.");
    CHECK_STR(p.next_type, "AAAA");
    CHECK_INT(p.max_items, 300);
    r53xml_page_release(&p);
    r53xml_page_release(&p); /* twice is fine */

    CHECK_INT(r53xml_parse_hosted_zone(zone, strlen(zone), &hz, NULL, 0), RC_OK);
    CHECK_STR(hz.id, "Z1D633PJN98FT9");
    CHECK_STR(hz.name, "*.example.com.");
    CHECK(hz.has_rrset_count);
    CHECK_INT(hz.rrset_count, 17);
    CHECK_INT(hz.private_zone, 1);
}

static void test_malformed(void)
{
    static const char *docs[] = {
        "",
        "not xml at all",
        "<ListResourceRecordSetsResponse><ResourceRecordSets>",
        "<ListResourceRecordSetsResponse></ListResourceRecordSetsResponse>", /* no IsTruncated */
        "<ListResourceRecordSetsResponse><IsTruncated>maybe</IsTruncated>"
        "</ListResourceRecordSetsResponse>",
        "<ListResourceRecordSetsResponse><IsTruncated>true</IsTruncated>"
        "</ListResourceRecordSetsResponse>", /* truncated, no NextRecordName */
        "<ListResourceRecordSetsResponse><ResourceRecordSets><ResourceRecordSet><Name>a."
        "</Name><Type>A</Type><Weight>256</Weight></ResourceRecordSet></ResourceRecordSets>"
        "<IsTruncated>false</IsTruncated></ListResourceRecordSetsResponse>",
        "<ListResourceRecordSetsResponse><ResourceRecordSets><ResourceRecordSet><Name>a."
        "</Name><Type>A</Type><TTL>-1</TTL></ResourceRecordSet></ResourceRecordSets>"
        "<IsTruncated>false</IsTruncated></ListResourceRecordSetsResponse>",
        "<ListResourceRecordSetsResponse><ResourceRecordSets><ResourceRecordSet><Type>A</Type>"
        "</ResourceRecordSet></ResourceRecordSets><IsTruncated>false</IsTruncated>"
        "</ListResourceRecordSetsResponse>", /* no Name */
        "<ListResourceRecordSetsResponse><ResourceRecordSets><ResourceRecordSet><Name>a."
        "</Name><Type>A</Type><ResourceRecords><ResourceRecord><Value><b>x</b></Value>"
        "</ResourceRecord></ResourceRecords></ResourceRecordSet></ResourceRecordSets>"
        "<IsTruncated>false</IsTruncated></ListResourceRecordSetsResponse>", /* markup */
        "<?xml version=\"1.0\"?><!DOCTYPE r [<!ENTITY a \"aaaaaaaaaa\"><!ENTITY b "
        "\"&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;\"><!ENTITY c \"&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;\">]>"
        "<ListResourceRecordSetsResponse><ResourceRecordSets><ResourceRecordSet><Name>&c;"
        "</Name><Type>A</Type></ResourceRecordSet></ResourceRecordSets><IsTruncated>false"
        "</IsTruncated></ListResourceRecordSetsResponse>", /* entities */
        "<?xml version=\"1.0\"?><!DOCTYPE r SYSTEM \"http://127.0.0.1:1/x.dtd\">"
        "<ListResourceRecordSetsResponse><IsTruncated>false</IsTruncated>"
        "</ListResourceRecordSetsResponse>", /* external DTD */
        "<GetChangeResponse/>",
        "<ListResourceRecordSetsResponse><IsTruncated>false</IsTruncated>"
        "</ListResourceRecordSetsResponse><second/>",
    };
    struct r53_rrset_page p;
    struct r53_change_info ci;
    struct r53_error e;
    char detail[256];
    size_t big_len = (size_t)R53XML_MAX_INPUT + 1;
    char *big;

    for (size_t i = 0; i < NELEM(docs); i++) {
        detail[0] = '\0';
        if (r53xml_parse_list_rrsets(docs[i], strlen(docs[i]), &p, detail, sizeof(detail)) !=
            RC_PARSE) {
            fprintf(stderr, "malformed doc %zu accepted\n", i);
            CHECK(0);
            r53xml_page_release(&p);
        }
        CHECK(detail[0] != '\0');
        CHECK(p.rrsets == NULL && p.n == 0);
        CHECK_INT(r53xml_parse_change_info(docs[i], strlen(docs[i]), &ci, NULL, 0), RC_PARSE);
    }
    /* NULL input */
    CHECK_INT(r53xml_parse_list_rrsets(NULL, 0, &p, NULL, 0), RC_PARSE);
    /* over the cap: rejected before parsing (a valid document padded with spaces) */
    big = xmalloc(big_len);
    memset(big, ' ', big_len);
    memcpy(big, "<ListResourceRecordSetsResponse><IsTruncated>false</IsTruncated>", 64);
    memcpy(big + big_len - 33, "</ListResourceRecordSetsResponse>", 33);
    detail[0] = '\0';
    CHECK_INT(r53xml_parse_list_rrsets(big, big_len, &p, detail, sizeof(detail)), RC_PARSE);
    CHECK(strstr(detail, "cap") != NULL);
    /* ... and one byte less parses */
    memmove(big + 64, big + 65, big_len - 65);
    CHECK_INT(r53xml_parse_list_rrsets(big, big_len - 1, &p, detail, sizeof(detail)), RC_OK);
    r53xml_page_release(&p);
    free(big);

    /* error documents */
    r53xml_error_init(&e);
    CHECK_INT(r53xml_parse_error("<html>502 Bad Gateway</html>", 28, &e), RC_PARSE);
    CHECK_INT(e.kind, R53_E_NONE);
    CHECK_INT(r53xml_parse_error("<ErrorResponse><Error><Message>x</Message></Error>"
                                 "</ErrorResponse>",
                                 66, &e),
              RC_PARSE); /* no Code */
    CHECK_INT(r53xml_parse_error("<ErrorResponse", 14, &e), RC_PARSE);
    r53xml_error_release(&e);
}

static void test_errors(void)
{
    static const char bracketed[] =
        "<ErrorResponse xmlns=\"https://route53.amazonaws.com/doc/2013-04-01/\"><Error><Type>"
        "Sender</Type><Code>InvalidChangeBatch</Code><Message>[Tried to delete resource record "
        "set [name='app.example.com.', type='A', set-identifier='app.example.com_5'] but the "
        "values provided do not match the current values, Tried to create resource record set "
        "[name='app.example.com.', type='A', set-identifier='app.example.com_5'] but it "
        "already exists]</Message></Error><RequestId>r1</RequestId></ErrorResponse>";
    static const char mixed[] =
        "<ErrorResponse><Error><Type>Sender</Type><Code>InvalidChangeBatch</Code><Message>["
        "Tried to create resource record set [name='a.', type='A'] but it already exists, "
        "RRSet of type CNAME with DNS name a. is not permitted as it conflicts with other "
        "records with the same DNS name in zone example.]</Message></Error><RequestId>r2"
        "</RequestId></ErrorResponse>";
    static const char syntax[] =
        "<ErrorResponse><Error><Type>Sender</Type><Code>InvalidChangeBatch</Code><Message>"
        "[Invalid Resource Record: 'FATAL problem: ARRDATAIllegalIPv4Address (Value is not a "
        "valid IPv4 address) encountered with '1.2.3']</Message></Error><RequestId>r3"
        "</RequestId></ErrorResponse>";
    static const struct {
        const char *code, *message;
        enum r53_errcode kind;
        int retryable, throttle;
    } codes[] = {
        {"Throttling", "Rate exceeded", R53_E_THROTTLING, 1, 1},
        {"ThrottlingException", NULL, R53_E_THROTTLING, 1, 1},
        {"TooManyRequestsException", NULL, R53_E_THROTTLING, 1, 1},
        {"RequestLimitExceeded", NULL, R53_E_THROTTLING, 1, 1},
        {"SomethingNew", "Rate exceeded", R53_E_THROTTLING, 1, 1},
        {"PriorRequestNotComplete", NULL, R53_E_PRIOR_REQUEST_NOT_COMPLETE, 1, 0},
        {"RequestTimeout", NULL, R53_E_REQUEST_TIMEOUT, 1, 0},
        {"InternalFailure", NULL, R53_E_SERVICE, 1, 0},
        {"ServiceUnavailable", NULL, R53_E_SERVICE, 1, 0},
        {"InvalidChangeBatch", NULL, R53_E_INVALID_CHANGE_BATCH, 0, 0},
        {"InvalidInput", NULL, R53_E_INVALID_INPUT, 0, 0},
        {"NoSuchHostedZone", NULL, R53_E_NO_SUCH_HOSTED_ZONE, 0, 0},
        {"NoSuchChange", NULL, R53_E_NO_SUCH_CHANGE, 0, 0},
        {"AccessDenied", NULL, R53_E_ACCESS_DENIED, 0, 0},
        {"AccessDeniedException", NULL, R53_E_ACCESS_DENIED, 0, 0},
        {"SignatureDoesNotMatch", NULL, R53_E_SIGNATURE_DOES_NOT_MATCH, 0, 0},
        {"InvalidClientTokenId", NULL, R53_E_INVALID_CLIENT_TOKEN_ID, 0, 0},
        {"ExpiredToken", NULL, R53_E_EXPIRED_TOKEN, 0, 0},
        {"RequestExpired", NULL, R53_E_REQUEST_EXPIRED, 0, 0},
        {"InvalidSignature", NULL, R53_E_INVALID_SIGNATURE, 0, 0},
        {"SomethingNew", NULL, R53_E_OTHER, 0, 0},
    };
    static const struct {
        enum r53_errcode kind;
        int status, timeout;
        enum rc_code rc;
        int retryable;
    } rcs[] = {
        {R53_E_NONE, 200, 0, RC_OK, 0},
        {R53_E_THROTTLING, 400, 0, RC_UNAVAILABLE, 1},
        {R53_E_PRIOR_REQUEST_NOT_COMPLETE, 400, 0, RC_UNAVAILABLE, 1},
        {R53_E_HTTP, 500, 0, RC_UNAVAILABLE, 1},
        {R53_E_HTTP, 502, 0, RC_UNAVAILABLE, 1},
        {R53_E_HTTP, 503, 0, RC_UNAVAILABLE, 1},
        {R53_E_HTTP, 504, 0, RC_UNAVAILABLE, 1},
        {R53_E_HTTP, 429, 0, RC_UNAVAILABLE, 1},
        {R53_E_HTTP, 400, 0, RC_UPSTREAM, 0},
        {R53_E_HTTP, 403, 0, RC_UPSTREAM, 0},
        {R53_E_OTHER, 503, 0, RC_UNAVAILABLE, 1},
        {R53_E_TRANSPORT, 0, 0, RC_UNAVAILABLE, 1},
        {R53_E_TIMEOUT, 0, 1, RC_UPSTREAM_TIMEOUT, 1},
        {R53_E_ACCESS_DENIED, 403, 0, RC_UPSTREAM, 0},
        {R53_E_INVALID_CHANGE_BATCH, 400, 0, RC_UPSTREAM, 0}, /* no messages: not CAS */
        {R53_E_BAD_RESPONSE, 200, 0, RC_UPSTREAM, 0},
        {R53_E_CREDENTIALS, 0, 0, RC_UNAVAILABLE, 0},
        {R53_E_RATELIMIT, 0, 0, RC_UNAVAILABLE, 0},
        {R53_E_INVALID_ARGUMENT, 0, 0, RC_BAD_REQUEST, 0},
    };
    struct r53_error e;

    r53xml_error_init(&e);
    CHECK_INT(r53xml_parse_error(bracketed, strlen(bracketed), &e), RC_OK);
    CHECK_INT(e.nmessages, 2);
    if (e.nmessages == 2) {
        CHECK_STR(e.messages[0],
                  "Tried to delete resource record set [name='app.example.com.', type='A', "
                  "set-identifier='app.example.com_5'] but the values provided do not match "
                  "the current values");
        CHECK_STR(e.messages[1],
                  "Tried to create resource record set [name='app.example.com.', type='A', "
                  "set-identifier='app.example.com_5'] but it already exists");
    }
    CHECK(r53xml_error_is_cas_conflict(&e));
    CHECK_INT(r53_error_rc(&e), RC_CONFLICT);
    CHECK_STR(e.request_id, "r1");

    CHECK_INT(r53xml_parse_error(mixed, strlen(mixed), &e), RC_OK);
    CHECK_INT(e.nmessages, 2);
    CHECK(!r53xml_error_is_cas_conflict(&e)); /* one message is not a conflict */
    CHECK_INT(r53_error_rc(&e), RC_UPSTREAM);

    CHECK_INT(r53xml_parse_error(syntax, strlen(syntax), &e), RC_OK);
    CHECK_INT(e.nmessages, 1); /* ", " before a lowercase word does not split */
    CHECK(!r53xml_error_is_cas_conflict(&e));
    CHECK(!r53xml_error_retryable(&e));
    r53xml_error_release(&e);

    /* The bracketed list of an ErrorResponse InvalidChangeBatch, split into its messages. */
    {
        static const char ttl_msg[] =
            "RRSet with DNS name app.example.com. and type A, SetIdentifier app.example.com_3 "
            "cannot be created as weighted sets must contain the same TTL.";
        static const char nonweighted_msg[] =
            "RRSet with DNS name app.example.com., type A, SetIdentifier app.example.com_3 "
            "cannot be created as a non-weighted set exists with the same name and type.";
        static const char mismatch_msg[] =
            "Tried to delete resource record set [name='app.example.com.', type='A', "
            "set-identifier='app.example.com_3'] but the values provided do not match the "
            "current values";
        static const char input_msg[] =
            "Invalid request: Missing field 'SetIdentifier' in Change with [Action=CREATE, "
            "Name=x.example.com., Type=A, SetIdentifier=null]";
        static const struct {
            const char *want[3]; /* sent as "[m1, m2, ...]" */
            int cas; /* a conflict: CAS and weighted-TTL messages only */
        } splits[] = {
            {{ttl_msg}, 1},
            {{nonweighted_msg}, 0},
            {{input_msg}, 0},
            {{mismatch_msg, ttl_msg}, 1},
            {{ttl_msg, nonweighted_msg}, 0},
            {{mismatch_msg, mismatch_msg, mismatch_msg}, 1},
            {{mismatch_msg, input_msg}, 0},
        };
        for (size_t i = 0; i < NELEM(splits); i++) {
            char msg[2048], doc[2400];
            size_t want = 0;
            snprintf(msg, sizeof(msg), "[");
            while (want < 3 && splits[i].want[want]) {
                if (want)
                    strcat(msg, ", ");
                strcat(msg, splits[i].want[want++]);
            }
            strcat(msg, "]");
            snprintf(doc, sizeof(doc),
                     "<ErrorResponse><Error><Type>Sender</Type><Code>InvalidChangeBatch</Code>"
                     "<Message>%s</Message></Error><RequestId>r</RequestId></ErrorResponse>",
                     msg);
            r53xml_error_init(&e);
            CHECK_INT(r53xml_parse_error(doc, strlen(doc), &e), RC_OK);
            if (e.nmessages != want)
                fprintf(stderr, "split case %zu: %s\n", i, msg);
            CHECK_INT(e.nmessages, want);
            for (size_t k = 0; k < want && k < e.nmessages; k++)
                CHECK_STR(e.messages[k], splits[i].want[k]);
            CHECK_INT(r53xml_error_is_cas_conflict(&e), splits[i].cas);
            r53xml_error_release(&e);
        }
    }

    CHECK(r53xml_message_is_cas_conflict(
        "Tried to delete resource record set [name='app.example.com.', type='A', "
        "set-identifier='app.example.com_5'] but the values provided do not match the current "
        "values"));
    CHECK(!r53xml_message_is_cas_conflict("Tried to delete resource record set x, but no"));
    /* two messages run together are not one conflict */
    CHECK(!r53xml_message_is_cas_conflict(
        "Tried to delete resource record set [name='a.', type='A'] but it was not found, RRSet "
        "with DNS name a. and type A, SetIdentifier s cannot be created as weighted sets must "
        "contain the same TTL."));
    CHECK(r53xml_message_is_cas_conflict(
        "Tried to create resource record set duplicate.example.com. type A, but it already "
        "exists"));
    CHECK(r53xml_message_is_cas_conflict(
        "Tried to delete resource record set [name='a.', type='A'] but it was not found."));
    CHECK(!r53xml_message_is_cas_conflict(NULL));

    for (size_t i = 0; i < NELEM(codes); i++) {
        r53xml_error_init(&e);
        e.kind = r53xml_errcode_from(codes[i].code, codes[i].message);
        e.http_status = 400;
        if (e.kind != codes[i].kind)
            fprintf(stderr, "code %s\n", codes[i].code);
        CHECK_INT(e.kind, codes[i].kind);
        CHECK_INT(r53xml_error_retryable(&e), codes[i].retryable);
        CHECK_INT(r53xml_error_is_throttle(&e), codes[i].throttle);
        CHECK(strcmp(r53xml_errcode_name(e.kind), "unknown") != 0);
    }
    CHECK_INT(r53xml_errcode_from(NULL, NULL), R53_E_NONE);
    CHECK_INT(r53xml_errcode_from("", NULL), R53_E_NONE);
    for (int k = 0; k < R53_E__COUNT; k++)
        CHECK(strcmp(r53xml_errcode_name((enum r53_errcode)k), "unknown") != 0);

    for (size_t i = 0; i < NELEM(rcs); i++) {
        r53xml_error_init(&e);
        e.kind = rcs[i].kind;
        e.http_status = rcs[i].status;
        e.timeout = rcs[i].timeout;
        if (r53_error_rc(&e) != rcs[i].rc)
            fprintf(stderr, "rc case %zu\n", i);
        CHECK_INT(r53_error_rc(&e), rcs[i].rc);
        CHECK_INT(r53xml_error_retryable(&e), rcs[i].retryable);
    }
    CHECK_INT(r53xml_error_is_throttle(&(struct r53_error){.kind = R53_E_HTTP, .http_status = 429}),
              1);
}

/*
 * The record sets InvalidChangeBatch messages name, one message at a time and as a batch's
 * error in both shapes (the ErrorResponse envelope's bracketed list, the root
 * <InvalidChangeBatch> with <Messages>): every set a message names is read, with its
 * identifier when it has one.
 */
static void test_named_rrsets(void)
{
    static const struct {
        const char *message;
        const char *want[3]; /* {name, type, set identifier}; name NULL: names none */
    } cases[] = {
        {"Tried to delete resource record set [name='app.example.com.', type='A', "
         "set-identifier='app.example.com_5'] but the values provided do not match the current "
         "values",
         {"app.example.com.", "A", "app.example.com_5"}},
        {"Tried to delete resource record set [name='_down.app.example.com.', type='AAAA', "
         "set-identifier='app.example.com_99'] but it was not found",
         {"_down.app.example.com.", "AAAA", "app.example.com_99"}},
        {"Tried to create resource record set [name='app.example.com.', type='A', "
         "set-identifier='app.example.com_0'] but it already exists.",
         {"app.example.com.", "A", "app.example.com_0"}},
        /* an identifier holding what the message uses as separators */
        {"Tried to create resource record set [name='app.example.com.', type='A', "
         "set-identifier='a, type='b'] but it already exists",
         {"app.example.com.", "A", "a, type='b"}},
        {"Tried to create resource record set [name='simple.example.com.', type='A'] but it "
         "already exists",
         {"simple.example.com.", "A", NULL}},
        {"Tried to create resource record set duplicate.example.com. type A, but it already "
         "exists",
         {"duplicate.example.com.", "A", NULL}},
        {"RRSet with DNS name app.example.com. and type A, SetIdentifier app.example.com_3 "
         "cannot be created as weighted sets must contain the same TTL.",
         {"app.example.com.", "A", "app.example.com_3"}},
        /* names none */
        {"Tried to delete resource record set [name='app.example.com.', type='A', "
         "set-identifier='app.example.com_5' but it was not found",
         {NULL}},
        {"Tried to delete resource record set [name='app.example.com.', type='A', "
         "set-identifier='app.example.com_5']x but it was not found",
         {NULL}},
        {"Tried to delete resource record set [name='', type='A'] but it was not found", {NULL}},
        {"Tried to delete resource record set [name='a.', type='A'], set-identifier='s'] but it "
         "was not found",
         {NULL}},
        {"Tried to delete resource record set", {NULL}},
        {"Invalid Resource Record: 'FATAL problem: ARRDATAIllegalIPv4Address (Value is not a "
         "valid IPv4 address) encountered with '1.2.3'",
         {NULL}},
        {"RRSet of type CNAME with DNS name a. is not permitted as it conflicts with other "
         "records with the same DNS name in zone example.",
         {NULL}},
        {"", {NULL}},
    };
    static const char *const sets[][2] = {
        {"app.example.com.", "app.example.com_7"},
        {"_down.app.example.com.", "app.example.com_7"},
        {"app.example.com.", "app.example.com_12"},
    };
    static const char *const verbs[][2] = {
        {"Tried to delete resource record set ",
         " but the values provided do not match the current values"},
        {"Tried to delete resource record set ", " but it was not found"},
        {"Tried to create resource record set ", " but it already exists"},
    };
    char big[8000];
    struct r53_named_rrset got;

    for (size_t i = 0; i < NELEM(cases); i++)
        check_named(cases[i].message, cases[i].want);
    CHECK(!r53xml_message_rrset(NULL, &got));
    /* a field longer than the struct holds: names none rather than a cut name */
    memset(big, 'a', sizeof(big));
    memcpy(big, "Tried to delete resource record set [name='", 43);
    snprintf(big + 2000, sizeof(big) - 2000, "', type='A'] but it was not found");
    CHECK(!r53xml_message_rrset(big, &got));

    /* A batch naming three sets, in each shape. */
    for (int shape = 0; shape < 2; shape++) {
        char msgs[NELEM(sets)][300], doc[2400];
        struct r53_error e;
        size_t w = 0;
        for (size_t i = 0; i < NELEM(sets); i++) {
            char desc[160];
            snprintf(desc, sizeof(desc), "[name='%s', type='A', set-identifier='%s']", sets[i][0],
                     sets[i][1]);
            snprintf(msgs[i], sizeof(msgs[i]), "%s%s%s", verbs[i][0], desc, verbs[i][1]);
        }
        if (shape == 0)
            w = (size_t)snprintf(doc, sizeof(doc),
                                 "<?xml version=\"1.0\"?>\n<ErrorResponse xmlns=\"" R53_XMLNS
                                 "\"><Error><Type>Sender</Type><Code>InvalidChangeBatch</Code>"
                                 "<Message>[%s, %s, %s]</Message></Error><RequestId>r"
                                 "</RequestId></ErrorResponse>",
                                 msgs[0], msgs[1], msgs[2]);
        else
            w = (size_t)snprintf(doc, sizeof(doc),
                                 "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
                                 "<InvalidChangeBatch xmlns=\"" R53_XMLNS "\">\n  <Messages>\n"
                                 "    <Message>%s</Message>\n    <Message>%s</Message>\n"
                                 "    <Message>%s</Message>\n  </Messages>\n"
                                 "  <RequestId>r</RequestId>\n</InvalidChangeBatch>",
                                 msgs[0], msgs[1], msgs[2]);
        CHECK(w < sizeof(doc));
        r53xml_error_init(&e);
        CHECK_INT(r53xml_parse_error(doc, strlen(doc), &e), RC_OK);
        CHECK(r53xml_error_is_cas_conflict(&e));
        CHECK_INT(e.nmessages, NELEM(sets));
        for (size_t i = 0; i < e.nmessages && i < NELEM(sets); i++) {
            const char *want[3] = {sets[i][0], "A", sets[i][1]};
            check_named(e.messages[i], want);
        }
        r53xml_error_release(&e);
    }
}

/* The peer's texts reach log lines through r53xml_error_format(): a line break or an escape
 * sequence in a Message, Code, RequestId or transport text comes out as \xNN, never as the
 * byte, so the formatted error is one line and cannot forge another. */
static void test_error_format_quotes(void)
{
    struct r53_error e;
    char line[1024];

    r53xml_error_init(&e);
    e.kind = R53_E_ACCESS_DENIED;
    e.http_status = 403;
    e.code = strdup("Access\rDenied");
    e.message = strdup("denied\nts=2026-01-01T00:00:00.000Z level=info msg=audit "
                       "token=ops\x1b[2K");
    e.request_id = strdup("rid\n1");
    snprintf(e.transport, sizeof(e.transport), "%s", "reset\x1b");
    r53xml_error_format(&e, line, sizeof(line));
    for (const char *p = line; *p; p++)
        CHECK((unsigned char)*p >= 0x20 && (unsigned char)*p != 0x7f);
    CHECK(strstr(line, "message=\"denied\\x0ats=2026") != NULL);
    CHECK(strstr(line, "token=ops\\x1b[2K\"") != NULL);
    CHECK(strstr(line, "code=\"Access\\x0dDenied\"") != NULL);
    CHECK(strstr(line, "request_id=\"rid\\x0a1\"") != NULL);
    CHECK(strstr(line, "transport=\"reset\\x1b\"") != NULL);
    r53xml_error_release(&e);
}

int main(int argc, char **argv)
{
    if (argc == 3 && strcmp(argv[1], "--skip") == 0) {
        printf("SKIP: %s\n", argv[2]);
        return SKIP_CODE;
    }
    if (argc == 2 && strcmp(argv[1], "--self") == 0) {
        test_builder_escaping();
        test_builder_rejects();
        test_quota();
        test_names_and_ids();
        test_parse_variants();
        test_malformed();
        test_errors();
        test_named_rrsets();
        test_error_format_quotes();
        test_list_order();
        return check_done("route53xml.self");
    }
    if (argc == 2 && argv[1][0] != '-')
        return run_sample(argv[1]);
    fprintf(stderr, "usage: %s <sample-file> | --self | --skip <reason>\n", argv[0]);
    return 2;
}
