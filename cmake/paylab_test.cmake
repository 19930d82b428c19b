# paylab_test(NAME SOURCES... DEPS ...): one GoogleTest executable registered
# with CTest. Property tests read RC_PARAMS from the environment; CTest sets a
# fixed seed so CI runs are reproducible (see tests/CMakeLists.txt).
function(paylab_test name)
  cmake_parse_arguments(T "" "" "SOURCES;DEPS;LABELS" ${ARGN})
  add_executable(${name} ${T_SOURCES})
  target_link_libraries(${name} PRIVATE ${T_DEPS} GTest::gtest GTest::gtest_main)
  gtest_discover_tests(${name}
    WORKING_DIRECTORY ${PROJECT_SOURCE_DIR}
    PROPERTIES ENVIRONMENT "RC_PARAMS=seed=20261126 max_success=${PAYLAB_RC_MAX_SUCCESS}"
               LABELS "${T_LABELS}"
    DISCOVERY_TIMEOUT 60)
endfunction()
