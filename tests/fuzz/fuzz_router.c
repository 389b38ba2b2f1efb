/*
 * fuzz_router.c: server/router.h srv_route on a method and a raw path.
 *
 * Input: the first byte picks the method (GET, HEAD, POST, PUT, DELETE, PATCH, or a garbage
 * method spelled from the byte), the rest, NUL-terminated, is the path (an embedded NUL ends
 * it, as it would in the server's C string).
 *
 * Invariants (abort() when broken):
 * - m.param, when set, points inside path and param + param_len stays within it, with
 *   param_len > 0 and no NUL in the span; it is set only together with a handler;
 * - m.allow is NUL-terminated within its array, empty unless the path was found;
 * - a handler implies path_found; HEAD routes exactly like GET;
 * - m.pattern is never NULL.
 * The {ip} parameter then goes through ip_parse, as the handlers do.
 */
#include <stdlib.h>
#include <string.h>

#include "fuzz.h"
#include "server/router.h"
#include "util/ip.h"

static void check(const char *method, const char *path, struct srv_route_match *m)
{
    size_t plen = strlen(path);

    memset(m, 0x5A, sizeof(*m)); /* srv_route must set every field */
    srv_route(method, path, m);
    if (!m->pattern)
        abort();
    if (memchr(m->allow, '\0', sizeof(m->allow)) == NULL)
        abort();
    if (!m->path_found && m->allow[0] != '\0')
        abort();
    if (m->fn && !m->path_found)
        abort();
    if (m->param) {
        if (!m->fn || m->param < path || m->param > path + plen || m->param_len == 0 ||
            m->param_len > (size_t)(path + plen - m->param) ||
            memchr(m->param, '\0', m->param_len) != NULL)
            abort();
    } else if (m->param_len != 0) {
        abort();
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const char *const methods[] = {"GET", "HEAD", "POST", "PUT", "DELETE", "PATCH"};
    char garbage[4];
    const char *method;
    char *path;
    struct srv_route_match m, g;

    if (size == 0)
        return 0;
    if (data[0] % 8 < 6) {
        method = methods[data[0] % 8];
    } else {
        /* "", or a two-byte method from the selector byte (may be lowercase "get") */
        garbage[0] = data[0] % 8 == 6 ? '\0' : (char)(data[0] >> 3 | 0x40);
        garbage[1] = (char)(data[0] >> 3 | 0x60);
        garbage[2] = '\0';
        garbage[3] = '\0';
        method = garbage;
    }
    path = malloc(size); /* size - 1 path bytes and the NUL */
    if (!path)
        abort();
    memcpy(path, data + 1, size - 1);
    path[size - 1] = '\0';

    check(method, path, &m);
    if (!strcmp(method, "HEAD")) {
        check("GET", path, &g);
        if (g.fn != m.fn || g.path_found != m.path_found || g.mutating != m.mutating ||
            g.param != m.param || g.param_len != m.param_len || strcmp(g.allow, m.allow) != 0)
            abort();
    }
    if (m.param) {
        struct ip_addr a;
        char detail[200];
        (void)ip_parse(m.param, m.param_len, &a, detail, sizeof(detail));
    }
    free(path);
    return 0;
}
