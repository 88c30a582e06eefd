# Helpers that keep every component's CMakeLists.txt uniform.
include(CheckLinkerFlag)
include(GoogleTest)

# lld links a gRPC binary an order of magnitude faster than ld.bfd.
check_linker_flag(CXX "-fuse-ld=lld" RESIDENCY_HAVE_LLD)
if(RESIDENCY_HAVE_LLD)
  add_link_options("-fuse-ld=lld")
endif()

# Warning flags for project code only: generated code and system headers are
# compiled without them.
function(residency_warnings target)
  target_compile_options(${target} PRIVATE -Wall -Wextra)
  if(RESIDENCY_WERROR)
    target_compile_options(${target} PRIVATE -Werror)
  endif()
endfunction()

# residency_library(NAME SRCS a.cc b.cc DEPS x y)
function(residency_library name)
  cmake_parse_arguments(ARG "" "" "SRCS;DEPS" ${ARGN})
  add_library(${name} STATIC ${ARG_SRCS})
  target_include_directories(${name} PUBLIC ${PROJECT_SOURCE_DIR})
  target_link_libraries(${name} PUBLIC ${ARG_DEPS})
  residency_warnings(${name})
endfunction()

# residency_test(NAME SRCS a_test.cc DEPS x y [LABELS l] [TIMEOUT s])
# Builds a GoogleTest binary and registers each of its tests with CTest.
function(residency_test name)
  cmake_parse_arguments(ARG "" "TIMEOUT" "SRCS;DEPS;LABELS" ${ARGN})
  add_executable(${name} ${ARG_SRCS})
  target_link_libraries(${name} PRIVATE ${ARG_DEPS} GTest::gmock GTest::gtest_main)
  residency_warnings(${name})
  if(NOT ARG_TIMEOUT)
    set(ARG_TIMEOUT 300)
  endif()
  if(NOT ARG_LABELS)
    set(ARG_LABELS unit)
  endif()
  gtest_discover_tests(${name}
    WORKING_DIRECTORY ${PROJECT_SOURCE_DIR}
    PROPERTIES LABELS "${ARG_LABELS}" TIMEOUT ${ARG_TIMEOUT}
    DISCOVERY_TIMEOUT 60)
endfunction()

# residency_binary(NAME SRCS main.cc DEPS x y)
function(residency_binary name)
  cmake_parse_arguments(ARG "" "" "SRCS;DEPS" ${ARGN})
  add_executable(${name} ${ARG_SRCS})
  target_link_libraries(${name} PRIVATE ${ARG_DEPS})
  residency_warnings(${name})
endfunction()
