# r53emu: a strict Route 53 stand-in for integration tests and benchmarks (tests/r53emu/), and
# sigv4_cli, a tiny front end to aws/sigv4.h used to cross-check the signer against botocore.
# Both land in the build's bin/ directory.

set(R53EMU_DIR ${CMAKE_CURRENT_SOURCE_DIR}/r53emu)

add_executable(r53emu
  ${R53EMU_DIR}/emu_main.c
  ${R53EMU_DIR}/emu_auth.c
  ${R53EMU_DIR}/emu_faults.c
  ${R53EMU_DIR}/emu_resolve.c
  ${R53EMU_DIR}/emu_util.c
  ${R53EMU_DIR}/emu_xml.c
  ${R53EMU_DIR}/emu_zone.c)
target_link_libraries(r53emu PRIVATE r53core)

add_executable(sigv4_cli ${R53EMU_DIR}/sigv4_cli.c)
target_link_libraries(sigv4_cli PRIVATE r53core)

# The fidelity tests drive r53emu with boto3 (Debian's python3-boto3 is for /usr/bin/python3).
# r53_add_test (tests/CMakeLists.txt) adds plain add_test()s named r53emu.boto3, r53emu.alias
# (alias records, the zone quota, the resolver) and r53emu.sigv4_botocore running the binaries
# of this tree (@BIN@ = <build>/bin, the same files as
# $<TARGET_FILE:r53emu>/$<TARGET_FILE:sigv4_cli>), and with R53REG_SANITIZER_SUITES=ON the same
# tests against the ASan+UBSan and TSan trees' binaries (.asan/.tsan).
r53_add_test(NAME r53emu.boto3
  COMMAND /usr/bin/python3 ${R53EMU_DIR}/test_boto3.py @BIN@/r53emu
  LABELS "integration;r53emu" TIMEOUT 300 TSAN)
r53_add_test(NAME r53emu.alias
  COMMAND /usr/bin/python3 ${R53EMU_DIR}/test_alias.py @BIN@/r53emu
  LABELS "integration;r53emu" TIMEOUT 300 TSAN)
r53_add_test(NAME r53emu.sigv4_botocore
  COMMAND /usr/bin/python3 ${R53EMU_DIR}/test_sigv4_botocore.py @BIN@/r53emu @BIN@/sigv4_cli
  LABELS "integration;r53emu" TIMEOUT 300 TSAN)
