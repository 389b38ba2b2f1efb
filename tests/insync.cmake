# registry/insync: the insync waiter (?wait=insync) against a fake provider, one ctest per
# case: deadlines per wait, a slow change beside a fast one, shared polls, shutdown, the global
# poll rate cap, a failed poll, waits answered at once, the registry's hook (reg_destroy
# answers pending waits before the provider goes) and an idle waiter that sleeps. Each also
# under ThreadSanitizer in the sanitizer suites.

r53_test_exe(test_insync ${CMAKE_CURRENT_SOURCE_DIR}/unit/test_insync.c)
foreach(case deadlines slow_fast shared shutdown rate_cap failure immediate registry idle)
  r53_add_test(NAME unit.insync.${case} COMMAND test_insync ${case}
    LABELS "unit;registry;concurrency" TIMEOUT 120 TSAN)
endforeach()
