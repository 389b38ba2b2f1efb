/*
 * credentials.c: the AWS credential chain (contract: credentials.h). awscred_provider_create()
 * walks the sources in SDK order once, remembers which one answered and how to ask it again;
 * awscred_get() hands out copies and re-asks that source ahead of expiration.
 *
 * Invariants:
 * - Resolution stops at the first source that is configured: found credentials win, and a
 *   configured source that fails (half-set environment, STS refusal, unsupported profile form,
 *   container endpoint error) is an error, not a reason to fall through to a later source with
 *   other permissions. Sources that are not configured are skipped with a note; the notes make
 *   up the detail when nothing answers. IMDS is never "configured": its failure is a note.
 * - Everything read from the environment is captured at create time; files (web identity
 *   token, container authorization token) are re-read on every refresh because they rotate.
 * - Every buffer holding a secret (response bodies, token files, request bodies, header lists,
 *   credential strings) is wiped before it is released. Secrets never reach a log or a detail.
 *   A struct buf that may hold a secret never grows by realloc (that would leave an unwiped
 *   copy): it is sized once with buf_reserve() and released with buf_wipe().
 * - Every HTTP response is capped at RESPONSE_CAP bytes; files at FILE_CAP.
 *
 * Threading: the provider's configuration is immutable after create. The current credentials
 * and the refresh state are guarded by one mutex, held across the refresh's network I/O so
 * concurrent callers wait for one refresh instead of starting their own. libcurl easy handles
 * are per call (CURLOPT_NOSIGNAL); curl_global_init (thread-safe since 7.84) and
 * xmlInitParser run in create.
 */
#include "aws/credentials.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <curl/curl.h>
#include <jansson.h>
#include <libxml/parser.h>
#include <libxml/tree.h>
#include <openssl/crypto.h>

#include "util/buf.h"
#include "util/log.h"
#include "util/rc.h"
#include "util/xalloc.h"

#define RESPONSE_CAP (64 * 1024)
#define FILE_CAP (1024 * 1024)
#define DEFAULT_TIMEOUT_MS 5000u
#define IMDS_TIMEOUT_MS 1000u
#define IMDS_CONNECT_MS 1000L
#define DEFAULT_REFRESH_AHEAD_S 300u
#define IMDS_TOKEN_TTL "21600"
#define STS_NS "https://sts.amazonaws.com/doc/2011-06-15/"
#define DEFAULT_STS "https://sts.amazonaws.com"
#define DEFAULT_CONTAINER_HOST "http://169.254.170.2"
#define DEFAULT_IMDS "http://169.254.169.254"
#define DEFAULT_IMDS_V6 "http://[fd00:ec2::254]"

static char *free_secret_str(char *s)
{
    if (s)
        xfree_secret(s, strlen(s) + 1);
    return NULL;
}

/* --- small parsers ------------------------------------------------------------------------ */

static int is_space(char c)
{
    return c == ' ' || c == '\t' || c == '\r' || c == '\n' || c == '\f' || c == '\v';
}

/* Trim s[0..*n) in place: returns the new start, *n the new length. */
static const char *trim(const char *s, size_t *n)
{
    while (*n && is_space(*s)) {
        s++;
        (*n)--;
    }
    while (*n && is_space(s[*n - 1]))
        (*n)--;
    return s;
}

static int parse_digits(const char **s, int count, int *out)
{
    int v = 0;
    for (int i = 0; i < count; i++) {
        char c = (*s)[i];
        if (c < '0' || c > '9')
            return -1;
        v = v * 10 + (c - '0');
    }
    *s += count;
    *out = v;
    return 0;
}

/* ISO 8601 / RFC 3339 date-time into UTC seconds: "YYYY-MM-DDTHH:MM:SS" then optional
 * fractional seconds (ignored), then "Z", "+HH:MM", "+HHMM", "+HH" (or '-'); no zone is UTC.
 * 't', 'z' and ' ' as separator are accepted. Returns 0 on success. */
static int parse_iso8601(const char *s, time_t *out)
{
    struct tm tm;
    int y, mo, d, h, mi, sec, off = 0;
    time_t t;

    if (!s)
        return -1;
    memset(&tm, 0, sizeof(tm));
    while (is_space(*s))
        s++;
    if (parse_digits(&s, 4, &y) || *s++ != '-' || parse_digits(&s, 2, &mo) || *s++ != '-' ||
        parse_digits(&s, 2, &d))
        return -1;
    if (*s != 'T' && *s != 't' && *s != ' ')
        return -1;
    s++;
    if (parse_digits(&s, 2, &h) || *s++ != ':' || parse_digits(&s, 2, &mi) || *s++ != ':' ||
        parse_digits(&s, 2, &sec))
        return -1;
    if (*s == '.' || *s == ',') {
        s++;
        if (*s < '0' || *s > '9')
            return -1;
        while (*s >= '0' && *s <= '9')
            s++;
    }
    if (*s == 'Z' || *s == 'z') {
        s++;
    } else if (*s == '+' || *s == '-') {
        int sign = *s++ == '-' ? -1 : 1, oh, om = 0;
        if (parse_digits(&s, 2, &oh))
            return -1;
        if (*s == ':')
            s++;
        if (*s >= '0' && *s <= '9' && parse_digits(&s, 2, &om))
            return -1;
        if (oh > 23 || om > 59)
            return -1;
        off = sign * (oh * 3600 + om * 60);
    }
    while (is_space(*s))
        s++;
    if (*s)
        return -1;
    if (mo < 1 || mo > 12 || d < 1 || d > 31 || h > 23 || mi > 59 || sec > 60)
        return -1;
    tm.tm_year = y - 1900;
    tm.tm_mon = mo - 1;
    tm.tm_mday = d;
    tm.tm_hour = h;
    tm.tm_min = mi;
    tm.tm_sec = sec;
    t = timegm(&tm);
    if (t == (time_t)-1)
        return -1;
    *out = t - off;
    return 0;
}

