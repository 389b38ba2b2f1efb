# registry/provider_memory: record sets of every kind (served, down, draining) through the
# provider interface: an atomic served->down move, compare-and-swap conflicts refusing a whole
# mixed batch, reload() by kind, the journal keeping kinds across restarts, and journals written
# before kinds existed loading as served.

r53_test_exe(test_provider_kinds ${CMAKE_CURRENT_SOURCE_DIR}/unit/test_provider_kinds.c
  ${CMAKE_CURRENT_SOURCE_DIR}/emuproc.c)
r53_add_test(NAME unit.provider_kinds COMMAND test_provider_kinds LABELS "unit;registry"
  TIMEOUT 30)
# The Route 53 provider's three names (served, _down., _draining.) against r53emu.
r53_add_test(NAME unit.provider_kinds_route53 COMMAND test_provider_kinds route53 @BIN@/r53emu
  LABELS "unit;registry;route53" TIMEOUT 60)
# The journal at load: torn last lines (not applied, cut off), blank and NUL-only lines
# (skipped), a corrupt line (startup stops naming the truncate command that recovers).
r53_test_exe(test_journal ${CMAKE_CURRENT_SOURCE_DIR}/unit/test_journal.c)
r53_add_test(NAME unit.journal COMMAND test_journal LABELS "unit;registry" TIMEOUT 30)
