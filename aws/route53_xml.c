/*
 * route53_xml.c: Route 53 request documents, response and error parsing (contract:
 * route53_xml.h).
 *
 * Invariants:
 * - Requests are written by hand into a growable buffer (no libxml2 writer): the element order
 *   is fixed by the code below, which follows the API Reference (and botocore's model).
 * - Parsing goes through parse_doc() only: size cap first, then libxml2 with NONET and without
 *   NOENT/DTDLOAD, then a rejection of any DOCTYPE. Leaf texts are read by leaf_text(), which
 *   concatenates text and CDATA children and rejects entity references and child elements, so
 *   no entity content ever reaches a result.
 * - Parsed results are built in locals and handed to the caller only on success.
 *
 * Threading: no mutable global state except libxml2's one-time initialisation
 * (pthread_once). libxml2 keeps its error state per thread.
 */
#include "aws/route53_xml.h"

#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <libxml/parser.h>
#include <libxml/tree.h>

#include "util/buf.h"
#include "util/log.h"
#include "util/rc.h"
#include "util/xalloc.h"

/* --- record sets -------------------------------------------------------------------------- */

int r53xml_rrset_is_weighted(const struct r53_rrset *r)
{
    return r && r->flags == 0 && r->set_identifier && r->has_weight && r->has_ttl && r->nvalues > 0;
}

void r53xml_rrset_release(struct r53_rrset *r)
{
    size_t i;

    if (!r)
        return;
    free((char *)r->name);
    free((char *)r->type);
    free((char *)r->set_identifier);
    free((char *)r->region);
    free((char *)r->failover);
    for (i = 0; i < r->nvalues; i++)
        free((char *)r->values[i]);
    free((void *)r->values);
    free((char *)r->alias.hosted_zone_id);
    free((char *)r->alias.dns_name);
    free((char *)r->health_check_id);
    memset(r, 0, sizeof(*r));
}

void r53xml_page_release(struct r53_rrset_page *page)
{
    size_t i;

    if (!page)
        return;
    for (i = 0; i < page->n; i++)
        r53xml_rrset_release(&page->rrsets[i]);
    free(page->rrsets);
    free((char *)page->next_name);
    free((char *)page->next_type);
    free((char *)page->next_identifier);
    memset(page, 0, sizeof(*page));
}

/* --- request ------------------------------------------------------------------------------ */

const char *r53xml_action_name(enum r53_action action)
{
    switch (action) {
    case R53_ACTION_CREATE: return "CREATE";
    case R53_ACTION_DELETE: return "DELETE";
    case R53_ACTION_UPSERT: return "UPSERT";
    }
    return "?";
}

/* Length of the UTF-8 sequence at s (max bytes left), 0 when invalid or a character XML 1.0
 * cannot carry (C0 controls other than TAB/LF/CR, surrogates, U+FFFE/U+FFFF). */
static size_t xml_char_len(const unsigned char *s, size_t max)
{
    unsigned c = s[0], cp;
    size_t n, i;

    if (c < 0x80)
        return (c >= 0x20 || c == '\t' || c == '\n' || c == '\r') ? 1 : 0;
    if (c >= 0xc2 && c <= 0xdf) {
        n = 2;
        cp = c & 0x1f;
    } else if (c >= 0xe0 && c <= 0xef) {
        n = 3;
        cp = c & 0x0f;
    } else if (c >= 0xf0 && c <= 0xf4) {
        n = 4;
        cp = c & 0x07;
    } else {
        return 0;
    }
    if (n > max)
        return 0;
    for (i = 1; i < n; i++) {
        if ((s[i] & 0xc0) != 0x80)
            return 0;
        cp = (cp << 6) | (s[i] & 0x3f);
    }
    if ((n == 3 && cp < 0x800) || (n == 4 && (cp < 0x10000 || cp > 0x10ffff)))
        return 0; /* overlong or out of range */
    if ((cp >= 0xd800 && cp <= 0xdfff) || cp == 0xfffe || cp == 0xffff)
        return 0;
    return n;
}

/* Append <tag>escaped text</tag>. Returns 0, or -1 when text cannot be carried. */
static int add_elem(struct buf *b, const char *tag, const char *text)
{
    const unsigned char *s = (const unsigned char *)text;
    size_t len = strlen(text), i = 0, n;

    buf_adds(b, "<");
    buf_adds(b, tag);
    buf_adds(b, ">");
    while (i < len) {
        n = xml_char_len(s + i, len - i);
        if (n == 0)
            return -1;
        switch (s[i]) {
        case '&': buf_adds(b, "&amp;"); break;
        case '<': buf_adds(b, "&lt;"); break;
        case '>': buf_adds(b, "&gt;"); break;
        case '"': buf_adds(b, "&quot;"); break;
        case '\'': buf_adds(b, "&apos;"); break;
        case '\r': buf_adds(b, "&#13;"); break; /* would be normalised to LF otherwise */
        default: buf_add(b, s + i, n); break;
        }
        i += n;
    }
    buf_adds(b, "</");
    buf_adds(b, tag);
    buf_adds(b, ">");
    return 0;
}

static int add_elem_num(struct buf *b, const char *tag, long v)
{
    char num[32];

    snprintf(num, sizeof(num), "%ld", v);
    return add_elem(b, tag, num);
}

static int nonempty(const char *s)
{
    return s && *s;
}

#define BUILDABLE_FLAGS (R53_RRSET_F_ALIAS | R53_RRSET_F_REGION | R53_RRSET_F_FAILOVER)

