# Helpers that keep every usine target one short block (in the manner of absl_cc_library).
#
#   usine_cc_library(NAME core HDRS a.h SRCS a.cc CUDA_SRCS a.cu DEPS absl::status)
#     -> target usine_core, alias usine::core, exported as usine::core; headers installed
#        under include/usine/<path relative to the repository root>. CUDA_SRCS are compiled,
#        CUDA_HDRS installed and CUDA_DEPS linked only when USINE_WITH_CUDA is ON;
#        NO_CUDA_SRCS (stand-ins for the CUDA path) only when it is OFF. PRIVATE_INCLUDES are
#        private include directories. Where the tests build emulated twins, also
#        usine_core_emulated (UsineCudaEmulation.cmake).
#   usine_cc_test(NAME tensor_test SRCS tensor_test.cc DEPS usine::core)
#     -> one CTest entry per test case. GPU cases -- a parameterised suite instantiated as
#        `Cuda/...`, or a suite named `...GpuTest` -- get the label `gpu` and report *skipped*
#        on a machine without a GPU; the others get `unit`.
#   usine_mpi_test(NAME comm_test SRCS comm_test.cc DEPS usine::collectives NP 2 4)
#     -> one binary with the MPI test main, run by CTest under `mpirun -np N` for each N
#        (label `mpi`).
#   usine_cpu_loops(cpu/elementwise.cc ...)
#     -> these sources are compiled at -O3 (but in Debug builds): GCC's -O2 vectorises with
#        its "very-cheap" cost model, which leaves scalar every loop whose trip count is not a
#        known multiple of the vector width, nearly every loop of the cpu kernels. Only the
#        speed changes: -O3 allows no reassociation or contraction that -O2 does not, so the
#        loops compute the same bits (reductions stay in order). (-fvect-cost-model=dynamic
#        alone would do for GCC, but clang and clang-tidy reject it.) And -ffp-contract=off:
#        GCC contracts a * b + c into an FMA wherever the instruction set has one (C++ is not
#        ISO C's -ffp-contract=off default), which the functions compiled for AVX2 or AVX-512
#        would otherwise do, and their results must be the 4-lane code's bits (cpu_exp.h).
#   usine_cuda_emulation_test(NAME ... SRCS ... CUDA_SRCS ... CUDA_HDRS ...)
#     -> CUDA sources run on the CPU under the CUDA emulator (label `emu`);
#        UsineCudaEmulation.cmake.
#   usine_emulated_gpu_test(NAME ... SRCS ... DEPS usine::runtime EXCLUDE ...)
#     -> the gpu cases of SRCS on the CPU, against the emulated twins of DEPS (label `emu`);
#        UsineCudaEmulation.cmake.
#   usine_emulated_mpi_test(NAME ... SRCS ... DEPS usine::runtime NP 2 4)
#     -> the gpu cases of an mpirun test, an emulated GPU per rank and NCCL over MPI (labels
#        `emu` and `mpi`); UsineCudaEmulation.cmake.

include_guard(GLOBAL)

function(_usine_warnings target)
  set(cxx_flags -Wall -Wextra -Wno-unused-parameter)
  if(USINE_WERROR)
    list(APPEND cxx_flags -Werror)
  endif()
  list(JOIN cxx_flags "," cuda_host_flags)
  target_compile_options(${target} PRIVATE
    "$<$<COMPILE_LANGUAGE:CXX>:${cxx_flags}>"
    "$<$<COMPILE_LANGUAGE:CUDA>:-Xcompiler=${cuda_host_flags}>")
endfunction()

function(usine_cpu_loops)
  set_property(SOURCE ${ARGN} APPEND PROPERTY COMPILE_OPTIONS $<$<NOT:$<CONFIG:Debug>>:-O3>
    -ffp-contract=off)
endfunction()

