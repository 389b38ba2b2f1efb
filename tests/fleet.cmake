# Replicas that know each other (--peers, server/peers.c, registry/fleet.c).
r53_test_exe(test_fleet unit/test_fleet.c)
r53_add_test(NAME unit.fleet COMMAND test_fleet LABELS "unit;fleet" TIMEOUT 30)
# Two replicas against the Route 53 emulator: fleet size, leases kept on a peer's word, an
# unheard backend removed, health check ownership split; a live peer failing /fleet/leases
# postpones expiries (and its rising cuts are followed once per 10 s), hung peer URLs do not
# make a healthy peer flap, failed /fleet/ authentications are rate limited.
r53_add_test(NAME integration.fleet
  COMMAND /usr/bin/python3 ${CMAKE_CURRENT_SOURCE_DIR}/integration/test_fleet.py @BIN@
  LABELS "integration;route53;fleet" TIMEOUT 300)
