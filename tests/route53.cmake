# aws/route53_xml, aws/route53, aws/retry, aws/ratelimit.
#
# route53xml.self                table-driven builder/quota/escaping/octal/malformed cases
# route53xml.<file>              one ctest per file of testdata/route53 (SOURCE.md excepted):
#                                the sample's expectations in test_route53_xml.c
# route53client.<case>           the client against an in-process loopback MHD server
# Tests that need the samples exit 77 (SKIP_RETURN_CODE) with a reason when they are absent.

r53_test_exe(test_route53_xml ${CMAKE_CURRENT_SOURCE_DIR}/unit/test_route53_xml.c)
r53_test_exe(test_route53_client ${CMAKE_CURRENT_SOURCE_DIR}/unit/test_route53_client.c)

function(route53_skip_code name)
  foreach(t ${name} ${name}.asan ${name}.tsan)
    if(TEST ${t})
      set_tests_properties(${t} PROPERTIES SKIP_RETURN_CODE 77)
    endif()
  endforeach()
endfunction()

r53_add_test(NAME route53xml.self COMMAND test_route53_xml --self
  LABELS "unit;route53" TIMEOUT 60)

set(ROUTE53_SAMPLES "${R53_TESTDATA}/route53")
if(IS_DIRECTORY "${ROUTE53_SAMPLES}")
  file(GLOB route53_samples CONFIGURE_DEPENDS "${ROUTE53_SAMPLES}/*")
  list(SORT route53_samples)
  foreach(f ${route53_samples})
    get_filename_component(base "${f}" NAME)
    if(base STREQUAL "SOURCE.md" OR IS_DIRECTORY "${f}")
      continue()
    endif()
    r53_add_test(NAME route53xml.${base} COMMAND test_route53_xml "${f}"
      LABELS "unit;route53" TIMEOUT 30)
  endforeach()
else()
  r53_add_test(NAME route53xml.samples-missing
    COMMAND test_route53_xml --skip "shared/testdata/route53 not found: Route 53 samples skipped"
    LABELS "unit;route53" TIMEOUT 30)
  route53_skip_code(route53xml.samples-missing)
endif()

# Client cases (keep in sync with cases[] in test_route53_client.c; `test_route53_client
# --list` prints them).
set(ROUTE53_CLIENT_CASES
  change session_token provider hosted_zone
  retry_throttling retry_prior retry_500 retry_503 retry_reset
  icb_root icb_errorresponse no_retry retries_exhausted timeout deadline transport body_cap
  paging paging_samples paging_loops ratelimit_pacing bad_args concurrency
  retry_unit retry_delays retry_after ratelimit_unit ratelimit_changes ratelimit_priority
  ratepolicy)
foreach(case ${ROUTE53_CLIENT_CASES})
  r53_add_test(NAME route53client.${case}
    COMMAND test_route53_client ${case} "${R53_TESTDATA}"
    LABELS "unit;route53" TIMEOUT 60 TSAN)
  route53_skip_code(route53client.${case})
endforeach()