static void format_time(time_t t, char out[32])
{
    struct tm tm;
    gmtime_r(&t, &tm);
    strftime(out, 32, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

/* --- files -------------------------------------------------------------------------------- */

/* read_file()'s *err_no for a path that is not a regular file. */
#define ERR_NOT_REGULAR (-1)

/* Read a whole regular file (at most cap bytes) into a NUL-terminated buffer sized once, so a
 * secret content is wiped by buf_wipe. Opened with O_NONBLOCK and checked with fstat() before
 * any read: a FIFO, socket or device (a FIFO at ~/.aws/config would block the start forever) is
 * refused with *err_no = ERR_NOT_REGULAR. On other errors *err_no is errno (EFBIG when too
 * large). */
static enum rc_code read_file(const char *path, size_t cap, struct buf *out, int *err_no)
{
    int fd = -1;
    enum rc_code rc = RC_OK;
    size_t n = 0;
    struct stat st;

    memset(out, 0, sizeof(*out));
    *err_no = 0;
    fd = open(path, O_RDONLY | O_NONBLOCK | O_NOCTTY | O_CLOEXEC);
    if (fd < 0) {
        *err_no = errno;
        rc = RC_IO;
        goto out;
    }
    if (fstat(fd, &st) != 0) {
        *err_no = errno;
        rc = RC_IO;
        goto out;
    }
    if (!S_ISREG(st.st_mode)) {
        *err_no = ERR_NOT_REGULAR;
        rc = RC_IO;
        goto out;
    }
    buf_reserve(out, cap + 2);
    while (n <= cap) {
        ssize_t r = read(fd, out->p + n, cap + 1 - n);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0) {
            *err_no = errno ? errno : EIO;
            rc = RC_IO;
            goto out;
        }
        if (r == 0)
            break;
        n += (size_t)r;
    }
    if (n > cap) {
        *err_no = EFBIG;
        rc = RC_IO;
        goto out;
    }
    out->len = n;
    out->p[n] = '\0';
out:
    if (fd >= 0)
        close(fd);
    if (rc)
        buf_wipe(out);
    return rc;
}

static const char *errno_text(int e)
{
    if (e == ERR_NOT_REGULAR)
        return "not a regular file (a FIFO, socket or device is never read)";
    return e == EFBIG ? "file too large" : strerror(e);
}

/* "~/x" expands with home; other paths are copied. */
static char *expand_home(const char *path, const char *home)
{
    struct buf b = {0};
    if (path[0] == '~' && (path[1] == '/' || path[1] == '\0') && home) {
        buf_adds(&b, home);
        buf_adds(&b, path + 1);
        return b.p;
    }
    return xstrdup(path);
}

/* Read a token file: trimmed of surrounding whitespace, non-empty, no CR/LF inside.
 * The token is a secret: release it with free_secret_str(). */
static enum rc_code read_token_file(const char *what, const char *path, char **token,
                                    struct buf *err)
{
    struct buf data = {0};
    enum rc_code rc;
    int e;
    size_t n;
    const char *s;

    *token = NULL;
    rc = read_file(path, RESPONSE_CAP, &data, &e);
    if (rc) {
        buf_addf(err, "%s %s: %s", what, path, errno_text(e));
        goto out;
    }
    n = data.len;
    s = trim(data.p, &n);
    if (n == 0 || memchr(s, '\n', n) || memchr(s, '\r', n) || memchr(s, '\0', n)) {
        buf_addf(err, "%s %s: %s", what, path, n ? "holds line breaks or NUL" : "empty");
        rc = RC_PARSE;
        goto out;
    }
    *token = xstrndup(s, n);
out:
    buf_wipe(&data);
    return rc;
}

/* --- HTTP --------------------------------------------------------------------------------- */

struct http_reply {
    long status;
    struct buf body; /* sized once to RESPONSE_CAP + 1: may hold secrets */
    int too_big;
};

static size_t on_write(char *ptr, size_t size, size_t nmemb, void *ud)
{
    struct http_reply *r = ud;
    size_t n = size * nmemb;

    if (r->body.len + n > RESPONSE_CAP) {
        r->too_big = 1;
        return 0;
    }
    memcpy(r->body.p + r->body.len, ptr, n);
    r->body.len += n;
    r->body.p[r->body.len] = '\0';
    return n;
}

static void http_reply_release(struct http_reply *r)
{
    buf_wipe(&r->body);
    r->status = 0;
    r->too_big = 0;
}

/* The host of url (lowercase, IPv6 without brackets) or NULL when it does not parse. */
static char *url_host(const char *url)
{
    CURLU *u = curl_url();
    char *host = NULL, *out = NULL;

    if (!u)
        goto out;
    if (curl_url_set(u, CURLUPART_URL, url, 0) != CURLUE_OK ||
        curl_url_get(u, CURLUPART_HOST, &host, 0) != CURLUE_OK)
        goto out;
    if (host[0] == '[') {
        size_t n = strlen(host);
        out = xstrndup(host + 1, n >= 2 && host[n - 1] == ']' ? n - 2 : n - 1);
    } else {
        out = xstrdup(host);
    }
    for (char *c = out; *c; c++)
        *c = (char)tolower((unsigned char)*c);
out:
    curl_free(host);
    curl_url_cleanup(u);
    return out;
}

static int host_is_loopback(const char *host)
{
    struct in_addr a4;
    struct in6_addr a6;

    if (!strcmp(host, "localhost"))
        return 1;
    if (inet_pton(AF_INET, host, &a4) == 1)
        return (ntohl(a4.s_addr) >> 24) == 127;
    if (inet_pton(AF_INET6, host, &a6) == 1)
        return IN6_IS_ADDR_LOOPBACK(&a6);
    return 0;
}

/* Loopback or link-local metadata hosts: never through a proxy. */
static int host_is_local(const char *host)
{
    struct in_addr a4;
    struct in6_addr a6;

    if (host_is_loopback(host))
        return 1;
    if (inet_pton(AF_INET, host, &a4) == 1)
        return (ntohl(a4.s_addr) >> 16) == 0xa9fe; /* 169.254/16 */
    if (inet_pton(AF_INET6, host, &a6) == 1)
        return IN6_IS_ADDR_LINKLOCAL(&a6) || !strncmp(host, "fd00:ec2::", 10);
    return 0;
}

struct http_call {
    const char *method; /* "GET", "PUT", "POST" */
    const char *url;
    const char *const *headers; /* "Name: value", NULL-terminated; may hold secrets */
    const char *body;           /* NULL: none; may hold secrets */
    unsigned timeout_ms;
    long connect_ms;
};

/* Perform one request. RC_OK means an HTTP response arrived (any status, in r->status);
 * RC_UNAVAILABLE a transport failure, RC_PARSE a body over RESPONSE_CAP, both with err. */
static enum rc_code http_do(const struct http_call *hc, struct http_reply *r, struct buf *err)
{
    CURL *h = NULL;
    struct curl_slist *hdrs = NULL;
    char errbuf[CURL_ERROR_SIZE] = "";
    char *host = NULL;
    enum rc_code rc = RC_OK;
    CURLcode cc;

    memset(r, 0, sizeof(*r));
    buf_reserve(&r->body, RESPONSE_CAP + 1);
    h = curl_easy_init();
    if (!h) {
        buf_addf(err, "%s: curl_easy_init failed", hc->url);
        rc = RC_INTERNAL;
        goto out;
    }
    for (const char *const *p = hc->headers; p && *p; p++) {
        struct curl_slist *n = curl_slist_append(hdrs, *p);
        if (!n) {
            buf_addf(err, "%s: out of memory", hc->url);
            rc = RC_INTERNAL;
            goto out;
        }
        hdrs = n;
    }
    if (hc->body) {
        /* curl adds "Content-Type: application/x-www-form-urlencoded" to POSTFIELDS
         * requests; STS wants exactly that, PUT gets none. */
        if (strcmp(hc->method, "POST") != 0) {
            struct curl_slist *n = curl_slist_append(hdrs, "Content-Type:");
            if (n)
                hdrs = n;
        }
        curl_easy_setopt(h, CURLOPT_POSTFIELDS, hc->body);
        curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE, (long)strlen(hc->body));
    }
    if (strcmp(hc->method, "GET") != 0 && strcmp(hc->method, "POST") != 0)
        curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, hc->method);
    curl_easy_setopt(h, CURLOPT_URL, hc->url);
    curl_easy_setopt(h, CURLOPT_HTTPHEADER, hdrs);
    curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(h, CURLOPT_FOLLOWLOCATION, 0L);
    curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, (long)hc->timeout_ms);
    curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS, hc->connect_ms);
    curl_easy_setopt(h, CURLOPT_MAXFILESIZE, (long)RESPONSE_CAP);
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_write);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, r);
    curl_easy_setopt(h, CURLOPT_ERRORBUFFER, errbuf);
    curl_easy_setopt(h, CURLOPT_USERAGENT, "r53reg/" R53REG_VERSION);
    host = url_host(hc->url);
    if (host && host_is_local(host))
        curl_easy_setopt(h, CURLOPT_NOPROXY, "*");

    cc = curl_easy_perform(h);
    if (r->too_big || cc == CURLE_FILESIZE_EXCEEDED) {
        buf_addf(err, "%s: response larger than %d bytes", hc->url, RESPONSE_CAP);
        rc = RC_PARSE;
        goto out;
    }
    if (cc != CURLE_OK) {
        buf_addf(err, "%s: %s", hc->url, errbuf[0] ? errbuf : curl_easy_strerror(cc));
        rc = cc == CURLE_OPERATION_TIMEDOUT ? RC_UPSTREAM_TIMEOUT : RC_UNAVAILABLE;
        goto out;
    }
    curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &r->status);
