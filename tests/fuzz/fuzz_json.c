/*
 * fuzz_json.c: the JSON request bodies of the bulk endpoints (POST, DELETE, PUT /backends):
 * {"backends": [ip, ...]} or a bare array, PUT also {"allow_empty": bool}.
 *
 * The validation lives in static functions of handlers/bulk.c, so this target repeats it in
 * terms of public jansson and util/ip.h (keep the two in step): json_loadb with
 * JSON_REJECT_DUPLICATES; an object with only "backends" (and, for PUT, a boolean
 * "allow_empty"), or a bare array; at most BULK_MAX_ITEMS items; every item a string that
 * ip_parse accepts; no address twice. A refusal renders the problem body the handler sends
 * (every bad item with its index, detail and the value cut to VALUE_ECHO_MAX bytes at a
 * character boundary) and serializes it. Everything is freed (LeakSanitizer checks).
 *
 * Invariants (abort() when broken):
 * - a refused item always has a detail; an accepted request has none;
 * - an accepted item formats back to exactly the JSON string (canonical form only);
 * - the echo of a refused string value, cut at VALUE_ECHO_MAX, is still valid UTF-8 (jansson
 *   accepts it) and no longer than the cap;
 * - the problem body serializes.
 */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz.h"
#include "util/ip.h"

#define BULK_MAX_ITEMS 10000 /* API_BULK_MAX_ITEMS in handlers/bulk.h */
#define VALUE_ECHO_MAX 64    /* handlers/bulk.c */

enum kind { K_REGISTER, K_DEREGISTER, K_REPLACE };

struct sorted {
    struct ip_addr ip;
    size_t index;
};

static int cmp_sorted(const void *a, const void *b)
{
    const struct sorted *x = a, *y = b;
    int c = ip_cmp(&x->ip, &y->ip);
    return c ? c : (x->index > y->index) - (x->index < y->index);
}

static json_t *echo_value(const json_t *v)
{
    const char *s = json_string_value(v);
    size_t n = json_string_length(v);
    json_t *e;

    if (!s)
        return NULL;
    if (n > VALUE_ECHO_MAX) {
        n = VALUE_ECHO_MAX;
        while (n && ((unsigned char)s[n] & 0xC0) == 0x80)
            n--;
    }
    e = json_stringn(s, n);
    if (!e) /* the cut split a character */
        abort();
    return e;
}

/* The items check; returns 0 when every item is usable. */
static int check_items(json_t *list)
{
    size_t n = json_array_size(list), nbad = 0, nsorted = 0;
    struct ip_addr *ips = calloc(n ? n : 1, sizeof(*ips));
    char **why = calloc(n ? n : 1, sizeof(*why));
    struct sorted *sorted = calloc(n ? n : 1, sizeof(*sorted));
    char detail[200];

    if (!ips || !why || !sorted)
        abort();
    for (size_t i = 0; i < n; i++) {
        json_t *v = json_array_get(list, i);
        if (!json_is_string(v)) {
            why[i] = strdup("not a string");
        } else if (ip_parse(json_string_value(v), json_string_length(v), &ips[i], detail,
                            sizeof(detail)) != RC_OK) {
            if (!detail[0])
                abort();
            why[i] = strdup(detail);
        } else {
            char text[IP_TEXT_MAX];
            ip_format(&ips[i], text);
            if (strlen(text) != json_string_length(v) || strcmp(text, json_string_value(v)))
                abort();
            sorted[nsorted].ip = ips[i];
            sorted[nsorted++].index = i;
            continue;
        }
        if (!why[i])
            abort();
    }
    qsort(sorted, nsorted, sizeof(*sorted), cmp_sorted);
    for (size_t k = 1, first = 0; k < nsorted; k++) {
        if (ip_cmp(&sorted[k].ip, &sorted[first].ip) != 0) {
            first = k;
            continue;
        }
        snprintf(detail, sizeof(detail), "duplicate of item %zu", sorted[first].index);
        why[sorted[k].index] = strdup(detail);
        if (!why[sorted[k].index])
            abort();
    }
    for (size_t i = 0; i < n; i++)
        nbad += why[i] != NULL;
    if (nbad) {
        json_t *errors = json_array(), *body;
        char *text;
        for (size_t i = 0; i < n; i++) {
            json_t *e, *val;
            if (!why[i])
                continue;
            e = json_pack("{s:I, s:s}", "index", (json_int_t)i, "detail", why[i]);
            if (!e)
                abort();
            val = echo_value(json_array_get(list, i));
            if (val) {
                if (json_string_length(val) > VALUE_ECHO_MAX)
                    abort();
                json_object_set_new(e, "value", val);
            }
            json_array_append_new(errors, e);
        }
        body = json_pack("{s:s, s:i, s:o}", "title", "Invalid IP", "status", 400, "errors", errors);
        text = body ? json_dumps(body, JSON_COMPACT) : NULL;
        if (!text)
            abort();
        free(text);
        json_decref(body);
    }
    for (size_t i = 0; i < n; i++)
        free(why[i]);
    free(why);
    free(sorted);
    free(ips);
    return nbad ? -1 : 0;
}

/* The request check of one endpoint kind on a parsed root; 0 when accepted. */
static int check_request(json_t *root, enum kind kind)
{
    json_t *list = NULL;
    int allow_empty = 0;

    if (json_is_array(root)) {
        list = root;
    } else if (json_is_object(root)) {
        const char *key;
        json_t *v;
        json_object_foreach(root, key, v)
        {
            if (!strcmp(key, "backends")) {
                list = v;
            } else if (kind == K_REPLACE && !strcmp(key, "allow_empty")) {
                if (!json_is_boolean(v))
                    return -1;
                allow_empty = json_is_true(v);
            } else {
                char detail[320];
                snprintf(detail, sizeof(detail), "unknown member \"%.64s\"", key);
                return -1;
            }
        }
        if (!json_is_array(list))
            return -1;
    } else {
        return -1;
    }
    if (json_array_size(list) > BULK_MAX_ITEMS)
        return -1;
    if (check_items(list))
        return -1;
    if (kind == K_REPLACE && json_array_size(list) == 0 && !allow_empty)
        return -1;
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    json_error_t err;
    json_t *root;
    char detail[320];

    if (size == 0)
        return 0; /* the handler refuses an empty body before parsing */
    root = json_loadb((const char *)data, size, JSON_REJECT_DUPLICATES, &err);
    if (!root) {
        snprintf(detail, sizeof(detail), "malformed JSON at line %d, column %d: %s", err.line,
                 err.column, err.text);
        if (!memchr(err.text, '\0', sizeof(err.text)))
            abort();
        return 0;
    }
    (void)check_request(root, K_REGISTER);
    (void)check_request(root, K_DEREGISTER);
    (void)check_request(root, K_REPLACE);
    json_decref(root);
    return 0;
}
