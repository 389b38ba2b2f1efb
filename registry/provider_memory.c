/*
 * provider_memory.c: the embedded store behind --provider memory.
 *
 * Records live in a table indexed by [type][kind][bucket] (kind: served, down, draining; see
 * enum reg_kind). apply() checks every change's expected old record against the table (the
 * same compare-and-swap rule Route 53's DELETE+CREATE batch enforces), then applies all of
 * them, under one mutex; one batch may mix types, kinds and buckets. A refused batch names
 * every set that did not match, as Route 53 does and in its words (struct reg_conflicts, and
 * the detail: "[Tried to delete resource record set [name=..., set-identifier=...] but ...]").
 *
 * With a state file, the file is a journal of JSON lines:
 *   {"snapshot":[record...]}           first line: the whole store at compaction time
 *   {"apply":[{"type":"A","kind":"down","bucket":3,"record":record|null}...]}
 *                                      one line per applied batch
 * where record = {"type","kind","bucket","weight","ttl","values":[...]}. "kind" is "down" or
 * "draining" and is written only for those kinds: a served record has no "kind" member, and a
 * missing one reads as served, so journals written before kinds existed load unchanged. A
 * batch is acknowledged only after its line is written and fsynced. At load, blank lines (and
 * NUL-only ones) are skipped; a last line without its newline is torn (a crash mid-write, never
 * acknowledged): not applied, and cut off; a corrupt line stops startup with the command that
 * truncates the file to the last good line. When the journal grows past 4x the size of a snapshot
 * (and at least 1 MiB), it is rewritten as a single snapshot line (every kind) through a temporary
 * file, fsync and rename.
 *
 * Threading: one mutex guards the table and the file; apply/load/ready may be called from any
 * thread.
 */
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <libgen.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "registry/provider.h"
#include "util/buf.h"
#include "util/log.h"
#include "util/xalloc.h"

#define COMPACT_MIN_BYTES (1u << 20)

struct memory_provider {
    struct reg_provider base;
    char *path; /* NULL: memory only */
    /* the record name messages give the sets (reg_provider_memory_name); set before sharing */
    char record_name[REG_NAME_MAX + 1];

    pthread_mutex_t lock;
    /* guarded by lock */
    struct reg_record table[2][REG_KINDS][REG_MAX_BUCKETS]; /* nvalues == 0: absent */
    int fd;
    unsigned long long changes; /* applied batches, for change ids */
    off_t journal_bytes;
    size_t live_values;
};

/* ---- JSON <-> records ------------------------------------------------------------------- */

/* The journal's name of a kind; NULL for served (no "kind" member is written). */
static const char *kind_json_name(enum reg_kind k)
{
    switch (k) {
    case REG_KIND_DOWN: return "down";
    case REG_KIND_DRAINING: return "draining";
    case REG_KIND_SERVED:
    default: return NULL;
    }
}

/* s NULL (member absent) is served; "served" is never written but read as served too. */
static int parse_kind(const char *s, enum reg_kind *k)
{
    if (!s || !strcmp(s, "served"))
        *k = REG_KIND_SERVED;
    else if (!strcmp(s, "down"))
        *k = REG_KIND_DOWN;
    else if (!strcmp(s, "draining"))
        *k = REG_KIND_DRAINING;
    else
        return -1;
    return 0;
}

/* For messages: "served", "down", "draining". */
static const char *kind_label(enum reg_kind k)
{
    const char *s = kind_json_name(k);
    return s ? s : "served";
}

static json_t *record_json(const struct reg_record *r)
{
    json_t *vals = json_array();
    char txt[IP_TEXT_MAX];
    for (size_t i = 0; i < r->nvalues; i++)
        json_array_append_new(vals, json_string(ip_format(&r->values[i], txt)));
    /* s*: no "kind" member at all for a served record (NULL) */
    return json_pack("{s:s, s:s*, s:I, s:I, s:I, s:o}", "type", reg_type_name(r->type), "kind",
                     kind_json_name(r->kind), "bucket", (json_int_t)r->bucket, "weight",
                     (json_int_t)r->weight, "ttl", (json_int_t)r->ttl, "values", vals);
}

static int parse_type(const char *s, enum reg_type *t)
{
    if (!strcmp(s, "A"))
        *t = REG_A;
    else if (!strcmp(s, "AAAA"))
        *t = REG_AAAA;
    else
        return -1;
    return 0;
}