/* Validate and write one <Change>. Returns 0 or -1 with detail set. */
static int add_change(struct buf *b, const struct r53_change *c, size_t idx, char *detail,
                      size_t dn)
{
    const struct r53_rrset *r = c->rrset;
    int is_alias;
    size_t i;

    if (c->action != R53_ACTION_CREATE && c->action != R53_ACTION_DELETE &&
        c->action != R53_ACTION_UPSERT) {
        rc_detail(detail, dn, "change %zu: invalid action %d", idx, (int)c->action);
        return -1;
    }
    if (!r || !nonempty(r->name) || !nonempty(r->type)) {
        rc_detail(detail, dn, "change %zu: record name and type are required", idx);
        return -1;
    }
    if (r->flags & ~(unsigned)BUILDABLE_FLAGS) {
        rc_detail(detail, dn, "change %zu: routing features 0x%x cannot be written", idx,
                  r->flags & ~(unsigned)BUILDABLE_FLAGS);
        return -1;
    }
    if (r->set_identifier &&
        (strlen(r->set_identifier) < 1 || strlen(r->set_identifier) > R53_SET_ID_MAX)) {
        rc_detail(detail, dn, "change %zu: SetIdentifier must be 1..%d characters", idx,
                  R53_SET_ID_MAX);
        return -1;
    }
    if (r->has_weight && r->weight > R53_MAX_WEIGHT) {
        rc_detail(detail, dn, "change %zu: weight %u > %d", idx, r->weight, R53_MAX_WEIGHT);
        return -1;
    }
    if (r->has_ttl && (r->ttl < 0 || r->ttl > R53_MAX_TTL)) {
        rc_detail(detail, dn, "change %zu: TTL %ld out of range", idx, r->ttl);
        return -1;
    }
    is_alias = r->alias.dns_name != NULL || r->alias.hosted_zone_id != NULL;
    if (is_alias && (!nonempty(r->alias.dns_name) || !nonempty(r->alias.hosted_zone_id))) {
        rc_detail(detail, dn, "change %zu: alias target needs HostedZoneId and DNSName", idx);
        return -1;
    }
    if (is_alias == (r->nvalues > 0)) {
        rc_detail(detail, dn, "change %zu: a record needs either values or an alias target", idx);
        return -1;
    }
    if (r->nvalues > 0 && !r->has_ttl) {
        rc_detail(detail, dn, "change %zu: a record with values needs a TTL", idx);
        return -1;
    }

    buf_adds(b, "<Change>");
    if (add_elem(b, "Action", r53xml_action_name(c->action)))
        goto bad_text;
    buf_adds(b, "<ResourceRecordSet>");
    if (add_elem(b, "Name", r->name) || add_elem(b, "Type", r->type))
        goto bad_text;
    if (r->set_identifier && add_elem(b, "SetIdentifier", r->set_identifier))
        goto bad_text;
    if (r->has_weight && add_elem_num(b, "Weight", (long)r->weight))
        goto bad_text;
    if (r->region && add_elem(b, "Region", r->region))
        goto bad_text;
    if (r->failover && add_elem(b, "Failover", r->failover))
        goto bad_text;
    if (r->has_ttl && add_elem_num(b, "TTL", r->ttl))
        goto bad_text;
    if (r->nvalues > 0) {
        buf_adds(b, "<ResourceRecords>");
        for (i = 0; i < r->nvalues; i++) {
            if (!r->values[i]) {
                rc_detail(detail, dn, "change %zu: value %zu is NULL", idx, i);
                return -1;
            }
            buf_adds(b, "<ResourceRecord>");
            if (add_elem(b, "Value", r->values[i]))
                goto bad_text;
            buf_adds(b, "</ResourceRecord>");
        }
        buf_adds(b, "</ResourceRecords>");
    }
    if (is_alias) {
        buf_adds(b, "<AliasTarget>");
        if (add_elem(b, "HostedZoneId", r->alias.hosted_zone_id) ||
            add_elem(b, "DNSName", r->alias.dns_name) ||
            add_elem(b, "EvaluateTargetHealth", r->alias.evaluate_target_health ? "true" : "false"))
            goto bad_text;
        buf_adds(b, "</AliasTarget>");
    }
    if (r->health_check_id && add_elem(b, "HealthCheckId", r->health_check_id))
        goto bad_text;
    buf_adds(b, "</ResourceRecordSet></Change>");
    return 0;

bad_text:
    rc_detail(detail, dn,
              "change %zu: a text is not valid UTF-8 or holds a character XML cannot carry", idx);
    return -1;
}

enum rc_code r53xml_build_change_batch(const struct r53_change *changes, size_t n,
                                       const char *comment, char **xml, size_t *len, char *detail,
                                       size_t detail_len)
{
    struct buf b = {0};
    enum rc_code rc = RC_BAD_REQUEST;
    size_t i;

    *xml = NULL;
    if (len)
        *len = 0;
    if (!changes || n == 0) {
        rc_detail(detail, detail_len, "a change batch needs at least one change");
        goto out;
    }
    if (comment && strlen(comment) > R53_COMMENT_MAX) {
        rc_detail(detail, detail_len, "comment longer than %d characters", R53_COMMENT_MAX);
        goto out;
    }
    buf_adds(&b, "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
                 "<ChangeResourceRecordSetsRequest xmlns=\"" R53_XMLNS "\"><ChangeBatch>");
    if (comment && add_elem(&b, "Comment", comment)) {
        rc_detail(detail, detail_len, "comment is not valid UTF-8 or holds a control character");
        goto out;
    }
    buf_adds(&b, "<Changes>");
    for (i = 0; i < n; i++) {
        if (add_change(&b, &changes[i], i, detail, detail_len))
            goto out;
    }
    buf_adds(&b, "</Changes></ChangeBatch></ChangeResourceRecordSetsRequest>");
    if (len)
        *len = b.len;
    *xml = buf_detach(&b);
    rc = RC_OK;
out:
    buf_release(&b);
    return rc;
}

void r53xml_change_size(const struct r53_change *c, struct r53_batch_size *acc)
{
    size_t mult = c->action == R53_ACTION_UPSERT ? 2 : 1, chars = 0, i;

    if (!c->rrset)
        return;
    if (c->rrset->alias.dns_name) {
        /* An alias counts as one element; whether its DNSName counts toward the characters is
         * not known, so it is budgeted as if it did. */
        acc->elements += mult;
        acc->value_chars += mult * strlen(c->rrset->alias.dns_name);
        return;
    }
    for (i = 0; i < c->rrset->nvalues; i++)
        chars += c->rrset->values[i] ? strlen(c->rrset->values[i]) : 0;
    acc->elements += mult * c->rrset->nvalues;
    acc->value_chars += mult * chars;
}

void r53xml_batch_size(const struct r53_change *changes, size_t n, struct r53_batch_size *out)
{
    size_t i;

    out->elements = 0;
    out->value_chars = 0;
    for (i = 0; i < n; i++)
        r53xml_change_size(&changes[i], out);
}

int r53xml_batch_size_fits(const struct r53_batch_size *size)
{
    return size->elements <= R53_BATCH_MAX_ELEMENTS &&
           size->value_chars <= R53_BATCH_MAX_VALUE_CHARS;
}

/* --- helpers ------------------------------------------------------------------------------ */

const char *r53xml_strip_id_prefix(const char *id)
{
    static const char *const prefixes[] = {"/hostedzone/", "hostedzone/", "/change/", "change/"};
    size_t i, n;

    if (!id)
        return NULL;
    for (i = 0; i < sizeof(prefixes) / sizeof(prefixes[0]); i++) {
        n = strlen(prefixes[i]);
        if (strncmp(id, prefixes[i], n) == 0)
            return id + n;
    }
    return id;
}

static int is_octal(char c)
{
    return c >= '0' && c <= '7';
}

