/*
 * emu_xml.c: strict parsing of a ChangeResourceRecordSetsRequest document.
 *
 * Route 53 validates the request against its XML Schema (Xerces) before it looks at the
 * content, and answers schema violations with HTTP 400, Code InvalidInput and Xerces' own
 * message behind "Invalid XML ; ", for example
 *   Invalid XML ; cvc-complex-type.2.4.a: Invalid content was found starting with element
 *   'TTL'. One of '{"https://route53.amazonaws.com/doc/2013-04-01/":Type}' is expected.
 * (seen in many public bug reports). This module reproduces that: every element must be in the
 * 2013-04-01 namespace, appear in the order and number the API Reference gives (the sequence of
 * botocore's service-2.json shapes), carry no attributes and no stray text, and simple values
 * must satisfy their facets (enumerations, ranges, lengths). A root element with another name
 * gets MalformedInput "<name> is not valid, expected ChangeResourceRecordSetsRequest", as
 * Route 53 answers it. Documents with a DTD are refused (no entity expansion, no network).
 *
 * Routing policies other than weighted and traffic policies are parsed in schema order (so their
 * position errors are right) and then reported as unsupported by the store. An AliasTarget is
 * parsed in full: HostedZoneId (ResourceId, at most 32), DNSName (at most 1024) and
 * EvaluateTargetHealth (boolean), all three required, in that order.
 *
 * Threading: pure; libxml2 must have been initialised with xmlInitParser() on the main thread.
 */
#include <ctype.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <libxml/parser.h>
#include <libxml/tree.h>

#include "emu.h"
#include "util/xalloc.h"

#define XML_PREFIX "Invalid XML ; "

/* xml_order=lenient (set per parse; parses never nest): any order, same occurrence rules. */
static _Thread_local int lenient_order;

struct seq_item {
    const char *name;
    int min;
    int max; /* < 0: unbounded */
};

static const char *const rr_types[] = {"SOA",   "A",    "TXT",   "NS",   "CNAME", "MX",
                                       "NAPTR", "PTR",  "SRV",   "SPF",  "AAAA",  "CAA",
                                       "DS",    "TLSA", "SSHFP", "SVCB", "HTTPS", NULL};
static const char *const actions[] = {"CREATE", "DELETE", "UPSERT", NULL};
static const char *const failovers[] = {"PRIMARY", "SECONDARY", NULL};

int emu_type_known(const char *type)
{
    for (size_t i = 0; rr_types[i]; i++) {
        if (!strcmp(type, rr_types[i]))
            return 1;
    }
    return 0;
}

static int in_ns(const xmlNode *n)
{
    return n->ns && n->ns->href && !strcmp((const char *)n->ns->href, EMU_NS);
}

static int is_blank(const xmlChar *s)
{
    for (; s && *s; s++) {
        if (*s != ' ' && *s != '\t' && *s != '\r' && *s != '\n')
            return 0;
    }
    return 1;
}

static int no_attributes(const xmlNode *el, struct emu_err *err)
{
    if (el->properties) {
        emu_err_set(err, 400, "InvalidInput",
                    XML_PREFIX "cvc-complex-type.3.2.2: Attribute '%s' is not allowed to appear in "
                               "element '%s'.",
                    (const char *)el->properties->name, (const char *)el->name);
        return -1;
    }
    return 0;
}

/* The element children of an element-only parent. Non-blank text is an error (Xerces
 * cvc-complex-type.2.3); comments and processing instructions are skipped. */
static int element_children(const xmlNode *parent, xmlNode ***out, size_t *n, struct emu_err *err)
{
    size_t cap = 0;

    *out = NULL;
    *n = 0;
    for (xmlNode *c = parent->children; c; c = c->next) {
        if (c->type == XML_ELEMENT_NODE) {
            if (no_attributes(c, err))
                return -1;
            *out = xgrow(*out, &cap, *n + 1, sizeof(**out));
            (*out)[(*n)++] = c;
        } else if ((c->type == XML_TEXT_NODE && !is_blank(c->content)) ||
                   c->type == XML_CDATA_SECTION_NODE || c->type == XML_ENTITY_REF_NODE) {
            emu_err_set(err, 400, "InvalidInput",
                        XML_PREFIX "cvc-complex-type.2.3: Element '%s' cannot have character "
                                   "[children], because the type's content type is element-only.",
                        (const char *)parent->name);
            return -1;
        }
    }
    return 0;
}

