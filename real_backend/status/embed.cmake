# cmake -DINPUT=file -DOUTPUT=file.cpp -DNAME=function -P embed.cmake: writes a C++ source that
# defines std::string_view hearth::real::NAME() returning INPUT's bytes (any bytes: written as
# numbers, so no character of the file needs escaping).
file(READ "${INPUT}" hex HEX)
string(LENGTH "${hex}" hex_length)
math(EXPR size "${hex_length} / 2")
string(REGEX REPLACE "([0-9a-f][0-9a-f])" "0x\\1," bytes "${hex}")
file(WRITE "${OUTPUT}.tmp"
  "// Generated from ${INPUT} by embed.cmake; do not edit.\n"
  "#include <string_view>\n"
  "namespace hearth::real {\n"
  "namespace { const char bytes[] = {${bytes} 0}; }\n"
  "std::string_view ${NAME}() { return {bytes, ${size}}; }\n"
  "}  // namespace hearth::real\n")
file(RENAME "${OUTPUT}.tmp" "${OUTPUT}")