out:
    for (struct curl_slist *n = hdrs; n; n = n->next)
        OPENSSL_cleanse(n->data, strlen(n->data));
    curl_slist_free_all(hdrs);
    if (h)
        curl_easy_cleanup(h);
    free(host);
    if (rc)
        http_reply_release(r);
    return rc;
}

/* application/x-www-form-urlencoded value: everything but unreserved percent-encoded. */
static void add_form(struct buf *b, const char *s)
{
    static const char hex[] = "0123456789ABCDEF";
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (isalnum(c) || c == '-' || c == '_' || c == '.' || c == '~') {
            buf_add(b, (const char *)&c, 1);
        } else {
            char esc[3] = {'%', hex[c >> 4], hex[c & 15]};
            buf_add(b, esc, 3);
        }
    }
}

/* --- credentials -------------------------------------------------------------------------- */

/* The field of (akid, secret, token) that holds a control character (CR, LF, any byte below
 * 0x20, DEL), or NULL. The key id and the session token become request headers: a CR/LF
 * there would split a header in two on every signed request. */
static const char *cred_field_with_control(const char *akid, const char *secret, const char *token,
                                           const char *const names[3])
{
    const char *v[3] = {akid, secret, token};
    for (int i = 0; i < 3; i++)
        for (const unsigned char *p = (const unsigned char *)v[i]; p && *p; p++)
            if (*p < 0x20 || *p == 0x7f)
                return names[i];
    return NULL;
}

/* Refuse credentials with a control character: the error names the source (what) and the
 * field, never the value. */
static enum rc_code cred_check(const char *what, const char *akid, const char *secret,
                               const char *token, const char *const names[3], struct buf *err)
{
    const char *bad = cred_field_with_control(akid, secret, token, names);
    if (!bad)
        return RC_OK;
    buf_addf(err,
             "%s: %s holds a control character (refused: it would corrupt the signed "
             "requests' headers)",
             what, bad);
    return RC_PARSE;
}

static void cred_set(struct awscred *c, const char *akid, const char *secret, const char *token,
                     time_t expiration, const char *source)
{
    awscred_release(c);
    c->access_key_id = xstrdup(akid);
    c->secret_access_key = xstrdup(secret);
    c->session_token = token && *token ? xstrdup(token) : NULL;
    c->expiration = expiration;
    c->source = source;
}

void awscred_release(struct awscred *c)
{
    if (!c)
        return;
    c->access_key_id = free_secret_str(c->access_key_id);
    c->secret_access_key = free_secret_str(c->secret_access_key);
    c->session_token = free_secret_str(c->session_token);
    c->expiration = 0;
    c->source = NULL;
}

/* Checks shared by every source that returns temporary credentials. */
static enum rc_code check_expiration(const char *what, const char *exp_text, time_t *exp,
                                     struct buf *err)
{
    if (parse_iso8601(exp_text, exp)) {
        buf_addf(err, "%s: Expiration is not an ISO 8601 time", what);
        return RC_PARSE;
    }
    if (*exp <= time(NULL)) {
        char when[32];
        format_time(*exp, when);
        buf_addf(err, "%s: credentials already expired (Expiration %s)", what, when);
        return RC_UPSTREAM;
    }
    return RC_OK;
}

/* --- JSON (container, IMDS) --------------------------------------------------------------- */

static const char *json_str(json_t *obj, const char *key)
{
    json_t *v = json_object_get(obj, key);
    return json_is_string(v) ? json_string_value(v) : NULL;
}

/* Wipe the string values of obj (jansson owns them; json_decref does not clear them). */
static void json_wipe(json_t *obj)
{
    const char *key;
    json_t *v;

    json_object_foreach(obj, key, v)
    {
        if (json_is_string(v))
            OPENSSL_cleanse((char *)json_string_value(v), json_string_length(v));
    }
}

static const char *const json_names[3] = {"AccessKeyId", "SecretAccessKey", "Token"};

/* {"AccessKeyId","SecretAccessKey","Token","Expiration"} (IMDS adds "Code": "Success"). */
static enum rc_code parse_json_creds(const char *what, const struct http_reply *r, int imds,
                                     const char *source, struct awscred *out, struct buf *err)
{
    json_error_t jerr;
    json_t *root = NULL;
    enum rc_code rc = RC_OK;
    const char *akid, *secret, *token, *exp_text;
    time_t exp = 0;

    root = json_loadb(r->body.p, r->body.len, 0, &jerr);
    if (!root || !json_is_object(root)) {
        buf_addf(err, "%s: reply is not a JSON object (HTTP %ld)", what, r->status);
        rc = RC_PARSE;
        goto out;
    }
    if (imds) {
        const char *code = json_str(root, "Code");
        if (!code || strcmp(code, "Success") != 0) {
            const char *msg = json_str(root, "Message");
            char qc[128], qm[512];
            buf_addf(err, "%s: Code %s%s%s", what,
                     code ? log_quote(code, qc, sizeof(qc)) : "missing", msg ? ": " : "",
                     msg ? log_quote(msg, qm, sizeof(qm)) : "");
            rc = RC_UPSTREAM;
            goto out;
        }
    }
    akid = json_str(root, "AccessKeyId");
    secret = json_str(root, "SecretAccessKey");
    token = json_str(root, "Token");
    exp_text = json_str(root, "Expiration");
    if (!akid || !*akid || !secret || !*secret || !token || !*token || !exp_text) {
        buf_addf(err, "%s: reply lacks %s", what,
                 !akid || !*akid       ? "AccessKeyId"
                 : !secret || !*secret ? "SecretAccessKey"
                 : !token || !*token   ? "Token"
                                       : "Expiration");
        rc = RC_PARSE;
        goto out;
    }
    rc = cred_check(what, akid, secret, token, json_names, err);
    if (rc)
        goto out;
    rc = check_expiration(what, exp_text, &exp, err);
    if (rc)
        goto out;
    cred_set(out, akid, secret, token, exp, source);
out:
    if (root) {
        json_wipe(root);
        json_decref(root);
    }
    return rc;
}

/* --- XML (STS) ---------------------------------------------------------------------------- */

static xmlNode *xml_child(xmlNode *parent, const char *name)
{
    for (xmlNode *c = parent ? parent->children : NULL; c; c = c->next) {
        if (c->type == XML_ELEMENT_NODE && !strcmp((const char *)c->name, name))
            return c;
    }
    return NULL;
}

/* Trimmed text of an element as a heap string, or NULL when absent. The copies libxml2
 * made are wiped unless they live in the document's dictionary (shared, never secrets). */
static char *xml_text(xmlDoc *doc, xmlNode *n)
{
    xmlChar *t;
    char *out;
    size_t len;
    const char *s;

    if (!n)
        return NULL;
    t = xmlNodeGetContent(n);
    if (!t)
        return NULL;
    len = strlen((const char *)t);
    s = trim((const char *)t, &len);
    out = xstrndup(s, len);
    OPENSSL_cleanse(t, strlen((const char *)t));
    xmlFree(t);
    for (xmlNode *c = n->children; c; c = c->next) {
        if (c->type == XML_TEXT_NODE && c->content &&
            !(doc->dict && xmlDictOwns(doc->dict, c->content)))
            OPENSSL_cleanse(c->content, strlen((const char *)c->content));
    }
    return out;
}