/* Parse a record object; -1 with msg on malformed input. */
static int record_parse(json_t *o, struct reg_record *r, char *msg, size_t n)
{
    const char *type, *kind = NULL;
    json_int_t bucket, weight, ttl;
    json_t *vals;
    json_error_t jerr;

    memset(r, 0, sizeof(*r));
    if (json_unpack_ex(o, &jerr, JSON_STRICT, "{s:s, s?:s, s:I, s:I, s:I, s:o}", "type", &type,
                       "kind", &kind, "bucket", &bucket, "weight", &weight, "ttl", &ttl, "values",
                       &vals)) {
        snprintf(msg, n, "bad record: %s", jerr.text);
        return -1;
    }
    if (parse_kind(kind, &r->kind)) {
        snprintf(msg, n, "bad record: unknown kind \"%.40s\"", kind);
        return -1;
    }
    if (parse_type(type, &r->type) || bucket < 0 || bucket >= REG_MAX_BUCKETS || weight < 0 ||
        weight > REG_MAX_WEIGHT || ttl < 0 || ttl > 2147483647 || !json_is_array(vals) ||
        json_array_size(vals) > REG_MAX_VALUES) {
        snprintf(msg, n, "bad record: field out of range");
        return -1;
    }
    r->bucket = (unsigned)bucket;
    r->weight = (unsigned)weight;
    r->ttl = (unsigned)ttl;
    r->nvalues = json_array_size(vals);
    r->values = r->nvalues ? xmalloc(r->nvalues * sizeof(*r->values)) : NULL;
    for (size_t i = 0; i < r->nvalues; i++) {
        const char *s = json_string_value(json_array_get(vals, i));
        if (!s || ip_parse(s, strlen(s), &r->values[i], NULL, 0) ||
            reg_type_of(&r->values[i]) != r->type ||
            (i && ip_cmp(&r->values[i - 1], &r->values[i]) >= 0)) {
            snprintf(msg, n, "bad record: value %zu is not a sorted %s address", i, type);
            reg_record_release(r);
            return -1;
        }
    }
    return 0;
}

/* ---- the table -------------------------------------------------------------------------- */

static void table_put(struct memory_provider *mp, enum reg_type t, enum reg_kind k, unsigned b,
                      const struct reg_record *r)
{
    struct reg_record *slot = &mp->table[t][k][b];
    mp->live_values -= slot->nvalues;
    reg_record_release(slot);
    if (r && r->nvalues) {
        reg_record_copy(slot, r);
        mp->live_values += r->nvalues;
    }
    slot->type = t;
    slot->kind = k;
    slot->bucket = b;
}

static json_t *snapshot_json(struct memory_provider *mp)
{
    json_t *arr = json_array();
    for (int t = 0; t < 2; t++)
        for (int k = 0; k < REG_KINDS; k++)
            for (unsigned b = 0; b < REG_MAX_BUCKETS; b++)
                if (mp->table[t][k][b].nvalues)
                    json_array_append_new(arr, record_json(&mp->table[t][k][b]));
    return json_pack("{s:o}", "snapshot", arr);
}

/* ---- the journal file ------------------------------------------------------------------- */

static int write_all(int fd, const char *s, size_t n)
{
    while (n) {
        ssize_t w = write(fd, s, n);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            return -1;
        }
        s += w;
        n -= (size_t)w;
    }
    return 0;
}

static int fsync_dir(const char *path)
{
    char *copy = xstrdup(path);
    int fd = open(dirname(copy), O_RDONLY | O_DIRECTORY);
    int rc = -1;
    if (fd >= 0) {
        rc = fsync(fd);
        close(fd);
    }
    free(copy);
    return rc;
}

/* Rewrite the journal as one snapshot line. Caller holds lock. */
static enum rc_code compact(struct memory_provider *mp, char *detail, size_t n)
{
    size_t tlen = strlen(mp->path) + 8;
    char *tmp = xmalloc(tlen);
    json_t *snap = snapshot_json(mp);
    char *line = json_dumps(snap, JSON_COMPACT);
    size_t len = strlen(line);
    enum rc_code rc = RC_OK;
    int fd;

    snprintf(tmp, tlen, "%s.tmp", mp->path);
    fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0 || write_all(fd, line, len) || write_all(fd, "\n", 1) || fsync(fd) ||
        rename(tmp, mp->path) || fsync_dir(mp->path)) {
        snprintf(detail, n, "cannot write state file %s: %s", tmp, strerror(errno));
        if (fd >= 0)
            close(fd);
        unlink(tmp);
        rc = RC_STORE_IO;
        goto out;
    }
    if (mp->fd >= 0)
        close(mp->fd);
    mp->fd = fd;
    if (lseek(mp->fd, 0, SEEK_END) < 0) {
        rc = RC_STORE_IO;
        goto out;
    }
    mp->journal_bytes = (off_t)len + 1;
