/*
 * fuzz_xml.c: the Route 53 response parsers of aws/route53_xml.h on arbitrary bytes (every
 * parser on every input: the root element decides which one accepts it), then the helpers
 * that consume their results, and r53xml_decode_name on a NUL-terminated copy.
 *
 * Everything parsed is released, so LeakSanitizer checks the error paths too.
 * Invariants (abort() when broken):
 * - fixed-size results are NUL-terminated inside their arrays; a failed parse leaves them
 *   zeroed and the page/error empty;
 * - a parsed page has rrsets iff n > 0, each with a name and a type; a truncated page has a
 *   next name;
 * - a parsed error has a kind other than R53_E_NONE, a code, and messages iff nmessages > 0;
 * - decode_name never grows its input and never yields an empty string from a non-empty one.
 */
#include <stdlib.h>
#include <string.h>

#include "aws/route53_xml.h"
#include "fuzz.h"

#define TERMINATED(a) (memchr((a), '\0', sizeof(a)) != NULL)

static int all_zero(const void *p, size_t n)
{
    const unsigned char *c = p;
    for (size_t i = 0; i < n; i++)
        if (c[i])
            return 0;
    return 1;
}

static void change_info(const char *xml, size_t len)
{
    struct r53_change_info ci;
    char detail[256] = "";

    memset(&ci, 0, sizeof(ci));
    if (r53xml_parse_change_info(xml, len, &ci, detail, sizeof(detail)) == RC_OK) {
        if (!TERMINATED(ci.id) || !TERMINATED(ci.status_text) || !TERMINATED(ci.submitted_at) ||
            !TERMINATED(ci.comment) || ci.id[0] == '\0')
            abort();
    } else if (!TERMINATED(detail)) {
        abort();
    }
}

static void hosted_zone(const char *xml, size_t len)
{
    struct r53_hosted_zone hz;
    char detail[256] = "";

    memset(&hz, 0, sizeof(hz));
    if (r53xml_parse_hosted_zone(xml, len, &hz, detail, sizeof(detail)) == RC_OK) {
        if (!TERMINATED(hz.id) || !TERMINATED(hz.name) || hz.id[0] == '\0' ||
            (hz.has_rrset_count && hz.rrset_count < 0))
            abort();
        (void)r53xml_strip_id_prefix(hz.id);
    } else if (!TERMINATED(detail)) {
        abort();
    }
}

/* Feed parsed records back through the request side: the size rules and the builder. */
static void rebuild(const struct r53_rrset_page *page)
{
    struct r53_change *changes = calloc(page->n ? page->n : 1, sizeof(*changes));
    struct r53_batch_size size;
    char *xml = NULL, detail[256] = "";
    size_t xlen = 0;

    if (!changes)
        abort();
    for (size_t i = 0; i < page->n; i++) {
        changes[i].action = (enum r53_action)(i % 3);
        changes[i].rrset = &page->rrsets[i];
        (void)r53xml_rrset_is_weighted(&page->rrsets[i]);
    }
    r53xml_batch_size(changes, page->n, &size);
    (void)r53xml_batch_size_fits(&size);
    if (page->n && r53xml_build_change_batch(changes, page->n, NULL, &xml, &xlen, detail,
                                             sizeof(detail)) == RC_OK) {
        if (!xml || strlen(xml) != xlen)
            abort();
    } else if (xml) {
        abort();
    }
    free(xml);
    free(changes);
}

static void list_rrsets(const char *xml, size_t len)
{
    struct r53_rrset_page page;
    char detail[256] = "";

    memset(&page, 0, sizeof(page));
    if (r53xml_parse_list_rrsets(xml, len, &page, detail, sizeof(detail)) == RC_OK) {
        if ((page.n == 0) != (page.rrsets == NULL) || (page.is_truncated && !page.next_name) ||
            page.max_items < 0)
            abort();
        for (size_t i = 0; i < page.n; i++) {
            const struct r53_rrset *r = &page.rrsets[i];
            if (!r->name || !r->type || (r->nvalues && !r->values) ||
                (r->has_weight && r->weight > R53_MAX_WEIGHT) ||
                (r->has_ttl && (r->ttl < 0 || r->ttl > R53_MAX_TTL)))
                abort();
            for (size_t k = 0; k < r->nvalues; k++)
                if (!r->values[k])
                    abort();
        }
        rebuild(&page);
    } else if (!all_zero(&page, sizeof(page)) || !TERMINATED(detail)) {
        abort();
    }
    r53xml_page_release(&page);
    if (!all_zero(&page, sizeof(page)))
        abort();
}

static void error_doc(const char *xml, size_t len)
{
    struct r53_error err;
    char line[512];

    r53xml_error_init(&err);
    err.http_status = 400;
    if (r53xml_parse_error(xml, len, &err) == RC_OK) {
        if (err.kind == R53_E_NONE || err.kind >= R53_E__COUNT || !err.code ||
            (err.nmessages == 0) != (err.messages == NULL) || err.http_status != 400)
            abort();
        for (size_t i = 0; i < err.nmessages; i++) {
            if (!err.messages[i])
                abort();
            (void)r53xml_message_is_cas_conflict(err.messages[i]);
        }
        (void)r53xml_error_is_cas_conflict(&err);
        (void)r53xml_error_is_throttle(&err);
        (void)r53xml_error_retryable(&err);
        (void)r53xml_errcode_name(err.kind);
        r53xml_error_format(&err, line, sizeof(line));
        if (!TERMINATED(line))
            abort();
        r53xml_error_format(&err, line, 7); /* truncated mid-field */
        if (memchr(line, '\0', 7) == NULL)
            abort();
    } else if (err.code || err.message || err.messages || err.type || err.request_id ||
               err.kind != R53_E_NONE) {
        abort();
    }
    /* parsing again into the same value releases the old content first */
    (void)r53xml_parse_error(xml, len, &err);
    r53xml_error_release(&err);
}

static void decode_name(const uint8_t *data, size_t size)
{
    char *name = malloc(size + 1), *out;

    if (!name)
        abort();
    memcpy(name, data, size);
    name[size] = '\0';
    out = r53xml_decode_name(name);
    if (!out || strlen(out) > strlen(name) || (name[0] && !out[0]))
        abort();
    (void)r53xml_strip_id_prefix(name);
    free(out);
    free(name);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *xml = (const char *)data;

    change_info(xml, size);
    list_rrsets(xml, size);
    hosted_zone(xml, size);
    error_doc(xml, size);
    decode_name(data, size);
    return 0;
}
