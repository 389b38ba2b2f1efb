# Lint tests: the OpenAPI description (redocly) and the Dockerfile (dockerfilelint).
#
# The tools come from the project's package.json/package-lock.json: scripts/install-deps.sh
# runs `npm ci` in the project root, which fills node_modules/. A missing tool is a FAILURE,
# not a skip, so a machine without the install step cannot pass silently.

function(r53_add_lint_test name tool)
  set(bin ${PROJECT_SOURCE_DIR}/node_modules/.bin/${tool})
  string(JOIN " " args ${ARGN})
  add_test(NAME ${name}
    COMMAND /bin/sh -c "if [ ! -x '${bin}' ]; then echo '${name}: ${bin} is missing: run scripts/install-deps.sh (npm ci in ${PROJECT_SOURCE_DIR})' >&2; exit 1; fi; exec '${bin}' ${args}"
    WORKING_DIRECTORY ${PROJECT_SOURCE_DIR})
  set_tests_properties(${name} PROPERTIES LABELS lint TIMEOUT 300
    ENVIRONMENT "REDOCLY_TELEMETRY=off;NO_COLOR=1")
endfunction()

r53_add_lint_test(lint.openapi redocly lint openapi.yaml)
r53_add_lint_test(lint.dockerfile dockerfilelint Dockerfile)

# The example IAM policy covers the three names the Route 53 provider writes.
add_test(NAME lint.iam-policy
  COMMAND /usr/bin/python3 ${CMAKE_CURRENT_SOURCE_DIR}/check_iam_policy.py
          ${PROJECT_SOURCE_DIR}/deploy/iam-policy.json)
set_tests_properties(lint.iam-policy PROPERTIES LABELS lint TIMEOUT 30)