static void expected_list(struct buf *b, const struct seq_item *items, size_t nitems, size_t pos,
                          int count)
{
    int first = 1;

    for (size_t i = pos; i < nitems; i++) {
        int cnt = i == pos ? count : 0;
        if (items[i].max < 0 || cnt < items[i].max) {
            buf_addf(b, "%s\"%s\":%s", first ? "" : ", ", EMU_NS, items[i].name);
            first = 0;
        }
        if (cnt < items[i].min)
            break;
    }
}

/* Lenient variant: the items may come in any order (like xs:all), each at most max times, the
 * required ones at least once. */
static int walk_any(const xmlNode *parent, const struct seq_item *items, size_t nitems,
                    xmlNode **kids, size_t nkids, size_t *which, struct emu_err *err)
{
    int *count = xcalloc(nitems, sizeof(*count));
    struct buf list = {0};
    int rc = 0;

    for (size_t k = 0; k < nkids; k++) {
        size_t p;
        for (p = 0; p < nitems; p++) {
            if (in_ns(kids[k]) && !strcmp((const char *)kids[k]->name, items[p].name) &&
                (items[p].max < 0 || count[p] < items[p].max))
                break;
        }
        if (p == nitems) {
            for (size_t i = 0; i < nitems; i++) {
                if (items[i].max < 0 || count[i] < items[i].max)
                    buf_addf(&list, "%s\"%s\":%s", list.len ? ", " : "", EMU_NS, items[i].name);
            }
            emu_err_set(err, 400, "InvalidInput",
                        XML_PREFIX "cvc-complex-type.2.4.a: Invalid content was found starting "
                                   "with element '%s'. One of '{%s}' is expected.",
                        (const char *)kids[k]->name, list.p ? list.p : "");
            rc = -1;
            goto out;
        }
        count[p]++;
        which[k] = p;
    }
    for (size_t i = 0; i < nitems; i++) {
        if (count[i] < items[i].min)
            buf_addf(&list, "%s\"%s\":%s", list.len ? ", " : "", EMU_NS, items[i].name);
    }
    if (list.len) {
        emu_err_set(err, 400, "InvalidInput",
                    XML_PREFIX "cvc-complex-type.2.4.b: The content of element '%s' is not "
                               "complete. One of '{%s}' is expected.",
                    (const char *)parent->name, list.p);
        rc = -1;
    }
out:
    free(count);
    buf_release(&list);
    return rc;
}

/* Match the children against a sequence; which[k] receives the item index of child k. */
static int walk_seq(const xmlNode *parent, const struct seq_item *items, size_t nitems,
                    xmlNode **kids, size_t nkids, size_t *which, struct emu_err *err)
{
    size_t pos = 0;
    int count = 0;
    struct buf list = {0};
    int rc = 0;

    for (size_t k = 0; k < nkids; k++) {
        const char *nm = (const char *)kids[k]->name;
        size_t p = pos;
        int c = count;
        for (;;) {
            if (p < nitems && in_ns(kids[k]) && !strcmp(nm, items[p].name) &&
                (items[p].max < 0 || c < items[p].max)) {
                which[k] = p;
                pos = p;
                count = c + 1;
                break;
            }
            if (p >= nitems || c < items[p].min) {
                expected_list(&list, items, nitems, pos, count);
                if (list.len)
                    emu_err_set(err, 400, "InvalidInput",
                                XML_PREFIX "cvc-complex-type.2.4.a: Invalid content was found "
                                           "starting with element '%s'. One of '{%s}' is "
                                           "expected.",
                                nm, list.p);
                else
                    emu_err_set(err, 400, "InvalidInput",
                                XML_PREFIX "cvc-complex-type.2.4.d: Invalid content was found "
                                           "starting with element '%s'. No child element is "
                                           "expected at this point.",
                                nm);
                rc = -1;
                goto out;
            }
            p++;
            c = 0;
        }
    }
    for (size_t p = pos; p < nitems; p++) {
        int c = p == pos ? count : 0;
        if (c < items[p].min) {
            expected_list(&list, items, nitems, pos, count);
            emu_err_set(err, 400, "InvalidInput",
                        XML_PREFIX "cvc-complex-type.2.4.b: The content of element '%s' is not "
                                   "complete. One of '{%s}' is expected.",
                        (const char *)parent->name, list.p);
            rc = -1;
            goto out;
        }
    }
out:
    buf_release(&list);
    return rc;
}