out:
    free(line);
    json_decref(snap);
    free(tmp);
    return rc;
}

/* Append one line and fsync; on failure cut the file back. Caller holds lock. */
static enum rc_code journal_append(struct memory_provider *mp, const char *line, char *detail,
                                   size_t n)
{
    size_t len = strlen(line);
    if (write_all(mp->fd, line, len) || write_all(mp->fd, "\n", 1) || fdatasync(mp->fd)) {
        int err = errno;
        if (ftruncate(mp->fd, mp->journal_bytes) == 0)
            lseek(mp->fd, mp->journal_bytes, SEEK_SET);
        snprintf(detail, n, "cannot append to state file %s: %s", mp->path, strerror(err));
        return RC_STORE_IO;
    }
    mp->journal_bytes += (off_t)len + 1;
    return RC_OK;
}

static int apply_json_line(struct memory_provider *mp, json_t *doc, char *msg, size_t n)
{
    json_t *snap = json_object_get(doc, "snapshot");
    json_t *changes = json_object_get(doc, "apply");
    size_t i;
    json_t *item;

    if (snap && json_is_array(snap)) {
        for (int t = 0; t < 2; t++)
            for (int k = 0; k < REG_KINDS; k++)
                for (unsigned b = 0; b < REG_MAX_BUCKETS; b++)
                    table_put(mp, (enum reg_type)t, (enum reg_kind)k, b, NULL);
        json_array_foreach(snap, i, item)
        {
            struct reg_record r;
            if (record_parse(item, &r, msg, n))
                return -1;
            table_put(mp, r.type, r.kind, r.bucket, &r);
            reg_record_release(&r);
        }
        return 0;
    }
    if (!changes || !json_is_array(changes)) {
        snprintf(msg, n, "neither a snapshot nor an apply line");
        return -1;
    }
    json_array_foreach(changes, i, item)
    {
        const char *type = json_string_value(json_object_get(item, "type"));
        json_t *jk = json_object_get(item, "kind");
        json_t *jb = json_object_get(item, "bucket");
        json_t *rec = json_object_get(item, "record");
        enum reg_type t;
        enum reg_kind k;
        json_int_t b = json_integer_value(jb);
        if (!type || parse_type(type, &t) || (jk && !json_is_string(jk)) ||
            parse_kind(json_string_value(jk), &k) || !json_is_integer(jb) || b < 0 ||
            b >= REG_MAX_BUCKETS || !rec) {
            snprintf(msg, n, "bad change %zu", i);
            return -1;
        }
        if (json_is_null(rec)) {
            table_put(mp, t, k, (unsigned)b, NULL);
        } else {
            struct reg_record r;
            if (record_parse(rec, &r, msg, n))
                return -1;
            table_put(mp, t, k, (unsigned)b, &r);
            reg_record_release(&r);
        }
    }
    return 0;
}

/* A line of only whitespace and NUL bytes (a blank line; the zeros a file system may leave
 * after a crash) holds no batch. */
static int line_is_blank(const char *line, size_t len)
{
    for (size_t i = 0; i < len; i++)
        if (line[i] != '\0' && line[i] != ' ' && line[i] != '\t' && line[i] != '\r' &&
            line[i] != '\n')
            return 0;
    return 1;
}

/* path in single quotes for a shell command (' written as '\''). */
static void shell_quote(const char *path, char *out, size_t n)
{
    size_t o = 0;
    if (n < 3)
        return;
    out[o++] = '\'';
    for (const char *c = path; *c && o + 6 < n; c++) {
        if (*c == '\'') {
            memcpy(out + o, "'\\''", 4);
            o += 4;
        } else {
            out[o++] = *c;
        }
    }
    out[o++] = '\'';
    out[o] = '\0';
}

/*
 * Replay the journal into the table. Blank lines (and NUL-only lines) are skipped wherever they
 * are. A last line without its newline is torn (a crash mid-write: its batch was never
 * acknowledged): it is not applied, and cut off with any blank lines before it, so the file
 * ends with the last applied line. A corrupt line before that stops startup; the detail names
 * the line and the command that truncates the file to the last good line.
 */
