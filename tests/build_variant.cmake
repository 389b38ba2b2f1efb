# Configure and build one sanitizer tree of the project (run by ctest as the build.<variant>
# fixture). Variables: SRC, BIN, SAN (address|thread), TESTDATA.
execute_process(COMMAND ${CMAKE_COMMAND} -S ${SRC} -B ${BIN} -DCMAKE_BUILD_TYPE=Debug
                        -DR53REG_SANITIZE=${SAN} -DR53REG_SANITIZER_SUITES=OFF
                        -DR53_TESTDATA=${TESTDATA}
                RESULT_VARIABLE rc)
if(rc)
  message(FATAL_ERROR "configuring the ${SAN} tree failed")
endif()
include(ProcessorCount)
ProcessorCount(ncpu)
execute_process(COMMAND ${CMAKE_COMMAND} --build ${BIN} -j ${ncpu} RESULT_VARIABLE rc)
if(rc)
  message(FATAL_ERROR "building the ${SAN} tree failed")
endif()
