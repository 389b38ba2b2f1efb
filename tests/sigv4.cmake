# aws/sigv4: table-driven unit cases (sigv4.self) and the AWS SigV4 test suite, one ctest per
# case folder (jansson test/suites style), globbed at configure time.
#
# A case folder is one that holds <folder>/<folder>.req (normalize-path/ and post-sts-token/
# group further case folders). Tests are named sigv4.<case>; the normalize-path cases run like
# the others (sigv4.c normalizes the path, the rule for every service except S3). Skips exit 77 (SKIP_RETURN_CODE)
# after printing why, so ctest reports them as skipped, never as passed.

r53_test_exe(test_sigv4 ${CMAKE_CURRENT_SOURCE_DIR}/unit/test_sigv4.c)

function(sigv4_skip_code name)
  foreach(t ${name} ${name}.asan ${name}.tsan)
    if(TEST ${t})
      set_tests_properties(${t} PROPERTIES SKIP_RETURN_CODE 77)
    endif()
  endforeach()
endfunction()

r53_add_test(NAME sigv4.self COMMAND test_sigv4 --self LABELS "unit;sigv4" TIMEOUT 30)

set(SIGV4_SUITE "${R53_TESTDATA}/sigv4")
if(IS_DIRECTORY "${SIGV4_SUITE}")
  file(GLOB_RECURSE sigv4_reqs CONFIGURE_DEPENDS "${SIGV4_SUITE}/*.req")
  list(SORT sigv4_reqs)
  foreach(req ${sigv4_reqs})
    get_filename_component(dir "${req}" DIRECTORY)
    get_filename_component(case "${dir}" NAME)
    if(NOT req STREQUAL "${dir}/${case}.req")
      continue() # not a case folder's own request
    endif()
    r53_add_test(NAME sigv4.${case} COMMAND test_sigv4 "${dir}" LABELS "unit;sigv4" TIMEOUT 30)
    sigv4_skip_code(sigv4.${case})
  endforeach()
else()
  r53_add_test(NAME sigv4.suite-missing
    COMMAND test_sigv4 --skip "shared/testdata/sigv4 not found: SigV4 suite skipped"
    LABELS "unit;sigv4" TIMEOUT 30)
  sigv4_skip_code(sigv4.suite-missing)
endif()
