# util/metrics and the /metrics handler: exact exposition text, escaping, the handler, a
# concurrency test (also under ThreadSanitizer in the sanitizer suites), and the rendered text
# read back by prometheus_client's parser (python3-prometheus-client, installed by
# scripts/install-deps.sh --test: a missing parser fails the test).

r53_test_exe(test_metrics ${CMAKE_CURRENT_SOURCE_DIR}/unit/test_metrics.c)

r53_add_test(NAME metrics.render COMMAND test_metrics render LABELS unit TIMEOUT 60)
r53_add_test(NAME metrics.escape COMMAND test_metrics escape LABELS unit TIMEOUT 60)
r53_add_test(NAME metrics.handler COMMAND test_metrics handler LABELS unit TIMEOUT 60)
r53_add_test(NAME metrics.misuse COMMAND test_metrics misuse LABELS unit TIMEOUT 60)
r53_add_test(NAME metrics.concurrency COMMAND test_metrics concurrency
  LABELS "unit;concurrency" TIMEOUT 60 TSAN)
r53_add_test(NAME metrics.parser COMMAND test_metrics parser LABELS unit TIMEOUT 60)
