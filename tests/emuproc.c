/*
 * emuproc.c: r53emu as a child process (emuproc.h).
 */
#include "emuproc.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <curl/curl.h>

#include "aws/sigv4.h"
#include "registry/provider_route53.h"

int emu_start(const char *exe, struct emu *e)
{
    int fds[2];
    char line[128] = "";
    FILE *f;
    unsigned port = 0;

    if (pipe(fds))
        return -1;
    e->pid = fork();
    if (e->pid < 0)
        return -1;
    if (e->pid == 0) {
        dup2(fds[1], 1);
        close(fds[0]);
        close(fds[1]);
        execl(exe, exe, "--listen", "127.0.0.1:0", "--zone", EMU_ZONE ":example.com",
              "--access-key", EMU_AKID, "--secret-key", EMU_SECRET, "--insync-after-ms", "0",
              (char *)NULL);
        _exit(127);
    }
    close(fds[1]);
    f = fdopen(fds[0], "r");
    if (!f || !fgets(line, sizeof(line), f) || sscanf(line, "listening port=%u", &port) != 1) {
        fprintf(stderr, "r53emu %s did not start: \"%s\"\n", exe, line);
        if (f)
            fclose(f);
        kill(e->pid, SIGKILL);
        waitpid(e->pid, NULL, 0);
        return -1;
    }
    fclose(f);
    snprintf(e->endpoint, sizeof(e->endpoint), "http://127.0.0.1:%u", port);
    return 0;
}

static size_t discard(char *p, size_t size, size_t n, void *arg)
{
    (void)p;
    (void)arg;
    return size * n;
}

int emu_post(const struct emu *e, const char *path, const char *json)
{
    char url[256];
    long status = 0;
    CURL *h = curl_easy_init();
    struct curl_slist *hdrs = curl_slist_append(NULL, "Content-Type: application/json");
    CURLcode cc;

    if (!h)
        return -1;
    snprintf(url, sizeof(url), "%s/_emu/%s", e->endpoint, path);
    curl_easy_setopt(h, CURLOPT_URL, url);
    curl_easy_setopt(h, CURLOPT_POSTFIELDS, json);
    curl_easy_setopt(h, CURLOPT_HTTPHEADER, hdrs);
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, discard);
    curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, 10000L);
    cc = curl_easy_perform(h);
    curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &status);
    curl_easy_cleanup(h);
    curl_slist_free_all(hdrs);
    if (cc != CURLE_OK || status != 200) {
        fprintf(stderr, "r53emu POST /_emu/%s %s: curl %d, HTTP %ld\n", path, json, (int)cc,
                status);
        return -1;
    }
    return 0;
}

int emu_stop(struct emu *e)
{
    int status = 0;
    kill(e->pid, SIGTERM);
    waitpid(e->pid, &status, 0);
    return WIFEXITED(status) && WEXITSTATUS(status) == 0;
}

struct reg_provider *emu_route53(const struct emu *e, const struct reg_options *o)
{
    static const struct sigv4_creds creds = {EMU_AKID, EMU_SECRET, NULL};
    struct reg_route53_options ro;
    struct reg_provider *p = NULL;
    char detail[REG_DETAIL_MAX];

    memset(&ro, 0, sizeof(ro));
    ro.reg = o;
    ro.zone_id = EMU_ZONE;
    ro.endpoint = e->endpoint;
    ro.static_creds = &creds;
    ro.rps = 100;
    ro.burst = 100;
    if (reg_provider_route53_create(&ro, &p, detail, sizeof(detail)) != RC_OK) {
        fprintf(stderr, "route53 provider: %s\n", detail);
        abort();
    }
    return p;
}
