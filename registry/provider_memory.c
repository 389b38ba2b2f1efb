/*
 * provider_memory.c: the embedded store behind --provider memory.
 *
 * Records live in a table indexed by [type][kind][slot] (kind: served, down, draining; see
 * enum reg_kind; slot: the name's buckets and its children's, registry.h), allocated once, and
 * the alias tree's aliases in a table of their own indexed by [type][child] (exists, weight).
 * apply() checks every change's expected old record against the tables (the same
 * compare-and-swap rule Route 53's DELETE+CREATE batch enforces), then Route 53's rules
 * (one TTL per weighted group name, and the tree's rules of registry/tree_rules.h), then applies
 * all of them, under one mutex; one batch may mix types, kinds, slots and aliases. A refused
 * batch names every set that did not match, as Route 53 does and in its words, under the
 * names Route 53 would give them (struct reg_conflicts, and the detail: "[Tried to delete
 * resource record set [name=..., set-identifier=...] but ...]").
 *
 * With a state file, the file is a journal of JSON lines:
 *   {"snapshot":[record...]}           first line: the whole store at compaction time
 *   {"apply":[{"type":"A","kind":"down","bucket":3,"record":record|null}...]}
 *                                      one line per applied batch
 * where record = {"type","kind","bucket","weight","ttl","values":[...]}, bucket a slot.
 * "kind" is "down" or "draining" and is written only for those kinds: a served record has no
 * "kind" member, and a missing one reads as served, so journals written before kinds existed
 * load unchanged. An alias is record = {"type":"A","alias":7,"weight":12} (7: the child) and
 * change {"type":"A","alias":7,"record":record|null}: members no journal written before the
 * tree holds, so those load unchanged too (and a store that predates the tree refuses a
 * journal holding aliases instead of misreading it). A batch is acknowledged only after its
 * line is written and fsynced. At load, blank lines (and NUL-only ones) are skipped; a last
 * line without its newline is torn (a crash mid-write, never acknowledged): not applied, and
 * cut off; a corrupt line stops startup with the command that truncates the file to the last
 * good line. When the journal grows past 4x the size of a snapshot (and at least 1 MiB), it is
 * rewritten as a single snapshot line (every kind and alias) through a temporary file, fsync
 * and rename.
 *
 * Threading: one mutex guards the tables and the file; apply/load/ready may be called from
 * any thread.
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

#include "registry/provider_memory.h"
#include "registry/tree_rules.h"
#include "util/buf.h"
#include "util/log.h"
#include "util/xalloc.h"

#define COMPACT_MIN_BYTES (1u << 20)
/* What the tree's refusals call the zone. */
#define MEMORY_ZONE "memory"

/* One alias of the tree: the name's weighted alias to a child. */
struct alias_entry {
    int exists;
    unsigned weight;
};

struct memory_provider {
    struct reg_provider base;
    char *path; /* NULL: memory only */
    /* the names messages give the sets (reg_provider_memory_options); set before sharing */
    struct reg_options opt;