/* The text of a simple-typed element (no element children allowed). */
static int simple_text(const xmlNode *el, char **out, struct emu_err *err)
{
    struct buf b = {0};

    *out = NULL;
    for (xmlNode *c = el->children; c; c = c->next) {
        if (c->type == XML_ELEMENT_NODE) {
            emu_err_set(err, 400, "InvalidInput",
                        XML_PREFIX "cvc-type.3.1.2: Element '%s' is a simple type, so it must "
                                   "have no element information item [children].",
                        (const char *)el->name);
            buf_release(&b);
            return -1;
        }
        if ((c->type == XML_TEXT_NODE || c->type == XML_CDATA_SECTION_NODE) && c->content)
            buf_adds(&b, (const char *)c->content);
    }
    *out = buf_detach(&b);
    return 0;
}

/* XML Schema whitespace "collapse" in place. */
static void collapse(char *s)
{
    char *w = s;
    int space = 0;

    for (char *r = s; *r; r++) {
        if (*r == ' ' || *r == '\t' || *r == '\r' || *r == '\n') {
            space = w != s;
            continue;
        }
        if (space)
            *w++ = ' ';
        space = 0;
        *w++ = *r;
    }
    *w = '\0';
}

static int check_length(const char *v, const char *type_name, size_t minlen, size_t maxlen,
                        struct emu_err *err)
{
    size_t n = emu_utf8_len(v, strlen(v));

    if (n < minlen) {
        emu_err_set(err, 400, "InvalidInput",
                    XML_PREFIX "cvc-minLength-valid: Value '%s' with length = '%zu' is not "
                               "facet-valid with respect to minLength '%zu' for type '%s'.",
                    v, n, minlen, type_name);
        return -1;
    }
    if (maxlen && n > maxlen) {
        emu_err_set(err, 400, "InvalidInput",
                    XML_PREFIX "cvc-maxLength-valid: Value '%s' with length = '%zu' is not "
                               "facet-valid with respect to maxLength '%zu' for type '%s'.",
                    v, n, maxlen, type_name);
        return -1;
    }
    return 0;
}

static int check_enum(const char *v, const char *const *vals, struct emu_err *err)
{
    struct buf list = {0};

    for (size_t i = 0; vals[i]; i++) {
        if (!strcmp(v, vals[i]))
            return 0;
    }
    for (size_t i = 0; vals[i]; i++)
        buf_addf(&list, "%s%s", i ? ", " : "", vals[i]);
    emu_err_set(err, 400, "InvalidInput",
                XML_PREFIX "cvc-enumeration-valid: Value '%s' is not facet-valid with respect to "
                           "enumeration '[%s]'. It must be a value from the enumeration.",
                v, list.p);
    buf_release(&list);
    return -1;
}

/* xs:long with inclusive bounds; v is collapsed in place first. */
static int check_long(char *v, const char *type_name, long long min, long long max, long long *out,
                      struct emu_err *err)
{
    const char *p = v;
    char *end = NULL;
    long long x;

    collapse(v);
    if (*p == '+' || *p == '-')
        p++;
    if (!*p)
        goto bad;
    for (; *p; p++) {
        if (!isdigit((unsigned char)*p))
            goto bad;
    }
    errno = 0;
    x = strtoll(v, &end, 10);
    if (errno == ERANGE || x > max) {
        emu_err_set(err, 400, "InvalidInput",
                    XML_PREFIX "cvc-maxInclusive-valid: Value '%s' is not facet-valid with "
                               "respect to maxInclusive '%lld' for type '%s'.",
                    v, max, type_name);
        return -1;
    }
    if (x < min) {
        emu_err_set(err, 400, "InvalidInput",
                    XML_PREFIX "cvc-minInclusive-valid: Value '%s' is not facet-valid with "
                               "respect to minInclusive '%lld' for type '%s'.",
                    v, min, type_name);
        return -1;
    }
    *out = x;
    return 0;
bad:
    emu_err_set(err, 400, "InvalidInput",
                XML_PREFIX "cvc-datatype-valid.1.2.1: '%s' is not a valid value for 'integer'.", v);
    return -1;
}

static int check_bool(char *v, struct emu_err *err)
{
    collapse(v);
    if (!strcmp(v, "true") || !strcmp(v, "false") || !strcmp(v, "1") || !strcmp(v, "0"))
        return 0;
    emu_err_set(err, 400, "InvalidInput",
                XML_PREFIX "cvc-datatype-valid.1.2.1: '%s' is not a valid value for 'boolean'.", v);
    return -1;
}

/* --- the document ---------------------------------------------------------------------- */