static enum rc_code journal_load(struct memory_provider *mp, char *detail, size_t n)
{
    FILE *f = NULL;
    char *line = NULL;
    size_t cap = 0, lineno = 0, applied = 0, blank = 0;
    ssize_t len;
    off_t good = 0, pos = 0;
    enum rc_code rc = RC_OK;
    int fd = open(mp->path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);

    if (fd < 0) {
        snprintf(detail, n, "cannot open state file %s: %s", mp->path, strerror(errno));
        return RC_IO;
    }
    f = fdopen(dup(fd), "r");
    if (!f) {
        snprintf(detail, n, "cannot read state file %s: %s", mp->path, strerror(errno));
        rc = RC_IO;
        goto out;
    }
    while ((len = getline(&line, &cap, f)) > 0) {
        json_error_t jerr;
        json_t *doc;
        char msg[200], qpath[600];
        int complete = line[len - 1] == '\n';
        off_t start = pos;
        lineno++;
        pos += len;
        if (line_is_blank(line, (size_t)len)) {
            blank++;
            continue;
        }
        if (!complete) {
            /* A torn tail: never acknowledged. Not applied; cut off below. */
            log_warn("msg=\"state file: torn last line not applied, cut off\" path=%s line=%zu "
                     "bytes=%zd at_byte=%lld",
                     log_quote(mp->path, qpath, sizeof(qpath)), lineno, len, (long long)start);
            break;
        }
        doc = json_loadb(line, (size_t)len, 0, &jerr);
        if (doc && apply_json_line(mp, doc, msg, sizeof(msg)) == 0) {
            json_decref(doc);
            applied++;
            good = pos;
            continue;
        }
        if (!doc)
            snprintf(msg, sizeof(msg), "%s", jerr.text);
        json_decref(doc);
        shell_quote(mp->path, qpath, sizeof(qpath));
        snprintf(detail, n,
                 "state file %s line %zu (bytes %lld..%lld) is corrupt: %s. The lines before "
                 "it are intact: to start from them (losing line %zu and every later line), "
                 "stop every r53reg using the file, keep a copy, and run: truncate -s %lld %s",
                 mp->path, lineno, (long long)start, (long long)pos, msg, lineno, (long long)good,
                 qpath);
        rc = RC_IO;
        goto out;
    }
    if (ftruncate(fd, good) || lseek(fd, good, SEEK_SET) < 0) {
        snprintf(detail, n, "cannot truncate state file %s: %s", mp->path, strerror(errno));
        rc = RC_IO;
        goto out;
    }
    {
        char qpath[600];
        log_info("msg=\"state file loaded\" path=%s lines_applied=%zu blank_lines_skipped=%zu "
                 "bytes=%lld cut_bytes=%lld",
                 log_quote(mp->path, qpath, sizeof(qpath)), applied, blank, (long long)good,
                 (long long)(pos - good));
    }
    mp->fd = fd;
    fd = -1;
    mp->journal_bytes = good;
out:
    if (fd >= 0)
        close(fd);
    if (f)
        fclose(f);
    free(line);
    return rc;
}

/* ---- the provider ops ------------------------------------------------------------------- */

static enum rc_code mem_load(struct reg_provider *p, struct reg_record **records, size_t *n,
                             char *detail, size_t detail_len)
{
    struct memory_provider *mp = (struct memory_provider *)p;
    size_t count = 0;
    struct reg_record *out = NULL;

    pthread_mutex_lock(&mp->lock);
    for (int t = 0; t < 2; t++)
        for (int k = 0; k < REG_KINDS; k++)
            for (unsigned b = 0; b < REG_MAX_BUCKETS; b++)
                count += mp->table[t][k][b].nvalues ? 1 : 0;
    out = xcalloc(count ? count : 1, sizeof(*out));
    count = 0;
    for (int t = 0; t < 2; t++)
        for (int k = 0; k < REG_KINDS; k++)
            for (unsigned b = 0; b < REG_MAX_BUCKETS; b++)
                if (mp->table[t][k][b].nvalues)
                    reg_record_copy(&out[count++], &mp->table[t][k][b]);
    pthread_mutex_unlock(&mp->lock);
    *records = out;
    *n = count;
    return RC_OK;
}

/* The set (type, kind, bucket) as the batch would leave it: its change's new record, or the
 * table's when the batch does not touch it. NULL: none. Caller holds mp->lock. */