char *r53xml_decode_name(const char *name)
{
    size_t len = strlen(name), i, o = 0;
    char *out = xmalloc(len + 1);
    unsigned v;

    for (i = 0; i < len; i++) {
        if (name[i] == '\\' && i + 3 < len && is_octal(name[i + 1]) && is_octal(name[i + 2]) &&
            is_octal(name[i + 3])) {
            v = (unsigned)(name[i + 1] - '0') * 64 + (unsigned)(name[i + 2] - '0') * 8 +
                (unsigned)(name[i + 3] - '0');
            if (v <= 0xff && v != 0 && v != '.' && v != '\\') {
                out[o++] = (char)v;
                i += 3;
                continue;
            }
        }
        out[o++] = name[i];
    }
    out[o] = '\0';
    return out;
}

/* The ListResourceRecordSets sort key of a name: lowercase, escapes decoded, labels reversed
 * and joined with dots, a trailing dot ("www.Example.com" -> "com.example.www."). */
static char *list_name_key(const char *name)
{
    char *dec = r53xml_decode_name(name), *out;
    size_t n = strlen(dec), o = 0;

    out = xmalloc(n + 2);
    if (n && dec[n - 1] == '.')
        n--;
    while (n > 0) {
        size_t start = n;
        while (start > 0 && dec[start - 1] != '.')
            start--;
        for (size_t i = start; i < n; i++)
            out[o++] = (char)tolower((unsigned char)dec[i]);
        out[o++] = '.';
        n = start ? start - 1 : 0;
    }
    out[o] = '\0';
    free(dec);
    return out;
}

/* NULL sorts before everything; strings bytewise. */
static int cmp_null_first(const char *a, const char *b)
{
    if (!a || !b)
        return a ? 1 : b ? -1 : 0;
    return strcmp(a, b);
}

int r53xml_list_order_cmp(const char *name_a, const char *type_a, const char *id_a,
                          const char *name_b, const char *type_b, const char *id_b)
{
    char *ka = list_name_key(name_a), *kb = list_name_key(name_b);
    int c = strcmp(ka, kb);

    free(ka);
    free(kb);
    if (c)
        return c < 0 ? -1 : 1;
    c = cmp_null_first(type_a, type_b);
    if (c)
        return c < 0 ? -1 : 1;
    c = cmp_null_first(id_a, id_b);
    return c < 0 ? -1 : c > 0;
}

/* --- libxml2 plumbing --------------------------------------------------------------------- */

static pthread_once_t xml_once = PTHREAD_ONCE_INIT;

static void xml_init(void)
{
    xmlInitParser();
}

/* libxml2 prints some errors (encoding conversion, I/O) through its generic error handler
 * whatever XML_PARSE_NOERROR says; that handler is per thread, so parse_doc sets this one. */
static void silent(void *ctx, const char *msg, ...) __attribute__((format(printf, 2, 3)));

static void silent(void *ctx, const char *msg, ...)
{
    (void)ctx;
    (void)msg;
}

/* Parse xml; NULL with detail set on any failure (see the invariants above). */
static xmlDocPtr parse_doc(const char *xml, size_t len, char *detail, size_t dn)
{
    xmlParserCtxtPtr ctxt = NULL;
    xmlDocPtr doc = NULL;
    const xmlError *e;

    pthread_once(&xml_once, xml_init);
    xmlSetGenericErrorFunc(NULL, silent);
    if (!xml || len == 0) {
        rc_detail(detail, dn, "empty XML document");
        goto out;
    }
    if (len > R53XML_MAX_INPUT) {
        rc_detail(detail, dn, "XML document of %zu bytes exceeds the %u byte cap", len,
                  R53XML_MAX_INPUT);
        goto out;
    }
    if (memmem(xml, len, "<!DOCTYPE", 9) || memmem(xml, len, "<!ENTITY", 8)) {
        rc_detail(detail, dn, "XML documents with a DOCTYPE are not accepted");
        goto out;
    }
    ctxt = xmlNewParserCtxt();
    if (!ctxt) {
        rc_detail(detail, dn, "libxml2 could not create a parser");
        goto out;
    }
    doc = xmlCtxtReadMemory(ctxt, xml, (int)len, NULL, NULL,
                            XML_PARSE_NONET | XML_PARSE_NOERROR | XML_PARSE_NOWARNING |
                                XML_PARSE_NOCDATA);
    if (!doc || !ctxt->wellFormed) {
        e = &ctxt->lastError;
        rc_detail(detail, dn, "malformed XML (line %d): %.120s", e->line,
                  e->message ? e->message : "not well-formed");
        if (detail && dn) {
            /* One line: the detail ends up in logs and problem bodies. */
            size_t l = strlen(detail);
            while (l > 0 && (detail[l - 1] == '\n' || detail[l - 1] == ' '))
                detail[--l] = '\0';
            for (char *p = detail; *p; p++)
                if (*p == '\n' || *p == '\r')
                    *p = ' ';
        }
        if (doc)
            xmlFreeDoc(doc);
        doc = NULL;
        goto out;
    }
    if (doc->intSubset || doc->extSubset) {
        rc_detail(detail, dn, "XML documents with a DOCTYPE are not accepted");
        xmlFreeDoc(doc);
        doc = NULL;
        goto out;
    }
    if (!xmlDocGetRootElement(doc)) {
        rc_detail(detail, dn, "XML document without a root element");
        xmlFreeDoc(doc);
        doc = NULL;
    }
out:
    if (ctxt)
        xmlFreeParserCtxt(ctxt);
    return doc;
}

static int is_elem(const xmlNode *n, const char *local)
{
    return n && n->type == XML_ELEMENT_NODE && strcmp((const char *)n->name, local) == 0;
}

/* First element child named local (any namespace), or NULL. */
static xmlNodePtr child(const xmlNode *parent, const char *local)
{
    xmlNodePtr c;

    for (c = parent ? parent->children : NULL; c; c = c->next)
        if (is_elem(c, local))
            return c;
    return NULL;
}

/* The text of a leaf element as a heap string; NULL when it holds an element or an entity
 * reference (nothing else is expected inside Route 53's leaves). */
static char *leaf_text(const xmlNode *n, int trim)
{
    struct buf b = {0};
    xmlNodePtr c;
    size_t start = 0, end;
    char *s;

    for (c = n->children; c; c = c->next) {
        if (c->type == XML_TEXT_NODE || c->type == XML_CDATA_SECTION_NODE) {
            if (c->content)
                buf_adds(&b, (const char *)c->content);
        } else if (c->type == XML_COMMENT_NODE || c->type == XML_PI_NODE) {
            continue;
        } else {
            buf_release(&b);
            return NULL;
        }
    }
    s = buf_detach(&b);
    if (trim) {
        end = strlen(s);
        while (end > 0 && isspace((unsigned char)s[end - 1]))
            end--;
        while (start < end && isspace((unsigned char)s[start]))
            start++;
        memmove(s, s + start, end - start);
        s[end - start] = '\0';
    }
    return s;
}

