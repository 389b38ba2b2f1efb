/*
 * test_journal.c: the memory store's journal at load (registry/provider_memory.c), one case per
 * shape a crash or a hand edit leaves: a last line complete but without its newline (torn: not
 * applied, cut off), blank lines and NUL-only lines (skipped, wherever they are), a torn NUL
 * tail, and a corrupt line (startup stops; the detail names the line and the truncate command
 * that keeps the lines before it, and running that command makes the file load). The log says
 * what each load did: lines applied, blank lines skipped, bytes cut off.
 */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "check.h"
#include "registry/provider.h"
#include "registry/registry.h"
#include "util/ip.h"

#define SNAP                                                                                       \
    "{\"snapshot\":[{\"type\":\"A\",\"bucket\":0,\"weight\":1,\"ttl\":60,"                         \
    "\"values\":[\"10.0.0.1\"]}]}\n"
#define APPLY2                                                                                     \
    "{\"apply\":[{\"type\":\"A\",\"bucket\":0,\"record\":{\"type\":\"A\",\"bucket\":0,"            \
    "\"weight\":1,\"ttl\":60,\"values\":[\"10.0.0.1\",\"10.0.0.2\"]}}]}"

static char dir[] = "/tmp/r53journal-XXXXXX";
static char path[300];

static void write_bytes(const char *p, const char *data, size_t len)
{
    FILE *f = fopen(p, "wb");
    if (!f || fwrite(data, 1, len, f) != len)
        CHECK(0);
    if (f)
        fclose(f);
}

static long file_size(const char *p)
{
    struct stat st;
    return stat(p, &st) == 0 ? (long)st.st_size : -1;
}

/* The values of served A bucket 0, comma separated ("" when absent). */
static void served0(struct reg_provider *p, char *out, size_t n)
{
    struct reg_record *recs = NULL;
    size_t nrec = 0, len = 0;
    char detail[REG_DETAIL_MAX];

    out[0] = '\0';
    CHECK_INT(p->ops->load(p, &recs, &nrec, detail, sizeof(detail)), RC_OK);
    for (size_t i = 0; i < nrec; i++) {
        if (recs[i].type != REG_A || recs[i].kind != REG_KIND_SERVED || recs[i].bucket != 0)
            continue;
        for (size_t v = 0; v < recs[i].nvalues && len < n; v++) {
            char txt[IP_TEXT_MAX];
            len += (size_t)snprintf(out + len, n - len, "%s%s", v ? "," : "",
                                    ip_format(&recs[i].values[v], txt));
        }
    }
    for (size_t i = 0; i < nrec; i++)
        reg_record_release(&recs[i]);
    free(recs);
}

/* Open the store with stderr (util/log) captured into *log (caller frees). */
static enum rc_code open_captured(struct reg_provider **p, char *detail, size_t n, char **log)
{
    char logpath[320];
    int fd, saved;
    enum rc_code rc;
    FILE *f;
    long size;

