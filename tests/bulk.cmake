# The list endpoints (POST, DELETE, PUT /backends), ?wait=none and GET /changes/{id}, over
# loopback HTTP against the in-process server (tests/integration/test_bulk.c). The whole suite
# runs in both commit modes; the 8-thread bulk churn also runs alone under ThreadSanitizer in
# the sanitizer suites (integration.bulk-concurrency.tsan).
r53_integration_exe(test_bulk integration/test_bulk.c)
r53_add_test(NAME integration.bulk COMMAND test_bulk group LABELS integration TIMEOUT 120)
r53_add_test(NAME integration.bulk-immediate COMMAND test_bulk immediate
  LABELS integration TIMEOUT 120)
r53_add_test(NAME integration.bulk-concurrency COMMAND test_bulk group concurrency
  LABELS "integration;concurrency" TIMEOUT 120 TSAN)
