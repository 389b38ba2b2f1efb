/*
 * credentials.h: the AWS credential chain, in the order the AWS SDKs use:
 *   1. environment: AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_SESSION_TOKEN
 *   2. web identity: AWS_WEB_IDENTITY_TOKEN_FILE + AWS_ROLE_ARN (+ AWS_ROLE_SESSION_NAME,
 *      default "r53reg-<unix time>"), STS AssumeRoleWithWebIdentity (an unsigned POST)
 *   3. shared files: AWS_SHARED_CREDENTIALS_FILE (~/.aws/credentials), AWS_CONFIG_FILE
 *      (~/.aws/config), profile AWS_PROFILE (default "default"). Static keys
 *      (aws_access_key_id, aws_secret_access_key, aws_session_token) from either file, the
 *      credentials file winning; a profile with role_arn + web_identity_token_file
 *      (+ role_session_name) takes the web identity path. Other role_arn / source_profile /
 *      credential_source / credential_process / sso_* forms are not supported: they are an
 *      error naming the setting, never silently skipped.
 *   4. container: AWS_CONTAINER_CREDENTIALS_RELATIVE_URI (container_host + path) or
 *      AWS_CONTAINER_CREDENTIALS_FULL_URI (https, or http only to loopback, 169.254.170.2,
 *      169.254.170.23 or [fd00:ec2::23], as the SDKs allow), with Authorization from
 *      AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE (re-read on every refresh) or
 *      AWS_CONTAINER_AUTHORIZATION_TOKEN
 *   5. EC2 IMDSv2 (unless AWS_EC2_METADATA_DISABLED=true): PUT /latest/api/token, then the
 *      role named by /latest/meta-data/iam/security-credentials/. No IMDSv1 fallback.
 * Resolution stops at the first source that is configured. If that source fails (one of the
 * key pair missing, AWS_ROLE_ARN missing, STS or the container endpoint refusing, an
 * AWS_PROFILE that does not exist, an unsupported profile form) creation fails rather than
 * falling through to a later source with other permissions, as the SDKs do. IMDS is only
 * tried when nothing else is configured; its failure ends the chain.
 *
 * Endpoints: STS is opt->sts_endpoint, else AWS_ENDPOINT_URL_STS, else the regional
 * https://sts.<AWS_REGION or AWS_DEFAULT_REGION>.amazonaws.com, else https://sts.amazonaws.com.
 * IMDS is opt->imds_endpoint, else AWS_EC2_METADATA_SERVICE_ENDPOINT, else
 * http://169.254.169.254 (http://[fd00:ec2::254] with AWS_EC2_METADATA_SERVICE_ENDPOINT_MODE=
 * IPv6). Calls to loopback and link-local hosts never use a proxy; others follow libcurl's
 * proxy environment. Responses over 64 KiB are errors. The environment is read once, at
 * create; the token files are re-read on every refresh (they rotate).
 *
 * Temporary credentials are refreshed ahead of their expiration (see awscred_get).
 * Secrets are wiped from memory when replaced or released and never logged; details name
 * sources, files, URLs and the services' error codes and messages, never keys or tokens.
 *
 * Thread-safety: awscred_get() may be called from any thread; the rest at startup/shutdown.
 * create calls curl_global_init() (destroy the matching curl_global_cleanup()) and
 * xmlInitParser(); a process that uses libcurl or libxml2 elsewhere should initialise them
 * itself before starting threads, as their documentation asks.
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
    const char *source;  /* static: "environment", "web-identity" (environment or a profile),
                            "shared-file", "container", "imds" */
};

typedef const char *(*awscred_getenv_fn)(const char *name);

struct awscred_options {
    awscred_getenv_fn getenv; /* NULL: getenv(3). Only called during create. Empty values
                                 count as unset. */
    const char *home;         /* NULL: $HOME (through getenv above) */
    /* Endpoint overrides (NULL: environment, then the real ones; see above). Copied: they
     * need not outlive create. No trailing slash needed. */
    const char *sts_endpoint;       /* "https://sts.amazonaws.com" */
    const char *container_host;     /* "http://169.254.170.2" */
    const char *imds_endpoint;      /* "http://169.254.169.254" */
    unsigned timeout_ms;            /* per HTTP call; 0: 5000 (IMDS: 1000, connect at most
                                       1000, one attempt per call) */
    unsigned refresh_ahead_s;       /* refresh this long before expiration; 0: 300 */
};

struct awscred_provider;

/*
 * Resolve the chain once and fetch the first credentials (network calls for web identity,
 * container and IMDS happen here, bounded by the timeouts). opt may be NULL (all defaults).
 * On success *out is the provider (destroy with awscred_provider_destroy) and one line is
 * logged at info: source, temporary or not, expiry (no secrets).
 * On failure returns RC_CONFIG, *out is NULL, and detail names every source tried and why
 * each was skipped or failed, e.g. "no AWS credentials found: environment: AWS_ACCESS_KEY_ID
 * not set; web identity: AWS_WEB_IDENTITY_TOKEN_FILE not set; shared files:
 * /root/.aws/credentials: not found, /root/.aws/config: not found; container:
 * AWS_CONTAINER_CREDENTIALS_RELATIVE_URI/FULL_URI not set; imds: disabled
 * (AWS_EC2_METADATA_DISABLED)", or, when a configured source failed, "AWS credentials: ...;
 * web identity: STS AssumeRoleWithWebIdentity: HTTP 403 AccessDenied: ... (later sources not
 * tried)". detail may be NULL when n is 0.
 */
enum rc_code awscred_provider_create(const struct awscred_options *opt,
                                     struct awscred_provider **out, char *detail, size_t n);

/*
 * A copy of the current credentials in *out (release with awscred_release()), refreshed
 * first when they expire within refresh_ahead_s. Static credentials (environment, shared
 * files) never expire and never cause I/O.
 * The refresh runs under the provider's mutex, so concurrent callers wait for one refresh
 * (at most about timeout_ms per HTTP call; IMDS makes three calls, web identity and container
 * one). Credentials that last less than refresh_ahead_s are refreshed on every call.
 * If the refresh fails but the current credentials have not expired, they are returned with
 * RC_OK and a warning is logged once per kind of failure until a refresh succeeds again
 * (then one info line). Only when they have expired: RC_UNAVAILABLE, *out zeroed, and detail
 * says when they expired and why the refresh failed. detail may be NULL when n is 0.
 */
enum rc_code awscred_get(struct awscred_provider *p, struct awscred *out, char *detail, size_t n);

/* Wipe and free the strings of c and zero it. NULL and zeroed structs are fine. */
void awscred_release(struct awscred *c);

/* Wipe and free everything the provider holds. NULL is fine. No awscred_get() may be running
 * or start afterwards. */
void awscred_provider_destroy(struct awscred_provider *p);

#endif
