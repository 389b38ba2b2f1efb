# Integration tests that drive the real r53reg binary over loopback sockets.

# Checks every answer against openapi.yaml (status declared, media type, JSON Schema 2020-12).
# /usr/bin/python3: Debian's python3-yaml and python3-jsonschema are installed for it.
add_test(NAME conformance.openapi
  COMMAND /usr/bin/python3 ${CMAKE_CURRENT_SOURCE_DIR}/integration/test_api_conformance.py
          $<TARGET_FILE:r53reg> ${PROJECT_SOURCE_DIR}/openapi.yaml)
set_tests_properties(conformance.openapi PROPERTIES LABELS "integration;openapi" TIMEOUT 120)
