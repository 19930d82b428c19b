# paylab_library(NAME SOURCES... DEPS...): the static library paylab_NAME,
# known to the others as paylab::NAME, linking DEPS publicly (the include
# direction tests/layout_test.cc holds).
function(paylab_library name)
  cmake_parse_arguments(L "" "" "SOURCES;DEPS" ${ARGN})
  add_library(paylab_${name} ${L_SOURCES})
  add_library(paylab::${name} ALIAS paylab_${name})
  target_link_libraries(paylab_${name} PUBLIC ${L_DEPS})
endfunction()