function(usine_cc_library)
  cmake_parse_arguments(U "" "NAME"
    "HDRS;SRCS;CUDA_HDRS;CUDA_SRCS;NO_CUDA_SRCS;DEPS;PRIVATE_DEPS;CUDA_DEPS;PRIVATE_INCLUDES" ${ARGN})
  set(target usine_${U_NAME})
  set(srcs ${U_SRCS})
  if(USINE_WITH_CUDA)
    list(APPEND srcs ${U_CUDA_SRCS})
    list(APPEND U_HDRS ${U_CUDA_HDRS})
  else()
    list(APPEND srcs ${U_NO_CUDA_SRCS})
  endif()
  _usine_emulated_twin(NAME ${U_NAME} SRCS ${U_SRCS} CUDA_SRCS ${U_CUDA_SRCS} DEPS ${U_DEPS}
    PRIVATE_DEPS ${U_PRIVATE_DEPS} PRIVATE_INCLUDES ${U_PRIVATE_INCLUDES})
  if(srcs)
    add_library(${target} ${srcs} ${U_HDRS})
    target_link_libraries(${target} PUBLIC ${U_DEPS} PRIVATE ${U_PRIVATE_DEPS})
    target_include_directories(${target} PRIVATE ${U_PRIVATE_INCLUDES})
    if(USINE_WITH_CUDA)
      target_link_libraries(${target} PUBLIC ${U_CUDA_DEPS})
      set_target_properties(${target} PROPERTIES CUDA_SEPARABLE_COMPILATION OFF)
    endif()
    target_include_directories(${target} PUBLIC
      $<BUILD_INTERFACE:${PROJECT_SOURCE_DIR}>
      $<INSTALL_INTERFACE:${CMAKE_INSTALL_INCLUDEDIR}/usine>)
    _usine_warnings(${target})
  else()
    add_library(${target} INTERFACE ${U_HDRS})
    target_link_libraries(${target} INTERFACE ${U_DEPS})
    target_include_directories(${target} INTERFACE
      $<BUILD_INTERFACE:${PROJECT_SOURCE_DIR}>
      $<INSTALL_INTERFACE:${CMAKE_INSTALL_INCLUDEDIR}/usine>)
  endif()
  set_target_properties(${target} PROPERTIES EXPORT_NAME ${U_NAME} OUTPUT_NAME usine_${U_NAME})
  add_library(usine::${U_NAME} ALIAS ${target})

  install(TARGETS ${target} EXPORT usineTargets
    ARCHIVE DESTINATION ${CMAKE_INSTALL_LIBDIR}
    LIBRARY DESTINATION ${CMAKE_INSTALL_LIBDIR}
    RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR})
  foreach(hdr IN LISTS U_HDRS)
    cmake_path(ABSOLUTE_PATH hdr BASE_DIRECTORY ${CMAKE_CURRENT_SOURCE_DIR} OUTPUT_VARIABLE abs)
    cmake_path(RELATIVE_PATH abs BASE_DIRECTORY ${PROJECT_SOURCE_DIR} OUTPUT_VARIABLE rel)
    cmake_path(GET rel PARENT_PATH rel_dir)
    install(FILES ${abs} DESTINATION ${CMAKE_INSTALL_INCLUDEDIR}/usine/${rel_dir})
  endforeach()
endfunction()

function(_usine_test_executable name srcs deps)
  add_executable(${name} ${srcs})
  target_link_libraries(${name} PRIVATE ${deps} GTest::gtest GTest::gmock)
  target_include_directories(${name} PRIVATE ${PROJECT_SOURCE_DIR})
  _usine_warnings(${name})
endfunction()

function(usine_cc_test)
  cmake_parse_arguments(U "" "NAME" "SRCS;DEPS" ${ARGN})
  _usine_test_executable(${U_NAME} "${U_SRCS}" "${U_DEPS};usine_testing;GTest::gtest_main")
  gtest_discover_tests(${U_NAME}
    TEST_FILTER "-Cuda/*:*GpuTest.*"
    PROPERTIES LABELS unit TIMEOUT 300)
  gtest_discover_tests(${U_NAME}
    TEST_FILTER "Cuda/*:*GpuTest.*"
    PROPERTIES LABELS gpu TIMEOUT 300 SKIP_REGULAR_EXPRESSION "\\[  SKIPPED \\]")
endfunction()

# The environment of a test run under mpirun.
function(_usine_mpi_test_env out)
  set(env "${USINE_MPI_TEST_ENV}")
  if(USINE_SANITIZE STREQUAL "address")
    # Open MPI does not free its components' memory at MPI_Finalize (much of it in modules
    # it has unloaded, which no suppression can name): leaks are checked by the unit tier.
    list(APPEND env "ASAN_OPTIONS=detect_leaks=0:allocator_may_return_null=1")
  endif()
  set(${out} "${env}" PARENT_SCOPE)
endfunction()

function(usine_mpi_test)
  cmake_parse_arguments(U "" "NAME;TIMEOUT" "SRCS;DEPS;NP" ${ARGN})
  if(NOT U_NP)
    set(U_NP 2 4)
  endif()
  if(NOT U_TIMEOUT)
    set(U_TIMEOUT 300)
  endif()
  _usine_test_executable(${U_NAME} "${U_SRCS}" "${U_DEPS};usine_mpi_test_main")
  _usine_mpi_test_env(env)
  foreach(np IN LISTS U_NP)
    add_test(NAME ${U_NAME}.np${np}
      COMMAND ${MPIEXEC_EXECUTABLE} ${MPIEXEC_NUMPROC_FLAG} ${np} ${USINE_MPIEXEC_FLAGS}
              $<TARGET_FILE:${U_NAME}>)
    set_tests_properties(${U_NAME}.np${np} PROPERTIES
      LABELS mpi TIMEOUT ${U_TIMEOUT} PROCESSORS ${np}
      ENVIRONMENT "${env}")
  endforeach()
endfunction()

# Adds -fsanitize=<name> to everything built after this call.
function(usine_apply_sanitizer name)
  if(name STREQUAL "")
    return()
  endif()
  if(NOT name MATCHES "^(address|undefined|thread)$")
    message(FATAL_ERROR "USINE_SANITIZE must be address, undefined or thread, not '${name}'")
  endif()
  set(flags -fsanitize=${name} -fno-omit-frame-pointer)
  if(name STREQUAL "undefined")
    list(APPEND flags -fno-sanitize-recover=all)
  endif()
  add_compile_options("$<$<COMPILE_LANGUAGE:CXX,C>:${flags}>")
  add_link_options(${flags})
  message(STATUS "usine: sanitizer ${name}")
endfunction()

include(UsineCudaEmulation)