    snprintf(logpath, sizeof(logpath), "%s/log", dir);
    fflush(stderr);
    fd = open(logpath, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    saved = dup(2);
    dup2(fd, 2);
    rc = reg_provider_memory_create(path, p, detail, n);
    fflush(stderr);
    dup2(saved, 2);
    close(saved);
    close(fd);
    f = fopen(logpath, "rb");
    fseek(f, 0, SEEK_END);
    size = ftell(f);
    fseek(f, 0, SEEK_SET);
    *log = calloc(1, (size_t)size + 1);
    if (fread(*log, 1, (size_t)size, f) != (size_t)size)
        (*log)[0] = '\0';
    fclose(f);
    unlink(logpath);
    fputs(*log, stderr); /* still visible in the test output */
    return rc;
}

static const struct journal_case {
    const char *name;
    const char *data;
    size_t len;
    const char *values; /* served A bucket 0 after the load */
    int applied, blank; /* lines applied, blank lines skipped */
    size_t cut;         /* bytes cut off the end */
    const char *warn;   /* a warning the load logs, or NULL for none */
} cases[] = {
    {"torn last line, complete JSON without its newline: not applied, cut off", SNAP APPLY2,
     sizeof(SNAP APPLY2) - 1, "10.0.0.1", 1, 0, sizeof(APPLY2) - 1,
     "torn last line not applied, cut off"},
    {"torn last line, half a line", SNAP "{\"apply\":[{\"ty", sizeof(SNAP "{\"apply\":[{\"ty") - 1,
     "10.0.0.1", 1, 0, sizeof("{\"apply\":[{\"ty") - 1, "torn last line not applied, cut off"},
    {"trailing blank line", SNAP APPLY2 "\n\n", sizeof(SNAP APPLY2 "\n\n") - 1, "10.0.0.1,10.0.0.2",
     2, 1, 1, NULL},
    {"NUL bytes ending in a newline", SNAP "\0\0\0\0\n", sizeof(SNAP "\0\0\0\0\n") - 1, "10.0.0.1",
     1, 1, 5, NULL},
    {"a torn NUL tail", SNAP "\0\0\0", sizeof(SNAP "\0\0\0") - 1, "10.0.0.1", 1, 1, 3, NULL},
    {"a blank line between batches", SNAP "\n" APPLY2 "\n", sizeof(SNAP "\n" APPLY2 "\n") - 1,
     "10.0.0.1,10.0.0.2", 2, 1, 0, NULL},
};

static void test_cases(void)
{
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        const struct journal_case *c = &cases[i];
        struct reg_provider *p = NULL;
        char detail[REG_DETAIL_MAX] = "", values[256], want[200];
        char *log = NULL;
        int before = check_failures;

        write_bytes(path, c->data, c->len);
        CHECK_INT(open_captured(&p, detail, sizeof(detail), &log), RC_OK);
        if (p) {
            served0(p, values, sizeof(values));
            CHECK_STR(values, c->values);
            p->ops->destroy(p);
        }
        /* the log says what was done */
        snprintf(want, sizeof(want),
                 "lines_applied=%d blank_lines_skipped=%d bytes=%zu "
                 "cut_bytes=%zu",
                 c->applied, c->blank, c->len - c->cut, c->cut);
        if (!strstr(log, want)) {
            fprintf(stderr, "log lacks \"%s\"\n", want);
            CHECK(0);
        }
        if (c->warn)
            CHECK(strstr(log, c->warn) != NULL);
        else
            CHECK(strstr(log, "level=warn") == NULL);
        free(log);
        /* What is left loads again, the same, without any warning. */
        p = NULL;
        CHECK_INT(open_captured(&p, detail, sizeof(detail), &log), RC_OK);
        if (p) {
            served0(p, values, sizeof(values));
            CHECK_STR(values, c->values);
            p->ops->destroy(p);
        }
        CHECK(strstr(log, "level=warn") == NULL);
        free(log);
        if (check_failures != before)
            fprintf(stderr, "  in case: %s (detail: %s)\n", c->name, detail);
    }
}

/* A corrupt line stops startup; the detail names the line and the command that keeps the
 * lines before it; after that command the file loads. */
static void test_corrupt(void)
{
    struct reg_provider *p = NULL;
    char detail[REG_DETAIL_MAX] = "", want[600], values[256];
    char *log = NULL;
    static const char data[] = SNAP "not json\n" APPLY2 "\n";

    write_bytes(path, data, sizeof(data) - 1);
    CHECK_INT(open_captured(&p, detail, sizeof(detail), &log), RC_IO);
    free(log);
    CHECK(p == NULL);
    CHECK(strstr(detail, "line 2 (bytes ") != NULL);
    snprintf(want, sizeof(want), "truncate -s %zu '%s'", sizeof(SNAP) - 1, path);
    if (!strstr(detail, want)) {
        fprintf(stderr, "detail \"%s\" lacks \"%s\"\n", detail, want);
        CHECK(0);
    }
    CHECK_INT(file_size(path), sizeof(data) - 1); /* nothing is cut on its own */
    CHECK_INT(truncate(path, (off_t)(sizeof(SNAP) - 1)), 0);
    CHECK_INT(open_captured(&p, detail, sizeof(detail), &log), RC_OK);
    free(log);
    if (p) {
        served0(p, values, sizeof(values));
        CHECK_STR(values, "10.0.0.1");
        p->ops->destroy(p);
    }
}

int main(void)
{
    if (!mkdtemp(dir)) {
        perror("mkdtemp");
        return 1;
    }
    snprintf(path, sizeof(path), "%s/state.jsonl", dir);
    test_cases();
    test_corrupt();
    unlink(path);
    rmdir(dir);
    return check_done("journal");
}
