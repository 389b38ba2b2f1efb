/*
 * emuproc.h: r53emu as a child process for the C tests that run a provider against it, and
 * the Route 53 provider opened on it.
 */
#ifndef R53REG_TESTS_EMUPROC_H
#define R53REG_TESTS_EMUPROC_H

#include <sys/types.h>

#include "registry/provider.h"
#include "registry/registry.h"

#define EMU_ZONE "Z123ABC"
#define EMU_AKID "AKIDEMU"
#define EMU_SECRET "emu/secret+KEY"

struct emu {
    pid_t pid;
    char endpoint[64];
};

/* Start r53emu (exe) on 127.0.0.1:0 serving EMU_ZONE for example.com, and read its
 * "listening port=N" line. 0, or -1 with a message on stderr. */
int emu_start(const char *exe, struct emu *e);

/* POST json to its control API /_emu/<path> ("faults", "zones/Z123ABC/rrsets": see
 * tests/r53emu/README.md). 0 on HTTP 200, or -1 with a message on stderr. Call after
 * curl_global_init (a provider or client did it). */
int emu_post(const struct emu *e, const char *path, const char *json);

/* SIGTERM it and wait; 1 when it exited 0. */
int emu_stop(struct emu *e);

/* The Route 53 provider on e (EMU_AKID's static credentials, 100 calls/s); aborts on failure. */
struct reg_provider *emu_route53(const struct emu *e, const struct reg_options *o);

#endif
