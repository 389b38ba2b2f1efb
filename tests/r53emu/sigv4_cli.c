/*
 * sigv4_cli.c: print the SigV4 Authorization header aws/sigv4.h computes for a request read
 * from stdin, so tests can compare r53reg's signer with botocore's byte for byte.
 *
 * Input: "key value" lines, then an empty line, then the body (every byte up to EOF):
 *   method GET
 *   path /2013-04-01/hostedzone/Z1/rrset       the path as sent on the wire
 *   query name=a%2Ab&type=A                    raw query without '?'; omit for none
 *   date 20150830T123600Z                      x-amz-date (the scope date is its first 8)
 *   region us-east-1                           optional, default us-east-1
 *   service route53                            optional, default route53
 *   access-key AKIDEXAMPLE
 *   secret-key wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY
 *   header host:route53.amazonaws.com          repeatable; the headers to sign, in order
 *
 * Output: the Authorization value and a newline. With --verbose the canonical request and the
 * string to sign go to stderr first. Exit 0, or 2 for malformed input or a signer error.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "aws/sigv4.h"
#include "util/xalloc.h"

static void fail(const char *what)
{
    fprintf(stderr, "sigv4_cli: %s\n", what);
    exit(2);
}

int main(int argc, char **argv)
{
    char *line = NULL, *method = NULL, *path = NULL, *query = NULL, *date = NULL;
    char *region = NULL, *service = NULL, *akid = NULL, *secret = NULL;
    char *body = NULL, *auth = NULL, *creq = NULL, *sts = NULL;
    struct sigv4_header *hdrs = NULL;
    size_t linecap = 0, nh = 0, hcap = 0, blen = 0, bcap = 0;
    ssize_t n;
    int verbose = argc > 1 && !strcmp(argv[1], "--verbose");

    while ((n = getline(&line, &linecap, stdin)) > 0) {
        char *sp, *val;
        if (line[n - 1] == '\n')
            line[--n] = '\0';
        if (n == 0)
            break;
        sp = strchr(line, ' ');
        if (!sp)
            fail("expected 'key value' lines");
        *sp = '\0';
        val = xstrdup(sp + 1);
        if (!strcmp(line, "method"))
            method = val;
        else if (!strcmp(line, "path"))
            path = val;
        else if (!strcmp(line, "query"))
            query = val;
        else if (!strcmp(line, "date"))
            date = val;
        else if (!strcmp(line, "region"))
            region = val;
        else if (!strcmp(line, "service"))
            service = val;
        else if (!strcmp(line, "access-key"))
            akid = val;
        else if (!strcmp(line, "secret-key"))
            secret = val;
        else if (!strcmp(line, "header")) {
            char *colon = strchr(val, ':');
            if (!colon)
                fail("header lines are 'header name:value'");
            *colon = '\0';
            hdrs = xgrow(hdrs, &hcap, nh + 1, sizeof(*hdrs));
            hdrs[nh].name = val;
            hdrs[nh].value = colon + 1;
            nh++;
        } else {
            fail("unknown key");
        }
    }
    for (;;) {
        bcap = bcap ? bcap * 2 : 4096;
        body = xrealloc(body, bcap);
        blen += fread(body + blen, 1, bcap - blen, stdin);
        if (blen < bcap)
            break;
    }
    if (!method || !path || !date || !akid || !secret)
        fail("method, path, date, access-key and secret-key are required");

    struct sigv4_request req = {.method = method,
                                .path = path,
                                .query = query,
                                .headers = hdrs,
                                .nheaders = nh,
                                .body = body,
                                .body_len = blen};
    struct sigv4_scope scope = {.amz_date = date,
                                .region = region ? region : "us-east-1",
                                .service = service ? service : "route53"};
    struct sigv4_creds creds = {.access_key_id = akid, .secret_access_key = secret};

    if (verbose) {
        if (sigv4_canonical_request(&req, &creq, NULL) || sigv4_string_to_sign(&scope, creq, &sts))
            fail("cannot build the canonical request");
        fprintf(stderr, "%s\n----\n%s\n", creq, sts);
    }
    if (sigv4_authorization(&req, &scope, &creds, &auth))
        fail("the signer refused the request");
    printf("%s\n", auth);

    free(auth);
    free(creq);
    free(sts);
    free(line);
    free(body);
    for (size_t i = 0; i < nh; i++)
        free((char *)hdrs[i].name);
    free(hdrs);
    free(method);
    free(path);
    free(query);
    free(date);
    free(region);
    free(service);
    free(akid);
    xfree_secret(secret, strlen(secret));
    return 0;
}
