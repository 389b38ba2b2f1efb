# The modules of registry/, handlers/ and server/ depend on each other without a cycle
# (tests/check_include_graph.py: a module is foo.c with foo.h; #include lines make the graph,
# and in handlers/ and server/, where every .c has its own header, so do calls between .c
# files; whatever files the folders hold are read, none is listed here). registry/ is checked
# by its #include lines only: it may be built as one component behind a private header.
# The .selftest case runs the checker on small made-up trees, with and without cycles.

add_test(NAME lint.include-graph
  COMMAND /usr/bin/python3 ${CMAKE_CURRENT_SOURCE_DIR}/check_include_graph.py
          --calls handlers --calls server ${PROJECT_SOURCE_DIR} registry handlers server)
add_test(NAME lint.include-graph.selftest
  COMMAND /usr/bin/python3 ${CMAKE_CURRENT_SOURCE_DIR}/check_include_graph.py --self-test)
set_tests_properties(lint.include-graph lint.include-graph.selftest PROPERTIES
  LABELS lint TIMEOUT 60)
