# Turns the status page's files into one C header of byte arrays, so r53reg serves them from
# the binary (handlers/ui.c). Run with cmake -P:
#   -DOUT=<header to write> -DFILES=<name>=<file>|<name>=<file>...
# Each file becomes `static const unsigned char <name>[]` (NUL-terminated) and
# `#define <name>_len <bytes without the NUL>`.
set(text "/* Generated from handlers/ui/ by handlers/ui/embed.cmake; do not edit. */\n")
string(REPLACE "|" ";" FILES "${FILES}")
foreach(pair IN LISTS FILES)
  string(FIND "${pair}" "=" eq)
  string(SUBSTRING "${pair}" 0 ${eq} name)
  math(EXPR from "${eq} + 1")
  string(SUBSTRING "${pair}" ${from} -1 file)
  file(READ "${file}" hex HEX)
  string(LENGTH "${hex}" hexlen)
  math(EXPR bytes "${hexlen} / 2")
  string(REGEX REPLACE "([0-9a-f][0-9a-f])" "0x\\1," body "${hex}")
  # 16 bytes a line (CMake's regular expressions have no {n})
  string(REPEAT "0x[0-9a-f][0-9a-f]," 16 line)
  string(REGEX REPLACE "(${line})" "\\1\n    " body "${body}")
  string(APPEND text "static const unsigned char ${name}[] = {\n    ${body}0x00};\n")
  string(APPEND text "#define ${name}_len ${bytes}u\n")
endforeach()
# Rewrite only on change, so the core library is not rebuilt needlessly.
if(EXISTS "${OUT}")
  file(READ "${OUT}" old)
  if(old STREQUAL text)
    return()
  endif()
endif()
file(WRITE "${OUT}" "${text}")