static const struct seq_item seq_root[] = {{"ChangeBatch", 1, 1}};
static const struct seq_item seq_batch[] = {{"Comment", 0, 1}, {"Changes", 1, 1}};
static const struct seq_item seq_changes[] = {{"Change", 1, -1}};
static const struct seq_item seq_change[] = {{"Action", 1, 1}, {"ResourceRecordSet", 1, 1}};
static const struct seq_item seq_rrset[] = {{"Name", 1, 1},
                                            {"Type", 1, 1},
                                            {"SetIdentifier", 0, 1},
                                            {"Weight", 0, 1},
                                            {"Region", 0, 1},
                                            {"GeoLocation", 0, 1},
                                            {"Failover", 0, 1},
                                            {"MultiValueAnswer", 0, 1},
                                            {"TTL", 0, 1},
                                            {"ResourceRecords", 0, 1},
                                            {"AliasTarget", 0, 1},
                                            {"HealthCheckId", 0, 1},
                                            {"TrafficPolicyInstanceId", 0, 1},
                                            {"CidrRoutingConfig", 0, 1},
                                            {"GeoProximityLocation", 0, 1}};
static const struct seq_item seq_alias[] = {
    {"HostedZoneId", 1, 1}, {"DNSName", 1, 1}, {"EvaluateTargetHealth", 1, 1}};
static const struct seq_item seq_records[] = {{"ResourceRecord", 1, -1}};
static const struct seq_item seq_record[] = {{"Value", 1, 1}};

#define NITEMS(a) (sizeof(a) / sizeof((a)[0]))

/* Children of el matched against seq: fills kids/which (caller frees both). */
static int children_of(const xmlNode *el, const struct seq_item *seq, size_t nseq, xmlNode ***kids,
                       size_t **which, size_t *n, struct emu_err *err)
{
    *which = NULL;
    if (element_children(el, kids, n, err))
        return -1;
    *which = xcalloc(*n ? *n : 1, sizeof(**which));
    if (lenient_order)
        return walk_any(el, seq, nseq, *kids, *n, *which, err);
    return walk_seq(el, seq, nseq, *kids, *n, *which, err);
}

static int parse_records(const xmlNode *el, struct emu_change *ch, struct emu_err *err)
{
    xmlNode **kids = NULL, **vk = NULL;
    size_t *which = NULL, *vwhich = NULL, n = 0, vn = 0;
    int rc = -1;

    if (children_of(el, seq_records, NITEMS(seq_records), &kids, &which, &n, err))
        goto out;
    ch->values = xcalloc(n ? n : 1, sizeof(*ch->values));
    for (size_t i = 0; i < n; i++) {
        char *v = NULL;
        free(vk);
        free(vwhich);
        vk = NULL;
        vwhich = NULL;
        if (children_of(kids[i], seq_record, NITEMS(seq_record), &vk, &vwhich, &vn, err))
            goto out;
        if (simple_text(vk[0], &v, err))
            goto out;
        ch->values[ch->nvalues++] = v;
        if (check_length(v, "RData", 0, 4000, err))
            goto out;
    }
    rc = 0;
out:
    free(kids);
    free(which);
    free(vk);
    free(vwhich);
    return rc;
}

static int parse_alias(const xmlNode *el, struct emu_change *ch, struct emu_err *err)
{
    xmlNode **kids = NULL;
    size_t *which = NULL, n = 0;
    char *v = NULL;
    int rc = -1;

    ch->has_alias = 1;
    if (children_of(el, seq_alias, NITEMS(seq_alias), &kids, &which, &n, err))
        goto out;
    for (size_t i = 0; i < n; i++) {
        const char *nm = seq_alias[which[i]].name;
        free(v);
        v = NULL;
        if (simple_text(kids[i], &v, err))
            goto out;
        if (!strcmp(nm, "HostedZoneId")) {
            if (check_length(v, "ResourceId", 0, 32, err))
                goto out;
            ch->alias_zone = v;
            v = NULL;
        } else if (!strcmp(nm, "DNSName")) {
            if (check_length(v, "DNSName", 0, 1024, err))
                goto out;
            ch->alias_dns = v;
            v = NULL;
        } else {
            if (check_bool(v, err))
                goto out;
            ch->alias_eth = !strcmp(v, "true") || !strcmp(v, "1");
        }
    }
    rc = 0;
out:
    free(v);
    free(kids);
    free(which);
    return rc;
}