/* Parse decimal text into [0, max]. Returns 0 on success. */
static int parse_num(const char *s, long long max, long long *out)
{
    char *end;
    long long v;

    if (!s || !*s || !isdigit((unsigned char)*s))
        return -1;
    errno = 0;
    v = strtoll(s, &end, 10);
    if (errno || *end || v < 0 || v > max)
        return -1;
    *out = v;
    return 0;
}

static int parse_bool(const char *s, int *out)
{
    if (s && strcmp(s, "true") == 0)
        *out = 1;
    else if (s && strcmp(s, "false") == 0)
        *out = 0;
    else
        return -1;
    return 0;
}

/* Copy text into a fixed buffer; -1 when it does not fit. */
static int copy_fixed(char *dst, size_t n, const char *src)
{
    size_t l = strlen(src);

    if (l >= n)
        return -1;
    memcpy(dst, src, l + 1);
    return 0;
}

/* --- record set parsing ------------------------------------------------------------------- */

static const struct {
    const char *name;
    unsigned flag;
} flagged_elems[] = {
    {"GeoLocation", R53_RRSET_F_GEO},
    {"MultiValueAnswer", R53_RRSET_F_MULTIVALUE},
    {"TrafficPolicyInstanceId", R53_RRSET_F_TRAFFIC_POLICY},
    {"CidrRoutingConfig", R53_RRSET_F_CIDR},
    {"GeoProximityLocation", R53_RRSET_F_GEOPROXIMITY},
};

/* Set *dst (a parsed string field) from a leaf, once. */
static int take_leaf(const char **dst, const xmlNode *n, int trim)
{
    char *s = leaf_text(n, trim);

    if (!s)
        return -1;
    free((char *)*dst);
    *dst = s;
    return 0;
}

static int parse_values(struct r53_rrset *r, const xmlNode *list, char *detail, size_t dn)
{
    xmlNodePtr c, v;
    size_t cap = 0;
    char *s;

    for (c = list->children; c; c = c->next) {
        if (c->type != XML_ELEMENT_NODE)
            continue;
        if (!is_elem(c, "ResourceRecord") || !(v = child(c, "Value")) || !(s = leaf_text(v, 0))) {
            rc_detail(detail, dn,
                      "ResourceRecords holds something other than "
                      "ResourceRecord/Value text");
            return -1;
        }
        r->values = xgrow((void *)r->values, &cap, r->nvalues + 1, sizeof(*r->values));
        r->values[r->nvalues++] = s;
    }
    return 0;
}

static int parse_alias(struct r53_rrset *r, const xmlNode *n, char *detail, size_t dn)
{
    xmlNodePtr c;
    char *s;
    int rcv;

    r->flags |= R53_RRSET_F_ALIAS;
    for (c = n->children; c; c = c->next) {
        if (c->type != XML_ELEMENT_NODE)
            continue;
        if (is_elem(c, "HostedZoneId")) {
            if (take_leaf(&r->alias.hosted_zone_id, c, 1))
                goto bad;
        } else if (is_elem(c, "DNSName")) {
            if (take_leaf(&r->alias.dns_name, c, 1))
                goto bad;
            s = r53xml_decode_name(r->alias.dns_name);
            free((char *)r->alias.dns_name);
            r->alias.dns_name = s;
        } else if (is_elem(c, "EvaluateTargetHealth")) {
            s = leaf_text(c, 1);
            rcv = parse_bool(s, &r->alias.evaluate_target_health);
            free(s);
            if (rcv)
                goto bad;
        }
    }
    return 0;
bad:
    rc_detail(detail, dn, "malformed AliasTarget");
    return -1;
}

static int parse_rrset(const xmlNode *n, struct r53_rrset *r, char *detail, size_t dn)
{
    xmlNodePtr c;
    long long v;
    char *s;
    size_t i;
    int known;

    memset(r, 0, sizeof(*r));
    for (c = n->children; c; c = c->next) {
        if (c->type != XML_ELEMENT_NODE)
            continue;
        if (is_elem(c, "Name")) {
            if (!(s = leaf_text(c, 1)))
                goto bad_leaf;
            free((char *)r->name);
            r->name = r53xml_decode_name(s);
            free(s);
        } else if (is_elem(c, "Type")) {
            if (take_leaf(&r->type, c, 1))
                goto bad_leaf;
        } else if (is_elem(c, "SetIdentifier")) {
            if (take_leaf(&r->set_identifier, c, 0))
                goto bad_leaf;
        } else if (is_elem(c, "Weight")) {
            s = leaf_text(c, 1);
            if (parse_num(s, R53_MAX_WEIGHT, &v)) {
                rc_detail(detail, dn, "Weight '%.32s' is not 0..%d", s ? s : "", R53_MAX_WEIGHT);
                free(s);
                goto fail;
            }
            free(s);
            r->has_weight = 1;
            r->weight = (unsigned)v;
        } else if (is_elem(c, "TTL")) {
            s = leaf_text(c, 1);
            if (parse_num(s, R53_MAX_TTL, &v)) {
                rc_detail(detail, dn, "TTL '%.32s' is not 0..%ld", s ? s : "", R53_MAX_TTL);
                free(s);
                goto fail;
            }
            free(s);
            r->has_ttl = 1;
            r->ttl = (long)v;
        } else if (is_elem(c, "ResourceRecords")) {
            if (parse_values(r, c, detail, dn))
                goto fail;
        } else if (is_elem(c, "HealthCheckId")) {
            if (take_leaf(&r->health_check_id, c, 1))
                goto bad_leaf;
        } else if (is_elem(c, "Region")) {
            r->flags |= R53_RRSET_F_REGION;
            if (take_leaf(&r->region, c, 1))
                goto bad_leaf;
        } else if (is_elem(c, "Failover")) {
            r->flags |= R53_RRSET_F_FAILOVER;
            if (take_leaf(&r->failover, c, 1))
                goto bad_leaf;
        } else if (is_elem(c, "AliasTarget")) {
            if (parse_alias(r, c, detail, dn))
                goto fail;
        } else {
            known = 0;
            for (i = 0; i < sizeof(flagged_elems) / sizeof(flagged_elems[0]); i++) {
                if (is_elem(c, flagged_elems[i].name)) {
                    r->flags |= flagged_elems[i].flag;
                    known = 1;
                }
            }
            if (!known)
                r->flags |= R53_RRSET_F_UNKNOWN;
        }
    }
    if (!nonempty(r->name) || !nonempty(r->type)) {
        rc_detail(detail, dn, "ResourceRecordSet without Name or Type");
        goto fail;
    }
    return 0;

bad_leaf:
    rc_detail(detail, dn, "ResourceRecordSet/%s holds markup or an entity reference",
              (const char *)c->name);
fail:
    r53xml_rrset_release(r);
    return -1;
}

