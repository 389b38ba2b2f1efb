/*
 * fuzz_tokens.c: the bearer token sources of server/config.c (the static add_token and
 * load_token_file), reached through cfg_parse:
 * 1. R53REG_TOKENS from a fake environment holding the input (cut at its first NUL);
 * 2. --token-file naming a file that holds the input bytes (one temporary file per process,
 *    made with mkstemp under /tmp, rewritten for every input and removed at exit).
 * No other option is set, so the listener stays on the default loopback address and nothing
 * is bound (cfg_parse only parses). Messages go to /dev/null.
 *
 * Invariants (abort() when broken), for every token of a CFG_RUN result:
 * - at least SRV_TOKEN_MIN bytes, without leading or trailing whitespace, not starting with
 *   '#';
 * - from the environment: no ','; from the file: no '\n';
 * - at most as many tokens as separators + 1;
 * and a refusal leaves cfg zeroed. cfg_release() runs after each call (LeakSanitizer).
 */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "fuzz.h"
#include "server/config.h"

static const char *env_tokens; /* R53REG_TOKENS for the current call, or NULL */
static FILE *devnull;
static int token_fd = -1;
static char token_path[] = "/tmp/r53reg-fuzz-tokens-XXXXXX";

static const char *fake_getenv(const char *name)
{
    if (env_tokens && strcmp(name, "R53REG_TOKENS") == 0)
        return env_tokens;
    return NULL;
}

static void remove_token_file(void)
{
    if (token_fd >= 0) {
        close(token_fd);
        unlink(token_path);
        token_fd = -1;
    }
}

static void setup(void)
{
    if (devnull)
        return;
    devnull = fopen("/dev/null", "w");
    token_fd = mkstemp(token_path);
    if (!devnull || token_fd < 0)
        abort();
    atexit(remove_token_file);
}

static int all_zero(const void *p, size_t n)
{
    const unsigned char *c = p;
    for (size_t i = 0; i < n; i++)
        if (c[i])
            return 0;
    return 1;
}

static void check(struct cfg *cfg, enum cfg_result r, char sep, size_t nsep)
{
    if (r != CFG_RUN) {
        if (r != CFG_EXIT_USAGE || !all_zero(cfg, sizeof(*cfg)))
            abort();
        return;
    }
    if (!cfg->listen_loopback || cfg->ntokens > nsep + 1 || (cfg->ntokens && !cfg->tokens))
        abort();
    for (size_t i = 0; i < cfg->ntokens; i++) {
        const char *t = cfg->tokens[i];
        size_t n = t ? strlen(t) : 0;
        if (n < SRV_TOKEN_MIN || isspace((unsigned char)t[0]) ||
            isspace((unsigned char)t[n - 1]) ||
            t[0] == '#' || strchr(t, sep))
            abort();
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *env = malloc(size + 1);
    char *argv[] = {(char *)"r53reg", (char *)"--token-file", token_path, NULL};
    struct cfg cfg;
    enum cfg_result r;
    size_t nsep = 0;

    if (!env)
        abort();
    setup();

    /* 1. the environment variable */
    memcpy(env, data, size);
    env[size] = '\0';
    for (const char *p = env; (p = strchr(p, ',')); p++)
        nsep++;
    env_tokens = env;
    r = cfg_parse(&cfg, 1, argv, fake_getenv, devnull, devnull);
    check(&cfg, r, ',', nsep);
    cfg_release(&cfg);
    env_tokens = NULL;

    /* 2. the token file */
    nsep = 0;
    for (size_t i = 0; i < size; i++)
        nsep += data[i] == '\n';
    if (ftruncate(token_fd, 0) != 0 || pwrite(token_fd, data, size, 0) != (ssize_t)size)
        abort();
    r = cfg_parse(&cfg, 3, argv, fake_getenv, devnull, devnull);
    check(&cfg, r, '\n', nsep);
    cfg_release(&cfg);

    free(env);
    return 0;
}
