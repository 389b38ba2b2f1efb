/*
 * fuzz.h: the one entry point every fuzz target defines. Built two ways (tests/fuzz.cmake):
 * with libFuzzer (-fsanitize=fuzzer), or linked with replay.c, whose main() runs the target
 * over the seed corpus so ctest checks it on every build (c-ares test/ares-fuzz.c).
 *
 * A target returns 0 and abort()s when an invariant it checks is broken, so both libFuzzer
 * and the replay report it as a crash.
 */
#ifndef R53REG_TESTS_FUZZ_H
#define R53REG_TESTS_FUZZ_H

#include <stddef.h>
#include <stdint.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#endif
