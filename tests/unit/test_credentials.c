/*
 * test_credentials.c: aws/credentials against a fake environment, temporary HOME and token
 * files, and loopback HTTP servers (libmicrohttpd, 127.0.0.1 port 0) standing in for STS, the
 * container credentials endpoint and IMDSv2. The servers check each request (method, path,
 * headers, form fields), count the credential replies they serve, and hand out credentials
 * with short expirations so that refresh paths run.
 *
 *   test_credentials [name]   run every group, or the one named (env, shared, webid,
 *                             container, imds, precedence, refresh, malformed, threads)
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <microhttpd.h>

#include "aws/credentials.h"
#include "check.h"
#include "util/xalloc.h"

#define CHECK_HAS(hay, needle)                                                                     \
    do {                                                                                           \
        const char *h_ = (hay), *n_ = (needle);                                                    \
        if (!h_ || !strstr(h_, n_)) {                                                              \
            fprintf(stderr, "%s:%d: \"%s\" does not contain \"%s\"\n", __FILE__, __LINE__,         \
                    h_ ? h_ : "(null)", n_);                                                       \
            check_failures++;                                                                      \
        }                                                                                          \
    } while (0)

#define CHECK_LACKS(hay, needle)                                                                   \
    do {                                                                                           \
        const char *h_ = (hay), *n_ = (needle);                                                    \
        if (h_ && strstr(h_, n_)) {                                                                \
            fprintf(stderr, "%s:%d: \"%s\" contains \"%s\"\n", __FILE__, __LINE__, h_, n_);        \
            check_failures++;                                                                      \
        }                                                                                          \
    } while (0)

#define ROLE_ARN "arn:aws:iam::123456789012:role/r53reg"
#define IMDS_ROLE "r53reg-instance-role"

/* --- fake environment --------------------------------------------------------------------- */

#define ENV_MAX 32

struct envtab {
    char *name[ENV_MAX];
    char *value[ENV_MAX];
    int n;
};

static struct envtab *cur_env;

static const char *fake_getenv(const char *name)
{
    for (int i = 0; cur_env && i < cur_env->n; i++) {
        if (!strcmp(cur_env->name[i], name))
            return cur_env->value[i];
    }
    return NULL;
}

