/*
 * tls.c: see tls.h.
 *
 * Credentials are immutable once built. `current` is the pair handed to new handshakes;
 * `retired` lists pairs replaced by a reload, each freed once no connection references it
 * (checked at each reload and at destroy). Lock order: only `lock`, never held while calling
 * into libmicrohttpd or across file I/O.
 */
#include "server/tls.h"

#include <errno.h>
#include <microhttpd.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <gnutls/crypto.h>
#include <gnutls/x509.h>

#include "util/xalloc.h"

#define CHAIN_MAX 16
#define PEM_MAX ((size_t)1 << 20)

struct creds {
    gnutls_pcert_st pcert[CHAIN_MAX];
    unsigned npcert;
    gnutls_privkey_t key;
    unsigned char *cert_pem; /* what was loaded, to see whether a reload changes anything */
    size_t cert_len;
    unsigned char key_digest[32]; /* SHA-256 of the key PEM (the PEM itself is wiped) */
    char describe[96];
    size_t refs;        /* guarded by the srv_tls lock: connections whose handshake used it */
    struct creds *next; /* retired list */
};

struct srv_tls {
    char *cert_path, *key_path;
    pthread_mutex_t lock;
    /* guarded by lock */
    struct creds *current;
    struct creds *retired;
};

struct conn_ctx {
    struct srv_tls *tls;
    struct creds *used; /* guarded by tls->lock; NULL until a handshake asked */
};

static void creds_free(struct creds *c)
{
    if (!c)
        return;
    for (unsigned i = 0; i < c->npcert; i++)
        gnutls_pcert_deinit(&c->pcert[i]);
    if (c->key)
        gnutls_privkey_deinit(c->key);
    free(c->cert_pem);
    free(c);
}

/* Read a whole file (at most PEM_MAX bytes). */
static enum rc_code slurp(const char *path, const char *flag, unsigned char **out, size_t *len,
                          char *detail, size_t n)
{
    FILE *f = fopen(path, "rb");
    unsigned char *buf;
    size_t got;

    *out = NULL;
    *len = 0;
    if (!f) {
        snprintf(detail, n, "%s %s: %s", flag, path, strerror(errno));
        return RC_IO;
    }
    buf = xmalloc(PEM_MAX + 1);
    got = fread(buf, 1, PEM_MAX + 1, f);
    fclose(f);
    if (got > PEM_MAX) {
        xfree_secret(buf, PEM_MAX + 1);
        snprintf(detail, n, "%s %s: larger than 1 MiB", flag, path);
        return RC_CONFIG;
    }
    buf[got] = '\0';
    *out = buf;
    *len = got;
    return RC_OK;
}

static void describe(struct creds *c)
{
    gnutls_x509_crt_t crt;
    unsigned char fp[32];
    size_t fplen = sizeof(fp);
    char hex[40] = "", when[32] = "?";

    if (gnutls_x509_crt_init(&crt) < 0)
        return;
    if (gnutls_x509_crt_import(crt, &c->pcert[0].cert, GNUTLS_X509_FMT_DER) >= 0) {
        time_t t = gnutls_x509_crt_get_expiration_time(crt);
        struct tm tm;
        if (t != (time_t)-1 && gmtime_r(&t, &tm))
            strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%SZ", &tm);
        if (gnutls_x509_crt_get_fingerprint(crt, GNUTLS_DIG_SHA256, fp, &fplen) >= 0)
            for (size_t i = 0; i < 8 && i < fplen; i++)
                snprintf(hex + 2 * i, 3, "%02x", fp[i]);
    }
    gnutls_x509_crt_deinit(crt);
    snprintf(c->describe, sizeof(c->describe), "sha256=%s not_after=%s", hex, when);
}