static enum rc_code parse_sts_reply(const char *what, const struct http_reply *r,
                                    struct awscred *out, struct buf *err)
{
    xmlDoc *doc = NULL;
    xmlNode *root, *creds;
    char *akid = NULL, *secret = NULL, *token = NULL, *exp_text = NULL;
    enum rc_code rc = RC_OK;
    time_t exp = 0;

    doc = xmlReadMemory(r->body.p, (int)r->body.len, "sts.xml", NULL,
                        XML_PARSE_NONET | XML_PARSE_NOERROR | XML_PARSE_NOWARNING);
    root = doc ? xmlDocGetRootElement(doc) : NULL;
    if (!root) {
        buf_addf(err, "%s: HTTP %ld, reply is not XML", what, r->status);
        rc = RC_PARSE;
        goto out;
    }
    if (!strcmp((const char *)root->name, "ErrorResponse")) {
        xmlNode *e = xml_child(root, "Error");
        char *code = xml_text(doc, xml_child(e, "Code"));
        char *msg = xml_text(doc, xml_child(e, "Message"));
        char qc[128], qm[512];
        buf_addf(err, "%s: HTTP %ld %s%s%s", what, r->status,
                 code ? log_quote(code, qc, sizeof(qc)) : "(no Code)", msg ? ": " : "",
                 msg ? log_quote(msg, qm, sizeof(qm)) : "");
        free(code);
        free(msg);
        rc = RC_UPSTREAM;
        goto out;
    }
    if (r->status != 200) {
        buf_addf(err, "%s: HTTP %ld", what, r->status);
        rc = RC_UPSTREAM;
        goto out;
    }
    if (strcmp((const char *)root->name, "AssumeRoleWithWebIdentityResponse") != 0 || !root->ns ||
        !root->ns->href || strcmp((const char *)root->ns->href, STS_NS) != 0) {
        buf_addf(err, "%s: unexpected reply <%s> (want AssumeRoleWithWebIdentityResponse in %s)",
                 what, (const char *)root->name, STS_NS);
        rc = RC_PARSE;
        goto out;
    }
    creds = xml_child(xml_child(root, "AssumeRoleWithWebIdentityResult"), "Credentials");
    akid = xml_text(doc, xml_child(creds, "AccessKeyId"));
    secret = xml_text(doc, xml_child(creds, "SecretAccessKey"));
    token = xml_text(doc, xml_child(creds, "SessionToken"));
    exp_text = xml_text(doc, xml_child(creds, "Expiration"));
    if (!akid || !*akid || !secret || !*secret || !token || !*token || !exp_text) {
        buf_addf(err, "%s: reply lacks Credentials/%s", what,
                 !creds                ? "" /* whole element */
                 : !akid || !*akid     ? "AccessKeyId"
                 : !secret || !*secret ? "SecretAccessKey"
                 : !token || !*token   ? "SessionToken"
                                       : "Expiration");
        rc = RC_PARSE;
        goto out;
    }
    {
        static const char *const names[3] = {
            "Credentials/AccessKeyId", "Credentials/SecretAccessKey", "Credentials/SessionToken"};
        rc = cred_check(what, akid, secret, token, names, err);
        if (rc)
            goto out;
    }
    rc = check_expiration(what, exp_text, &exp, err);
    if (rc)
        goto out;
    cred_set(out, akid, secret, token, exp, "web-identity");
out:
    free(akid);
    free_secret_str(secret);
    free_secret_str(token);
    free(exp_text);
    if (doc)
        xmlFreeDoc(doc);
    return rc;
}

/* --- the provider ------------------------------------------------------------------------- */

enum source_kind { SRC_STATIC, SRC_WEB_IDENTITY, SRC_CONTAINER, SRC_IMDS };

struct awscred_provider {
    /* Configuration: immutable after create. */
    enum source_kind kind;
    char *token_file, *role_arn, *session_name, *sts_url; /* web identity */
    char *container_url, *container_auth_file;            /* container */
    char *container_auth;                                 /* container; secret */
    char *imds_url;
    unsigned timeout_ms, imds_timeout_ms;
    time_t refresh_ahead;

    pthread_mutex_t lock;
    /* guarded by lock */
    struct awscred cur;
    enum rc_code warned; /* kind of the refresh failure last logged; RC_OK after a success */
};

/* Environment value, NULL when unset or empty. */
static const char *env_get(const struct awscred_options *o, const char *name)
{
    const char *v = o->getenv ? o->getenv(name) : getenv(name);
    return v && *v ? v : NULL;
}

static char *strip_slash(const char *s)
{
    size_t n = strlen(s);
    while (n && s[n - 1] == '/')
        n--;
    return xstrndup(s, n);
}

/* STS endpoint: option, AWS_ENDPOINT_URL_STS, the regional endpoint of AWS_REGION /
 * AWS_DEFAULT_REGION (what current SDKs default to), else the global one. */
static char *sts_url(const struct awscred_options *o)
{
    const char *v = o->sts_endpoint ? o->sts_endpoint : env_get(o, "AWS_ENDPOINT_URL_STS");
    const char *region = env_get(o, "AWS_REGION");
    struct buf b = {0};

    if (v)
        return strip_slash(v);
    if (!region)
        region = env_get(o, "AWS_DEFAULT_REGION");
    if (region && strspn(region, "abcdefghijklmnopqrstuvwxyz0123456789-") == strlen(region)) {
        buf_addf(&b, "https://sts.%s.amazonaws.com%s", region,
                 !strncmp(region, "cn-", 3) ? ".cn" : "");
        return b.p;
    }
    return xstrdup(DEFAULT_STS);
}

static enum rc_code fetch_web_identity(const struct awscred_provider *p, struct awscred *out,
                                       struct buf *err)
{
    char *token = NULL;
    struct buf body = {0}, url = {0};
    struct http_reply r = {0};
    static const char *const headers[] = {"Accept: text/xml", NULL};
    struct http_call hc;
    enum rc_code rc;

    rc = read_token_file("token file", p->token_file, &token, err);
    if (rc)
        goto out;
    /* sized once: the body holds the token */
    buf_reserve(&body, 256 + 3 * (strlen(p->role_arn) + strlen(p->session_name) + strlen(token)));
    buf_adds(&body, "Action=AssumeRoleWithWebIdentity&Version=2011-06-15&RoleArn=");
    add_form(&body, p->role_arn);
    buf_adds(&body, "&RoleSessionName=");
    add_form(&body, p->session_name);
    buf_adds(&body, "&WebIdentityToken=");
    add_form(&body, token);
    buf_addf(&url, "%s/", p->sts_url);

    memset(&hc, 0, sizeof(hc));
    hc.method = "POST";
    hc.url = url.p;
    hc.headers = headers;
    hc.body = body.p;
    hc.timeout_ms = p->timeout_ms;
    hc.connect_ms = (long)p->timeout_ms;
    rc = http_do(&hc, &r, err);
    if (rc) {
        struct buf e = {0};
        buf_addf(&e, "STS %s", buf_str(err));
        buf_release(err);
        *err = e;
        goto out;
    }
    rc = parse_sts_reply("STS AssumeRoleWithWebIdentity", &r, out, err);
out:
    free_secret_str(token);
    buf_wipe(&body);
    buf_release(&url);
    http_reply_release(&r);
    return rc;
}