/* --- response parsers --------------------------------------------------------------------- */

static enum r53_change_status status_of(const char *s)
{
    if (strcmp(s, "PENDING") == 0)
        return R53_CHANGE_PENDING;
    if (strcmp(s, "INSYNC") == 0)
        return R53_CHANGE_INSYNC;
    return R53_CHANGE_UNKNOWN;
}

enum rc_code r53xml_parse_change_info(const char *xml, size_t len, struct r53_change_info *out,
                                      char *detail, size_t detail_len)
{
    struct r53_change_info ci;
    enum rc_code rc = RC_PARSE;
    xmlDocPtr doc = NULL;
    xmlNodePtr root, info, n;
    char *id = NULL, *status = NULL, *at = NULL, *comment = NULL;

    memset(out, 0, sizeof(*out));
    memset(&ci, 0, sizeof(ci));
    if (!(doc = parse_doc(xml, len, detail, detail_len)))
        goto out;
    root = xmlDocGetRootElement(doc);
    if (!is_elem(root, "ChangeResourceRecordSetsResponse") && !is_elem(root, "GetChangeResponse")) {
        rc_detail(detail, detail_len, "unexpected root element <%.64s>", (const char *)root->name);
        goto out;
    }
    if (!(info = child(root, "ChangeInfo"))) {
        rc_detail(detail, detail_len, "no ChangeInfo");
        goto out;
    }
    if (!(n = child(info, "Id")) || !(id = leaf_text(n, 1)) || !*id ||
        copy_fixed(ci.id, sizeof(ci.id), r53xml_strip_id_prefix(id)) || !ci.id[0]) {
        rc_detail(detail, detail_len, "ChangeInfo/Id missing, empty or too long");
        goto out;
    }
    if (!(n = child(info, "Status")) || !(status = leaf_text(n, 1)) ||
        copy_fixed(ci.status_text, sizeof(ci.status_text), status)) {
        rc_detail(detail, detail_len, "ChangeInfo/Status missing or too long");
        goto out;
    }
    ci.status = status_of(status);
    if ((n = child(info, "SubmittedAt")) &&
        (!(at = leaf_text(n, 1)) || copy_fixed(ci.submitted_at, sizeof(ci.submitted_at), at))) {
        rc_detail(detail, detail_len, "ChangeInfo/SubmittedAt malformed or too long");
        goto out;
    }
    if ((n = child(info, "Comment")) &&
        (!(comment = leaf_text(n, 0)) || copy_fixed(ci.comment, sizeof(ci.comment), comment))) {
        rc_detail(detail, detail_len, "ChangeInfo/Comment malformed or too long");
        goto out;
    }
    *out = ci;
    rc = RC_OK;
out:
    free(id);
    free(status);
    free(at);
    free(comment);
    if (doc)
        xmlFreeDoc(doc);
    return rc;
}

enum rc_code r53xml_parse_list_rrsets(const char *xml, size_t len, struct r53_rrset_page *out,
                                      char *detail, size_t detail_len)
{
    struct r53_rrset_page page;
    enum rc_code rc = RC_PARSE;
    xmlDocPtr doc = NULL;
    xmlNodePtr root, list, c, n;
    size_t cap = 0;
    long long v;
    char *s = NULL;

    memset(out, 0, sizeof(*out));
    memset(&page, 0, sizeof(page));
    if (!(doc = parse_doc(xml, len, detail, detail_len)))
        goto out;
    root = xmlDocGetRootElement(doc);
    if (!is_elem(root, "ListResourceRecordSetsResponse")) {
        rc_detail(detail, detail_len, "unexpected root element <%.64s>", (const char *)root->name);
        goto out;
    }
    if ((list = child(root, "ResourceRecordSets"))) {
        for (c = list->children; c; c = c->next) {
            if (c->type != XML_ELEMENT_NODE)
                continue;
            if (!is_elem(c, "ResourceRecordSet")) {
                rc_detail(detail, detail_len, "unexpected <%.64s> in ResourceRecordSets",
                          (const char *)c->name);
                goto out;
            }
            page.rrsets = xgrow(page.rrsets, &cap, page.n + 1, sizeof(*page.rrsets));
            if (parse_rrset(c, &page.rrsets[page.n], detail, detail_len))
                goto out;
            page.n++;
        }
    }
    if (!(n = child(root, "IsTruncated")) || !(s = leaf_text(n, 1)) ||
        parse_bool(s, &page.is_truncated)) {
        rc_detail(detail, detail_len, "IsTruncated missing or not true/false");
        goto out;
    }
    free(s);
    s = NULL;
    if ((n = child(root, "NextRecordName"))) {
        if (!(s = leaf_text(n, 1))) {
            rc_detail(detail, detail_len, "malformed NextRecordName");
            goto out;
        }
        page.next_name = r53xml_decode_name(s);
        free(s);
        s = NULL;
    }
    if ((n = child(root, "NextRecordType")) && take_leaf(&page.next_type, n, 1)) {
        rc_detail(detail, detail_len, "malformed NextRecordType");
        goto out;
    }
    if ((n = child(root, "NextRecordIdentifier")) && take_leaf(&page.next_identifier, n, 0)) {
        rc_detail(detail, detail_len, "malformed NextRecordIdentifier");
        goto out;
    }
    if (page.is_truncated && !nonempty(page.next_name)) {
        rc_detail(detail, detail_len, "IsTruncated is true but NextRecordName is missing");
        goto out;
    }
    if ((n = child(root, "MaxItems"))) {
        s = leaf_text(n, 1);
        if (parse_num(s, LONG_MAX, &v)) {
            rc_detail(detail, detail_len, "MaxItems is not a number");
            goto out;
        }
        page.max_items = (long)v;
    }
    *out = page;
    memset(&page, 0, sizeof(page));
    rc = RC_OK;
out:
    free(s);
    r53xml_page_release(&page);
    if (doc)
        xmlFreeDoc(doc);
    return rc;
}