/* Build credentials from the two PEM texts. Errors: RC_CONFIG with detail. */
static enum rc_code build(const struct srv_tls *t, unsigned char *cert, size_t cert_len,
                          unsigned char *key, size_t key_len, struct creds **out, char *detail,
                          size_t n)
{
    struct creds *c = xcalloc(1, sizeof(*c));
    gnutls_datum_t d;
    gnutls_pubkey_t pub = NULL;
    gnutls_datum_t a = {NULL, 0}, b = {NULL, 0};
    enum rc_code rc = RC_CONFIG;
    int e;

    c->npcert = CHAIN_MAX;
    d.data = cert;
    d.size = (unsigned)cert_len;
    e = gnutls_pcert_list_import_x509_raw(c->pcert, &c->npcert, &d, GNUTLS_X509_FMT_PEM, 0);
    if (e < 0 || c->npcert == 0) {
        if (e < 0)
            c->npcert = 0;
        snprintf(detail, n, "--tls-cert %s: no usable PEM certificate (%s)", t->cert_path,
                 e < 0 ? gnutls_strerror(e) : "empty");
        goto out;
    }
    if (gnutls_privkey_init(&c->key) < 0)
        goto out;
    d.data = key;
    d.size = (unsigned)key_len;
    e = gnutls_privkey_import_x509_raw(c->key, &d, GNUTLS_X509_FMT_PEM, NULL, 0);
    if (e < 0) {
        snprintf(detail, n, "--tls-key %s: no usable unencrypted PEM private key (%s)", t->key_path,
                 gnutls_strerror(e));
        goto out;
    }
    /* The key must belong to the (first) certificate, or every handshake would fail. */
    if (gnutls_pubkey_init(&pub) < 0 || gnutls_pubkey_import_privkey(pub, c->key, 0, 0) < 0 ||
        gnutls_pubkey_export2(pub, GNUTLS_X509_FMT_DER, &a) < 0 ||
        gnutls_pubkey_export2(c->pcert[0].pubkey, GNUTLS_X509_FMT_DER, &b) < 0 ||
        a.size != b.size || memcmp(a.data, b.data, a.size) != 0) {
        snprintf(detail, n, "--tls-key %s does not match the certificate in --tls-cert %s",
                 t->key_path, t->cert_path);
        goto out;
    }
    c->cert_pem = xmalloc(cert_len + 1);
    memcpy(c->cert_pem, cert, cert_len);
    c->cert_len = cert_len;
    gnutls_hash_fast(GNUTLS_DIG_SHA256, key, key_len, c->key_digest);
    describe(c);
    rc = RC_OK;
out:
    gnutls_free(a.data);
    gnutls_free(b.data);
    if (pub)
        gnutls_pubkey_deinit(pub);
    if (rc) {
        creds_free(c);
        c = NULL;
    }
    *out = c;
    return rc;
}

/* Read and build; *same is set when the files hold exactly the pair cur was built from. */
static enum rc_code load(const struct srv_tls *t, const struct creds *cur, struct creds **out,
                         int *same, char *detail, size_t n)
{
    unsigned char *cert = NULL, *key = NULL, kd[32];
    size_t cert_len = 0, key_len = 0;
    enum rc_code rc;

    *out = NULL;
    *same = 0;
    rc = slurp(t->cert_path, "--tls-cert", &cert, &cert_len, detail, n);
    if (!rc)
        rc = slurp(t->key_path, "--tls-key", &key, &key_len, detail, n);
    if (rc)
        goto out;
    if (cur) {
        gnutls_hash_fast(GNUTLS_DIG_SHA256, key, key_len, kd);
        if (cur->cert_len == cert_len && !memcmp(cur->cert_pem, cert, cert_len) &&
            !memcmp(cur->key_digest, kd, sizeof(kd))) {
            *same = 1;
            goto out;
        }
    }
    rc = build(t, cert, cert_len, key, key_len, out, detail, n);
out:
    free(cert);
    if (key)
        xfree_secret(key, PEM_MAX + 1);
    return rc;
}

enum rc_code srv_tls_create(const char *cert_path, const char *key_path, struct srv_tls **out,
                            char *detail, size_t n)
{
    struct srv_tls *t = xcalloc(1, sizeof(*t));
    struct creds *c = NULL;
    int same;
    enum rc_code rc;

    t->cert_path = xstrdup(cert_path);
    t->key_path = xstrdup(key_path);
    pthread_mutex_init(&t->lock, NULL);
    rc = load(t, NULL, &c, &same, detail, n);
    if (rc) {
        srv_tls_destroy(t);
        *out = NULL;
        return rc;
    }
    t->current = c;
    *out = t;
    return RC_OK;
}