static enum rc_code fetch_container(const struct awscred_provider *p, struct awscred *out,
                                    struct buf *err)
{
    char *token = NULL;
    struct buf auth = {0};
    struct http_reply r = {0};
    const char *headers[3] = {"Accept: application/json", NULL, NULL};
    struct http_call hc;
    enum rc_code rc = RC_OK;
    const char *tok;

    if (p->container_auth_file) {
        rc = read_token_file("authorization token file", p->container_auth_file, &token, err);
        if (rc)
            goto out;
    }
    tok = token ? token : p->container_auth;
    if (tok) {
        if (strchr(tok, '\n') || strchr(tok, '\r')) {
            buf_adds(err, "authorization token holds line breaks");
            rc = RC_CONFIG;
            goto out;
        }
        buf_reserve(&auth, strlen(tok) + 32);
        buf_adds(&auth, "Authorization: ");
        buf_adds(&auth, tok);
        headers[1] = auth.p;
    }
    memset(&hc, 0, sizeof(hc));
    hc.method = "GET";
    hc.url = p->container_url;
    hc.headers = headers;
    hc.timeout_ms = p->timeout_ms;
    hc.connect_ms = (long)p->timeout_ms;
    rc = http_do(&hc, &r, err);
    if (rc)
        goto out;
    if (r.status != 200) {
        json_t *j = json_loadb(r.body.p, r.body.len, 0, NULL);
        const char *msg = json_is_object(j) ? json_str(j, "message") : NULL;
        if (!msg && json_is_object(j))
            msg = json_str(j, "Message");
        char qm[512];
        buf_addf(err, "%s: HTTP %ld%s%s", p->container_url, r.status, msg ? ": " : "",
                 msg ? log_quote(msg, qm, sizeof(qm)) : "");
        if (j) {
            json_wipe(j);
            json_decref(j);
        }
        rc = RC_UPSTREAM;
        goto out;
    }
    rc = parse_json_creds(p->container_url, &r, 0, "container", out, err);
out:
    free_secret_str(token);
    buf_wipe(&auth);
    http_reply_release(&r);
    return rc;
}

static enum rc_code fetch_imds(const struct awscred_provider *p, struct awscred *out,
                               struct buf *err)
{
    struct buf url = {0}, tokhdr = {0};
    struct http_reply r = {0};
    const char *headers[2] = {NULL, NULL};
    struct http_call hc;
    char *role = NULL;
    enum rc_code rc;
    size_t n;
    const char *s;

    memset(&hc, 0, sizeof(hc));
    hc.timeout_ms = p->imds_timeout_ms;
    hc.connect_ms =
        IMDS_CONNECT_MS < (long)p->imds_timeout_ms ? IMDS_CONNECT_MS : (long)p->imds_timeout_ms;
    hc.headers = headers;

    /* 1. session token */
    buf_addf(&url, "%s/latest/api/token", p->imds_url);
    headers[0] = "X-aws-ec2-metadata-token-ttl-seconds: " IMDS_TOKEN_TTL;
    hc.method = "PUT";
    hc.url = url.p;
    hc.body = "";
    rc = http_do(&hc, &r, err);
    if (rc)
        goto out;
    n = r.body.len;
    s = trim(r.body.p, &n);
    if (r.status != 200 || n == 0 || memchr(s, '\n', n) || memchr(s, '\r', n)) {
        buf_addf(err, "%s: HTTP %ld%s", url.p, r.status, r.status == 200 ? ", bad token" : "");
        rc = RC_UPSTREAM;
        goto out;
    }
    buf_reserve(&tokhdr, n + 64);
    buf_adds(&tokhdr, "X-aws-ec2-metadata-token: ");
    buf_add(&tokhdr, s, n);
    http_reply_release(&r);
    headers[0] = tokhdr.p;
    hc.method = "GET";
    hc.body = NULL;

    /* 2. role name: the first line */
    url.len = 0;
    buf_addf(&url, "%s/latest/meta-data/iam/security-credentials/", p->imds_url);
    hc.url = url.p;
    rc = http_do(&hc, &r, err);
    if (rc)
        goto out;
    s = r.body.p;
    n = strcspn(s, "\r\n");
    s = trim(s, &n);
    if (r.status == 404 || (r.status == 200 && n == 0)) {
        buf_addf(err, "%s: no IAM role attached to the instance (HTTP %ld)", url.p, r.status);
        rc = RC_UPSTREAM;
        goto out;
    }
    if (r.status != 200) {
        buf_addf(err, "%s: HTTP %ld", url.p, r.status);
        rc = RC_UPSTREAM;
        goto out;
    }
    role = xstrndup(s, n);
    for (const char *c = role; *c; c++) {
        if (!isalnum((unsigned char)*c) && !strchr("+=,.@_-", *c)) {
            buf_addf(err, "%s: malformed role name", url.p);
            rc = RC_PARSE;
            goto out;
        }
    }
    http_reply_release(&r);

    /* 3. the role's credentials */
    url.len = 0;
    buf_addf(&url, "%s/latest/meta-data/iam/security-credentials/%s", p->imds_url, role);
    hc.url = url.p;
    rc = http_do(&hc, &r, err);
    if (rc)
        goto out;
    if (r.status != 200) {
        buf_addf(err, "%s: HTTP %ld", url.p, r.status);
        rc = RC_UPSTREAM;
        goto out;
    }
    rc = parse_json_creds(url.p, &r, 1, "imds", out, err);
out:
    buf_release(&url);
    buf_wipe(&tokhdr);
    free(role);
    http_reply_release(&r);
    return rc;
}

static enum rc_code fetch(const struct awscred_provider *p, struct awscred *out, struct buf *err)
{
    switch (p->kind) {
    case SRC_WEB_IDENTITY: return fetch_web_identity(p, out, err);
    case SRC_CONTAINER: return fetch_container(p, out, err);
    case SRC_IMDS: return fetch_imds(p, out, err);
    case SRC_STATIC: break;
    }
    buf_adds(err, "static credentials cannot be refreshed");
    return RC_INTERNAL;
}

/* --- resolution --------------------------------------------------------------------------- */

enum try_result {
    TRY_FOUND, /* p->cur holds credentials */
    TRY_NEXT,  /* not configured (or IMDS failed): note appended, ask the next source */
    TRY_FAIL   /* configured but failed: note appended, stop */
};