static void env_set(struct envtab *e, const char *name, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void env_set(struct envtab *e, const char *name, const char *fmt, ...)
{
    char buf[1024];
    va_list ap;
    int i;

    va_start(ap, fmt);
    vsnprintf(buf, sizeof(buf), fmt, ap);
    va_end(ap);
    for (i = 0; i < e->n; i++) {
        if (!strcmp(e->name[i], name))
            break;
    }
    if (i == e->n) {
        if (e->n == ENV_MAX)
            abort();
        e->name[e->n++] = xstrdup(name);
    } else {
        free(e->value[i]);
    }
    e->value[i] = xstrdup(buf);
}

static void env_unset(struct envtab *e, const char *name)
{
    for (int i = 0; i < e->n; i++) {
        if (!strcmp(e->name[i], name)) {
            free(e->name[i]);
            free(e->value[i]);
            e->name[i] = e->name[e->n - 1];
            e->value[i] = e->value[e->n - 1];
            e->n--;
            return;
        }
    }
}

static void env_clear(struct envtab *e)
{
    for (int i = 0; i < e->n; i++) {
        free(e->name[i]);
        free(e->value[i]);
    }
    e->n = 0;
}

/* --- temporary files ---------------------------------------------------------------------- */

static char tmpdir[256];

static void write_file(const char *rel, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void write_file(const char *rel, const char *fmt, ...)
{
    char path[512], tmp[520];
    va_list ap;
    FILE *f;

    snprintf(path, sizeof(path), "%s/%s", tmpdir, rel);
    for (char *s = strchr(path + strlen(tmpdir) + 1, '/'); s; s = strchr(s + 1, '/')) {
        *s = '\0';
        mkdir(path, 0700);
        *s = '/';
    }
    /* write-then-rename, as a rotating token file is replaced */
    snprintf(tmp, sizeof(tmp), "%s.new", path);
    f = fopen(tmp, "w");
    if (!f) {
        perror(tmp);
        abort();
    }
    va_start(ap, fmt);
    vfprintf(f, fmt, ap);
    va_end(ap);
    fclose(f);
    rename(tmp, path);
}

static void remove_file(const char *rel)
{
    char path[512];
    snprintf(path, sizeof(path), "%s/%s", tmpdir, rel);
    unlink(path);
}

static int rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    return remove(path);
}

static void rm_tree(const char *path)
{
    nftw(path, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
}

/* --- loopback servers --------------------------------------------------------------------- */

enum srv_kind { SRV_STS, SRV_CONTAINER, SRV_IMDS };

enum srv_mode {
    MODE_OK,
    MODE_500,        /* HTTP 500, empty body */
    MODE_ERROR,      /* the service's own error: STS ErrorResponse 403, container 403 JSON,
                        IMDS Code "AssumeRoleUnauthorizedAccess" */
    MODE_BAD_SYNTAX, /* truncated JSON / XML */
    MODE_MISSING,    /* the session token field left out */
    MODE_HUGE,       /* a 100 KiB body */
    MODE_WRONG_NS,   /* STS: success body in another namespace */
    MODE_NO_ROLE,    /* IMDS: no role attached (404) */
    MODE_CTRL_TOKEN, /* the session token holds CR LF and a header after them */
    MODE_HOSTILE,    /* MODE_ERROR whose Message holds a line break and an ESC (a forged log
                        line): STS "&#10;" (XML has no ESC), container and IMDS "\n" "\u001b" */
};

/* The forged line a hostile Message carries after its line break. */
#define FORGED "ts=2026-01-01T00:00:00.000Z level=info msg=audit token=ops"

struct srv {
    struct MHD_Daemon *d;
    unsigned port;
    enum srv_kind kind;
    char base[64]; /* "http://127.0.0.1:PORT" */

    pthread_mutex_t lock;
    /* guarded by lock */
    enum srv_mode mode;
    long expires_in;
    int exp_style; /* 0 "Z", 1 ".123Z", 2 "+02:00", 3 "+0530", 4 "-0100" */
    time_t last_expiration;
    int requests;             /* all requests */
    int cred_calls;           /* credential replies served */
    int bad;                  /* requests that failed the checks */
    char why[512];            /* the first failed check */
    char expect_path[128];    /* container */
    char expect_auth[256];    /* container: "" means no Authorization header */
    char expect_token[256];   /* STS: the WebIdentityToken */
    char expect_session[128]; /* STS: the RoleSessionName ("" any) */
    char imds_token[64];      /* the IMDS session token last issued */
    int imds_tokens;
};

struct conn {
    char *body;
    size_t len;
};

static void srv_bad(struct srv *s, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Record a failed check (called with s->lock held). */
static void srv_bad(struct srv *s, const char *fmt, ...)
{
    va_list ap;
    if (!s->bad) {
        va_start(ap, fmt);
        vsnprintf(s->why, sizeof(s->why), fmt, ap);
        va_end(ap);
    }
    s->bad++;
}

static void fmt_expiration(struct srv *s, char *out, size_t n)
{
    time_t t = time(NULL) + s->expires_in;
    struct tm tm;
    int off = 0;
    const char *suffix = "Z";

    switch (s->exp_style) {
    case 2: off = 2 * 3600, suffix = "+02:00"; break;
    case 3: off = 5 * 3600 + 30 * 60, suffix = "+0530"; break;
    case 4: off = -3600, suffix = "-0100"; break;
    default: break;
    }
    s->last_expiration = t;
    t += off;
    gmtime_r(&t, &tm);
    strftime(out, n - 16, "%Y-%m-%dT%H:%M:%S", &tm);
    strcat(out, s->exp_style == 1 ? ".123Z" : suffix);
}

/* Decode one application/x-www-form-urlencoded value. */
static void form_decode(const char *s, size_t n, char *out, size_t cap)
{
    size_t o = 0;
    for (size_t i = 0; i < n && o + 1 < cap; i++) {
        if (s[i] == '+') {
            out[o++] = ' ';
        } else if (s[i] == '%' && i + 2 < n + 1 && i + 2 <= n) {
            char hex[3] = {s[i + 1], s[i + 2], 0};
            out[o++] = (char)strtol(hex, NULL, 16);
            i += 2;
        } else {
            out[o++] = s[i];
        }
    }
    out[o] = '\0';
}

static int form_get(const char *body, const char *name, char *out, size_t cap)
{
    size_t nl = strlen(name);
    for (const char *p = body; p && *p;) {
        const char *amp = strchr(p, '&');
        size_t seg = amp ? (size_t)(amp - p) : strlen(p);
        if (seg > nl && !strncmp(p, name, nl) && p[nl] == '=') {
            form_decode(p + nl + 1, seg - nl - 1, out, cap);
            return 0;
        }
        p = amp ? amp + 1 : NULL;
    }
    out[0] = '\0';
    return -1;
}

static char *huge_body(void)
{
    size_t n = 100 * 1024;
    char *b = xmalloc(n + 1);
    memset(b, 'x', n);
    memcpy(b, "{\"AccessKeyId\":\"", 16);
    b[n] = '\0';
    return b;
}

static char *xasprintf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

static char *xasprintf(const char *fmt, ...)
{
    va_list ap;
    char *out;
    int n;

    va_start(ap, fmt);
    n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    out = xmalloc((size_t)n + 1);
    va_start(ap, fmt);
    vsnprintf(out, (size_t)n + 1, fmt, ap);
    va_end(ap);
    return out;
}

/* Build the reply for a checked STS request (lock held). */
static char *sts_reply(struct srv *s, struct MHD_Connection *c, const char *method, const char *url,
                       const char *body, int *status, const char **ctype)
{
    char v[1024], exp[64];
    const char *ns = "https://sts.amazonaws.com/doc/2011-06-15/";

    *ctype = "text/xml";
    if (strcmp(method, "POST") != 0 || strcmp(url, "/") != 0)
        srv_bad(s, "sts: %s %s", method, url);
    if (form_get(body, "Action", v, sizeof(v)) || strcmp(v, "AssumeRoleWithWebIdentity"))
        srv_bad(s, "sts: Action=%s", v);
    if (form_get(body, "Version", v, sizeof(v)) || strcmp(v, "2011-06-15"))
        srv_bad(s, "sts: Version=%s", v);
    if (form_get(body, "RoleArn", v, sizeof(v)) || strcmp(v, ROLE_ARN))
        srv_bad(s, "sts: RoleArn=%s", v);
    if (form_get(body, "RoleSessionName", v, sizeof(v)) || !v[0] ||
        (s->expect_session[0] && strcmp(v, s->expect_session)))
        srv_bad(s, "sts: RoleSessionName=%s", v);
    if (form_get(body, "WebIdentityToken", v, sizeof(v)) || strcmp(v, s->expect_token))
        srv_bad(s, "sts: WebIdentityToken=%s want %s", v, s->expect_token);
    if (MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Authorization"))
        srv_bad(s, "sts: the call must be unsigned");

    *status = 200;
    switch (s->mode) {
    case MODE_500: *status = 500; return xstrdup("");
    case MODE_ERROR:
        *status = 403;
        return xasprintf("<ErrorResponse xmlns=\"%s\">\n  <Error>\n    <Type>Sender</Type>\n"
                         "    <Code>AccessDenied</Code>\n    <Message>Not authorized to perform "
                         "sts:AssumeRoleWithWebIdentity</Message>\n  </Error>\n"
                         "  <RequestId>c0ffee00-0000-4000-8000-000000000000</RequestId>\n"
                         "</ErrorResponse>\n",
                         ns);
    case MODE_HOSTILE:
        *status = 403;
        return xasprintf("<ErrorResponse xmlns=\"%s\"><Error><Type>Sender</Type>"
                         "<Code>AccessDenied</Code><Message>denied&#10;" FORGED "</Message>"
                         "</Error><RequestId>r</RequestId></ErrorResponse>",
                         ns);
    case MODE_BAD_SYNTAX:
        return xasprintf("<AssumeRoleWithWebIdentityResponse xmlns=\"%s\"><Assume", ns);
    case MODE_HUGE: return huge_body();
    default: break;
    }
    s->cred_calls++;
    fmt_expiration(s, exp, sizeof(exp));
    return xasprintf(
        "<AssumeRoleWithWebIdentityResponse xmlns=\"%s\">\n"
        "  <AssumeRoleWithWebIdentityResult>\n"
        "    <SubjectFromWebIdentityToken>system:serviceaccount:r53:r53reg"
        "</SubjectFromWebIdentityToken>\n"
        "    <Audience>sts.amazonaws.com</Audience>\n"
        "    <AssumedRoleUser>\n"
        "      <Arn>arn:aws:sts::123456789012:assumed-role/r53reg/session</Arn>\n"
        "      <AssumedRoleId>AROACLKWSDQRAOEXAMPLE:session</AssumedRoleId>\n"
        "    </AssumedRoleUser>\n"
        "    <Credentials>\n"
        "%s"
        "      <SecretAccessKey>stsSecret%04d/K7MDENG+bPxRfiCY</SecretAccessKey>\n"
        "      <Expiration>%s</Expiration>\n"
        "      <AccessKeyId>ASIASTS%04d</AccessKeyId>\n"
        "    </Credentials>\n"
        "    <Provider>arn:aws:iam::123456789012:oidc-provider/oidc.eks.example</Provider>\n"
        "  </AssumeRoleWithWebIdentityResult>\n"
        "  <ResponseMetadata>\n"
        "    <RequestId>c0ffee00-0000-4000-8000-000000000001</RequestId>\n"
        "  </ResponseMetadata>\n"
        "</AssumeRoleWithWebIdentityResponse>\n",
        s->mode == MODE_WRONG_NS ? "https://example.com/other/" : ns,
        s->mode == MODE_MISSING ? ""
        : s->mode == MODE_CTRL_TOKEN
            ? "      <SessionToken>FwoG&#13;&#10;X-Injected: 1</SessionToken>\n"
            : "      <SessionToken>FwoGZXIvYXdzEStsToken</SessionToken>\n",
        s->cred_calls, exp, s->cred_calls);
}

/* JSON credentials as container and IMDS serve them (lock held). */
static char *json_reply(struct srv *s, const char *akid_prefix, int imds)
{
    char exp[64];

    switch (s->mode) {
    case MODE_BAD_SYNTAX: return xstrdup("{\"AccessKeyId\": \"ASIA");
    case MODE_HUGE: return huge_body();
    default: break;
    }
    s->cred_calls++;
    fmt_expiration(s, exp, sizeof(exp));
    return xasprintf("{\n%s  \"AccessKeyId\" : \"%s%04d\",\n"
                     "  \"SecretAccessKey\" : \"secret%04d/K7MDENG+bPxRfiCY\",\n"
                     "%s  \"Expiration\" : \"%s\"%s\n}\n",
                     imds ? "  \"Code\" : \"Success\",\n  \"LastUpdated\" : "
                            "\"2026-01-01T00:00:00Z\",\n  \"Type\" : \"AWS-HMAC\",\n"
                          : "  \"RoleArn\" : \"" ROLE_ARN "\",\n",
                     akid_prefix, s->cred_calls, s->cred_calls,
                     s->mode == MODE_MISSING      ? ""
                     : s->mode == MODE_CTRL_TOKEN ? "  \"Token\" : \"IQoJb3\\r\\nX-Injected: 1\",\n"
                                                  : "  \"Token\" : \"IQoJb3JpZ2luX2VjEToken\",\n",
                     exp, "");
}

static char *container_reply(struct srv *s, struct MHD_Connection *c, const char *method,
                             const char *url, int *status, const char **ctype)
{
    const char *auth = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Authorization");

    *ctype = "application/json";
    if (strcmp(method, "GET") != 0 || strcmp(url, s->expect_path) != 0)
        srv_bad(s, "container: %s %s", method, url);
    if (s->expect_auth[0] ? !auth || strcmp(auth, s->expect_auth) : auth != NULL)
        srv_bad(s, "container: Authorization %s want %s", auth ? auth : "(none)",
                s->expect_auth[0] ? s->expect_auth : "(none)");
    *status = 200;
    switch (s->mode) {
    case MODE_500: *status = 500; return xstrdup("");
    case MODE_ERROR:
        *status = 403;
        return xstrdup("{\"code\":\"AccessDenied\",\"message\":\"token rejected\"}");
    case MODE_HOSTILE:
        *status = 403;
        return xstrdup("{\"code\":\"AccessDenied\",\"message\":\"denied\\n" FORGED "\\u001b[2K\"}");
    default: return json_reply(s, "ASIACTR", 0);
    }
}

static char *imds_reply(struct srv *s, struct MHD_Connection *c, const char *method,
                        const char *url, int *status, const char **ctype)
{
    const char *ttl =
        MHD_lookup_connection_value(c, MHD_HEADER_KIND, "X-aws-ec2-metadata-token-ttl-seconds");
    const char *tok = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "X-aws-ec2-metadata-token");
    static const char creds_path[] = "/latest/meta-data/iam/security-credentials/";

    *ctype = "text/plain";
    *status = 200;
    if (!strcmp(url, "/latest/api/token")) {
        if (strcmp(method, "PUT") != 0)
            srv_bad(s, "imds: %s %s", method, url);
        if (!ttl || strcmp(ttl, "21600") != 0)
            srv_bad(s, "imds: token ttl header %s", ttl ? ttl : "(none)");
        if (s->mode == MODE_500) {
            *status = 500;
            return xstrdup("");
        }
        s->imds_tokens++;
        snprintf(s->imds_token, sizeof(s->imds_token), "AQAEAImdsToken%04d==", s->imds_tokens);
        return xstrdup(s->imds_token);
    }
    if (strcmp(method, "GET") != 0)
        srv_bad(s, "imds: %s %s", method, url);
    if (!tok || strcmp(tok, s->imds_token) != 0) {
        srv_bad(s, "imds: %s token %s want %s", url, tok ? tok : "(none)", s->imds_token);
        *status = 401;
        return xstrdup("");
    }
    if (!strcmp(url, creds_path)) {
        if (s->mode == MODE_NO_ROLE) {
            *status = 404;
            return xstrdup("<?xml version=\"1.0\"?><html><body>404 - Not Found</body></html>");
        }
        return xstrdup(IMDS_ROLE "\n");
    }
    if (!strncmp(url, creds_path, strlen(creds_path)) &&
        !strcmp(url + strlen(creds_path), IMDS_ROLE)) {
        *ctype = "application/json";
        if (s->mode == MODE_ERROR)
            return xstrdup("{\"Code\":\"AssumeRoleUnauthorizedAccess\",\"Message\":\"EC2 cannot "
                           "assume the role\",\"LastUpdated\":\"2026-01-01T00:00:00Z\"}");
        if (s->mode == MODE_HOSTILE)
            return xstrdup("{\"Code\":\"Denied\\n" FORGED "\",\"Message\":\"denied\\n" FORGED
                           "\\u001b[2K\",\"LastUpdated\":\"2026-01-01T00:00:00Z\"}");
        return json_reply(s, "ASIAIMDS", 1);
    }
    srv_bad(s, "imds: unexpected path %s", url);
    *status = 404;
    return xstrdup("");
}

static enum MHD_Result srv_handler(void *cls, struct MHD_Connection *c, const char *url,
                                   const char *method, const char *version, const char *upload_data,
                                   size_t *upload_data_size, void **con_cls)
{
    struct srv *s = cls;
    struct conn *k = *con_cls;
    struct MHD_Response *resp;
    const char *ctype = "text/plain";
    char *body = NULL;
    int status = 200;
    enum MHD_Result ret;

    if (!k) {
        *con_cls = xcalloc(1, sizeof(*k));
        return MHD_YES;
    }
    if (*upload_data_size) {
        if (k->len + *upload_data_size < 64 * 1024) {
            k->body = xrealloc(k->body, k->len + *upload_data_size + 1);
            memcpy(k->body + k->len, upload_data, *upload_data_size);
            k->len += *upload_data_size;
            k->body[k->len] = '\0';
        }
        *upload_data_size = 0;
        return MHD_YES;
    }
    pthread_mutex_lock(&s->lock);
    s->requests++;
    switch (s->kind) {
    case SRV_STS:
        body = sts_reply(s, c, method, url, k->body ? k->body : "", &status, &ctype);
        break;
    case SRV_CONTAINER: body = container_reply(s, c, method, url, &status, &ctype); break;
    case SRV_IMDS: body = imds_reply(s, c, method, url, &status, &ctype); break;
    }
    pthread_mutex_unlock(&s->lock);
    resp = MHD_create_response_from_buffer(strlen(body), body, MHD_RESPMEM_MUST_COPY);
    free(body);
    MHD_add_response_header(resp, "Content-Type", ctype);
    ret = MHD_queue_response(c, (unsigned)status, resp);
    MHD_destroy_response(resp);
    return ret;
}

static void srv_completed(void *cls, struct MHD_Connection *c, void **con_cls,
                          enum MHD_RequestTerminationCode toe)
{
    struct conn *k = *con_cls;
    if (k) {
        free(k->body);
        free(k);
    }
    *con_cls = NULL;
}

static void srv_start(struct srv *s, enum srv_kind kind)
{
    struct sockaddr_in sa;
    const union MHD_DaemonInfo *info;

    memset(s, 0, sizeof(*s));
    pthread_mutex_init(&s->lock, NULL);
    s->kind = kind;
    s->expires_in = 3600;
    memset(&sa, 0, sizeof(sa));
    sa.sin_family = AF_INET;
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    s->d = MHD_start_daemon(MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_ERROR_LOG, 0, NULL, NULL,
                            srv_handler, s, MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&sa,
                            MHD_OPTION_NOTIFY_COMPLETED, srv_completed, s, MHD_OPTION_END);
    if (!s->d) {
        fprintf(stderr, "MHD_start_daemon failed\n");
        abort();
    }
    info = MHD_get_daemon_info(s->d, MHD_DAEMON_INFO_BIND_PORT);
    s->port = info->port;
    snprintf(s->base, sizeof(s->base), "http://127.0.0.1:%u", s->port);
}

static void srv_stop(struct srv *s)
{
    pthread_mutex_lock(&s->lock);
    if (s->bad)
        fprintf(stderr, "server (kind %d): %d bad request(s), first: %s\n", (int)s->kind, s->bad,
                s->why);
    CHECK_INT(s->bad, 0);
    pthread_mutex_unlock(&s->lock);
    MHD_stop_daemon(s->d);
    pthread_mutex_destroy(&s->lock);
}

static void srv_set(struct srv *s, enum srv_mode mode, long expires_in)
{
    pthread_mutex_lock(&s->lock);
    s->mode = mode;
    s->expires_in = expires_in;
    pthread_mutex_unlock(&s->lock);
}

static int srv_calls(struct srv *s)
{
    int n;
    pthread_mutex_lock(&s->lock);
    n = s->cred_calls;
    pthread_mutex_unlock(&s->lock);
    return n;
}

static int srv_requests(struct srv *s)
{
    int n;
    pthread_mutex_lock(&s->lock);
    n = s->requests;
    pthread_mutex_unlock(&s->lock);
    return n;
}

static int srv_tokens(struct srv *s)
{
    int n;
    pthread_mutex_lock(&s->lock);
    n = s->imds_tokens;
    pthread_mutex_unlock(&s->lock);
    return n;
}

static time_t srv_last_expiration(struct srv *s)
{
    time_t t;
    pthread_mutex_lock(&s->lock);
    t = s->last_expiration;
    pthread_mutex_unlock(&s->lock);
    return t;
}

/* Set one of the expect_* strings (or "" to clear). */
static void srv_expect(struct srv *s, char *field, size_t n, const char *value)
{
    pthread_mutex_lock(&s->lock);
    snprintf(field, n, "%s", value);
    pthread_mutex_unlock(&s->lock);
}

#define SRV_EXPECT(s, field, value) srv_expect((s), (s)->field, sizeof((s)->field), (value))

/* A loopback port nothing listens on: bound, never listening (connection refused). */
static int dead_port(unsigned *port)
{
    struct sockaddr_in sa;
    socklen_t len = sizeof(sa);
    int fd = socket(AF_INET, SOCK_STREAM, 0);

    memset(&sa, 0, sizeof(sa));
    sa.sin_family = AF_INET;
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (fd < 0 || bind(fd, (struct sockaddr *)&sa, sizeof(sa)) ||
        getsockname(fd, (struct sockaddr *)&sa, &len)) {
        perror("dead_port");
        abort();
    }
    *port = ntohs(sa.sin_port);
    return fd;
}

/* --- helpers ------------------------------------------------------------------------------ */

/* Options with the fake environment and every endpoint on loopback (IMDS disabled unless a
 * test points it somewhere). */
static void opts_init(struct awscred_options *o, struct envtab *e)
{
    memset(o, 0, sizeof(*o));
    cur_env = e;
    env_clear(e);
    env_set(e, "HOME", "%s/home", tmpdir);
    env_set(e, "AWS_EC2_METADATA_DISABLED", "true");
    o->getenv = fake_getenv;
    o->sts_endpoint = "http://127.0.0.1:9"; /* discard: tests that use STS override it */
    o->container_host = "http://127.0.0.1:9";
    o->imds_endpoint = "http://127.0.0.1:9";
    o->timeout_ms = 3000;
}

/* Create, expect success from source; returns the provider (or NULL after a failed CHECK). */
static struct awscred_provider *create_ok(const struct awscred_options *o, const char *source)
{
    struct awscred_provider *p = NULL;
    char detail[2048];
    enum rc_code rc = awscred_provider_create(o, &p, detail, sizeof(detail));
    if (rc)
        fprintf(stderr, "create: %s\n", detail);
    CHECK_INT(rc, RC_OK);
    if (p) {
        struct awscred c = {0};
        CHECK_INT(awscred_get(p, &c, detail, sizeof(detail)), RC_OK);
        CHECK_STR(c.source, source);
        awscred_release(&c);
    }
    return p;
}

/* Create, expect RC_CONFIG; detail copied to out. */
static void create_fails(const struct awscred_options *o, char *out, size_t n)
{
    struct awscred_provider *p = (struct awscred_provider *)&p; /* must be reset to NULL */
    enum rc_code rc = awscred_provider_create(o, &p, out, n);
    CHECK_INT(rc, RC_CONFIG);
    CHECK(p == NULL);
    if (rc == RC_OK)
        awscred_provider_destroy(p);
}

static void get_ok(struct awscred_provider *p, struct awscred *c)
{
    char detail[1024];
    enum rc_code rc = awscred_get(p, c, detail, sizeof(detail));
    if (rc)
        fprintf(stderr, "get: %s\n", detail);
    CHECK_INT(rc, RC_OK);
}

/* Redirect stderr (where util/log writes) into a file while a block runs. */
struct capture {
    int saved;
    char path[512];
};

static void capture_start(struct capture *cap)
{
    int fd;
    snprintf(cap->path, sizeof(cap->path), "%s/stderr.log", tmpdir);
    fflush(stderr);
    cap->saved = dup(2);
    fd = open(cap->path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    if (fd < 0 || cap->saved < 0) {
        perror("capture");
        abort();
    }
    dup2(fd, 2);
    close(fd);
}

/* Restore stderr and return what was written (caller frees). */
static char *capture_end(struct capture *cap)
{
    FILE *f;
    char *text = xcalloc(1, 65536);

    fflush(stderr);
    dup2(cap->saved, 2);
    close(cap->saved);
    f = fopen(cap->path, "r");
    if (f) {
        size_t n = fread(text, 1, 65535, f);
        text[n] = '\0';
        fclose(f);
    }
    unlink(cap->path);
    fputs(text, stderr); /* still visible in the test log */
    return text;
}

static int count_of(const char *hay, const char *needle)
{
    int n = 0;
    for (const char *p = strstr(hay, needle); p; p = strstr(p + 1, needle))
        n++;
    return n;
}

/* --- groups ------------------------------------------------------------------------------- */

static void test_release(void)
{
    struct awscred c;
    memset(&c, 0, sizeof(c));
    awscred_release(NULL);
    awscred_release(&c);
    awscred_release(&c);
    awscred_provider_destroy(NULL);
}

static void test_env(void)
{
    struct envtab e = {0};
    struct awscred_options o;
    struct awscred_provider *p;
    struct awscred c = {0};
    char detail[2048];

    /* keys and session token */
    opts_init(&o, &e);
    env_set(&e, "AWS_ACCESS_KEY_ID", "AKIDENV");
    env_set(&e, "AWS_SECRET_ACCESS_KEY", "secret/env+key");
    env_set(&e, "AWS_SESSION_TOKEN", "tokenenv");
    p = create_ok(&o, "environment");
    if (p) {
        get_ok(p, &c);
        CHECK_STR(c.access_key_id, "AKIDENV");
        CHECK_STR(c.secret_access_key, "secret/env+key");
        CHECK_STR(c.session_token, "tokenenv");
        CHECK_INT(c.expiration, 0);
        awscred_release(&c);
        CHECK(c.access_key_id == NULL && c.secret_access_key == NULL && c.session_token == NULL);
        awscred_provider_destroy(p);
    }

    /* long-term keys: no token; empty AWS_SESSION_TOKEN counts as unset */
    env_set(&e, "AWS_SESSION_TOKEN", "%s", "");
    p = create_ok(&o, "environment");
    if (p) {
        get_ok(p, &c);
        CHECK(c.session_token == NULL);
        awscred_release(&c);
        awscred_provider_destroy(p);
    }

    /* one without the other names the missing one */
    env_unset(&e, "AWS_SECRET_ACCESS_KEY");
    create_fails(&o, detail, sizeof(detail));
    CHECK_HAS(detail, "environment: AWS_ACCESS_KEY_ID is set but AWS_SECRET_ACCESS_KEY is not");
    CHECK_LACKS(detail, "AKIDENV");

    env_unset(&e, "AWS_ACCESS_KEY_ID");
    env_set(&e, "AWS_SECRET_ACCESS_KEY", "secret/env+key");
    create_fails(&o, detail, sizeof(detail));
    CHECK_HAS(detail, "AWS_SECRET_ACCESS_KEY is set but AWS_ACCESS_KEY_ID is not");
    CHECK_LACKS(detail, "secret/env");

    /* an empty key id is unset too */
    env_set(&e, "AWS_ACCESS_KEY_ID", "%s", "");
    create_fails(&o, detail, sizeof(detail));
    CHECK_HAS(detail, "AWS_ACCESS_KEY_ID is not");
    env_clear(&e);
}

static void test_total_failure(void)
{
    struct envtab e = {0};
    struct awscred_options o;
    char detail[2048], want[2048];
    unsigned port;
    int fd;
    time_t t0;

    opts_init(&o, &e);
    create_fails(&o, detail, sizeof(detail));
    snprintf(want, sizeof(want),
             "no AWS credentials found: environment: AWS_ACCESS_KEY_ID not set; web identity: "
             "AWS_WEB_IDENTITY_TOKEN_FILE not set; shared files: %s/home/.aws/credentials: not "
             "found, %s/home/.aws/config: not found; container: "
             "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI/FULL_URI not set; imds: disabled "
             "(AWS_EC2_METADATA_DISABLED)",
             tmpdir, tmpdir);
    CHECK_STR(detail, want);

    /* a credentials file without the profile; config [default] without credentials */
    write_file("home/.aws/credentials", "[other]\naws_access_key_id = AKIDOTHER\n"
                                        "aws_secret_access_key = other\n");
    create_fails(&o, detail, sizeof(detail));
    snprintf(want, sizeof(want),
             "shared files: %s/home/.aws/credentials: no profile 'default', "
             "%s/home/.aws/config: not found;",
             tmpdir, tmpdir);
    CHECK_HAS(detail, want);
    write_file("home/.aws/config", "[default]\nregion = us-east-1\noutput = json\n");
    create_fails(&o, detail, sizeof(detail));
    CHECK_HAS(detail, "shared files: profile 'default' has no credentials; container:");
    remove_file("home/.aws/credentials");
    remove_file("home/.aws/config");

    /* no HOME at all */
    env_unset(&e, "HOME");
    create_fails(&o, detail, sizeof(detail));
    CHECK_HAS(detail, "shared files: HOME not set;");

    /* AWS_ROLE_ARN alone: web identity is not configured, the note says so */
    env_set(&e, "AWS_ROLE_ARN", ROLE_ARN);
    create_fails(&o, detail, sizeof(detail));
    CHECK_HAS(detail, "web identity: AWS_WEB_IDENTITY_TOKEN_FILE not set (AWS_ROLE_ARN is);");
    env_unset(&e, "AWS_ROLE_ARN");

    /* IMDS enabled but nothing listens: fails fast, named in the detail */
    env_unset(&e, "AWS_EC2_METADATA_DISABLED");
    fd = dead_port(&port);
    snprintf(want, sizeof(want), "http://127.0.0.1:%u", port);
    o.imds_endpoint = want;
    o.timeout_ms = 0; /* the IMDS default: 1 s */
    t0 = time(NULL);
    create_fails(&o, detail, sizeof(detail));
    CHECK(time(NULL) - t0 <= 3);
    CHECK_HAS(detail, "no AWS credentials found: ");
    CHECK_HAS(detail, "; imds: http://127.0.0.1:");
    CHECK_HAS(detail, "/latest/api/token: ");
    close(fd);

    /* AWS_EC2_METADATA_DISABLED is case-insensitive */
    env_set(&e, "AWS_EC2_METADATA_DISABLED", "TRUE");
    create_fails(&o, detail, sizeof(detail));
    CHECK_HAS(detail, "imds: disabled (AWS_EC2_METADATA_DISABLED)");
    env_clear(&e);
}

static void test_shared(void)
{
    struct envtab e = {0};
    struct awscred_options o;
    struct awscred_provider *p;
    struct awscred c = {0};
    struct srv sts;
    char detail[2048], url[64];

    write_file("home/.aws/credentials", "# shared credentials\n"
                                        "; both comment styles\n"
                                        "[default]\n"
                                        "aws_access_key_id = AKIDDEFAULT\n"
                                        "aws_secret_access_key=secretdefault   ; inline comment\n"
                                        "\n"
                                        "[prod]\n"
                                        "  aws_access_key_id   =   AKIDPROD  \n"
                                        "  AWS_Secret_Access_Key = secret/prod+key\n"
                                        "  aws_session_token = tokenprod # inline\n"
                                        "[half]\n"
                                        "aws_access_key_id = AKIDHALF\n");
    write_file("home/.aws/config", "[default]\n"
                                   "region = us-east-1\n"
                                   "[profile cfgonly]\n"
                                   "region = eu-west-1\n"
                                   "s3 =\n"
                                   "    max_concurrent_requests = 10\n"
                                   "aws_access_key_id = AKIDCFG\n"
                                   "aws_secret_access_key = secretcfg\n"
                                   "[profile prod]\n"
                                   "aws_access_key_id = AKIDWRONG\n"
                                   "aws_secret_access_key = wrong\n"
                                   "[cfgbare]\n"
                                   "aws_access_key_id = AKIDBARE\n"
                                   "aws_secret_access_key = bare\n"
                                   "[profile   web]\n"
                                   "role_arn = " ROLE_ARN "\n"
                                   "web_identity_token_file = ~/token\n"
                                   "role_session_name = cfg-session\n"
                                   "[profile proc]\n"
                                   "credential_process = /usr/local/bin/get-creds --profile x\n"
                                   "[profile sso]\n"
                                   "sso_session = my-sso\n"
                                   "sso_account_id = 123456789012\n"
                                   "sso_role_name = Admin\n"
                                   "[profile chained]\n"
                                   "role_arn = " ROLE_ARN "\n"
                                   "source_profile = default\n"
                                   "[sso-session my-sso]\n"
                                   "sso_start_url = https://example.awsapps.com/start\n"
                                   "sso_region = us-east-1\n");

    /* default profile from the credentials file, inline comment stripped */
    opts_init(&o, &e);
    p = create_ok(&o, "shared-file");
    if (p) {
        get_ok(p, &c);
        CHECK_STR(c.access_key_id, "AKIDDEFAULT");
        CHECK_STR(c.secret_access_key, "secretdefault");
        CHECK(c.session_token == NULL);
        CHECK_INT(c.expiration, 0);
        awscred_release(&c);
        awscred_provider_destroy(p);
    }

    /* AWS_PROFILE; the credentials file wins over the config file; indented keys */
    env_set(&e, "AWS_PROFILE", "prod");
    p = create_ok(&o, "shared-file");
    if (p) {
        get_ok(p, &c);
        CHECK_STR(c.access_key_id, "AKIDPROD");
        CHECK_STR(c.secret_access_key, "secret/prod+key");
        CHECK_STR(c.session_token, "tokenprod");
        awscred_release(&c);
        awscred_provider_destroy(p);
    }

    /* credentials in the config file; nested "s3 =" block skipped */
    env_set(&e, "AWS_PROFILE", "cfgonly");
    p = create_ok(&o, "shared-file");
    if (p) {
        get_ok(p, &c);
        CHECK_STR(c.access_key_id, "AKIDCFG");
        CHECK_STR(c.secret_access_key, "secretcfg");
        awscred_release(&c);
        awscred_provider_destroy(p);
    }

    /* "[cfgbare]" in the config file is not a profile (only "[profile x]" and "[default]") */
    env_set(&e, "AWS_PROFILE", "cfgbare");
    create_fails(&o, detail, sizeof(detail));
    CHECK_HAS(detail, "no profile 'cfgbare'");
    CHECK_HAS(detail, "AWS_PROFILE 'cfgbare' does not exist");
    CHECK_HAS(detail, "(later sources not tried)");

    /* half a key pair */
    env_set(&e, "AWS_PROFILE", "half");
    create_fails(&o, detail, sizeof(detail));
    CHECK_HAS(detail, "profile 'half' has aws_access_key_id but no aws_secret_access_key");
    CHECK_LACKS(detail, "AKIDHALF");

    /* unsupported forms are reported, not ignored */
    env_set(&e, "AWS_PROFILE", "proc");
    create_fails(&o, detail, sizeof(detail));
    CHECK_HAS(detail, "profile 'proc' uses credential_process, which r53reg does not support");
    CHECK_LACKS(detail, "get-creds");
    env_set(&e, "AWS_PROFILE", "sso");
    create_fails(&o, detail, sizeof(detail));
    CHECK_HAS(detail, "uses sso_session, sso_account_id, sso_role_name, which");
    env_set(&e, "AWS_PROFILE", "chained");
    create_fails(&o, detail, sizeof(detail));
    CHECK_HAS(detail, "uses role_arn, source_profile, which");

    /* role_arn + web_identity_token_file in a profile: the web identity path */
    srv_start(&sts, SRV_STS);
    snprintf(url, sizeof(url), "%s", sts.base);
    o.sts_endpoint = url;
    write_file("home/token", "eyJhbGciOiJSUzI1NiJ9.profile-token.sig\n");
    SRV_EXPECT(&sts, expect_token, "eyJhbGciOiJSUzI1NiJ9.profile-token.sig");
    SRV_EXPECT(&sts, expect_session, "cfg-session");
    env_set(&e, "AWS_PROFILE", "web");
    p = create_ok(&o, "web-identity");
    if (p) {
        get_ok(p, &c);
        CHECK_STR(c.access_key_id, "ASIASTS0001");
        CHECK_STR(c.session_token, "FwoGZXIvYXdzEStsToken");
        awscred_release(&c);
        awscred_provider_destroy(p);
    }
    CHECK_INT(srv_calls(&sts), 1);
    srv_stop(&sts);

    /* AWS_SHARED_CREDENTIALS_FILE and AWS_CONFIG_FILE (with ~) replace the defaults */
    opts_init(&o, &e);
    write_file("alt/creds", "[default]\naws_access_key_id=AKIDALT\naws_secret_access_key=alt\n");
    env_set(&e, "AWS_SHARED_CREDENTIALS_FILE", "%s/alt/creds", tmpdir);
    env_set(&e, "AWS_CONFIG_FILE", "~/nonexistent-config");
    p = create_ok(&o, "shared-file");
    if (p) {
        get_ok(p, &c);
        CHECK_STR(c.access_key_id, "AKIDALT");
        awscred_release(&c);
        awscred_provider_destroy(p);
    }
    env_set(&e, "AWS_SHARED_CREDENTIALS_FILE", "%s/alt/missing", tmpdir);
    create_fails(&o, detail, sizeof(detail));
    {
        char want[600];
        snprintf(want, sizeof(want),
                 "shared files: %s/alt/missing: not found, %s/home/"
                 "nonexistent-config: not found;",
                 tmpdir, tmpdir);
        CHECK_HAS(detail, want);
    }
    remove_file("home/.aws/credentials");
    remove_file("home/.aws/config");
    remove_file("home/token");
    env_clear(&e);
}

static void test_webid(void)
{
    struct envtab e = {0};
    struct awscred_options o;
    struct awscred_provider *p;
    struct awscred c = {0};
    struct srv sts;
    char detail[2048], url[64];

    srv_start(&sts, SRV_STS);
    snprintf(url, sizeof(url), "%s", sts.base);
    opts_init(&o, &e);
    o.sts_endpoint = url;
    o.refresh_ahead_s = 300;
    write_file("web/token", "eyJhbGciOiJSUzI1NiJ9.token-1.sig");
    SRV_EXPECT(&sts, expect_token, "eyJhbGciOiJSUzI1NiJ9.token-1.sig");
    SRV_EXPECT(&sts, expect_session, "r53reg-test");
    env_set(&e, "AWS_WEB_IDENTITY_TOKEN_FILE", "%s/web/token", tmpdir);
    env_set(&e, "AWS_ROLE_ARN", ROLE_ARN);
    env_set(&e, "AWS_ROLE_SESSION_NAME", "r53reg-test");

    /* expires in 200 s, refresh ahead 300 s: every get refreshes */
    srv_set(&sts, MODE_OK, 200);
    p = create_ok(&o, "web-identity"); /* create + the get in create_ok */
    CHECK_INT(srv_calls(&sts), 2);
    if (p) {
        get_ok(p, &c);
        CHECK_INT(srv_calls(&sts), 3);
        CHECK_STR(c.access_key_id, "ASIASTS0003");
        CHECK_STR(c.secret_access_key, "stsSecret0003/K7MDENG+bPxRfiCY");
        CHECK_STR(c.session_token, "FwoGZXIvYXdzEStsToken");
        CHECK_INT(c.expiration, srv_last_expiration(&sts));
        awscred_release(&c);

        /* the token file rotates: the next refresh sends the new token */
        write_file("web/token", "eyJhbGciOiJSUzI1NiJ9.token-2.sig\n");
        SRV_EXPECT(&sts, expect_token, "eyJhbGciOiJSUzI1NiJ9.token-2.sig");
        get_ok(p, &c);
        CHECK_STR(c.access_key_id, "ASIASTS0004");
        awscred_release(&c);

        /* long-lived now: no refresh */
        srv_set(&sts, MODE_OK, 3600);
        get_ok(p, &c);
        CHECK_INT(srv_calls(&sts), 5);
        awscred_release(&c);
        get_ok(p, &c);
        CHECK_INT(srv_calls(&sts), 5);
        CHECK_STR(c.access_key_id, "ASIASTS0005");
        awscred_release(&c);
        awscred_provider_destroy(p);
    }

    /* AWS_ENDPOINT_URL_STS when no option is given; default session name */
    o.sts_endpoint = NULL;
    env_set(&e, "AWS_ENDPOINT_URL_STS", "%s/", sts.base);
    env_unset(&e, "AWS_ROLE_SESSION_NAME");
    SRV_EXPECT(&sts, expect_session, "");
    p = create_ok(&o, "web-identity");
    awscred_provider_destroy(p);
    o.sts_endpoint = url;

    /* STS errors name Code and Message; the token never shows */
    env_set(&e, "AWS_ROLE_SESSION_NAME", "r53reg-test");
    SRV_EXPECT(&sts, expect_session, "");
    srv_set(&sts, MODE_ERROR, 3600);
    create_fails(&o, detail, sizeof(detail));
    CHECK_HAS(detail, "web identity: STS AssumeRoleWithWebIdentity: HTTP 403 AccessDenied: "
                      "\"Not authorized to perform sts:AssumeRoleWithWebIdentity\"");
    CHECK_HAS(detail, "(later sources not tried)");
    CHECK_LACKS(detail, "token-2");

    srv_set(&sts, MODE_500, 3600);
    create_fails(&o, detail, sizeof(detail));
    CHECK_HAS(detail, "HTTP 500, reply is not XML");

    srv_set(&sts, MODE_BAD_SYNTAX, 3600);
    create_fails(&o, detail, sizeof(detail));
    CHECK_HAS(detail, "reply is not XML");

    srv_set(&sts, MODE_MISSING, 3600);
    create_fails(&o, detail, sizeof(detail));
    CHECK_HAS(detail, "reply lacks Credentials/SessionToken");

    srv_set(&sts, MODE_WRONG_NS, 3600);
    create_fails(&o, detail, sizeof(detail));
    CHECK_HAS(detail, "unexpected reply <AssumeRoleWithWebIdentityResponse>");

    srv_set(&sts, MODE_HUGE, 3600);
    create_fails(&o, detail, sizeof(detail));
    CHECK_HAS(detail, "response larger than 65536 bytes");

    /* already expired on arrival */
    srv_set(&sts, MODE_OK, -10);
    create_fails(&o, detail, sizeof(detail));
    CHECK_HAS(detail, "credentials already expired");

    /* token file missing or empty; role ARN missing */
    srv_set(&sts, MODE_OK, 3600);
    env_set(&e, "AWS_WEB_IDENTITY_TOKEN_FILE", "%s/web/missing", tmpdir);
    create_fails(&o, detail, sizeof(detail));
    CHECK_HAS(detail, "web identity: token file ");
    CHECK_HAS(detail, "web/missing: No such file or directory");
    write_file("web/empty", "%s", "\n");
    env_set(&e, "AWS_WEB_IDENTITY_TOKEN_FILE", "%s/web/empty", tmpdir);
    create_fails(&o, detail, sizeof(detail));
    CHECK_HAS(detail, "web/empty: empty");
    env_unset(&e, "AWS_ROLE_ARN");
    create_fails(&o, detail, sizeof(detail));
    CHECK_HAS(detail, "web identity: AWS_WEB_IDENTITY_TOKEN_FILE is set but AWS_ROLE_ARN is not");

    /* nothing listens */
    {
        unsigned port;
        int fd = dead_port(&port);
        char dead[64];
        env_set(&e, "AWS_ROLE_ARN", ROLE_ARN);
        env_set(&e, "AWS_WEB_IDENTITY_TOKEN_FILE", "%s/web/token", tmpdir);
        snprintf(dead, sizeof(dead), "http://127.0.0.1:%u", port);
        o.sts_endpoint = dead;
        create_fails(&o, detail, sizeof(detail));
        CHECK_HAS(detail, "web identity: STS http://127.0.0.1:");
        close(fd);
    }
    srv_stop(&sts);
    env_clear(&e);
}

static void test_container(void)
{
    struct envtab e = {0};
    struct awscred_options o;
    struct awscred_provider *p;
    struct awscred c = {0};
    struct srv ctr;
    char detail[2048], host[80];

    srv_start(&ctr, SRV_CONTAINER);
    snprintf(host, sizeof(host), "%s/", ctr.base);

    /* RELATIVE_URI on container_host, token from the environment */
    opts_init(&o, &e);
    o.container_host = host;
    env_set(&e, "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI", "/v2/credentials/0f1e2d3c");
    env_set(&e, "AWS_CONTAINER_AUTHORIZATION_TOKEN", "Bearer env-token");
    SRV_EXPECT(&ctr, expect_path, "/v2/credentials/0f1e2d3c");
    SRV_EXPECT(&ctr, expect_auth, "Bearer env-token");
    p = create_ok(&o, "container");
    if (p) {
        get_ok(p, &c);
        CHECK_STR(c.access_key_id, "ASIACTR0001");
        CHECK_STR(c.secret_access_key, "secret0001/K7MDENG+bPxRfiCY");
        CHECK_STR(c.session_token, "IQoJb3JpZ2luX2VjEToken");
        CHECK_INT(c.expiration, srv_last_expiration(&ctr));
        awscred_release(&c);
        awscred_provider_destroy(p);
    }

    /* no token at all: no Authorization header */
    env_unset(&e, "AWS_CONTAINER_AUTHORIZATION_TOKEN");
    SRV_EXPECT(&ctr, expect_auth, "");
    p = create_ok(&o, "container");
    awscred_provider_destroy(p);

    /* FULL_URI, token file re-read on every refresh (EKS Pod Identity style) */
    env_unset(&e, "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI");
    env_set(&e, "AWS_CONTAINER_CREDENTIALS_FULL_URI", "%s/v1/credentials", ctr.base);
    env_set(&e, "AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE", "%s/ctr/token", tmpdir);
    env_set(&e, "AWS_CONTAINER_AUTHORIZATION_TOKEN", "ignored-when-file-set");
    write_file("ctr/token", "pod-token-1\n");
    SRV_EXPECT(&ctr, expect_path, "/v1/credentials");
    SRV_EXPECT(&ctr, expect_auth, "pod-token-1");
    pthread_mutex_lock(&ctr.lock);
    ctr.cred_calls = 0;
    pthread_mutex_unlock(&ctr.lock);
    srv_set(&ctr, MODE_OK, 200);
    p = create_ok(&o, "container");
    if (p) {
        CHECK_INT(srv_calls(&ctr), 2);
        write_file("ctr/token", "pod-token-2");
        SRV_EXPECT(&ctr, expect_auth, "pod-token-2");
        get_ok(p, &c);
        CHECK_STR(c.access_key_id, "ASIACTR0003");
        awscred_release(&c);
        awscred_provider_destroy(p);
    }

    /* the container's own error */
    srv_set(&ctr, MODE_ERROR, 3600);
    create_fails(&o, detail, sizeof(detail));
    CHECK_HAS(detail, "container: http://127.0.0.1:");
    CHECK_HAS(detail, "/v1/credentials: HTTP 403: \"token rejected\"");
    CHECK_LACKS(detail, "pod-token");
    srv_set(&ctr, MODE_OK, 3600);

    /* FULL_URI rules: http only to loopback and the agent addresses; https anywhere */
    env_set(&e, "AWS_CONTAINER_CREDENTIALS_FULL_URI", "http://example.com/creds");
    create_fails(&o, detail, sizeof(detail));
    CHECK_HAS(detail, "container: AWS_CONTAINER_CREDENTIALS_FULL_URI uses http to a host other "
                      "than loopback");
    env_set(&e, "AWS_CONTAINER_CREDENTIALS_FULL_URI", "http://10.0.0.1/creds");
    create_fails(&o, detail, sizeof(detail));
    CHECK_HAS(detail, "uses http to a host other than loopback");
    env_set(&e, "AWS_CONTAINER_CREDENTIALS_FULL_URI", "ftp://127.0.0.1/creds");
    create_fails(&o, detail, sizeof(detail));
    CHECK_HAS(detail, "must be http or https");
    env_set(&e, "AWS_CONTAINER_CREDENTIALS_FULL_URI", "http://127.0.0.1:%u/v1/credentials",
            ctr.port);

    /* token file unreadable or with an embedded line break */
    write_file("ctr/token", "line1\nline2\n");
    create_fails(&o, detail, sizeof(detail));
    CHECK_HAS(detail, "ctr/token: holds line breaks or NUL");
    remove_file("ctr/token");
    create_fails(&o, detail, sizeof(detail));
    CHECK_HAS(detail, "container: authorization token file ");

    /* RELATIVE_URI wins over FULL_URI */
    env_unset(&e, "AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE");
    env_unset(&e, "AWS_CONTAINER_AUTHORIZATION_TOKEN");
    env_set(&e, "AWS_CONTAINER_CREDENTIALS_FULL_URI", "http://example.com/creds");
    env_set(&e, "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI", "rel/path");
    SRV_EXPECT(&ctr, expect_path, "/rel/path");
    SRV_EXPECT(&ctr, expect_auth, "");
    p = create_ok(&o, "container");
    awscred_provider_destroy(p);

    srv_stop(&ctr);
    env_clear(&e);
}

static void test_imds(void)
{
    struct envtab e = {0};
    struct awscred_options o;
    struct awscred_provider *p;
    struct awscred c = {0};
    struct srv imds;
    char detail[2048];

    srv_start(&imds, SRV_IMDS);
    opts_init(&o, &e);
    env_unset(&e, "AWS_EC2_METADATA_DISABLED");
    o.imds_endpoint = imds.base;
    srv_set(&imds, MODE_OK, 200);
    p = create_ok(&o, "imds");
    if (p) {
        CHECK_INT(srv_calls(&imds), 2);
        get_ok(p, &c);
        CHECK_STR(c.access_key_id, "ASIAIMDS0003");
        CHECK_STR(c.secret_access_key, "secret0003/K7MDENG+bPxRfiCY");
        CHECK_STR(c.session_token, "IQoJb3JpZ2luX2VjEToken");
        CHECK_INT(c.expiration, srv_last_expiration(&imds));
        awscred_release(&c);
        awscred_provider_destroy(p);
    }
    CHECK_INT(srv_tokens(&imds), 3); /* a session token per refresh */

    /* AWS_EC2_METADATA_SERVICE_ENDPOINT when no option is given */
    o.imds_endpoint = NULL;
    env_set(&e, "AWS_EC2_METADATA_SERVICE_ENDPOINT", "%s/", imds.base);
    srv_set(&imds, MODE_OK, 3600);
    p = create_ok(&o, "imds");
    awscred_provider_destroy(p);

    /* disabled: never asked */
    env_set(&e, "AWS_EC2_METADATA_DISABLED", "true");
    {
        int before = srv_requests(&imds);
        create_fails(&o, detail, sizeof(detail));
        CHECK_HAS(detail, "imds: disabled (AWS_EC2_METADATA_DISABLED)");
        CHECK_INT(srv_requests(&imds), before);
    }
    env_unset(&e, "AWS_EC2_METADATA_DISABLED");

    /* IMDS errors */
    srv_set(&imds, MODE_ERROR, 3600);
    create_fails(&o, detail, sizeof(detail));
    CHECK_HAS(detail, "no AWS credentials found: ");
    CHECK_HAS(detail, "Code AssumeRoleUnauthorizedAccess: \"EC2 cannot assume the role\"");
    srv_set(&imds, MODE_NO_ROLE, 3600);
    create_fails(&o, detail, sizeof(detail));
    CHECK_HAS(detail, "no IAM role attached to the instance (HTTP 404)");
    srv_set(&imds, MODE_500, 3600);
    create_fails(&o, detail, sizeof(detail));
    CHECK_HAS(detail, "/latest/api/token: HTTP 500");
    srv_set(&imds, MODE_MISSING, 3600);
    create_fails(&o, detail, sizeof(detail));
    CHECK_HAS(detail, "reply lacks Token");
    srv_set(&imds, MODE_BAD_SYNTAX, 3600);
    create_fails(&o, detail, sizeof(detail));
    CHECK_HAS(detail, "reply is not a JSON object");
    srv_set(&imds, MODE_HUGE, 3600);
    create_fails(&o, detail, sizeof(detail));
    CHECK_HAS(detail, "response larger than 65536 bytes");

    srv_stop(&imds);
    env_clear(&e);
}

static void test_expiration_formats(void)
{
    struct envtab e = {0};
    struct awscred_options o;
    struct awscred_provider *p;
    struct awscred c = {0};
    struct srv ctr;
    char host[80];

    srv_start(&ctr, SRV_CONTAINER);
    snprintf(host, sizeof(host), "%s", ctr.base);
    opts_init(&o, &e);
    o.container_host = host;
    env_set(&e, "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI", "/creds");
    SRV_EXPECT(&ctr, expect_path, "/creds");
    for (int style = 0; style <= 4; style++) {
        pthread_mutex_lock(&ctr.lock);
        ctr.exp_style = style;
        pthread_mutex_unlock(&ctr.lock);
        p = create_ok(&o, "container");
        if (p) {
            get_ok(p, &c);
            if (c.expiration != srv_last_expiration(&ctr))
                fprintf(stderr, "expiration style %d\n", style);
            CHECK_INT(c.expiration, srv_last_expiration(&ctr));
            awscred_release(&c);
            awscred_provider_destroy(p);
        }
    }
    srv_stop(&ctr);
    env_clear(&e);
}

static void test_precedence(void)
{
    struct envtab e = {0};
    struct awscred_options o;
    struct awscred_provider *p;
    struct awscred c = {0};
    struct srv ctr, imds, sts;
    char host[80];

    srv_start(&ctr, SRV_CONTAINER);
    srv_start(&imds, SRV_IMDS);
    srv_start(&sts, SRV_STS);
    snprintf(host, sizeof(host), "%s", ctr.base);
    SRV_EXPECT(&ctr, expect_path, "/creds");
    SRV_EXPECT(&sts, expect_token, "tok");
    write_file("home/.aws/credentials", "[default]\naws_access_key_id=AKIDFILE\n"
                                        "aws_secret_access_key=file\n");
    write_file("web/token", "tok");

    opts_init(&o, &e);
    env_unset(&e, "AWS_EC2_METADATA_DISABLED");
    o.container_host = host;
    o.imds_endpoint = imds.base;
    o.sts_endpoint = sts.base;
    env_set(&e, "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI", "/creds");
    env_set(&e, "AWS_ACCESS_KEY_ID", "AKIDENV");
    env_set(&e, "AWS_SECRET_ACCESS_KEY", "env");
    env_set(&e, "AWS_WEB_IDENTITY_TOKEN_FILE", "%s/web/token", tmpdir);
    env_set(&e, "AWS_ROLE_ARN", ROLE_ARN);

    p = create_ok(&o, "environment");
    awscred_provider_destroy(p);
    env_unset(&e, "AWS_ACCESS_KEY_ID");
    env_unset(&e, "AWS_SECRET_ACCESS_KEY");
    p = create_ok(&o, "web-identity");
    awscred_provider_destroy(p);
    env_unset(&e, "AWS_WEB_IDENTITY_TOKEN_FILE");
    p = create_ok(&o, "shared-file");
    if (p) {
        get_ok(p, &c);
        CHECK_STR(c.access_key_id, "AKIDFILE");
        awscred_release(&c);
        awscred_provider_destroy(p);
    }
    remove_file("home/.aws/credentials");
    p = create_ok(&o, "container");
    awscred_provider_destroy(p);
    env_unset(&e, "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI");
    p = create_ok(&o, "imds");
    awscred_provider_destroy(p);

    /* each asked exactly once, when it was the first configured source (1 h expiry: the
     * get in create_ok does not refresh) */
    CHECK_INT(srv_calls(&sts), 1);
    CHECK_INT(srv_calls(&ctr), 1);
    CHECK_INT(srv_calls(&imds), 1);
    srv_stop(&ctr);
    srv_stop(&imds);
    srv_stop(&sts);
    remove_file("web/token");
    env_clear(&e);
}

static void test_refresh(void)
{
    struct envtab e = {0};
    struct awscred_options o;
    struct awscred_provider *p;
    struct awscred c = {0};
    struct srv ctr;
    char detail[2048], host[80];

    srv_start(&ctr, SRV_CONTAINER);
    snprintf(host, sizeof(host), "%s", ctr.base);
    opts_init(&o, &e);
    o.container_host = host;
    o.refresh_ahead_s = 300;
    env_set(&e, "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI", "/creds");
    SRV_EXPECT(&ctr, expect_path, "/creds");

    /* no refresh while far from expiry */
    srv_set(&ctr, MODE_OK, 3600);
    p = create_ok(&o, "container");
    if (!p)
        goto out;
    get_ok(p, &c);
    awscred_release(&c);
    CHECK_INT(srv_calls(&ctr), 1);
    awscred_provider_destroy(p);

    /* within refresh_ahead: a failed refresh keeps the unexpired credentials */
    srv_set(&ctr, MODE_OK, 200);
    p = create_ok(&o, "container"); /* refreshed once by create_ok's get: call 3 */
    if (!p)
        goto out;
    srv_set(&ctr, MODE_500, 200);
    {
        struct capture cap;
        char *log;
        capture_start(&cap);
        for (int i = 0; i < 3; i++) {
            int before = srv_requests(&ctr);
            get_ok(p, &c);
            CHECK_STR(c.access_key_id, "ASIACTR0003");
            CHECK(c.expiration > time(NULL));
            CHECK_INT(srv_requests(&ctr), before + 1); /* it did try */
            awscred_release(&c);
        }
        log = capture_end(&cap);
        /* one warning for three failures of one kind, and no secret in it */
        CHECK_INT(count_of(log, "level=warn"), 1);
        CHECK_HAS(log, "refresh failed, using current ones");
        CHECK_HAS(log, "source=container");
        CHECK_HAS(log, "HTTP 500");
        CHECK_LACKS(log, "secret0003");
        CHECK_LACKS(log, "IQoJb3JpZ2luX2VjEToken");
        free(log);
    }
    /* and recovers */
    srv_set(&ctr, MODE_OK, 200);
    get_ok(p, &c);
    CHECK_STR(c.access_key_id, "ASIACTR0004");
    awscred_release(&c);

    /* expired and the refresh fails: RC_UNAVAILABLE, nothing handed out */
    srv_set(&ctr, MODE_OK, 2);
    get_ok(p, &c); /* call 5, expires in 2 s */
    CHECK_STR(c.access_key_id, "ASIACTR0005");
    awscred_release(&c);
    srv_set(&ctr, MODE_ERROR, 200);
    sleep(3);
    {
        enum rc_code rc = awscred_get(p, &c, detail, sizeof(detail));
        CHECK_INT(rc, RC_UNAVAILABLE);
        CHECK(c.access_key_id == NULL && c.secret_access_key == NULL);
        CHECK_HAS(detail, "aws credentials (container) expired at ");
        CHECK_HAS(detail, "HTTP 403: \"token rejected\"");
    }
    /* the next successful refresh brings them back */
    srv_set(&ctr, MODE_OK, 3600);
    get_ok(p, &c);
    CHECK_STR(c.access_key_id, "ASIACTR0006");
    awscred_release(&c);
    awscred_provider_destroy(p);
out:
    srv_stop(&ctr);
    env_clear(&e);
}

static void test_malformed_container(void)
{
    struct envtab e = {0};
    struct awscred_options o;
    struct srv ctr;
    char detail[2048], host[80];

    srv_start(&ctr, SRV_CONTAINER);
    snprintf(host, sizeof(host), "%s", ctr.base);
    opts_init(&o, &e);
    o.container_host = host;
    env_set(&e, "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI", "/creds");
    SRV_EXPECT(&ctr, expect_path, "/creds");

    srv_set(&ctr, MODE_BAD_SYNTAX, 3600);
    create_fails(&o, detail, sizeof(detail));
    CHECK_HAS(detail, "container: http://127.0.0.1:");
    CHECK_HAS(detail, "/creds: reply is not a JSON object (HTTP 200)");
    srv_set(&ctr, MODE_MISSING, 3600);
    create_fails(&o, detail, sizeof(detail));
    CHECK_HAS(detail, "reply lacks Token");
    srv_set(&ctr, MODE_HUGE, 3600);
    create_fails(&o, detail, sizeof(detail));
    CHECK_HAS(detail, "response larger than 65536 bytes");
    srv_set(&ctr, MODE_500, 3600);
    create_fails(&o, detail, sizeof(detail));
    CHECK_HAS(detail, "/creds: HTTP 500");
    srv_stop(&ctr);
    env_clear(&e);
}

/* The detail of a failed chain (what the daemon logs) holds no control character: the text
 * of a hostile credential endpoint is quoted, its line break and ESC written as \xNN. */
static void check_one_line(const char *detail, int esc)
{
    for (const char *p = detail; *p; p++)
        if ((unsigned char)*p < 0x20 || (unsigned char)*p == 0x7f) {
            fprintf(stderr, "%s:%d: control byte 0x%02x in \"%s\"\n", __FILE__, __LINE__,
                    (unsigned char)*p, detail);
            CHECK(0);
            break;
        }
    CHECK_HAS(detail, "denied\\x0a" FORGED);
    if (esc)
        CHECK_HAS(detail, FORGED "\\x1b[2K");
}

static void test_hostile_text(void)
{
    struct envtab e = {0};
    struct awscred_options o;
    struct srv sts, ctr, imds;
    char detail[4096], host[80], url[64];

    /* container */
    srv_start(&ctr, SRV_CONTAINER);
    snprintf(host, sizeof(host), "%s", ctr.base);
    opts_init(&o, &e);
    o.container_host = host;
    env_set(&e, "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI", "/creds");
    SRV_EXPECT(&ctr, expect_path, "/creds");
    srv_set(&ctr, MODE_HOSTILE, 3600);
    create_fails(&o, detail, sizeof(detail));
    check_one_line(detail, 1);
    srv_stop(&ctr);
    env_clear(&e);

    /* IMDS: Code and Message */
    srv_start(&imds, SRV_IMDS);
    opts_init(&o, &e);
    env_unset(&e, "AWS_EC2_METADATA_DISABLED");
    o.imds_endpoint = imds.base;
    srv_set(&imds, MODE_HOSTILE, 3600);
    create_fails(&o, detail, sizeof(detail));
    check_one_line(detail, 1);
    CHECK_HAS(detail, "Code \"Denied\\x0a" FORGED "\"");
    srv_stop(&imds);
    env_clear(&e);

    /* STS */
    srv_start(&sts, SRV_STS);
    snprintf(url, sizeof(url), "%s", sts.base);
    opts_init(&o, &e);
    o.sts_endpoint = url;
    write_file("web/token", "eyJhbGciOiJSUzI1NiJ9.token-1.sig");
    SRV_EXPECT(&sts, expect_token, "eyJhbGciOiJSUzI1NiJ9.token-1.sig");
    env_set(&e, "AWS_WEB_IDENTITY_TOKEN_FILE", "%s/web/token", tmpdir);
    env_set(&e, "AWS_ROLE_ARN", ROLE_ARN);
    srv_set(&sts, MODE_HOSTILE, 3600);
    create_fails(&o, detail, sizeof(detail));
    check_one_line(detail, 0);
    srv_stop(&sts);
    env_clear(&e);
}

/* A credential field with a control character is refused by every source, naming the source
 * and the field, never the value: a CR LF in a session token would otherwise add a header to
 * every signed Route 53 request. */
static void check_refused(const char *detail, const char *source_and_field)
{
    CHECK_HAS(detail, source_and_field);
    CHECK_HAS(detail, "holds a control character");
    CHECK_LACKS(detail, "X-Injected");
    CHECK_LACKS(detail, "secret");
}

static void test_control_chars(void)
{
    struct envtab e = {0};
    struct awscred_options o;
    struct srv sts, ctr, imds;
    char detail[4096], host[80], url[64];

    /* environment: each field */
    opts_init(&o, &e);
    env_set(&e, "AWS_ACCESS_KEY_ID", "AKIDENV");
    env_set(&e, "AWS_SECRET_ACCESS_KEY", "secret/env+key");
    env_set(&e, "AWS_SESSION_TOKEN", "tok\r\nX-Injected: 1");
    create_fails(&o, detail, sizeof(detail));
    check_refused(detail, "environment: AWS_SESSION_TOKEN");
    env_set(&e, "AWS_SESSION_TOKEN", "tok");
    env_set(&e, "AWS_ACCESS_KEY_ID", "AKID\x1b[2KENV");
    create_fails(&o, detail, sizeof(detail));
    check_refused(detail, "environment: AWS_ACCESS_KEY_ID");
    env_set(&e, "AWS_ACCESS_KEY_ID", "AKIDENV");
    env_set(&e, "AWS_SECRET_ACCESS_KEY", "secret\t/env");
    create_fails(&o, detail, sizeof(detail));
    check_refused(detail, "environment: AWS_SECRET_ACCESS_KEY");
    env_clear(&e);

    /* shared file (a line cannot hold LF; any other control byte) */
    write_file("home/.aws/credentials", "[default]\naws_access_key_id = AKIDFILE\n"
                                        "aws_secret_access_key = secretfile\n"
                                        "aws_session_token = tok\x01X-Injected\n");
    opts_init(&o, &e);
    create_fails(&o, detail, sizeof(detail));
    check_refused(detail, "/home/.aws/credentials: profile 'default': aws_session_token");
    remove_file("home/.aws/credentials");
    env_clear(&e);

    /* container */
    srv_start(&ctr, SRV_CONTAINER);
    snprintf(host, sizeof(host), "%s", ctr.base);
    opts_init(&o, &e);
    o.container_host = host;
    env_set(&e, "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI", "/creds");
    SRV_EXPECT(&ctr, expect_path, "/creds");
    srv_set(&ctr, MODE_CTRL_TOKEN, 3600);
    create_fails(&o, detail, sizeof(detail));
    check_refused(detail, "/creds: Token");
    srv_stop(&ctr);
    env_clear(&e);

    /* IMDS */
    srv_start(&imds, SRV_IMDS);
    opts_init(&o, &e);
    env_unset(&e, "AWS_EC2_METADATA_DISABLED");
    o.imds_endpoint = imds.base;
    srv_set(&imds, MODE_CTRL_TOKEN, 3600);
    create_fails(&o, detail, sizeof(detail));
    check_refused(detail, "/r53reg-instance-role: Token");
    srv_stop(&imds);
    env_clear(&e);

    /* STS */
    srv_start(&sts, SRV_STS);
    snprintf(url, sizeof(url), "%s", sts.base);
    opts_init(&o, &e);
    o.sts_endpoint = url;
    write_file("web/token", "eyJhbGciOiJSUzI1NiJ9.token-1.sig");
    SRV_EXPECT(&sts, expect_token, "eyJhbGciOiJSUzI1NiJ9.token-1.sig");
    env_set(&e, "AWS_WEB_IDENTITY_TOKEN_FILE", "%s/web/token", tmpdir);
    env_set(&e, "AWS_ROLE_ARN", ROLE_ARN);
    srv_set(&sts, MODE_CTRL_TOKEN, 3600);
    create_fails(&o, detail, sizeof(detail));
    check_refused(detail, "STS AssumeRoleWithWebIdentity: Credentials/SessionToken");
    srv_stop(&sts);
    env_clear(&e);
}

struct thread_arg {
    struct awscred_provider *p;
    int failures;
};

static void *getter(void *arg)
{
    struct thread_arg *t = arg;
    for (int i = 0; i < 10; i++) {
        struct awscred c = {0};
        char detail[512];
        if (awscred_get(t->p, &c, detail, sizeof(detail)) || !c.access_key_id ||
            strncmp(c.access_key_id, "ASIACTR", 7) != 0)
            t->failures++;
        awscred_release(&c);
    }
    return NULL;
}

static void test_threads(void)
{
    struct envtab e = {0};
    struct awscred_options o;
    struct awscred_provider *p;
    struct srv ctr;
    char host[80];
    pthread_t th[4];
    struct thread_arg args[4];

    srv_start(&ctr, SRV_CONTAINER);
    snprintf(host, sizeof(host), "%s", ctr.base);
    opts_init(&o, &e);
    o.container_host = host;
    env_set(&e, "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI", "/creds");
    SRV_EXPECT(&ctr, expect_path, "/creds");
    srv_set(&ctr, MODE_OK, 200); /* every get refreshes */
    p = create_ok(&o, "container");
    if (p) {
        for (int i = 0; i < 4; i++) {
            args[i].p = p;
            args[i].failures = 0;
            pthread_create(&th[i], NULL, getter, &args[i]);
        }
        for (int i = 0; i < 4; i++) {
            pthread_join(th[i], NULL);
            CHECK_INT(args[i].failures, 0);
        }
        CHECK_INT(srv_calls(&ctr), 2 + 40);
        awscred_provider_destroy(p);
    }
    srv_stop(&ctr);
    env_clear(&e);
}

static const struct {
    const char *name;
    void (*fn)(void);
} groups[] = {
    {"release", test_release},
    {"env", test_env},
    {"total", test_total_failure},
    {"shared", test_shared},
    {"webid", test_webid},
    {"container", test_container},
    {"imds", test_imds},
    {"expiration", test_expiration_formats},
    {"precedence", test_precedence},
    {"refresh", test_refresh},
    {"malformed", test_malformed_container},
    {"hostile_text", test_hostile_text},
    {"control_chars", test_control_chars},
    {"threads", test_threads},
};

int main(int argc, char **argv)
{
    const char *only = argc > 1 ? argv[1] : NULL;
    int ran = 0;

    snprintf(tmpdir, sizeof(tmpdir), "%s/r53cred.XXXXXX",
             getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
    if (!mkdtemp(tmpdir)) {
        perror("mkdtemp");
        return 1;
    }
    for (size_t i = 0; i < sizeof(groups) / sizeof(groups[0]); i++) {
        if (only && strcmp(only, groups[i].name) != 0)
            continue;
        groups[i].fn();
        ran++;
    }
    rm_tree(tmpdir);
    if (!ran) {
        fprintf(stderr, "no test group named %s\n", only);
        return 1;
    }
    return check_done(only ? only : "credentials");
}
