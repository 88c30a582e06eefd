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
  # GCC 12 at -O3 reports -Wrestrict on libstdc++'s own std::string
  # concatenation once it is inlined (for example into GoogleTest's protobuf
  # printer), overlaps that cannot happen; the false positive is known from
  # GCC 12 builds of GoogleTest (google/googletest#4108) and others. Without
  # this, the release preset fails to build the tests under -Werror.
  if(CMAKE_CXX_COMPILER_ID STREQUAL "GNU" AND
     CMAKE_CXX_COMPILER_VERSION VERSION_LESS 13)
    target_compile_options(${target} PRIVATE -Wno-restrict)
  endif()
  if(RESIDENCY_WERROR)
    target_compile_options(${target} PRIVATE -Werror)
  endif()
endfunction()

# Sanitizer support for every executable: with RESIDENCY_TSAN_ABSL (the tsan
# preset) each links the Abseil synchronization annotations
# (tests/tsan/absl_sync_annotations.cc) and its tests run with the TSan
# suppressions in tests/tsan/suppressions.txt.
function(residency_sanitizer_support target)
  if(RESIDENCY_TSAN_ABSL)
    target_link_libraries(${target} PRIVATE residency_tsan_absl)
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

# residency_test(NAME SRCS a_test.cc DEPS x y [LABELS l] [TIMEOUT s] [CEPH])
# Builds a GoogleTest binary and registers each of its tests with CTest.
# CEPH: its tests use the Ceph cluster the CTest fixture "ceph_cluster"
# starts once per run (tests/ceph_test_cluster.h finds it).
function(residency_test name)
  cmake_parse_arguments(ARG "CEPH" "TIMEOUT" "SRCS;DEPS;LABELS" ${ARGN})
  add_executable(${name} ${ARG_SRCS})
  target_link_libraries(${name} PRIVATE ${ARG_DEPS} GTest::gmock GTest::gtest_main)
  residency_warnings(${name})
  residency_sanitizer_support(${name})
  if(NOT ARG_TIMEOUT)
    set(ARG_TIMEOUT 300)
  endif()
  if(NOT ARG_LABELS)
    set(ARG_LABELS unit)
  endif()
  set(env)
  if(RESIDENCY_TSAN_ABSL)
    # die_after_fork=0: rpc/process_test checks that a forked copy of a
    # multi-threaded process can start threads and children of its own,
    # which TSan otherwise refuses outright.
    set(env ENVIRONMENT "TSAN_OPTIONS=halt_on_error=1 second_deadlock_stack=1 die_after_fork=0 suppressions=${PROJECT_SOURCE_DIR}/tests/tsan/suppressions.txt")
  endif()
  set(fixture)
  if(ARG_CEPH)
    target_compile_definitions(${name} PRIVATE
      RESIDENCY_CEPH_TEST_DIR="${CMAKE_BINARY_DIR}/ceph-test")
    target_link_libraries(${name} PRIVATE residency_ceph_cluster)
    set(fixture FIXTURES_REQUIRED ceph_cluster)
  endif()
  gtest_discover_tests(${name}
    WORKING_DIRECTORY ${PROJECT_SOURCE_DIR}
    PROPERTIES LABELS "${ARG_LABELS}" TIMEOUT ${ARG_TIMEOUT} ${env} ${fixture}
    DISCOVERY_TIMEOUT 60)
endfunction()

# residency_binary(NAME SRCS main.cc DEPS x y)
function(residency_binary name)
  cmake_parse_arguments(ARG "" "" "SRCS;DEPS" ${ARGN})
  add_executable(${name} ${ARG_SRCS})
  target_link_libraries(${name} PRIVATE ${ARG_DEPS})
  residency_warnings(${name})
  residency_sanitizer_support(${name})
endfunction()

# residency_grpc_proto(NAME ROOT dir PROTOS a.proto b.proto [DEPS x])
# Generates C++ messages and gRPC stubs for PROTOS (paths relative to ROOT,
# which is also the import root) into the build tree under the same relative
# paths, and builds them as static library NAME. Code includes them as
# "<relative path>.pb.h" / ".grpc.pb.h".
#
# A hand-written protoc rule rather than FindProtobuf's protobuf_generate():
# that one (CMake 3.25) runs protoc once per language and reruns it only when
# the file itself changes, not its imports or the gRPC plugin. Here every file
# is regenerated when any of them changes, since generated code embeds facts
# about imported types.
function(residency_grpc_proto name)
  cmake_parse_arguments(ARG "" "ROOT" "PROTOS;DEPS" ${ARGN})
  if(TARGET protobuf::protoc)
    set(protoc $<TARGET_FILE:protobuf::protoc>)
  else()
    set(protoc ${Protobuf_PROTOC_EXECUTABLE})
  endif()
  set(out_root ${CMAKE_CURRENT_BINARY_DIR}/gen)
  set(path_args --proto_path=${ARG_ROOT})
  foreach(dir IN LISTS Protobuf_INCLUDE_DIRS)
    list(APPEND path_args --proto_path=${dir})
  endforeach()
  # Imports from residency_proto (e.g. residency/v1/common.proto).
  if(NOT ARG_ROOT STREQUAL "${PROJECT_SOURCE_DIR}/proto")
    list(APPEND path_args --proto_path=${PROJECT_SOURCE_DIR}/proto)
  endif()
  list(TRANSFORM ARG_PROTOS PREPEND ${ARG_ROOT}/ OUTPUT_VARIABLE deps)
  set(srcs)
  foreach(proto IN LISTS ARG_PROTOS)
    string(REGEX REPLACE "\\.proto$" "" stem "${proto}")
    set(out "${out_root}/${stem}")
    add_custom_command(
      OUTPUT ${out}.pb.cc ${out}.pb.h ${out}.grpc.pb.cc ${out}.grpc.pb.h
      COMMAND ${CMAKE_COMMAND} -E make_directory ${out_root}
      COMMAND ${protoc} ${path_args}
        --cpp_out=${out_root}
        --grpc_out=${out_root}
        --plugin=protoc-gen-grpc=$<TARGET_FILE:gRPC::grpc_cpp_plugin>
        ${proto}
      DEPENDS ${deps} ${protoc} gRPC::grpc_cpp_plugin
      WORKING_DIRECTORY ${ARG_ROOT}
      COMMENT "protoc ${proto}"
      VERBATIM
    )
    list(APPEND srcs ${out}.pb.cc ${out}.grpc.pb.cc)
  endforeach()
  add_library(${name} STATIC ${srcs})
  # SYSTEM: consumers build with -Wall -Wextra -Werror, which generated
  # headers are not written for. The generated sources get no warning flags.
  target_include_directories(${name} SYSTEM PUBLIC ${out_root})
  target_link_libraries(${name} PUBLIC
    protobuf::libprotobuf gRPC::grpc++ ${ARG_DEPS})
endfunction()
