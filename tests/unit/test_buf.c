/* test_buf.c: util/buf, the growable string every module builds text with. */
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "util/buf.h"

int main(void)
{
    struct buf b = {0};
    char *s;

    CHECK_STR(buf_str(&b), ""); /* empty is "", never NULL */
    buf_add(&b, NULL, 0);
    CHECK_INT(b.len, 0);
    buf_adds(&b, "route");
    buf_addc(&b, '5');
    buf_addc(&b, '3');
    buf_addf(&b, ":%d:%s", 42, "x");
    CHECK_STR(buf_str(&b), "route53:42:x");
    CHECK_INT(b.len, strlen("route53:42:x"));
    /* Growth past the first allocation keeps the content and the terminator. */
    for (int i = 0; i < 1000; i++)
        buf_addc(&b, (char)('a' + i % 26));
    CHECK_INT(b.len, 12 + 1000);
    CHECK(b.p[b.len] == '\0');
    CHECK(strncmp(b.p, "route53:42:x", 12) == 0);
    s = buf_detach(&b);
    CHECK_INT(strlen(s), 1012);
    CHECK(b.p == NULL && b.len == 0 && b.cap == 0);
    free(s);
    s = buf_detach(&b); /* detaching an empty buffer gives "" */
    CHECK_STR(s, "");
    free(s);
    /* Reserve once, fill without reallocation, wipe. */
    buf_reserve(&b, 64);
    CHECK(b.cap >= 64);
    {
        char *before = b.p;
        buf_adds(&b, "secret-key-material");
        CHECK(b.p == before);
    }
    buf_wipe(&b);
    CHECK(b.p == NULL && b.len == 0);
    buf_release(&b); /* releasing an empty buffer is fine */
    return check_done("test_buf");
}