static const struct reg_record *set_after(struct memory_provider *mp,
                                          const struct reg_change *changes, size_t n,
                                          enum reg_type t, enum reg_kind k, unsigned b)
{
    const struct reg_record *cur = &mp->table[t][k][b];
    for (size_t i = 0; i < n; i++) {
        const struct reg_record *key = changes[i].old ? changes[i].old : changes[i].new;
        if (key->type == t && key->kind == k && key->bucket == b)
            return changes[i].new;
    }
    return cur->nvalues ? cur : NULL;
}

/*
 * Route 53's weighted-group rule: every set of one name and type carries one TTL, and a set
 * created with another is refused. Judged on what the batch leaves (a batch may move a whole
 * group to a new TTL). RC_CONFLICT, with Route 53's wording, when a created set breaks it.
 */
static enum rc_code check_group_ttl(struct memory_provider *mp, const struct reg_change *changes,
                                    size_t n, char *detail, size_t detail_len)
{
    for (size_t i = 0; i < n; i++) {
        const struct reg_record *nr = changes[i].new;
        if (!nr)
            continue;
        for (unsigned b = 0; b < REG_MAX_BUCKETS; b++) {
            const struct reg_record *o = set_after(mp, changes, n, nr->type, nr->kind, b);
            if (b != nr->bucket && o && o->ttl != nr->ttl) {
                snprintf(detail, detail_len,
                         "%s record %s set of bucket %u cannot be created as weighted sets must "
                         "contain the same TTL (the group's is %u, the set's %u)",
                         reg_type_name(nr->type), kind_label(nr->kind), nr->bucket, o->ttl,
                         nr->ttl);
                return RC_CONFLICT;
            }
        }
    }
    return RC_OK;
}

/*
 * The compare-and-swap of every change: each set whose old does not match the table is named
 * in conflicts (may be NULL) and in detail, one message per set in Route 53's words, as its
 * bracketed list. RC_CONFLICT when any did not match. Caller holds mp->lock.
 */
static enum rc_code check_olds(struct memory_provider *mp, const struct reg_change *changes,
                               size_t n, struct reg_conflicts *conflicts, char *detail,
                               size_t detail_len)
{
    struct buf msg = {0};
    size_t failed = 0;

    for (size_t i = 0; i < n; i++) {
        const struct reg_record *key = changes[i].old ? changes[i].old : changes[i].new;
        const struct reg_record *cur = &mp->table[key->type][key->kind][key->bucket];
        const char *verb = changes[i].old ? "delete" : "create", *why;
        if (changes[i].old && !cur->nvalues)
            why = "it was not found";
        else if (changes[i].old && !reg_record_equal(cur, changes[i].old))
            why = "the values provided do not match the current values";
        else if (!changes[i].old && cur->nvalues)
            why = "it already exists";
        else
            continue;
        reg_conflicts_add(conflicts, key->type, key->kind, key->bucket);
        buf_adds(&msg, failed++ ? ", " : "[");
        buf_addf(&msg,
                 "Tried to %s resource record set [name='%s%s.', type='%s', "
                 "set-identifier='%s_%u'] but %s",
                 verb, reg_kind_prefix(key->kind), mp->record_name, reg_type_name(key->type),
                 mp->record_name, key->bucket, why);
    }
    if (failed)
        snprintf(detail, detail_len, "%s]", buf_str(&msg));
    buf_release(&msg);
    return failed ? RC_CONFLICT : RC_OK;
}