enum rc_code r53xml_parse_hosted_zone(const char *xml, size_t len, struct r53_hosted_zone *out,
                                      char *detail, size_t detail_len)
{
    struct r53_hosted_zone hz;
    enum rc_code rc = RC_PARSE;
    xmlDocPtr doc = NULL;
    xmlNodePtr root, zone, n, cfg;
    char *id = NULL, *name = NULL, *dec = NULL, *s = NULL;
    long long v;

    memset(out, 0, sizeof(*out));
    memset(&hz, 0, sizeof(hz));
    if (!(doc = parse_doc(xml, len, detail, detail_len)))
        goto out;
    root = xmlDocGetRootElement(doc);
    if (!is_elem(root, "GetHostedZoneResponse")) {
        rc_detail(detail, detail_len, "unexpected root element <%.64s>", (const char *)root->name);
        goto out;
    }
    if (!(zone = child(root, "HostedZone"))) {
        rc_detail(detail, detail_len, "no HostedZone");
        goto out;
    }
    if (!(n = child(zone, "Id")) || !(id = leaf_text(n, 1)) ||
        copy_fixed(hz.id, sizeof(hz.id), r53xml_strip_id_prefix(id)) || !hz.id[0]) {
        rc_detail(detail, detail_len, "HostedZone/Id missing, empty or too long");
        goto out;
    }
    if (!(n = child(zone, "Name")) || !(name = leaf_text(n, 1)) || !*name ||
        copy_fixed(hz.name, sizeof(hz.name), (dec = r53xml_decode_name(name)))) {
        rc_detail(detail, detail_len, "HostedZone/Name missing, empty or too long");
        goto out;
    }
    if ((n = child(zone, "ResourceRecordSetCount"))) {
        s = leaf_text(n, 1);
        if (parse_num(s, LLONG_MAX, &v)) {
            rc_detail(detail, detail_len, "ResourceRecordSetCount is not a number");
            goto out;
        }
        hz.has_rrset_count = 1;
        hz.rrset_count = v;
        free(s);
        s = NULL;
    }
    if ((cfg = child(zone, "Config")) && (n = child(cfg, "PrivateZone"))) {
        s = leaf_text(n, 1);
        if (parse_bool(s, &hz.private_zone)) {
            rc_detail(detail, detail_len, "Config/PrivateZone is not true/false");
            goto out;
        }
    }
    *out = hz;
    rc = RC_OK;
out:
    free(id);
    free(name);
    free(dec);
    free(s);
    if (doc)
        xmlFreeDoc(doc);
    return rc;
}

/* --- errors ------------------------------------------------------------------------------- */

static const char *const errcode_names[R53_E__COUNT] = {
    [R53_E_NONE] = "none",
    [R53_E_THROTTLING] = "throttling",
    [R53_E_PRIOR_REQUEST_NOT_COMPLETE] = "prior-request-not-complete",
    [R53_E_INVALID_CHANGE_BATCH] = "invalid-change-batch",
    [R53_E_INVALID_INPUT] = "invalid-input",
    [R53_E_NO_SUCH_HOSTED_ZONE] = "no-such-hosted-zone",
    [R53_E_NO_SUCH_CHANGE] = "no-such-change",
    [R53_E_ACCESS_DENIED] = "access-denied",
    [R53_E_SIGNATURE_DOES_NOT_MATCH] = "signature-does-not-match",
    [R53_E_INVALID_CLIENT_TOKEN_ID] = "invalid-client-token-id",
    [R53_E_EXPIRED_TOKEN] = "expired-token",
    [R53_E_REQUEST_EXPIRED] = "request-expired",
    [R53_E_INVALID_SIGNATURE] = "invalid-signature",
    [R53_E_REQUEST_TIMEOUT] = "request-timeout",
    [R53_E_SERVICE] = "service-error",
    [R53_E_OTHER] = "other",
    [R53_E_HTTP] = "http",
    [R53_E_TRANSPORT] = "transport",
    [R53_E_TIMEOUT] = "timeout",
    [R53_E_BAD_RESPONSE] = "bad-response",
    [R53_E_CREDENTIALS] = "credentials",
    [R53_E_RATELIMIT] = "ratelimit",
    [R53_E_INVALID_ARGUMENT] = "invalid-argument",
};

const char *r53xml_errcode_name(enum r53_errcode code)
{
    if ((unsigned)code >= R53_E__COUNT || !errcode_names[code])
        return "unknown";
    return errcode_names[code];
}

static const struct {
    const char *code;
    enum r53_errcode kind;
} code_table[] = {
    /* botocore retries/standard.py and the SDKs' throttling code lists */
    {"Throttling", R53_E_THROTTLING},
    {"ThrottlingException", R53_E_THROTTLING},
    {"ThrottledException", R53_E_THROTTLING},
    {"RequestThrottledException", R53_E_THROTTLING},
    {"TooManyRequestsException", R53_E_THROTTLING},
    {"ProvisionedThroughputExceededException", R53_E_THROTTLING},
    {"RequestLimitExceeded", R53_E_THROTTLING},
    {"BandwidthLimitExceeded", R53_E_THROTTLING},
    {"RequestThrottled", R53_E_THROTTLING},
    {"SlowDown", R53_E_THROTTLING},
    {"PriorRequestNotComplete", R53_E_PRIOR_REQUEST_NOT_COMPLETE},
    {"InvalidChangeBatch", R53_E_INVALID_CHANGE_BATCH},
    {"InvalidInput", R53_E_INVALID_INPUT},
    {"NoSuchHostedZone", R53_E_NO_SUCH_HOSTED_ZONE},
    {"NoSuchChange", R53_E_NO_SUCH_CHANGE},
    {"AccessDenied", R53_E_ACCESS_DENIED},
    {"AccessDeniedException", R53_E_ACCESS_DENIED},
    {"SignatureDoesNotMatch", R53_E_SIGNATURE_DOES_NOT_MATCH},
    {"InvalidClientTokenId", R53_E_INVALID_CLIENT_TOKEN_ID},
    {"ExpiredToken", R53_E_EXPIRED_TOKEN},
    {"ExpiredTokenException", R53_E_EXPIRED_TOKEN},
    {"RequestExpired", R53_E_REQUEST_EXPIRED},
    {"InvalidSignature", R53_E_INVALID_SIGNATURE},
    {"InvalidSignatureException", R53_E_INVALID_SIGNATURE},
    {"RequestTimeout", R53_E_REQUEST_TIMEOUT},
    {"RequestTimeoutException", R53_E_REQUEST_TIMEOUT},
    {"InternalFailure", R53_E_SERVICE},
    {"InternalError", R53_E_SERVICE},
    {"ServiceUnavailable", R53_E_SERVICE},
};

enum r53_errcode r53xml_errcode_from(const char *code, const char *message)
{
    size_t i;

    if (message && strstr(message, "Rate exceeded"))
        return R53_E_THROTTLING;
    if (!code || !*code)
        return R53_E_NONE;
    for (i = 0; i < sizeof(code_table) / sizeof(code_table[0]); i++)
        if (strcmp(code, code_table[i].code) == 0)
            return code_table[i].kind;
    return R53_E_OTHER;
}

void r53xml_error_init(struct r53_error *err)
{
    memset(err, 0, sizeof(*err));
}