enum rc_code srv_tls_reload(struct srv_tls *t, int *changed, char *detail, size_t n)
{
    struct creds *fresh = NULL, *cur, *dead = NULL;
    int same = 0;
    enum rc_code rc;

    if (changed)
        *changed = 0;
    pthread_mutex_lock(&t->lock);
    cur = t->current; /* stays alive: only this function (serialized below) retires it */
    pthread_mutex_unlock(&t->lock);
    rc = load(t, cur, &fresh, &same, detail, n);
    pthread_mutex_lock(&t->lock);
    if (!rc && !same && t->current == cur) {
        cur->next = t->retired;
        t->retired = cur;
        t->current = fresh;
        fresh = NULL;
        if (changed)
            *changed = 1;
    }
    /* Free retired pairs no connection uses any more. */
    for (struct creds **pp = &t->retired; *pp;) {
        struct creds *c = *pp;
        if (c->refs == 0) {
            *pp = c->next;
            c->next = dead;
            dead = c;
        } else {
            pp = &c->next;
        }
    }
    pthread_mutex_unlock(&t->lock);
    creds_free(fresh); /* lost a race with a concurrent reload */
    while (dead) {
        struct creds *nx = dead->next;
        creds_free(dead);
        dead = nx;
    }
    return rc;
}

void srv_tls_describe(struct srv_tls *t, char *out, size_t n)
{
    pthread_mutex_lock(&t->lock);
    snprintf(out, n, "%s", t->current ? t->current->describe : "-");
    pthread_mutex_unlock(&t->lock);
}

void srv_tls_destroy(struct srv_tls *t)
{
    if (!t)
        return;
    creds_free(t->current);
    while (t->retired) {
        struct creds *nx = t->retired->next;
        creds_free(t->retired);
        t->retired = nx;
    }
    pthread_mutex_destroy(&t->lock);
    free(t->cert_path);
    free(t->key_path);
    free(t);
}

void *srv_tls_conn_open(struct srv_tls *t)
{
    struct conn_ctx *cc = xcalloc(1, sizeof(*cc));
    cc->tls = t;
    return cc;
}

void srv_tls_conn_close(void *conn_ctx)
{
    struct conn_ctx *cc = conn_ctx;
    if (!cc)
        return;
    pthread_mutex_lock(&cc->tls->lock);
    if (cc->used)
        cc->used->refs--;
    pthread_mutex_unlock(&cc->tls->lock);
    free(cc);
}

int srv_tls_retrieve(gnutls_session_t session, const gnutls_datum_t *req_ca_rdn, int nreqs,
                     const gnutls_pk_algorithm_t *pk_algos, int pk_algos_length,
                     gnutls_pcert_st **pcert, unsigned int *pcert_length, gnutls_privkey_t *privkey)
{
    struct MHD_Connection *conn = gnutls_session_get_ptr(session);
    const union MHD_ConnectionInfo *ci;
    struct conn_ctx *cc;
    struct creds *c;

    (void)req_ca_rdn;
    (void)nreqs;
    (void)pk_algos;
    (void)pk_algos_length;
    ci = conn ? MHD_get_connection_info(conn, MHD_CONNECTION_INFO_SOCKET_CONTEXT) : NULL;
    cc = ci ? ci->socket_context : NULL;
    if (!cc)
        return -1; /* no context: GnuTLS ends the handshake */
    pthread_mutex_lock(&cc->tls->lock);
    c = cc->tls->current;
    c->refs++;
    if (cc->used) /* a renegotiation: the earlier handshake's pair is no longer needed */
        cc->used->refs--;
    cc->used = c;
    pthread_mutex_unlock(&cc->tls->lock);
    *pcert = c->pcert;
    *pcert_length = c->npcert;
    *privkey = c->key;
    return 0;
}