static int parse_rrset(const xmlNode *el, struct emu_change *ch, struct emu_err *err)
{
    xmlNode **kids = NULL;
    size_t *which = NULL, n = 0;
    char *v = NULL;
    long long x;
    int rc = -1;

    if (children_of(el, seq_rrset, NITEMS(seq_rrset), &kids, &which, &n, err))
        goto out;
    for (size_t i = 0; i < n; i++) {
        const char *nm = seq_rrset[which[i]].name;
        free(v);
        v = NULL;
        if (!strcmp(nm, "ResourceRecords")) {
            ch->has_records = 1;
            if (parse_records(kids[i], ch, err))
                goto out;
            continue;
        }
        if (!strcmp(nm, "AliasTarget")) {
            if (parse_alias(kids[i], ch, err))
                goto out;
            continue;
        }
        if (!strcmp(nm, "GeoLocation") || !strcmp(nm, "CidrRoutingConfig") ||
            !strcmp(nm, "GeoProximityLocation")) {
            if (!ch->unsupported)
                ch->unsupported = nm;
            continue;
        }
        if (simple_text(kids[i], &v, err))
            goto out;
        if (!strcmp(nm, "Name")) {
            if (check_length(v, "DNSName", 0, 1024, err))
                goto out;
            ch->name = v;
            v = NULL;
        } else if (!strcmp(nm, "Type")) {
            if (check_enum(v, rr_types, err))
                goto out;
            snprintf(ch->type, sizeof(ch->type), "%s", v);
        } else if (!strcmp(nm, "SetIdentifier")) {
            if (check_length(v, "ResourceRecordSetIdentifier", 1, 128, err))
                goto out;
            ch->set_id = v;
            v = NULL;
        } else if (!strcmp(nm, "Weight")) {
            if (check_long(v, "ResourceRecordSetWeight", 0, 255, &x, err))
                goto out;
            ch->weight = (long)x;
        } else if (!strcmp(nm, "TTL")) {
            if (check_long(v, "TTL", 0, 2147483647LL, &x, err))
                goto out;
            ch->ttl = x;
        } else if (!strcmp(nm, "Region")) {
            if (check_length(v, "ResourceRecordSetRegion", 1, 64, err))
                goto out;
            if (!ch->unsupported)
                ch->unsupported = "Region";
        } else if (!strcmp(nm, "Failover")) {
            if (check_enum(v, failovers, err))
                goto out;
            if (!ch->unsupported)
                ch->unsupported = "Failover";
        } else if (!strcmp(nm, "MultiValueAnswer")) {
            if (check_bool(v, err))
                goto out;
            if (!ch->unsupported)
                ch->unsupported = "MultiValueAnswer";
        } else if (!strcmp(nm, "HealthCheckId")) {
            if (check_length(v, "HealthCheckId", 0, 64, err))
                goto out;
            ch->health_check_id = v;
            v = NULL;
        } else if (!strcmp(nm, "TrafficPolicyInstanceId")) {
            if (check_length(v, "TrafficPolicyInstanceId", 1, 36, err))
                goto out;
            if (!ch->unsupported)
                ch->unsupported = "TrafficPolicyInstanceId";
        }
    }
    rc = 0;
out:
    free(v);
    free(kids);
    free(which);
    return rc;
}

static int parse_change(const xmlNode *el, struct emu_change *ch, struct emu_err *err)
{
    xmlNode **kids = NULL;
    size_t *which = NULL, n = 0;
    char *v = NULL;
    int rc = -1;

    if (children_of(el, seq_change, NITEMS(seq_change), &kids, &which, &n, err))
        goto out;
    for (size_t i = 0; i < n; i++) {
        if (which[i] == 1) {
            if (parse_rrset(kids[i], ch, err))
                goto out;
            continue;
        }
        if (simple_text(kids[i], &v, err) || check_enum(v, actions, err))
            goto out;
        ch->action = !strcmp(v, "CREATE")   ? EMU_CREATE
                     : !strcmp(v, "DELETE") ? EMU_DELETE
                                            : EMU_UPSERT;
    }
    rc = 0;
out:
    free(v);
    free(kids);
    free(which);
    return rc;
}