static enum rc_code mem_apply(struct reg_provider *p, const struct reg_change *changes, size_t n,
                              char *change_id, struct reg_conflicts *conflicts, char *detail,
                              size_t detail_len)
{
    struct memory_provider *mp = (struct memory_provider *)p;
    enum rc_code rc = RC_OK;
    json_t *doc = NULL;
    char *line = NULL;

    reg_conflicts_clear(conflicts);
    pthread_mutex_lock(&mp->lock);
    rc = check_olds(mp, changes, n, conflicts, detail, detail_len);
    if (rc)
        goto out;
    rc = check_group_ttl(mp, changes, n, detail, detail_len);
    if (rc)
        goto out;
    if (mp->path) {
        json_t *arr = json_array();
        for (size_t i = 0; i < n; i++) {
            const struct reg_record *key = changes[i].old ? changes[i].old : changes[i].new;
            json_array_append_new(
                arr,
                json_pack("{s:s, s:s*, s:I, s:o}", "type", reg_type_name(key->type), "kind",
                          kind_json_name(key->kind), "bucket", (json_int_t)key->bucket, "record",
                          changes[i].new ? record_json(changes[i].new) : json_null()));
        }
        doc = json_pack("{s:o}", "apply", arr);
        line = json_dumps(doc, JSON_COMPACT);
        rc = journal_append(mp, line, detail, detail_len);
        if (rc)
            goto out;
    }
    for (size_t i = 0; i < n; i++) {
        const struct reg_record *key = changes[i].old ? changes[i].old : changes[i].new;
        table_put(mp, key->type, key->kind, key->bucket, changes[i].new);
    }
    mp->changes++;
    if (change_id)
        snprintf(change_id, REG_CHANGE_ID_MAX, "M%llu", mp->changes);
    if (mp->path && mp->journal_bytes > (off_t)COMPACT_MIN_BYTES &&
        (size_t)mp->journal_bytes > 4 * (mp->live_values * 24 + 4096)) {
        char cdetail[REG_DETAIL_MAX];
        /* The batch is durable already; a failed compaction only leaves a longer journal. */
        if (compact(mp, cdetail, sizeof(cdetail)))
            log_warn("msg=\"state file compaction failed\" detail=\"%s\"", cdetail);
    }
out:
    pthread_mutex_unlock(&mp->lock);
    free(line);
    json_decref(doc);
    return rc;
}

static enum rc_code mem_reload(struct reg_provider *p, enum reg_type type, enum reg_kind kind,
                               unsigned bucket, struct reg_record *out, char *detail,
                               size_t detail_len)
{
    struct memory_provider *mp = (struct memory_provider *)p;
    pthread_mutex_lock(&mp->lock);
    reg_record_copy(out, &mp->table[type][kind][bucket]);
    pthread_mutex_unlock(&mp->lock);
    return RC_OK;
}

/* A local store serves a change as soon as it is applied. */
static enum rc_code mem_change_status(struct reg_provider *p, const char *change_id, int *insync,
                                      char *detail, size_t detail_len)
{
    *insync = 1;
    return RC_OK;
}

static int mem_ready(struct reg_provider *p)
{
    return 1;
}

static void mem_destroy(struct reg_provider *p)
{
    struct memory_provider *mp = (struct memory_provider *)p;
    if (!mp)
        return;
    for (int t = 0; t < 2; t++)
        for (int k = 0; k < REG_KINDS; k++)
            for (unsigned b = 0; b < REG_MAX_BUCKETS; b++)
                reg_record_release(&mp->table[t][k][b]);
    if (mp->fd >= 0) {
        fsync(mp->fd);
        close(mp->fd);
    }
    pthread_mutex_destroy(&mp->lock);
    free(mp->path);
    free(mp);
}

static const struct reg_provider_ops memory_ops = {
    .name = "memory",
    .load = mem_load,
    .apply = mem_apply,
    .reload = mem_reload,
    .change_status = mem_change_status,
    .ready = mem_ready,
    .destroy = mem_destroy,
};

enum rc_code reg_provider_memory_create(const char *state_file, struct reg_provider **out,
                                        char *detail, size_t detail_len)
{
    struct memory_provider *mp = xcalloc(1, sizeof(*mp));
    enum rc_code rc = RC_OK;

    mp->base.ops = &memory_ops;
    mp->fd = -1;
    snprintf(mp->record_name, sizeof(mp->record_name), "r53reg.invalid");
    pthread_mutex_init(&mp->lock, NULL);
    for (int t = 0; t < 2; t++)
        for (int k = 0; k < REG_KINDS; k++)
            for (unsigned b = 0; b < REG_MAX_BUCKETS; b++) {
                mp->table[t][k][b].type = (enum reg_type)t;
                mp->table[t][k][b].kind = (enum reg_kind)k;
                mp->table[t][k][b].bucket = b;
            }
    if (state_file) {
        mp->path = xstrdup(state_file);
        rc = journal_load(mp, detail, detail_len);
        if (rc)
            goto out;
        /* Start every run from one compact snapshot line. */
        rc = compact(mp, detail, detail_len);
        if (rc)
            goto out;
    }
out:
    if (rc) {
        mem_destroy(&mp->base);
        mp = NULL;
    }
    *out = mp ? &mp->base : NULL;
    return rc;
}

void reg_provider_memory_name(struct reg_provider *p, const char *record_name)
{
    struct memory_provider *mp = (struct memory_provider *)p;
    snprintf(mp->record_name, sizeof(mp->record_name), "%s", record_name);
}