static void error_free_parsed(struct r53_error *err)
{
    size_t i;

    free(err->type);
    free(err->code);
    free(err->message);
    for (i = 0; i < err->nmessages; i++)
        free(err->messages[i]);
    free(err->messages);
    free(err->request_id);
    err->type = err->code = err->message = err->request_id = NULL;
    err->messages = NULL;
    err->nmessages = 0;
    err->kind = R53_E_NONE;
}

void r53xml_error_release(struct r53_error *err)
{
    if (!err)
        return;
    error_free_parsed(err);
    r53xml_error_init(err);
}

static void add_message(struct r53_error *err, size_t *cap, char *msg)
{
    err->messages = xgrow(err->messages, cap, err->nmessages + 1, sizeof(*err->messages));
    err->messages[err->nmessages++] = msg;
}

/*
 * Does a top-level ", " before p separate two messages? Messages start with a capital
 * ("Tried to ...", "RRSet with ...", "Invalid Resource Record ..."), but one message may
 * carry a capitalised field label after ", " as well: "RRSet with DNS name x. and type A,
 * SetIdentifier y cannot be created ...". A label is followed by a space, '=' or ':'.
 */
static int starts_message(const char *p)
{
    static const char *const labels[] = {"SetIdentifier", "Type",   "Name",          "TTL",
                                         "Weight",        "Region", "Failover",      "Value",
                                         "Action",        "Id",     "HealthCheckId", "DNS"};
    size_t n = 0;

    if (!isupper((unsigned char)*p))
        return 0;
    while (isalnum((unsigned char)p[n]))
        n++;
    if (p[n] != ' ' && p[n] != '=' && p[n] != ':')
        return 1;
    for (size_t i = 0; i < sizeof(labels) / sizeof(labels[0]); i++)
        if (strlen(labels[i]) == n && strncmp(p, labels[i], n) == 0)
            return 0;
    return 1;
}

/* Split "[m1, m2]" (see the header); otherwise the one message. */
static void split_bracketed(struct r53_error *err, size_t *cap, const char *msg)
{
    size_t len = strlen(msg), i, start;
    int depth = 0, whole = 0;

    if (len >= 2 && msg[0] == '[' && msg[len - 1] == ']') {
        /* is the first '[' closed only by the last ']'? */
        whole = 1;
        for (i = 0; i < len; i++) {
            if (msg[i] == '[')
                depth++;
            else if (msg[i] == ']' && --depth == 0 && i != len - 1) {
                whole = 0;
                break;
            }
        }
    }
    if (!whole) {
        add_message(err, cap, xstrdup(msg));
        return;
    }
    depth = 0;
    start = 1;
    for (i = 1; i < len - 1; i++) {
        if (msg[i] == '[')
            depth++;
        else if (msg[i] == ']')
            depth--;
        else if (depth == 0 && msg[i] == ',' && msg[i + 1] == ' ' && i + 2 < len - 1 &&
                 starts_message(msg + i + 2)) {
            add_message(err, cap, xstrndup(msg + start, i - start));
            start = i + 2;
            i++;
        }
    }
    add_message(err, cap, xstrndup(msg + start, len - 1 - start));
}

/* Read an optional leaf into *dst (trimmed). -1 when present but malformed. */
static int opt_leaf(const xmlNode *parent, const char *name, char **dst, int trim)
{
    xmlNodePtr n = child(parent, name);

    if (!n)
        return 0;
    free(*dst);
    *dst = leaf_text(n, trim);
    return *dst ? 0 : -1;
}

enum rc_code r53xml_parse_error(const char *xml, size_t len, struct r53_error *err)
{
    enum rc_code rc = RC_PARSE;
    xmlDocPtr doc = NULL;
    xmlNodePtr root, e, msgs, c;
    struct buf joined = {0};
    size_t cap = 0;
    char *s;

    error_free_parsed(err);
    if (!(doc = parse_doc(xml, len, NULL, 0)))
        goto out;
    root = xmlDocGetRootElement(doc);
    if (is_elem(root, "ErrorResponse") || is_elem(root, "Error")) {
        e = is_elem(root, "Error") ? root : child(root, "Error");
        if (!e)
            goto out;
        if (opt_leaf(e, "Type", &err->type, 1) || opt_leaf(e, "Code", &err->code, 1) ||
            opt_leaf(e, "Message", &err->message, 0) ||
            opt_leaf(root, "RequestId", &err->request_id, 1) ||
            (!err->request_id && opt_leaf(e, "RequestId", &err->request_id, 1)))
            goto out;
        if (!err->code)
            goto out;
        if (err->message) {
            if (strcmp(err->code, "InvalidChangeBatch") == 0)
                split_bracketed(err, &cap, err->message);
            else
                add_message(err, &cap, xstrdup(err->message));
        }
    } else if (is_elem(root, "InvalidChangeBatch")) {
        err->code = xstrdup("InvalidChangeBatch");
        if (opt_leaf(root, "RequestId", &err->request_id, 1) ||
            opt_leaf(root, "Message", &err->message, 0))
            goto out;
        if ((msgs = child(root, "Messages"))) {
            for (c = msgs->children; c; c = c->next) {
                if (c->type != XML_ELEMENT_NODE)
                    continue;
                if (!is_elem(c, "Message") || !(s = leaf_text(c, 0)))
                    goto out;
                add_message(err, &cap, s);
            }
        }
        if (!err->message && err->nmessages > 0) {
            for (size_t i = 0; i < err->nmessages; i++) {
                if (i)
                    buf_adds(&joined, "; ");
                buf_adds(&joined, err->messages[i]);
            }
            err->message = buf_detach(&joined);
        } else if (err->message && err->nmessages == 0) {
            add_message(err, &cap, xstrdup(err->message));
        }
    } else {
        goto out;
    }
    err->kind = r53xml_errcode_from(err->code, err->message);
    if (err->kind == R53_E_NONE)
        err->kind = R53_E_OTHER;
    rc = RC_OK;
out:
    if (rc != RC_OK)
        error_free_parsed(err);
    buf_release(&joined);
    if (doc)
        xmlFreeDoc(doc);
    return rc;
}

/* Does m start with prefix and end with suffix (a trailing '.' allowed)? */
static int framed_by(const char *m, const char *prefix, const char *suffix)
{
    size_t lm = strlen(m), lp = strlen(prefix), ls = strlen(suffix);

    if (lm && m[lm - 1] == '.')
        lm--;
    return lm >= lp + ls && strncmp(m, prefix, lp) == 0 && strncmp(m + lm - ls, suffix, ls) == 0;
}

int r53xml_message_is_cas_conflict(const char *m)
{
    /* The whole message, start to end: a message that merely contains these words (two
     * messages run together, say) is not a conflict. */
    return m && (framed_by(m, "Tried to delete resource record set",
                           "but the values provided do not match the current values") ||
                 framed_by(m, "Tried to delete resource record set", "but it was not found") ||
                 framed_by(m, "Tried to create resource record set", "but it already exists"));
}

