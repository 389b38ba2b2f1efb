# aws/credentials: the credential chain against a fake environment, a temporary HOME and
# loopback libmicrohttpd servers standing in for STS, the container endpoint and IMDSv2
# (127.0.0.1, port 0). One ctest per group so a failure names the source.

r53_test_exe(test_credentials ${CMAKE_CURRENT_SOURCE_DIR}/unit/test_credentials.c)

foreach(group release env total shared webid container imds expiration precedence refresh
        malformed threads hostile_text control_chars)
  r53_add_test(NAME credentials.${group} COMMAND test_credentials ${group}
    LABELS "unit;aws" TIMEOUT 60 TSAN)
endforeach()
