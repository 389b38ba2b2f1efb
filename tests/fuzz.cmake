# Fuzz targets (tests/fuzz/): plain LLVMFuzzerTestOneInput files (c-ares test/ares-fuzz.c).
#
# Always: fuzz_<x>_replay, the target linked with tests/fuzz/replay.c, and one ctest fuzz.<x>
# that replays the seed corpus tests/fuzz/corpus/<x>/ (plus, for xml, the shared Route 53
# samples in place when they exist). The ASan+UBSan suite tree runs them too (fuzz.<x>.asan).
#
# R53REG_FUZZ=ON with clang: also real libFuzzer binaries fuzz_<x>. The whole tree (r53core
# included) is then built with -fsanitize=fuzzer-no-link,address,undefined, so use a separate
# build directory (tests/fuzz/README.md):
#   CC=clang cmake -S . -B build-fuzz -DR53REG_FUZZ=ON && cmake --build build-fuzz -j2

set(R53_FUZZ_TARGETS ip router xml sigv4 json tokens)
set(R53_FUZZ_DIR ${CMAKE_CURRENT_SOURCE_DIR}/fuzz)

set(r53_libfuzzer OFF)
if(R53REG_FUZZ)
  if(NOT CMAKE_C_COMPILER_ID MATCHES "Clang")
    message(WARNING "R53REG_FUZZ needs clang (configure with CC=clang in a fresh build "
                    "directory); building the corpus replays only")
  elseif(R53REG_SANITIZE STREQUAL "thread")
    message(FATAL_ERROR "R53REG_FUZZ cannot be combined with R53REG_SANITIZE=thread")
  else()
    set(r53_libfuzzer ON)
    # Coverage instrumentation and ASan+UBSan for everything the fuzzers link (r53core and
    # every other executable of this tree, which must agree on the sanitizer runtime).
    target_compile_options(r53reg_flags INTERFACE -fsanitize=fuzzer-no-link,address,undefined
      -fno-sanitize-recover=undefined -fno-omit-frame-pointer)
    target_link_options(r53reg_flags INTERFACE -fsanitize=address,undefined)
    # The warning gate is the gcc build; clang warns about a few things gcc does not
    # (-Wformat-nonliteral on a va_list callback, -Wstring-concatenation), and this tree must
    # build whatever the rest of the project looks like at the moment. Warnings still print.
    target_compile_options(r53reg_flags INTERFACE -Wno-error)
  endif()
endif()

foreach(x ${R53_FUZZ_TARGETS})
  add_executable(fuzz_${x}_replay ${R53_FUZZ_DIR}/fuzz_${x}.c ${R53_FUZZ_DIR}/replay.c)
  target_link_libraries(fuzz_${x}_replay PRIVATE r53core)
  target_include_directories(fuzz_${x}_replay PRIVATE ${R53_FUZZ_DIR})

  set(corpora ${R53_FUZZ_DIR}/corpus/${x})
  if(x STREQUAL "xml" AND IS_DIRECTORY "${R53_TESTDATA}/route53")
    list(APPEND corpora ${R53_TESTDATA}/route53)
  endif()
  r53_add_test(NAME fuzz.${x} COMMAND fuzz_${x}_replay ${corpora} LABELS "fuzz;unit" TIMEOUT 120)

  if(r53_libfuzzer)
    add_executable(fuzz_${x} ${R53_FUZZ_DIR}/fuzz_${x}.c)
    target_link_libraries(fuzz_${x} PRIVATE r53core)
    target_include_directories(fuzz_${x} PRIVATE ${R53_FUZZ_DIR})
    target_compile_options(fuzz_${x} PRIVATE -fsanitize=fuzzer)
    target_link_options(fuzz_${x} PRIVATE -fsanitize=fuzzer)
  endif()
endforeach()
