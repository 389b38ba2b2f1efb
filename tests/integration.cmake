# Integration tests that drive the real r53reg binary over loopback sockets.

# Checks every answer against openapi.yaml (status declared, media type, JSON Schema 2020-12).
# /usr/bin/python3: Debian's python3-yaml and python3-jsonschema are installed for it.
# Runs against the ASan+UBSan binary too (conformance.openapi.asan).
r53_add_test(NAME conformance.openapi
  COMMAND /usr/bin/python3 ${CMAKE_CURRENT_SOURCE_DIR}/integration/test_api_conformance.py
          @BIN@/r53reg ${PROJECT_SOURCE_DIR}/openapi.yaml
  LABELS "integration;openapi" TIMEOUT 120)

# r53reg against the strict Route 53 emulator, as separate processes (issue 3's "done when"):
# zone contents, restart, adoption, console edits, two replicas, fault mixes, group commit.
r53_add_test(NAME integration.route53
  COMMAND /usr/bin/python3 ${CMAKE_CURRENT_SOURCE_DIR}/integration/test_route53.py @BIN@
  LABELS "integration;route53" TIMEOUT 600)

# Each record's capacity is what fits the DNS answer budget: the real answer, built with
# dnspython, fits and one more value does not (A and AAAA, 1232 and 512 bytes).
r53_add_test(NAME integration.answer_size
  COMMAND /usr/bin/python3 ${CMAKE_CURRENT_SOURCE_DIR}/integration/test_answer_size.py @BIN@
  LABELS "integration" TIMEOUT 120)

# A connection the client closes frees its per-address slot at once (not after
# --client-timeout): close and half-close, after part of the headers and of the body.
r53_add_test(NAME integration.connection_slots
  COMMAND /usr/bin/python3 ${CMAKE_CURRENT_SOURCE_DIR}/integration/test_connection_slots.py @BIN@
  LABELS "integration;security" TIMEOUT 120)

# Health checks, fail-open guard, leases and drain against real TCP/HTTP backends on
# 127.0.3.x-127.0.9.x and the strict Route 53 emulator, plus a restart on the embedded store
# (issue 5's "done when"). Prints the measured detection-to-DNS times. About 25 s.
r53_add_test(NAME integration.health
  COMMAND /usr/bin/python3 ${CMAKE_CURRENT_SOURCE_DIR}/integration/test_health.py @BIN@
  LABELS "integration;health" TIMEOUT 120 TSAN)

# The start can be stopped: SIGTERM while the first Route 53 calls are slow exits at once; a
# FIFO as ~/.aws/config or ~/.aws/credentials fails clearly instead of blocking (issue 14).
r53_add_test(NAME integration.startup
  COMMAND /usr/bin/python3 ${CMAKE_CURRENT_SOURCE_DIR}/integration/test_startup.py @BIN@
  LABELS "integration;route53" TIMEOUT 120)

# Replicas that agree (issue 12): two and three r53reg replicas with the same (default) flags
# on one zone of the emulator at 5 calls/s: stale 404s, two buckets, undeletable copies, a
# stale replica, self-throttling and leases through a round-robin client (these two need
# --peers and are skipped with the reason when the binary lacks it), the invariants under
# 10% 5xx and 5% resets, kill -9 of one replica during a burst. One figure line per case;
# bench/replicas.py runs them at full size. About 1 minute (2 more with --peers).
r53_add_test(NAME integration.replicas
  COMMAND /usr/bin/python3 ${CMAKE_CURRENT_SOURCE_DIR}/integration/test_replicas.py @BIN@
  LABELS "integration" TIMEOUT 300)

# Watches: reads labelled with X-R53reg-Index and an ETag, 304 on If-None-Match, ?index=&wait=
# and tag watches parked until a change and not before, bad parameters refused, parked watches
# answered at shutdown, 10,000 watches parked from 200 source addresses answered after one
# change (prints the wake latency and the RSS they take). About 15 s.
r53_add_test(NAME integration.watch
  COMMAND /usr/bin/python3 ${CMAKE_CURRENT_SOURCE_DIR}/integration/test_watch.py @BIN@
  LABELS "integration" TIMEOUT 180 TSAN)

# The instance kit (deploy/instance/r53reg-instance) under dash with curl against real r53reg
# processes, from 127.0.12.x source addresses: boot through /backends/self, retries while
# r53reg is down, refusals (a self token naming another address, a wrong token) at once with
# r53reg's detail, lease renewal and SIGTERM, drain then DELETE no earlier than
# no_new_traffic_after, and the shutdown and boot bounds against refused and silent
# connections. About 35 s.
r53_add_test(NAME integration.instance_kit
  COMMAND /usr/bin/python3 ${CMAKE_CURRENT_SOURCE_DIR}/integration/test_instance_kit.py @BIN@
  LABELS "integration" TIMEOUT 120)

# The status page (GET /ui) in headless Chromium against r53reg on the Route 53 emulator:
# registered, down and draining backends in their states, a registration and a deregistration
# through the API shown without a reload, filters, search, markup shown as text, and the
# documented answers of /status and /ui. Saves ui-screenshot.png in its working directory.
# Skipped (77) with the reason when chromium, chromium-driver or python3-selenium is missing.
r53_add_test(NAME integration.ui
  COMMAND /usr/bin/python3 ${CMAKE_CURRENT_SOURCE_DIR}/integration/test_ui.py @BIN@
          ${PROJECT_SOURCE_DIR}/openapi.yaml
  LABELS "integration" TIMEOUT 120)
set_tests_properties(integration.ui PROPERTIES SKIP_RETURN_CODE 77)
if(R53REG_SANITIZER_SUITES)
  set_tests_properties(integration.ui.asan PROPERTIES SKIP_RETURN_CODE 77)
endif()

# Fairness measured through the emulator's resolver: every served address of a flat name gets
# the same share of traffic (exact and sampled), A and AAAA, 1,000 backends and a name nearly
# full with some drained. Prints the spreads. About 15 s.
r53_add_test(NAME integration.fairness
  COMMAND /usr/bin/python3 ${CMAKE_CURRENT_SOURCE_DIR}/integration/test_fairness.py @BIN@
  LABELS "integration;route53" TIMEOUT 120)

# The alias tree's weights through Route 53's rules: two-level trees written into the emulator
# (top weights from registry/tree_weights.c, children filled evenly), every address's share of
# traffic within 1% of every other's through the resolver, A and AAAA at 1,000, 10,000 and
# 100,000 backends. Prints the spreads. About 5 s.
r53_add_test(NAME integration.tree_fairness
  COMMAND /usr/bin/python3 ${CMAKE_CURRENT_SOURCE_DIR}/integration/test_tree_fairness.py @BIN@
  LABELS "integration;route53" TIMEOUT 120)

# The alias tree as r53reg writes it (--tree) into the emulator (--refuse-dangling-alias):
# growth from concurrent registrations, every acknowledged address served through the aliases
# within 1% of every other's share, drain, a child emptied (its alias goes in the same call),
# a restart reading the tree back, shrinking to nothing; a flat zone moved into the tree and
# back by restarts while DNS answers every address; --tree-auto growing and folding under
# registrations and deregistrations; health checks, leases and two replicas on children;
# fairness at 1,000, 10,000 and 100,000 A and AAAA (100,000 in the plain tree only). Prints
# the spreads. About 45 s; also under TSan (the moves race the committer).
r53_add_test(NAME integration.tree
  COMMAND /usr/bin/python3 ${CMAKE_CURRENT_SOURCE_DIR}/integration/test_tree.py @BIN@
  LABELS "integration;route53" TIMEOUT 300 TSAN)