int r53xml_message_is_ttl_conflict(const char *m)
{
    return m && framed_by(m, "RRSet with DNS name",
                          "cannot be created as weighted sets must contain the same TTL");
}

/* Copy s[0..n) into out[cap] as a string; 0 when it is empty or does not fit. */
static int take_field(const char *s, size_t n, char *out, size_t cap)
{
    if (n == 0 || n >= cap)
        return 0;
    memcpy(out, s, n);
    out[n] = '\0';
    return 1;
}

/* "[name='<n>', type='<t>'(, set-identifier='<id>')?]" at p (the current wording). */
static int bracketed_rrset(const char *p, struct r53_named_rrset *out)
{
    static const char sid_label[] = ", set-identifier='";
    const char *name, *name_end, *type, *type_end, *sid, *sid_end;

    if (strncmp(p, "[name='", 7) != 0)
        return 0;
    name = p + 7;
    if (!(name_end = strstr(name, "', type='")))
        return 0;
    type = name_end + 9;
    type_end = type + strcspn(type, "'");
    if (!*type_end || !take_field(name, (size_t)(name_end - name), out->name, sizeof(out->name)) ||
        !take_field(type, (size_t)(type_end - type), out->type, sizeof(out->type)))
        return 0;
    if (strcmp(type_end, "']") == 0 || strncmp(type_end, "'] ", 3) == 0)
        return 1;
    if (strncmp(type_end + 1, sid_label, sizeof(sid_label) - 1) != 0)
        return 0;
    sid = type_end + sizeof(sid_label);
    if (!(sid_end = strstr(sid, "'] ")) && !((sid_end = strstr(sid, "']")) && !sid_end[2]))
        return 0;
    out->has_set_identifier = 1;
    return take_field(sid, (size_t)(sid_end - sid), out->set_identifier,
                      sizeof(out->set_identifier));
}

/* "<n> type <t>, but ..." at p (the older wording). */
static int spelled_rrset(const char *p, struct r53_named_rrset *out)
{
    const char *type = strstr(p, " type "), *type_end;

    if (!type)
        return 0;
    type_end = type + 6 + strcspn(type + 6, ", ");
    return take_field(p, (size_t)(type - p), out->name, sizeof(out->name)) &&
           take_field(type + 6, (size_t)(type_end - type - 6), out->type, sizeof(out->type));
}

int r53xml_message_rrset(const char *m, struct r53_named_rrset *out)
{
    static const char ttl_head[] = "RRSet with DNS name ";
    static const char ttl_tail[] = " cannot be created as weighted sets must contain the same TTL";
    static const char *const tried[] = {"Tried to delete resource record set ",
                                        "Tried to create resource record set "};
    int ok = 0;

    memset(out, 0, sizeof(*out));
    if (!m)
        return 0;
    for (size_t i = 0; i < sizeof(tried) / sizeof(tried[0]) && !ok; i++) {
        size_t n = strlen(tried[i]);
        if (strncmp(m, tried[i], n) == 0)
            ok = m[n] == '[' ? bracketed_rrset(m + n, out) : spelled_rrset(m + n, out);
    }
    if (!ok && r53xml_message_is_ttl_conflict(m)) {
        /* "<n> and type <t>, SetIdentifier <id>" before the tail */
        const char *name = m + sizeof(ttl_head) - 1, *tail = strstr(name, ttl_tail);
        const char *type = strstr(name, " and type "), *sid = strstr(name, ", SetIdentifier ");
        ok = tail && type && sid && type < sid && sid < tail &&
             take_field(name, (size_t)(type - name), out->name, sizeof(out->name)) &&
             take_field(type + 10, (size_t)(sid - type - 10), out->type, sizeof(out->type)) &&
             take_field(sid + 16, (size_t)(tail - sid - 16), out->set_identifier,
                        sizeof(out->set_identifier));
        out->has_set_identifier = ok;
    }
    if (!ok)
        memset(out, 0, sizeof(*out));
    return ok;
}

int r53xml_error_is_cas_conflict(const struct r53_error *err)
{
    size_t i;

    if (!err || err->kind != R53_E_INVALID_CHANGE_BATCH || err->nmessages == 0)
        return 0;
    for (i = 0; i < err->nmessages; i++)
        if (!r53xml_message_is_cas_conflict(err->messages[i]) &&
            !r53xml_message_is_ttl_conflict(err->messages[i]))
            return 0;
    return 1;
}

int r53xml_error_is_throttle(const struct r53_error *err)
{
    return err &&
           (err->kind == R53_E_THROTTLING ||
            (err->http_status == 429 && (err->kind == R53_E_HTTP || err->kind == R53_E_OTHER)));
}

int r53xml_error_retryable(const struct r53_error *err)
{
    if (!err)
        return 0;
    switch (err->kind) {
    case R53_E_THROTTLING:
    case R53_E_PRIOR_REQUEST_NOT_COMPLETE:
    case R53_E_REQUEST_TIMEOUT:
    case R53_E_SERVICE:
    case R53_E_TRANSPORT:
    case R53_E_TIMEOUT: return 1;
    case R53_E_OTHER:
    case R53_E_HTTP:
        return err->http_status == 429 || err->http_status == 500 || err->http_status == 502 ||
               err->http_status == 503 || err->http_status == 504;
    default: return 0;
    }
}

char *r53xml_error_format(const struct r53_error *err, char *out, size_t n)
{
    /* code, message, transport and request_id come from the peer (or echo it): each goes
     * through log_quote so a line break or an escape sequence cannot forge a log line. */
    char q[600];
    int w;

    if (!out || n == 0)
        return out;
    w = snprintf(out, n, "kind=%s http=%d attempts=%u", r53xml_errcode_name(err->kind),
                 err->http_status, err->attempts);
    if (w >= 0 && (size_t)w < n && err->code)
        w += snprintf(out + w, n - (size_t)w, " code=%s", log_quote(err->code, q, sizeof(q)));
    if (w >= 0 && (size_t)w < n && err->message)
        w += snprintf(out + w, n - (size_t)w, " message=%s", log_quote(err->message, q, sizeof(q)));
    if (w >= 0 && (size_t)w < n && err->transport[0])
        w += snprintf(out + w, n - (size_t)w, " transport=%s",
                      log_quote(err->transport, q, sizeof(q)));
    if (w >= 0 && (size_t)w < n && err->timeout)
        w += snprintf(out + w, n - (size_t)w, " timeout=1");
    if (w >= 0 && (size_t)w < n && err->request_id)
        snprintf(out + w, n - (size_t)w, " request_id=%s",
                 log_quote(err->request_id, q, sizeof(q)));
    return out;
}