static void note(struct buf *notes, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void note(struct buf *notes, const char *fmt, ...)
{
    va_list ap;
    char tmp[1024];

    va_start(ap, fmt);
    vsnprintf(tmp, sizeof(tmp), fmt, ap);
    va_end(ap);
    if (notes->len)
        buf_adds(notes, "; ");
    buf_adds(notes, tmp);
}

/* Fetch once at create time for a refreshable source. */
static enum try_result first_fetch(struct awscred_provider *p, const char *label, struct buf *notes,
                                   enum try_result on_error)
{
    struct buf err = {0};
    enum rc_code rc = fetch(p, &p->cur, &err);

    if (rc)
        note(notes, "%s: %s", label, buf_str(&err));
    buf_release(&err);
    return rc ? on_error : TRY_FOUND;
}

/* Static keys from the environment or a shared file; label and names say where they came
 * from in a refusal. */
static enum try_result try_static(struct awscred_provider *p, const char *akid, const char *secret,
                                  const char *token, const char *source, const char *label,
                                  const char *const names[3], struct buf *notes)
{
    struct buf err = {0};

    if (cred_check(label, akid, secret, token, names, &err)) {
        note(notes, "%s", buf_str(&err));
        buf_release(&err);
        return TRY_FAIL;
    }
    p->kind = SRC_STATIC;
    cred_set(&p->cur, akid, secret, token, 0, source);
    return TRY_FOUND;
}

static enum try_result try_env(const struct awscred_options *o, struct awscred_provider *p,
                               struct buf *notes)
{
    const char *akid = env_get(o, "AWS_ACCESS_KEY_ID");
    const char *secret = env_get(o, "AWS_SECRET_ACCESS_KEY");

    if (!akid && !secret) {
        note(notes, "environment: AWS_ACCESS_KEY_ID not set");
        return TRY_NEXT;
    }
    if (!akid || !secret) {
        note(notes, "environment: %s is set but %s is not",
             akid ? "AWS_ACCESS_KEY_ID" : "AWS_SECRET_ACCESS_KEY",
             akid ? "AWS_SECRET_ACCESS_KEY" : "AWS_ACCESS_KEY_ID");
        return TRY_FAIL;
    }
    {
        static const char *const names[3] = {"AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY",
                                             "AWS_SESSION_TOKEN"};
        return try_static(p, akid, secret, env_get(o, "AWS_SESSION_TOKEN"), "environment",
                          "environment", names, notes);
    }
}

static char *default_session_name(void)
{
    struct buf b = {0};
    buf_addf(&b, "r53reg-%lld", (long long)time(NULL));
    return b.p;
}

static enum try_result setup_web_identity(const struct awscred_options *o,
                                          struct awscred_provider *p, const char *label,
                                          const char *token_file, const char *role_arn,
                                          const char *session_name, const char *home,
                                          struct buf *notes)
{
    p->kind = SRC_WEB_IDENTITY;
    p->token_file = expand_home(token_file, home);
    p->role_arn = xstrdup(role_arn);
    p->session_name = session_name ? xstrdup(session_name) : default_session_name();
    p->sts_url = sts_url(o);
    return first_fetch(p, label, notes, TRY_FAIL);
}

static enum try_result try_web_identity(const struct awscred_options *o, struct awscred_provider *p,
                                        const char *home, struct buf *notes)
{
    const char *file = env_get(o, "AWS_WEB_IDENTITY_TOKEN_FILE");
    const char *role = env_get(o, "AWS_ROLE_ARN");

    if (!file) {
        note(notes, "web identity: AWS_WEB_IDENTITY_TOKEN_FILE not set%s",
             role ? " (AWS_ROLE_ARN is)" : "");
        return TRY_NEXT;
    }
    if (!role) {
        note(notes, "web identity: AWS_WEB_IDENTITY_TOKEN_FILE is set but AWS_ROLE_ARN is not");
        return TRY_FAIL;
    }
    return setup_web_identity(o, p, "web identity", file, role, env_get(o, "AWS_ROLE_SESSION_NAME"),
                              home, notes);
}

/* --- shared files: a small INI reader ----------------------------------------------------- */

struct ini_kv {
    char *key; /* lowercased */
    char *value;
};

struct ini_section {
    char *name; /* profile name */
    struct ini_kv *kv;
    size_t nkv, cap;
};

struct ini {
    struct ini_section *s;
    size_t n, cap;
};

static struct ini_section *ini_find(const struct ini *ini, const char *name)
{
    for (size_t i = 0; i < ini->n; i++) {
        if (!strcmp(ini->s[i].name, name))
            return &ini->s[i];
    }
    return NULL;
}

/* The last value of key in sec, or NULL. */
static const char *ini_get(const struct ini_section *sec, const char *key)
{
    for (size_t i = sec ? sec->nkv : 0; i > 0; i--) {
        if (!strcmp(sec->kv[i - 1].key, key))
            return sec->kv[i - 1].value;
    }
    return NULL;
}

static void ini_release(struct ini *ini)
{
    for (size_t i = 0; i < ini->n; i++) {
        for (size_t k = 0; k < ini->s[i].nkv; k++) {
            free(ini->s[i].kv[k].key);
            free_secret_str(ini->s[i].kv[k].value);
        }
        free(ini->s[i].kv);
        free(ini->s[i].name);
    }
    free(ini->s);
    memset(ini, 0, sizeof(*ini));
}

/* The profile a section header names, or NULL for sections that are not profiles. In the
 * credentials file "[name]" is the profile; in the config file "[profile name]" and
 * "[default]" are (so "[sso-session x]", "[services x]" and bare "[x]" are not). */
static char *section_profile(const char *s, size_t n, int config)
{
    s = trim(s, &n);
    if (!config)
        return n ? xstrndup(s, n) : NULL;
    if (n == 7 && !memcmp(s, "default", 7))
        return xstrdup("default");
    if (n > 8 && !memcmp(s, "profile", 7) && (s[7] == ' ' || s[7] == '\t')) {
        s += 8;
        n -= 8;
        s = trim(s, &n);
        return n ? xstrndup(s, n) : NULL;
    }
    return NULL;
}

/* Parse INI text: "[section]" lines, "key = value" (or "key: value") lines, full-line comments
 * starting with '#' or ';', inline comments starting with whitespace then '#' or ';'. Keys are
 * lowercased; repeated sections merge. A line indented deeper than the key before it continues
 * that key's value (a nested block such as "s3 =\n  max_concurrent_requests = 10") and is
 * ignored, as the AWS CLI reads those. */
static void ini_parse(const char *text, int config, struct ini *ini)
{
    struct ini_section *cur = NULL;
    size_t cur_idx = 0;
    long key_indent = -1;
    const char *line = text;

    memset(ini, 0, sizeof(*ini));
    while (*line) {
        size_t len = strcspn(line, "\n");
        const char *next = line + len + (line[len] == '\n');
        size_t indent = 0, n;
        const char *s;

        while (indent < len && (line[indent] == ' ' || line[indent] == '\t'))
            indent++;
        n = len;
        s = trim(line, &n);
        if (n == 0 || *s == '#' || *s == ';')
            goto next_line;
        if (*s == '[') {
            const char *close = memchr(s, ']', n);
            char *name;
            key_indent = -1;
            cur = NULL;
            if (!close)
                goto next_line;
            name = section_profile(s + 1, (size_t)(close - s - 1), config);
            if (!name)
                goto next_line;
            cur = ini_find(ini, name);
            if (cur) {
                free(name);
            } else {
                ini->s = xgrow(ini->s, &ini->cap, ini->n + 1, sizeof(*ini->s));
                cur = &ini->s[ini->n++];
                memset(cur, 0, sizeof(*cur));
                cur->name = name;
            }
            cur_idx = (size_t)(cur - ini->s);
            goto next_line;
        }
        if (!cur)
            goto next_line;
        cur = &ini->s[cur_idx];
        if (key_indent >= 0 && (long)indent > key_indent)
            goto next_line; /* continuation of the previous key */
        {
            size_t klen = strcspn(s, "=:");
            size_t vlen;
            const char *v;
            if (klen >= n)
                goto next_line; /* not a key line */
            v = s + klen + 1;
            vlen = n - klen - 1;
            for (size_t i = 1; i < vlen; i++) {
                if ((v[i] == '#' || v[i] == ';') && (v[i - 1] == ' ' || v[i - 1] == '\t')) {
                    vlen = i;
                    break;
                }
            }
            v = trim(v, &vlen);
            s = trim(s, &klen);
            if (klen == 0)
                goto next_line;
            cur->kv = xgrow(cur->kv, &cur->cap, cur->nkv + 1, sizeof(*cur->kv));
            cur->kv[cur->nkv].key = xstrndup(s, klen);
            for (char *c = cur->kv[cur->nkv].key; *c; c++)
                *c = (char)tolower((unsigned char)*c);
            cur->kv[cur->nkv].value = xstrndup(v, vlen);
            cur->nkv++;
            key_indent = (long)indent;
        }
    next_line:
        line = next;
    }
}

/* home + suffix, or NULL without a home. */
static char *home_path(const char *home, const char *suffix)
{
    struct buf b = {0};
    if (!home)
        return NULL;
    buf_addf(&b, "%s%s", home, suffix);
    return b.p;
}

/* Read and parse one shared file. Returns 0 when parsed; otherwise *why says why not. */
static int shared_file_load(const char *path, int config, struct ini *ini, char *why, size_t n)
{
    struct buf data = {0};
    int e;

    memset(ini, 0, sizeof(*ini));
    if (read_file(path, FILE_CAP, &data, &e)) {
        snprintf(why, n, "%s", e == ENOENT ? "not found" : errno_text(e));
        return -1;
    }
    ini_parse(data.p, config, ini);
    buf_wipe(&data);
    return 0;
}

/* Profile settings the chain does not implement; reported instead of silently ignored. */
static const char *const unsupported_keys[] = {
    "role_arn",           "source_profile", "credential_source",
    "credential_process", "sso_start_url",  "sso_session",
    "sso_account_id",     "sso_role_name",  NULL};

static enum try_result try_shared_files(const struct awscred_options *o, struct awscred_provider *p,
                                        const char *home, struct buf *notes)
{
    const char *profile = env_get(o, "AWS_PROFILE");
    int explicit_profile = profile != NULL;
    const char *cred_env = env_get(o, "AWS_SHARED_CREDENTIALS_FILE");
    const char *conf_env = env_get(o, "AWS_CONFIG_FILE");
    char *cred_path = NULL, *conf_path = NULL;
    struct ini cred_ini = {0}, conf_ini = {0};
    char cred_why[128] = "", conf_why[128] = "";
    const struct ini_section *cs = NULL, *fs = NULL, *keys;
    enum try_result tr = TRY_NEXT;
    struct buf unsupported = {0};
    const char *role, *wif;

    if (!profile)
        profile = "default";
    if (!cred_env && !conf_env && !home) {
        note(notes, "shared files: HOME not set");
        goto out;
    }
    cred_path = cred_env ? expand_home(cred_env, home) : home_path(home, "/.aws/credentials");
    conf_path = conf_env ? expand_home(conf_env, home) : home_path(home, "/.aws/config");

    if (!cred_path)
        snprintf(cred_why, sizeof(cred_why), "HOME not set");
    else if (!shared_file_load(cred_path, 0, &cred_ini, cred_why, sizeof(cred_why)))
        cs = ini_find(&cred_ini, profile);
    if (!conf_path)
        snprintf(conf_why, sizeof(conf_why), "HOME not set");
    else if (!shared_file_load(conf_path, 1, &conf_ini, conf_why, sizeof(conf_why)))
        fs = ini_find(&conf_ini, profile);

    if (!cs && !fs) {
        note(notes, "shared files: %s: %s%s%s, %s: %s%s%s", cred_path ? cred_path : "credentials",
             cred_why[0] ? cred_why : "no profile '", cred_why[0] ? "" : profile,
             cred_why[0] ? "" : "'", conf_path ? conf_path : "config",
             conf_why[0] ? conf_why : "no profile '", conf_why[0] ? "" : profile,
             conf_why[0] ? "" : "'");
        if (explicit_profile) {
            note(notes, "shared files: AWS_PROFILE '%s' does not exist", profile);
            tr = TRY_FAIL;
        }
        goto out;
    }

    /* Role settings come first (as in the SDKs, where assume-role providers precede plain
     * keys); the credentials file's values win over the config file's. */
    role = ini_get(cs, "role_arn") ? ini_get(cs, "role_arn") : ini_get(fs, "role_arn");
    wif = ini_get(cs, "web_identity_token_file") ? ini_get(cs, "web_identity_token_file")
                                                 : ini_get(fs, "web_identity_token_file");
    if (role && wif && !ini_get(cs, "source_profile") && !ini_get(fs, "source_profile") &&
        !ini_get(cs, "credential_source") && !ini_get(fs, "credential_source")) {
        const char *sess = ini_get(cs, "role_session_name") ? ini_get(cs, "role_session_name")
                                                            : ini_get(fs, "role_session_name");
        char label[160];
        snprintf(label, sizeof(label), "shared files: profile '%s' web identity", profile);
        tr = setup_web_identity(o, p, label, wif, role, sess, home, notes);
        goto out;
    }
    for (const char *const *k = unsupported_keys; *k; k++) {
        if (ini_get(cs, *k) || ini_get(fs, *k))
            buf_addf(&unsupported, "%s%s", unsupported.len ? ", " : "", *k);
    }
    if (unsupported.len) {
        note(notes,
             "shared files: profile '%s' uses %s, which r53reg does not support (use "
             "static keys, web identity, container or instance credentials)",
             profile, buf_str(&unsupported));
        tr = TRY_FAIL;
        goto out;
    }

    keys =
        cs && (ini_get(cs, "aws_access_key_id") || ini_get(cs, "aws_secret_access_key")) ? cs : fs;
    {
        const char *akid = ini_get(keys, "aws_access_key_id");
        const char *secret = ini_get(keys, "aws_secret_access_key");
        const char *path = keys == cs ? cred_path : conf_path;
        if (!akid && !secret) {
            note(notes, "shared files: profile '%s' has no credentials", profile);
            goto out;
        }
        if (!akid || !*akid || !secret || !*secret) {
            note(notes, "shared files: %s: profile '%s' has %s but no %s", path, profile,
                 akid && *akid ? "aws_access_key_id" : "aws_secret_access_key",
                 akid && *akid ? "aws_secret_access_key" : "aws_access_key_id");
            tr = TRY_FAIL;
            goto out;
        }
        static const char *const names[3] = {"aws_access_key_id", "aws_secret_access_key",
                                             "aws_session_token"};
        char label[1200];
        snprintf(label, sizeof(label), "shared files: %s: profile '%s'", path, profile);
        tr = try_static(p, akid, secret, ini_get(keys, "aws_session_token"), "shared-file", label,
                        names, notes);
    }
out:
    buf_release(&unsupported);
    ini_release(&cred_ini);
    ini_release(&conf_ini);
    free(cred_path);
    free(conf_path);
    return tr;
}

/* --- container and IMDS ------------------------------------------------------------------- */

/* FULL_URI rule of the SDKs: https anywhere; http only to loopback or the ECS / EKS Pod
 * Identity agent addresses. */
static int full_uri_allowed(const char *url, const char **why)
{
    char *host = url_host(url);
    int ok = 0;

    if (!host) {
        *why = "is not a URL";
    } else if (!strncasecmp(url, "https://", 8)) {
        ok = 1;
    } else if (strncasecmp(url, "http://", 7) != 0) {
        *why = "must be http or https";
    } else if (host_is_loopback(host) || !strcmp(host, "169.254.170.2") ||
               !strcmp(host, "169.254.170.23") || !strcmp(host, "fd00:ec2::23")) {
        ok = 1;
    } else {
        *why = "uses http to a host other than loopback, 169.254.170.2, 169.254.170.23 or "
               "[fd00:ec2::23] (use https)";
    }
    free(host);
    return ok;
}

static enum try_result try_container(const struct awscred_options *o, struct awscred_provider *p,
                                     struct buf *notes)
{
    const char *rel = env_get(o, "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI");
    const char *full = env_get(o, "AWS_CONTAINER_CREDENTIALS_FULL_URI");
    const char *auth_file = env_get(o, "AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE");
    const char *auth = env_get(o, "AWS_CONTAINER_AUTHORIZATION_TOKEN");
    const char *why = NULL;
    struct buf url = {0};

    if (!rel && !full) {
        note(notes, "container: AWS_CONTAINER_CREDENTIALS_RELATIVE_URI/FULL_URI not set");
        return TRY_NEXT;
    }
    if (rel) {
        char *host = strip_slash(o->container_host ? o->container_host : DEFAULT_CONTAINER_HOST);
        buf_addf(&url, "%s%s%s", host, rel[0] == '/' ? "" : "/", rel);
        free(host);
    } else {
        if (!full_uri_allowed(full, &why)) {
            note(notes, "container: AWS_CONTAINER_CREDENTIALS_FULL_URI %s", why);
            return TRY_FAIL;
        }
        buf_adds(&url, full);
    }
    p->kind = SRC_CONTAINER;
    p->container_url = url.p;
    if (auth_file)
        p->container_auth_file = xstrdup(auth_file);
    else if (auth)
        p->container_auth = xstrdup(auth);
    return first_fetch(p, "container", notes, TRY_FAIL);
}

static enum try_result try_imds(const struct awscred_options *o, struct awscred_provider *p,
                                struct buf *notes)
{
    const char *disabled = env_get(o, "AWS_EC2_METADATA_DISABLED");
    const char *endpoint = o->imds_endpoint;
    const char *mode = env_get(o, "AWS_EC2_METADATA_SERVICE_ENDPOINT_MODE");

    if (disabled && !strcasecmp(disabled, "true")) {
        note(notes, "imds: disabled (AWS_EC2_METADATA_DISABLED)");
        return TRY_NEXT;
    }
    if (!endpoint)
        endpoint = env_get(o, "AWS_EC2_METADATA_SERVICE_ENDPOINT");
    if (!endpoint)
        endpoint = mode && !strcasecmp(mode, "IPv6") ? DEFAULT_IMDS_V6 : DEFAULT_IMDS;
    p->kind = SRC_IMDS;
    p->imds_url = strip_slash(endpoint);
    return first_fetch(p, "imds", notes, TRY_NEXT);
}

/* --- public API --------------------------------------------------------------------------- */

enum rc_code awscred_provider_create(const struct awscred_options *opt,
                                     struct awscred_provider **out, char *detail, size_t n)
{
    static const struct awscred_options defaults;
    struct awscred_provider *p = NULL;
    struct buf notes = {0}, msg = {0};
    enum try_result tr;
    enum rc_code rc = RC_OK;
    const char *home;
    char when[32] = "never";

    *out = NULL;
    rc_detail(detail, n, "%s", "");
    if (!opt)
        opt = &defaults;
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
        rc_detail(detail, n, "curl_global_init failed");
        rc = RC_INTERNAL;
        goto out;
    }
    xmlInitParser();

    p = xcalloc(1, sizeof(*p));
    pthread_mutex_init(&p->lock, NULL);
    p->timeout_ms = opt->timeout_ms ? opt->timeout_ms : DEFAULT_TIMEOUT_MS;
    p->imds_timeout_ms = opt->timeout_ms ? opt->timeout_ms : IMDS_TIMEOUT_MS;
    p->refresh_ahead = opt->refresh_ahead_s ? opt->refresh_ahead_s : DEFAULT_REFRESH_AHEAD_S;
    home = opt->home ? opt->home : env_get(opt, "HOME");

    tr = try_env(opt, p, &notes);
    if (tr == TRY_NEXT)
        tr = try_web_identity(opt, p, home, &notes);
    if (tr == TRY_NEXT)
        tr = try_shared_files(opt, p, home, &notes);
    if (tr == TRY_NEXT)
        tr = try_container(opt, p, &notes);
    if (tr == TRY_NEXT)
        tr = try_imds(opt, p, &notes);

    if (tr != TRY_FOUND) {
        buf_addf(&msg, "%s%s", tr == TRY_NEXT ? "no AWS credentials found: " : "AWS credentials: ",
                 buf_str(&notes));
        if (tr == TRY_FAIL)
            buf_adds(&msg, " (later sources not tried)");
        rc_detail(detail, n, "%s", buf_str(&msg));
        rc = RC_CONFIG;
        awscred_provider_destroy(p);
        p = NULL;
        goto out;
    }
    if (p->cur.expiration)
        format_time(p->cur.expiration, when);
    log_info("msg=\"aws credentials resolved\" source=%s temporary=%s expires=%s", p->cur.source,
             p->cur.session_token ? "true" : "false", when);
    *out = p;
out:
    buf_release(&notes);
    buf_release(&msg);
    return rc;
}