static int parse_batch(const xmlNode *el, struct emu_batch *b, struct emu_err *err)
{
    xmlNode **kids = NULL, **ck = NULL;
    size_t *which = NULL, *cwhich = NULL, n = 0, cn = 0;
    int rc = -1;

    if (children_of(el, seq_batch, NITEMS(seq_batch), &kids, &which, &n, err))
        goto out;
    for (size_t i = 0; i < n; i++) {
        if (!strcmp(seq_batch[which[i]].name, "Comment")) {
            if (simple_text(kids[i], &b->comment, err) ||
                check_length(b->comment, "ResourceDescription", 0, 256, err))
                goto out;
            continue;
        }
        if (children_of(kids[i], seq_changes, NITEMS(seq_changes), &ck, &cwhich, &cn, err))
            goto out;
        b->changes = xcalloc(cn, sizeof(*b->changes));
        for (size_t j = 0; j < cn; j++) {
            struct emu_change *ch = &b->changes[b->n++];
            ch->weight = -1;
            ch->ttl = -1;
            if (parse_change(ck[j], ch, err))
                goto out;
            unsigned mult = ch->action == EMU_UPSERT ? 2 : 1;
            b->record_units += mult * (ch->has_alias ? 1 : ch->nvalues);
            for (size_t k = 0; k < ch->nvalues; k++)
                b->char_units += mult * emu_utf8_len(ch->values[k], strlen(ch->values[k]));
        }
    }
    rc = 0;
out:
    free(kids);
    free(which);
    free(ck);
    free(cwhich);
    return rc;
}

int emu_xml_parse_batch(const char *body, size_t len, int lenient_order_, struct emu_batch *out,
                        struct emu_err *err)
{
    xmlParserCtxtPtr ctxt = NULL;
    xmlDocPtr doc = NULL;
    xmlNode *root;
    xmlNode **kids = NULL;
    size_t *which = NULL, n = 0;
    int rc = -1;

    memset(out, 0, sizeof(*out));
    lenient_order = lenient_order_;
    ctxt = xmlNewParserCtxt();
    if (!ctxt) {
        emu_err_set(err, 500, "InternalFailure", "xmlNewParserCtxt failed");
        goto out;
    }
    doc = xmlCtxtReadMemory(ctxt, body ? body : "", (int)len, "request.xml", NULL,
                            XML_PARSE_NONET | XML_PARSE_NOERROR | XML_PARSE_NOWARNING);
    if (!doc) {
        const xmlError *xe = xmlCtxtGetLastError(ctxt);
        char msg[512];
        snprintf(msg, sizeof(msg), "%s", xe && xe->message ? xe->message : "not well-formed");
        for (size_t i = strlen(msg); i > 0 && (msg[i - 1] == '\n' || msg[i - 1] == ' '); i--)
            msg[i - 1] = '\0';
        emu_err_set(err, 400, "InvalidInput", XML_PREFIX "%s", msg);
        goto out;
    }
    if (doc->intSubset || doc->extSubset) {
        emu_err_set(err, 400, "InvalidInput",
                    XML_PREFIX "DOCTYPE is disallowed when the feature "
                               "\"http://apache.org/xml/features/disallow-doctype-decl\" set to "
                               "true.");
        goto out;
    }
    root = xmlDocGetRootElement(doc);
    if (!root || strcmp((const char *)root->name, "ChangeResourceRecordSetsRequest") != 0) {
        emu_err_set(err, 400, "MalformedInput",
                    "%s is not valid, expected "
                    "ChangeResourceRecordSetsRequest",
                    root ? (const char *)root->name : "(none)");
        goto out;
    }
    if (!in_ns(root)) {
        emu_err_set(err, 400, "InvalidInput",
                    XML_PREFIX "cvc-elt.1: Cannot find the declaration of element "
                               "'ChangeResourceRecordSetsRequest'.");
        goto out;
    }
    if (no_attributes(root, err))
        goto out;
    if (children_of(root, seq_root, NITEMS(seq_root), &kids, &which, &n, err))
        goto out;
    if (parse_batch(kids[0], out, err))
        goto out;
    rc = 0;
out:
    free(kids);
    free(which);
    if (doc)
        xmlFreeDoc(doc);
    if (ctxt)
        xmlFreeParserCtxt(ctxt);
    if (rc)
        emu_batch_release(out);
    return rc;
}

void emu_batch_release(struct emu_batch *b)
{
    for (size_t i = 0; i < b->n; i++) {
        struct emu_change *c = &b->changes[i];
        free(c->name);
        free(c->set_id);
        free(c->health_check_id);
        free(c->alias_zone);
        free(c->alias_dns);
        for (size_t k = 0; k < c->nvalues; k++)
            free(c->values[k]);
        free(c->values);
    }
    free(b->changes);
    free(b->comment);
    memset(b, 0, sizeof(*b));
}
