/* request.c: checks shared by the handlers that change backends (contract: request.h). */
#include "handlers/request.h"

#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "util/cidr.h"

int api_media_is_json(const char *ct)
{
    static const char want[] = "application/json";
    if (!ct)
        return 0;
    while (*ct == ' ' || *ct == '\t')
        ct++;
    if (strncasecmp(ct, want, sizeof(want) - 1) != 0)
        return 0;
    ct += sizeof(want) - 1;
    return *ct == '\0' || *ct == ';' || *ct == ' ' || *ct == '\t';
}

const char *api_change_refusal(const struct api_request *req, const struct ip_addr *ip,
                               int registering, char *why, size_t n)
{
    char t[IP_TEXT_MAX], c[IP_TEXT_MAX];
    const char *name = req->token_name ? req->token_name : "-";

    if (req->self_only) {
        if (!req->caller) {
            snprintf(why, n, "token '%s' has scope self: it may only change the caller's own "
                     "address, and that address is not known", name);
            return why;
        }
        if (ip_cmp(ip, req->caller) != 0) {
            snprintf(why, n, "token '%s' has scope self: it may only change %s, the caller's "
                     "address", name, ip_format(req->caller, c));
            return why;
        }
    }
    if (registering && req->allow_cidr && req->allow_cidr->n &&
        !cidr_set_contains(req->allow_cidr, ip)) {
        snprintf(why, n, "%s is outside --allow-cidr %s: only addresses inside may be "
                 "registered", ip_format(ip, t), req->allow_cidr->text);
        return why;
    }
    return NULL;
}

const char *api_special_refusal(const struct api_request *req, const struct ip_addr *ip, char *why,
                                size_t n)
{
    char t[IP_TEXT_MAX];
    const char *range = ip_special_range(ip);

    if (!range || req->allow_special)
        return NULL;
    snprintf(why, n,
             "%s is in %s: registering it would point the health checks at this host or its "
             "link; --allow-special (R53REG_ALLOW_SPECIAL) allows it",
             ip_format(ip, t), range);
    return why;
}