static void copy_out(const struct awscred *c, struct awscred *out)
{
    out->access_key_id = xstrdup(c->access_key_id);
    out->secret_access_key = xstrdup(c->secret_access_key);
    out->session_token = c->session_token ? xstrdup(c->session_token) : NULL;
    out->expiration = c->expiration;
    out->source = c->source;
}

enum rc_code awscred_get(struct awscred_provider *p, struct awscred *out, char *detail, size_t n)
{
    enum rc_code rc = RC_OK;
    struct buf err = {0};
    struct awscred fresh = {0};
    time_t now;
    char qerr[768], when[32];

    memset(out, 0, sizeof(*out));
    rc_detail(detail, n, "%s", "");
    pthread_mutex_lock(&p->lock);
    now = time(NULL);
    if (p->cur.expiration == 0 || p->cur.expiration - now > p->refresh_ahead)
        goto copy;

    rc = fetch(p, &fresh, &err);
    if (rc == RC_OK) {
        awscred_release(&p->cur);
        p->cur = fresh;
        memset(&fresh, 0, sizeof(fresh));
        if (p->warned != RC_OK) {
            log_info("msg=\"aws credentials refreshed again\" source=%s", p->cur.source);
            p->warned = RC_OK;
        }
        goto copy;
    }
    now = time(NULL);
    format_time(p->cur.expiration, when);
    if (p->cur.expiration > now) {
        /* Keep using the current ones; log a failure once per kind until a refresh
         * succeeds (the text is not the key: curl's timeout messages vary). */
        if (p->warned != rc) {
            log_warn("msg=\"aws credentials refresh failed, using current ones\" source=%s "
                     "expires=%s kind=%s error=%s",
                     p->cur.source, when, rc_slug(rc),
                     log_quote(buf_str(&err), qerr, sizeof(qerr)));
            p->warned = rc;
        }
        rc = RC_OK;
        goto copy;
    }
    rc_detail(detail, n, "aws credentials (%s) expired at %s and refresh failed: %s", p->cur.source,
              when, buf_str(&err));
    rc = RC_UNAVAILABLE;
    goto out;
copy:
    copy_out(&p->cur, out);
out:
    pthread_mutex_unlock(&p->lock);
    buf_release(&err);
    awscred_release(&fresh);
    return rc;
}

void awscred_provider_destroy(struct awscred_provider *p)
{
    if (!p)
        return;
    awscred_release(&p->cur);
    free(p->token_file);
    free(p->role_arn);
    free(p->session_name);
    free(p->sts_url);
    free(p->container_url);
    free(p->container_auth_file);
    free_secret_str(p->container_auth);
    free(p->imds_url);
    pthread_mutex_destroy(&p->lock);
    free(p);
    curl_global_cleanup();
}
