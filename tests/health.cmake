# registry/checker: the health check engine against real listeners on 127.0.1.x (TCP, HTTP, and
# HTTPS with a self-signed certificate made in-process with OpenSSL), one ctest per scenario,
# each also under ThreadSanitizer in the sanitizer suites.

pkg_check_modules(HEALTH_TEST_SSL REQUIRED IMPORTED_TARGET openssl)
r53_test_exe(test_health ${CMAKE_CURRENT_SOURCE_DIR}/unit/test_health.c)
target_link_libraries(test_health PRIVATE PkgConfig::HEALTH_TEST_SSL)

foreach(case tcp tcp_timeout http https remove parallel destroy api)
  r53_add_test(NAME health.${case} COMMAND test_health ${case} LABELS "unit;health" TIMEOUT 120
    TSAN)
endforeach()
