/*
 * check.h: assertions for the unit and integration tests (libuv test/task.h style). Each
 * failure prints both values and file:line, and the test keeps running so one run shows every
 * broken case; check_done() turns the count into the exit status.
 */
#ifndef R53REG_TESTS_CHECK_H
#define R53REG_TESTS_CHECK_H

#include <stdio.h>
#include <string.h>

extern int check_failures;

#define CHECK(cond)                                                                         \
    do {                                                                                    \
        if (!(cond)) {                                                                      \
            fprintf(stderr, "%s:%d: CHECK(%s) failed\n", __FILE__, __LINE__, #cond);        \
            check_failures++;                                                               \
        }                                                                                   \
    } while (0)

#define CHECK_INT(a, b)                                                                     \
    do {                                                                                    \
        long long va_ = (long long)(a), vb_ = (long long)(b);                               \
        if (va_ != vb_) {                                                                   \
            fprintf(stderr, "%s:%d: %s == %s failed: %lld != %lld\n", __FILE__, __LINE__,   \
                    #a, #b, va_, vb_);                                                      \
            check_failures++;                                                               \
        }                                                                                   \
    } while (0)

#define CHECK_STR(a, b)                                                                     \
    do {                                                                                    \
        const char *sa_ = (a), *sb_ = (b);                                                  \
        if (!sa_ || !sb_ || strcmp(sa_, sb_) != 0) {                                        \
            fprintf(stderr, "%s:%d: %s == %s failed: \"%s\" != \"%s\"\n", __FILE__,         \
                    __LINE__, #a, #b, sa_ ? sa_ : "(null)", sb_ ? sb_ : "(null)");          \
            check_failures++;                                                               \
        }                                                                                   \
    } while (0)

/* Print a summary line and return the process exit status. */
static inline int check_done(const char *name)
{
    if (check_failures) {
        fprintf(stderr, "%s: %d check(s) failed\n", name, check_failures);
        return 1;
    }
    printf("%s: all checks passed\n", name);
    return 0;
}

#define CHECK_DEFINE_GLOBALS int check_failures = 0

#endif