    pthread_mutex_t lock;
    /* guarded by lock */
    struct reg_record (*table)[REG_KINDS][REG_MAX_SLOTS]; /* [2]; nvalues == 0: absent */
    struct alias_entry aliases[2][REG_TREE_CHILDREN];
    struct tree_counts counts; /* the tables as tree_rules_check() counts them */
    /* [2][REG_KINDS][REG_MAX_SLOTS]: the change of the batch being judged that touches each
     * set, or -1 (every entry is -1 between batches) */
    int *batch_at;
    int fd;
    unsigned long long changes; /* applied batches, for change ids */
    off_t journal_bytes;
    size_t live_values;
    size_t live_aliases;
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

static json_t *record_json(const struct reg_record *r)
{
    json_t *vals;
    char txt[IP_TEXT_MAX];

    if (r->alias)
        return json_pack("{s:s, s:I, s:I}", "type", reg_type_name(r->type), "alias",
                         (json_int_t)r->bucket, "weight", (json_int_t)r->weight);
    vals = json_array();
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

/* Parse an alias record object ({"type","alias","weight"}); -1 with msg on malformed input. */
static int alias_parse(json_t *o, struct reg_record *r, char *msg, size_t n)
{
    const char *type;
    json_int_t child, weight;
    json_error_t jerr;

    memset(r, 0, sizeof(*r));
    if (json_unpack_ex(o, &jerr, JSON_STRICT, "{s:s, s:I, s:I}", "type", &type, "alias", &child,
                       "weight", &weight)) {
        snprintf(msg, n, "bad alias record: %s", jerr.text);
        return -1;
    }
    if (parse_type(type, &r->type) || child < 0 || child >= REG_TREE_CHILDREN || weight < 0 ||
        weight > REG_MAX_WEIGHT) {
        snprintf(msg, n, "bad alias record: field out of range");
        return -1;
    }
    r->kind = REG_KIND_SERVED;
    r->bucket = (unsigned)child;
    r->weight = (unsigned)weight;
    r->alias = 1;
    return 0;
}

/* Parse a record object (a bucket's set, or an alias); -1 with msg on malformed input. */
static int record_parse(json_t *o, struct reg_record *r, char *msg, size_t n)
{
    const char *type, *kind = NULL;
    json_int_t bucket, weight, ttl;
    json_t *vals;
    json_error_t jerr;

    if (json_is_object(o) && json_object_get(o, "alias"))
        return alias_parse(o, r, msg, n);
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
    if (parse_type(type, &r->type) || bucket < 0 || bucket >= REG_MAX_SLOTS || weight < 0 ||
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
    tree_counts_note(&mp->counts, slot, -1);
    mp->live_values -= slot->nvalues;
    reg_record_release(slot);
    if (r && r->nvalues) {
        reg_record_copy(slot, r);
        mp->live_values += r->nvalues;
    }
    slot->type = t;
    slot->kind = k;
    slot->bucket = b;
    slot->alias = 0;
    tree_counts_note(&mp->counts, slot, 1);
}

/* The alias of type t to child: r's weight, or none when r is NULL. */
static void alias_put(struct memory_provider *mp, enum reg_type t, unsigned child,
                      const struct reg_record *r)
{
    struct alias_entry *a = &mp->aliases[t][child];
    mp->live_aliases -= (size_t)a->exists;
    a->exists = r != NULL;
    a->weight = r ? r->weight : 0;
    mp->live_aliases += (size_t)a->exists;
    mp->counts.alias[t][child] = (unsigned char)a->exists;
}

/* Put the change's record (NULL: none) at key's place, a set's or an alias's. */
static void store_put(struct memory_provider *mp, const struct reg_record *key,
                      const struct reg_record *r)
{
    if (key->alias)
        alias_put(mp, key->type, key->bucket, r);
    else
        table_put(mp, key->type, key->kind, key->bucket, r);
}

/* The alias of type t to child as a record (alias = 1, no values). */
static struct reg_record alias_record(const struct memory_provider *mp, enum reg_type t,
                                      unsigned child)
{
    return reg_alias_record(t, child, mp->aliases[t][child].weight);
}

/* Empty both tables. */
static void store_clear(struct memory_provider *mp)
{
    for (int t = 0; t < 2; t++) {
        for (int k = 0; k < REG_KINDS; k++)
            for (unsigned b = 0; b < REG_MAX_SLOTS; b++)
                table_put(mp, (enum reg_type)t, (enum reg_kind)k, b, NULL);
        for (unsigned c = 0; c < REG_TREE_CHILDREN; c++)
            alias_put(mp, (enum reg_type)t, c, NULL);
    }
}

static json_t *snapshot_json(struct memory_provider *mp)
{
    json_t *arr = json_array();
    for (int t = 0; t < 2; t++)
        for (int k = 0; k < REG_KINDS; k++)
            for (unsigned b = 0; b < REG_MAX_SLOTS; b++)
                if (mp->table[t][k][b].nvalues)
                    json_array_append_new(arr, record_json(&mp->table[t][k][b]));
    for (int t = 0; t < 2; t++)
        for (unsigned c = 0; c < REG_TREE_CHILDREN; c++)
            if (mp->aliases[t][c].exists) {
                struct reg_record r = alias_record(mp, (enum reg_type)t, c);
                json_array_append_new(arr, record_json(&r));
            }
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

/* One change of an apply line: {"type","alias","record"} for an alias, else
 * {"type","kind"?,"bucket","record"}. -1 with msg on malformed input. */
static int apply_json_change(struct memory_provider *mp, json_t *item, size_t i, char *msg,
                             size_t n)
{
    const char *type = json_string_value(json_object_get(item, "type"));
    json_t *ja = json_object_get(item, "alias");
    json_t *jk = json_object_get(item, "kind");
    json_t *jb = json_object_get(item, ja ? "alias" : "bucket");
    json_t *rec = json_object_get(item, "record");
    json_int_t b = json_integer_value(jb);
    struct reg_record key, r;
    enum reg_type t;
    enum reg_kind k;

    if (!type || parse_type(type, &t) || (jk && !json_is_string(jk)) ||
        parse_kind(json_string_value(jk), &k) || !json_is_integer(jb) || b < 0 ||
        b >= (ja ? REG_TREE_CHILDREN : REG_MAX_SLOTS) ||
        (ja && (jk || json_object_get(item, "bucket"))) || !rec) {
        snprintf(msg, n, "bad change %zu", i);
        return -1;
    }
    memset(&key, 0, sizeof(key));
    key.type = t;
    key.kind = k;
    key.bucket = (unsigned)b;
    key.alias = ja != NULL;
    if (json_is_null(rec)) {
        store_put(mp, &key, NULL);
        return 0;
    }
    if (record_parse(rec, &r, msg, n))
        return -1;
    if (r.alias != key.alias) {
        snprintf(msg, n, "bad change %zu: %s record for %s", i, r.alias ? "an alias" : "a set's",
                 key.alias ? "an alias" : "a set");
        reg_record_release(&r);
        return -1;
    }
    store_put(mp, &key, &r);
    reg_record_release(&r);
    return 0;
}

static int apply_json_line(struct memory_provider *mp, json_t *doc, char *msg, size_t n)
{
    json_t *snap = json_object_get(doc, "snapshot");
    json_t *changes = json_object_get(doc, "apply");
    size_t i;
    json_t *item;

    if (snap && json_is_array(snap)) {
        store_clear(mp);
        json_array_foreach(snap, i, item)
        {
            struct reg_record r;
            if (record_parse(item, &r, msg, n))
                return -1;
            store_put(mp, &r, &r);
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
        if (apply_json_change(mp, item, i, msg, n))
            return -1;
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
            for (unsigned b = 0; b < REG_MAX_SLOTS; b++)
                count += mp->table[t][k][b].nvalues ? 1 : 0;
    count += mp->live_aliases;
    out = xcalloc(count ? count : 1, sizeof(*out));
    count = 0;
    for (int t = 0; t < 2; t++)
        for (int k = 0; k < REG_KINDS; k++)
            for (unsigned b = 0; b < REG_MAX_SLOTS; b++)
                if (mp->table[t][k][b].nvalues)
                    reg_record_copy(&out[count++], &mp->table[t][k][b]);
    for (int t = 0; t < 2; t++)
        for (unsigned c = 0; c < REG_TREE_CHILDREN; c++)
            if (mp->aliases[t][c].exists)
                out[count++] = alias_record(mp, (enum reg_type)t, c);
    pthread_mutex_unlock(&mp->lock);
    *records = out;
    *n = count;
    return RC_OK;
}

/* Where batch_at keeps set (t, kind, slot). */
static size_t batch_index(enum reg_type t, enum reg_kind k, unsigned slot)
{
    return ((size_t)t * REG_KINDS + (size_t)k) * REG_MAX_SLOTS + slot;
}

/* The key (old, or new when it expects none) of change i. */
static const struct reg_record *change_key(const struct reg_change *changes, size_t i)
{
    return changes[i].old ? changes[i].old : changes[i].new;
}

/*
 * Note in batch_at which change touches each set of the batch (every change well formed). A
 * batch touching one set or alias twice is refused (RC_BAD_REQUEST), as Route 53 refuses it
 * (a change is one DELETE and one CREATE of its set already); batch_at is left clean then.
 * Caller holds mp->lock.
 */
static enum rc_code batch_mark(struct memory_provider *mp, const struct reg_change *changes,
                               size_t n, char *detail, size_t detail_len)
{
    unsigned char seen[2][REG_TREE_CHILDREN];
    memset(seen, 0, sizeof(seen));
    for (size_t i = 0; i < n; i++) {
        const struct reg_record *key = change_key(changes, i);
        int twice;
        if (key->alias) {
            twice = seen[key->type][key->bucket]++ > 0;
        } else {
            int *at = &mp->batch_at[batch_index(key->type, key->kind, key->bucket)];
            twice = *at >= 0;
            if (!twice)
                *at = (int)i;
        }
        if (twice) {
            for (size_t j = 0; j < i; j++) {
                const struct reg_record *kj = change_key(changes, j);
                if (!kj->alias)
                    mp->batch_at[batch_index(kj->type, kj->kind, kj->bucket)] = -1;
            }
            rc_detail(detail, detail_len, "change %zu touches a set an earlier change touches", i);
            return RC_BAD_REQUEST;
        }
    }
    return RC_OK;
}

/* Undo batch_mark(). Caller holds mp->lock. */
static void batch_unmark(struct memory_provider *mp, const struct reg_change *changes, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        const struct reg_record *key = change_key(changes, i);
        if (!key->alias)
            mp->batch_at[batch_index(key->type, key->kind, key->bucket)] = -1;
    }
}

/* The set (type, kind, slot) as the batch would leave it: its change's new record, or the
 * table's when the batch does not touch it. NULL: none. Caller holds mp->lock and marked the
 * batch. */
static const struct reg_record *set_after(struct memory_provider *mp,
                                          const struct reg_change *changes, enum reg_type t,
                                          enum reg_kind k, unsigned slot)
{
    const struct reg_record *cur = &mp->table[t][k][slot];
    int at = mp->batch_at[batch_index(t, k, slot)];
    if (at >= 0) {
        const struct reg_record *nr = changes[at].new;
        return nr && nr->nvalues ? nr : NULL;
    }
    return cur->nvalues ? cur : NULL;
}

/*
 * Route 53's weighted-group rule: every set of one name and type carries one TTL, and a set
 * created with another is refused. A group is one name: the name's own buckets of one kind,
 * or one child's (each child is a name of its own, so children may differ from the name and
 * from each other); aliases carry no TTL and take no part. Judged on what the batch leaves (a
 * batch may move a whole group to a new TTL). RC_CONFLICT, in Route 53's words, when a created
 * set breaks it. Caller holds mp->lock and marked the batch.
 */
static enum rc_code check_group_ttl(struct memory_provider *mp, const struct reg_change *changes,
                                    size_t n, char *detail, size_t detail_len)
{
    for (size_t i = 0; i < n; i++) {
        const struct reg_record *nr = changes[i].new;
        int child;
        if (!nr || nr->alias || !nr->nvalues)
            continue;
        child = reg_slot_child(nr->bucket);
        for (unsigned b = 0; b < REG_MAX_BUCKETS; b++) {
            unsigned slot = reg_slot_of(child, b);
            const struct reg_record *o = set_after(mp, changes, nr->type, nr->kind, slot);
            char name[REG_NAME_MAX + 1], sid[REG_SET_ID_MAX + 1];
            if (slot == nr->bucket || !o || o->ttl == nr->ttl)
                continue;
            reg_slot_name(&mp->opt, nr->bucket, nr->kind, name, sizeof(name));
            reg_set_id(&mp->opt, nr->bucket, sid, sizeof(sid));
            rc_detail(detail, detail_len,
                      "[RRSet with DNS name %s. and type %s, SetIdentifier %s cannot be created "
                      "as weighted sets must contain the same TTL.] (the group's TTL is %u, the "
                      "set's %u)",
                      name, reg_type_name(nr->type), sid, o->ttl, nr->ttl);
            return RC_CONFLICT;
        }
    }
    return RC_OK;
}

/* Why the stored alias is not what change c expects, or NULL when it is. */
static const char *alias_mismatch(const struct alias_entry *cur, const struct reg_change *c)
{
    if (c->old && !cur->exists)
        return "it was not found";
    if (c->old && cur->weight != c->old->weight)
        return "the values provided do not match the current values";
    if (!c->old && cur->exists)
        return "it already exists";
    return NULL;
}

/* Why the stored set is not what change c expects, or NULL when it is. */
static const char *set_mismatch(const struct reg_record *cur, const struct reg_change *c)
{
    if (c->old && !cur->nvalues)
        return "it was not found";
    if (c->old && !reg_record_equal(cur, c->old))
        return "the values provided do not match the current values";
    if (!c->old && cur->nvalues)
        return "it already exists";
    return NULL;
}

/*
 * The compare-and-swap of every change: each set or alias whose old does not match the store
 * is named in conflicts (may be NULL) and in detail, one message per set in Route 53's words
 * and under the names Route 53 would give it, as its bracketed list. RC_CONFLICT when any did
 * not match. Caller holds mp->lock.
 */
static enum rc_code check_olds(struct memory_provider *mp, const struct reg_change *changes,
                               size_t n, struct reg_conflicts *conflicts, char *detail,
                               size_t detail_len)
{
    struct buf msg = {0};
    size_t failed = 0;

    for (size_t i = 0; i < n; i++) {
        const struct reg_record *key = change_key(changes, i);
        const char *verb = changes[i].old ? "delete" : "create", *why;
        char name[REG_NAME_MAX + 1], sid[REG_SET_ID_MAX + 1];
        if (key->alias) {
            why = alias_mismatch(&mp->aliases[key->type][key->bucket], &changes[i]);
            if (!why)
                continue;
            reg_conflicts_add_alias(conflicts, key->type, key->bucket);
            snprintf(name, sizeof(name), "%s", mp->opt.record_name);
            reg_alias_set_id(&mp->opt, key->bucket, sid, sizeof(sid));
        } else {
            why = set_mismatch(&mp->table[key->type][key->kind][key->bucket], &changes[i]);
            if (!why)
                continue;
            reg_conflicts_add(conflicts, key->type, key->kind, key->bucket);
            reg_slot_name(&mp->opt, key->bucket, key->kind, name, sizeof(name));
            reg_set_id(&mp->opt, key->bucket, sid, sizeof(sid));
        }
        buf_adds(&msg, failed++ ? ", " : "[");
        buf_addf(&msg,
                 "Tried to %s resource record set [name='%s.', type='%s', "
                 "set-identifier='%s'] but %s",
                 verb, name, reg_type_name(key->type), sid, why);
    }
    if (failed)
        snprintf(detail, detail_len, "%s]", buf_str(&msg));
    buf_release(&msg);
    return failed ? RC_CONFLICT : RC_OK;
}

/* The journal's line for a batch (caller frees). */
static char *batch_line(const struct reg_change *changes, size_t n)
{
    json_t *arr = json_array(), *doc;
    char *line;
    for (size_t i = 0; i < n; i++) {
        const struct reg_record *key = change_key(changes, i);
        json_t *rec = changes[i].new ? record_json(changes[i].new) : json_null();
        if (key->alias)
            json_array_append_new(arr,
                                  json_pack("{s:s, s:I, s:o}", "type", reg_type_name(key->type),
                                            "alias", (json_int_t)key->bucket, "record", rec));
        else
            json_array_append_new(arr, json_pack("{s:s, s:s*, s:I, s:o}", "type",
                                                 reg_type_name(key->type), "kind",
                                                 kind_json_name(key->kind), "bucket",
                                                 (json_int_t)key->bucket, "record", rec));
    }
    doc = json_pack("{s:o}", "apply", arr);
    line = json_dumps(doc, JSON_COMPACT);
    json_decref(doc);
    return line;
}

static enum rc_code mem_apply(struct reg_provider *p, const struct reg_change *changes, size_t n,
                              char *change_id, struct reg_conflicts *conflicts, char *detail,
                              size_t detail_len)
{
    struct memory_provider *mp = (struct memory_provider *)p;
    enum rc_code rc = RC_OK;
    char *line = NULL;
    int marked = 0;

    reg_conflicts_clear(conflicts);
    rc = tree_rules_keys(changes, n, detail, detail_len);
    if (rc)
        return rc;
    pthread_mutex_lock(&mp->lock);
    rc = batch_mark(mp, changes, n, detail, detail_len);
    if (rc)
        goto out;
    marked = 1;
    rc = check_olds(mp, changes, n, conflicts, detail, detail_len);
    if (rc)
        goto out;
    rc = check_group_ttl(mp, changes, n, detail, detail_len);
    if (rc)
        goto out;
    rc = tree_rules_check(&mp->opt, MEMORY_ZONE, &mp->counts, changes, n, detail, detail_len);
    if (rc)
        goto out;
    if (mp->path) {
        line = batch_line(changes, n);
        rc = journal_append(mp, line, detail, detail_len);
        if (rc)
            goto out;
    }
    for (size_t i = 0; i < n; i++)
        store_put(mp, change_key(changes, i), changes[i].new);
    mp->changes++;
    if (change_id)
        snprintf(change_id, REG_CHANGE_ID_MAX, "M%llu", mp->changes);
    if (mp->path && mp->journal_bytes > (off_t)COMPACT_MIN_BYTES &&
        (size_t)mp->journal_bytes > 4 * (mp->live_values * 24 + mp->live_aliases * 40 + 4096)) {
        char cdetail[REG_DETAIL_MAX];
        /* The batch is durable already; a failed compaction only leaves a longer journal. */
        if (compact(mp, cdetail, sizeof(cdetail)))
            log_warn("msg=\"state file compaction failed\" detail=\"%s\"", cdetail);
    }
out:
    if (marked)
        batch_unmark(mp, changes, n);
    pthread_mutex_unlock(&mp->lock);
    free(line);
    return rc;
}

static enum rc_code mem_reload(struct reg_provider *p, enum reg_type type, enum reg_kind kind,
                               unsigned bucket, struct reg_record *out, char *detail,
                               size_t detail_len)
{
    struct memory_provider *mp = (struct memory_provider *)p;
    if ((unsigned)type > REG_AAAA || (unsigned)kind >= REG_KINDS || bucket >= REG_MAX_SLOTS) {
        memset(out, 0, sizeof(*out));
        rc_detail(detail, detail_len, "no such set: type %d, kind %d, slot %u", (int)type,
                  (int)kind, bucket);
        return RC_BAD_REQUEST;
    }
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
            for (unsigned b = 0; b < REG_MAX_SLOTS; b++)
                reg_record_release(&mp->table[t][k][b]);
    if (mp->fd >= 0) {
        fsync(mp->fd);
        close(mp->fd);
    }
    pthread_mutex_destroy(&mp->lock);
    free(mp->table);
    free(mp->batch_at);
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
    snprintf(mp->opt.record_name, sizeof(mp->opt.record_name), "r53reg.invalid");
    pthread_mutex_init(&mp->lock, NULL);
    mp->table = xcalloc(2, sizeof(*mp->table));
    mp->batch_at = xmalloc(2 * REG_KINDS * REG_MAX_SLOTS * sizeof(*mp->batch_at));
    for (int t = 0; t < 2; t++)
        for (int k = 0; k < REG_KINDS; k++)
            for (unsigned b = 0; b < REG_MAX_SLOTS; b++) {
                mp->table[t][k][b].type = (enum reg_type)t;
                mp->table[t][k][b].kind = (enum reg_kind)k;
                mp->table[t][k][b].bucket = b;
                mp->batch_at[batch_index((enum reg_type)t, (enum reg_kind)k, b)] = -1;
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

void reg_provider_memory_options(struct reg_provider *p, const struct reg_options *opt)
{
    struct memory_provider *mp = (struct memory_provider *)p;
    mp->opt = *opt;
}
