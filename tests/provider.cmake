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
# The alias tree's contract, the same assertions on both stores: sets in child slots and the
# aliases to them written, read back after restarts and reloaded; an alias before its target,
# an alias left without a target and a 101st member of the name's group refused with nothing
# applied; one TTL per group name; an alias's compare-and-swap; a hundred children.
r53_test_exe(test_provider_tree ${CMAKE_CURRENT_SOURCE_DIR}/unit/test_provider_tree.c
  ${CMAKE_CURRENT_SOURCE_DIR}/emuproc.c)
r53_add_test(NAME unit.provider_tree COMMAND test_provider_tree LABELS "unit;registry"
  TIMEOUT 60)
# The same against r53emu, and what only Route 53 shows: the resolver answering through the
# aliases, Route 53's own refusals mapped back to aliases, aliases of other targets skipped,
# and the listing paging through children among other records under the name.
r53_add_test(NAME unit.provider_tree_route53 COMMAND test_provider_tree route53 @BIN@/r53emu
  LABELS "unit;registry;route53" TIMEOUT 120)
