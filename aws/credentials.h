/*
 * credentials.h: the AWS credential chain, in the order the AWS SDKs use (ROUTE53.md):
 *   1. environment: AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_SESSION_TOKEN
 *   2. web identity: AWS_WEB_IDENTITY_TOKEN_FILE + AWS_ROLE_ARN (+ AWS_ROLE_SESSION_NAME),
 *      STS AssumeRoleWithWebIdentity
 *   3. shared files: AWS_SHARED_CREDENTIALS_FILE (~/.aws/credentials), AWS_CONFIG_FILE
 *      (~/.aws/config), profile AWS_PROFILE (default "default")
 *   4. container: AWS_CONTAINER_CREDENTIALS_RELATIVE_URI (http://169.254.170.2 + path) or
 *      AWS_CONTAINER_CREDENTIALS_FULL_URI, with Authorization from
 *      AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE or AWS_CONTAINER_AUTHORIZATION_TOKEN
 *   5. EC2 IMDSv2 (unless AWS_EC2_METADATA_DISABLED=true)
 * Temporary credentials are refreshed ahead of their expiration. Every endpoint can be
 * overridden (options below) so tests point them at loopback servers.
 *
 * Secrets are wiped from memory when replaced or released and never logged.
 * Thread-safety: awscred_get() may be called from any thread; the rest at startup/shutdown.
 */
#ifndef R53REG_AWS_CREDENTIALS_H
#define R53REG_AWS_CREDENTIALS_H

#include <stddef.h>
#include <time.h>

#include "util/rc.h"

struct awscred {
    char *access_key_id;
    char *secret_access_key;
    char *session_token; /* NULL for long-term credentials */
    time_t expiration;   /* 0: does not expire */
    const char *source;  /* static: "environment", "web-identity", "shared-file", "container",
                            "imds" */
};

typedef const char *(*awscred_getenv_fn)(const char *name);

struct awscred_options {
    awscred_getenv_fn getenv; /* NULL: getenv(3) */
    const char *home;         /* NULL: $HOME */
    /* Endpoint overrides (NULL: the real ones). */
    const char *sts_endpoint;       /* "https://sts.amazonaws.com" */
    const char *container_host;     /* "http://169.254.170.2" */
    const char *imds_endpoint;      /* "http://169.254.169.254" */
    unsigned timeout_ms;            /* per HTTP call; 0: 5000 (IMDS: 1000 per attempt) */
    unsigned refresh_ahead_s;       /* refresh this long before expiration; 0: 300 */
};

struct awscred_provider;

/*
 * Resolve the chain once. On failure returns RC_CONFIG with detail naming every source tried
 * and why each was skipped or failed ("environment: AWS_ACCESS_KEY_ID not set; ...").
 */
enum rc_code awscred_provider_create(const struct awscred_options *opt,
                                     struct awscred_provider **out, char *detail, size_t n);

/* A copy of the current credentials, refreshed first if they expire within refresh_ahead_s.
 * Release the copy with awscred_release(). Errors: RC_UNAVAILABLE with detail when a refresh
 * fails and the old credentials have expired (unexpired ones keep being used). */
enum rc_code awscred_get(struct awscred_provider *p, struct awscred *out, char *detail, size_t n);

/* Wipe and free the strings of c. NULL and zeroed structs are fine. */
void awscred_release(struct awscred *c);

void awscred_provider_destroy(struct awscred_provider *p);

#endif
