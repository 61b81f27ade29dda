# CUDA sources run on the CPU under the emulator of tests/testing/cuda_emulator/ (its README.md),
# so that machines without a GPU (CI) test the hand-written kernels:
#
#   usine_cuda_emulation_test(NAME cuda_flash_attention_emulation_test
#     SRCS cuda_flash_attention_emulation_test.cc
#     CUDA_SRCS runtime/nn/internal/cuda_flash_attention_bf16.cu
#     CUDA_HDRS runtime/nn/internal/cuda_mma.cuh)
#     -> CUDA_SRCS and CUDA_HDRS (from the repository root) rewritten into the build tree by
#        transform_cuda_source.py (again whenever they or the script change); the rewritten
#        CUDA_SRCS compiled as host C++20 with the emulator's prelude; a test executable of them,
#        SRCS and the emulator, one CTest entry per test case, label `emu`. CUDA_HDRS are the
#        headers that hold CUDA syntax (launches, inline PTX) which the CUDA_SRCS include; other
#        headers are used as they are. Needs no CUDA toolkit, whatever USINE_WITH_CUDA says: the
#        emulator's shim headers stand in for it, and the toolkit's are never on the include path.
#   usine_emulated_gpu_test(NAME nn_emulated_gpu_test SRCS cuda_layers_test.cc ...
#                           DEPS usine::runtime EXCLUDE Suite.Case ...)
#     -> a test of the library's CUDA path (its `gpu` cases: Cuda/... or ...GpuTest, less the
#        EXCLUDE patterns: cases that measure a real device's speed, or too slow emulated) built
#        against the emulated twins of its usine:: DEPS, so that those cases run on the CPU:
#        label `emu`. The twin usine_<name>_emulated of each usine_cc_library is that library
#        with USINE_WITH_CUDA on, compiled as host C++ against shim/ in place of the CUDA
#        toolkit: its .cu files rewritten as above, its CUDA runtime, cuBLASLt and NCCL calls
#        served by the emulator (shim/*.h say what each emulates). Twins are built for such
#        tests alone (EXCLUDE_FROM_ALL), but those are in every build with tests, GPU or not,
#        whatever USINE_WITH_CUDA says. Each test's main fails a case during which the emulator
#        reported an error (emulated_gpu_test_main.cc); its cases are named `emulated.<case>`.
#   usine_emulated_mpi_test(NAME train_emulated_mpi_test SRCS tp_dp_equivalence_test.cc ...
#                           DEPS usine::runtime NP 2 4)
#     -> the gpu cases of a test run under mpirun, against the twins as above, at each of NP
#        ranks (default 2 and 4): each rank emulates a GPU of its own (USINE_CUDA_EMULATED) and
#        NCCL goes over MPI. One CTest entry per NP, emulated.<NAME>.np<N>, labels `emu` and
#        `mpi`; a rank fails where its emulator reported an error or no case of it passed
#        (emulated_mpi_test_main.cc).
#   usine_cuda_emulation_available(<var>)
#     -> <var> ON where emulated tests are built: x86-64 Linux (the emulator switches stacks by
#        hand), python3 found, and not under ThreadSanitizer (which cannot follow those switches).

include_guard(GLOBAL)

# At the including directory's scope (the top level), so that every directory sees
# Python3_EXECUTABLE; found inside a function it would be that function's alone.
find_package(Python3 COMPONENTS Interpreter QUIET)

function(usine_cuda_emulation_available out)
  get_property(known GLOBAL PROPERTY _usine_cuda_emulation_available SET)
  if(NOT known)
    set(available OFF)
    if(NOT (CMAKE_SYSTEM_NAME STREQUAL "Linux" AND CMAKE_SYSTEM_PROCESSOR MATCHES "^(x86_64|AMD64)$"))
      set(why "the emulator runs on x86-64 Linux only")
    elseif(USINE_SANITIZE STREQUAL "thread")
      set(why "ThreadSanitizer cannot follow the emulator's stack switches")
    elseif(NOT Python3_Interpreter_FOUND)
      set(why "no python3 to rewrite the CUDA sources")
    else()
      set(available ON)
    endif()
    if(available)
      message(STATUS "usine: CUDA emulation tests ON (label emu)")
    else()
      message(STATUS "usine: CUDA emulation tests OFF (${why})")
    endif()
    set_property(GLOBAL PROPERTY _usine_cuda_emulation_available ${available})
  endif()
  get_property(available GLOBAL PROPERTY _usine_cuda_emulation_available)
  set(${out} ${available} PARENT_SCOPE)
endfunction()

# Rewrites `srcs` and `hdrs` (from the repository root) under `rewritten_root` with
# transform_cuda_source.py, again whenever they or the script change, and marks the rewritten
# srcs as host C++ with the emulator's prelude. Sets <rewritten_srcs> to the rewritten srcs and
# <rewritten> to every rewritten file.
function(_usine_rewrite_cuda rewritten_root srcs hdrs rewritten_srcs_var rewritten_var)
  set(emulator_dir ${PROJECT_SOURCE_DIR}/tests/testing/cuda_emulator)
  set(script ${emulator_dir}/transform_cuda_source.py)
  set(originals "")
  set(rewritten "")
  foreach(file IN LISTS srcs hdrs)
    list(APPEND originals ${PROJECT_SOURCE_DIR}/${file})
    list(APPEND rewritten ${rewritten_root}/${file})
  endforeach()
  list(TRANSFORM srcs PREPEND ${rewritten_root}/ OUTPUT_VARIABLE rewritten_srcs)
  add_custom_command(OUTPUT ${rewritten}
    COMMAND ${Python3_EXECUTABLE} ${script} --source-root ${PROJECT_SOURCE_DIR}
            --output-root ${rewritten_root} ${srcs} ${hdrs}
    DEPENDS ${originals} ${script}
    COMMENT "Rewriting CUDA sources for the CUDA emulator (${rewritten_root})"
    VERBATIM)
  # Host C++ whatever the extension. nvcc's `#pragma unroll` is unknown to the host compiler;
  # it has no meaning for the emulation. Call sites are walked by frame pointers and named by
  # addr2line from the debug information. A product and a sum are fused only where the source
  # says fmaf, so that the kernels' __fmul_rn and __fadd_rn hold. CUDA code type-puns through
  # reinterpret_cast (float4 loads of float rows, a bf16 pair read as a 32-bit register), which
  # the host compiler would be entitled to reorder under strict aliasing.
  set_source_files_properties(${rewritten_srcs} PROPERTIES
    LANGUAGE CXX
    COMPILE_OPTIONS "-include;${emulator_dir}/cuda_emulator_prelude.h;-Wno-unknown-pragmas;-g;-fno-omit-frame-pointer;-ffp-contract=off;-fno-strict-aliasing")
  set(${rewritten_srcs_var} ${rewritten_srcs} PARENT_SCOPE)
  set(${rewritten_var} ${rewritten} PARENT_SCOPE)
endfunction()

# usine::<name> -> usine_<name>_emulated; CUDA's libraries -> the emulator's; others unchanged.
function(_usine_emulated_deps out)
  set(mapped "")
  foreach(dep IN LISTS ARGN)
    if(dep MATCHES "^usine::(.+)$")
      list(APPEND mapped usine_${CMAKE_MATCH_1}_emulated)
    elseif(NOT dep MATCHES "^(CUDA|NCCL)::")
      list(APPEND mapped ${dep})
    endif()
  endforeach()
  set(${out} ${mapped} PARENT_SCOPE)
endfunction()

# Called by usine_cc_library (UsineHelpers.cmake), in the library's directory, so that the
# sources' properties (usine_cpu_loops) hold for the twin too.
function(_usine_emulated_twin)
  cmake_parse_arguments(U "" "NAME" "SRCS;CUDA_SRCS;DEPS;PRIVATE_DEPS;PRIVATE_INCLUDES" ${ARGN})
  if(NOT USINE_BUILD_TESTS)
    return()
  endif()
  usine_cuda_emulation_available(available)
  if(NOT available)
    return()
  endif()
  set(target usine_${U_NAME}_emulated)
  file(RELATIVE_PATH dir ${PROJECT_SOURCE_DIR} ${CMAKE_CURRENT_SOURCE_DIR})
  set(srcs ${U_SRCS})
  set(cuda_files "")
  foreach(src IN LISTS U_CUDA_SRCS)
    if(src MATCHES "\\.cu$")
      list(APPEND cuda_files ${dir}/${src})
    else()
      list(APPEND srcs ${src})
    endif()
  endforeach()
  set(rewritten_root ${CMAKE_CURRENT_BINARY_DIR}/${target}.rewritten)
  set(rewritten "")
  if(cuda_files)
    # The .cuh headers that the .cu files include, all rewritten with them (the script collects
    # kernel templates across the files it is given).
    file(GLOB_RECURSE cuda_headers RELATIVE ${PROJECT_SOURCE_DIR} CONFIGURE_DEPENDS
         ${CMAKE_CURRENT_SOURCE_DIR}/*.cuh)
    _usine_rewrite_cuda(${rewritten_root} "${cuda_files}" "${cuda_headers}" rewritten_srcs
                        rewritten)
  endif()
  add_library(${target} STATIC EXCLUDE_FROM_ALL ${srcs} ${rewritten})
  _usine_emulated_deps(deps ${U_DEPS})
  _usine_emulated_deps(private_deps ${U_PRIVATE_DEPS})
  target_link_libraries(${target} PUBLIC ${deps} usine_cuda_emulator usine_cuda_emulator_nccl
                        PRIVATE ${private_deps})
  # The rewritten headers ahead of the originals under the repository root.
  target_include_directories(${target} BEFORE PRIVATE ${rewritten_root})
  target_include_directories(${target} PUBLIC ${PROJECT_SOURCE_DIR} PRIVATE ${U_PRIVATE_INCLUDES})
  target_compile_definitions(${target} PUBLIC USINE_WITH_CUDA=1)
  _usine_warnings(${target})
endfunction()

# The test executable `name` of `srcs`, device_test.cc and the `main_srcs` (from tests/testing/),
# linked with the emulated twins of `deps` and `other_deps` as they are. Its sources see
# USINE_CUDA_EMULATED: each process has an emulated GPU of its own.
function(_usine_emulated_test_executable name srcs deps main_srcs other_deps)
  _usine_emulated_deps(twins ${deps})
  set(testing_dir ${PROJECT_SOURCE_DIR}/tests/testing)
  list(TRANSFORM main_srcs PREPEND ${testing_dir}/)
  _usine_test_executable(${name} "${srcs};${testing_dir}/device_test.cc;${main_srcs}"
                         "${twins};${other_deps}")
  target_compile_definitions(${name} PRIVATE USINE_CUDA_EMULATED=1)
endfunction()

function(usine_emulated_gpu_test)
  cmake_parse_arguments(U "" "NAME" "SRCS;DEPS;EXCLUDE" ${ARGN})
  usine_cuda_emulation_available(available)
  if(NOT available)
    return()
  endif()
  _usine_emulated_test_executable(${U_NAME} "${U_SRCS}" "${U_DEPS}"
                                  "cuda_emulator/emulated_gpu_test_main.cc" "")
  set(filter "Cuda/*:*GpuTest.*")
  if(U_EXCLUDE)
    list(JOIN U_EXCLUDE ":" excluded)
    string(APPEND filter "-${excluded}")
  endif()
  # Named apart from the same cases of the real test, which may sit in the same directory.
  gtest_discover_tests(${U_NAME} TEST_FILTER "${filter}" TEST_PREFIX "emulated."
    PROPERTIES LABELS emu TIMEOUT 600)
endfunction()

# A test run under mpirun at each of NP ranks (default 2 and 4), as usine_mpi_test, built
# against the emulated twins: only its gpu cases run ("Cuda/*:*GpuTest.*"), each rank with an
# emulated GPU of its own and NCCL over MPI (shim/nccl.h). Named emulated.<NAME>.np<N>, label
# emu and mpi; a case during which a rank's emulator reported an error fails.
function(usine_emulated_mpi_test)
  cmake_parse_arguments(U "" "NAME" "SRCS;DEPS;NP" ${ARGN})
  usine_cuda_emulation_available(available)
  if(NOT available)
    return()
  endif()
  if(NOT U_NP)
    set(U_NP 2 4)
  endif()
  _usine_emulated_test_executable(${U_NAME} "${U_SRCS}" "${U_DEPS}"
    "mpi_test_runner.cc;cuda_emulator/emulated_mpi_test_main.cc" MPI::MPI_C)
  _usine_mpi_test_env(env)
  foreach(np IN LISTS U_NP)
    add_test(NAME emulated.${U_NAME}.np${np}
      COMMAND ${MPIEXEC_EXECUTABLE} ${MPIEXEC_NUMPROC_FLAG} ${np} ${USINE_MPIEXEC_FLAGS}
              $<TARGET_FILE:${U_NAME}> --gtest_filter=Cuda/*:*GpuTest.*)
    set_tests_properties(emulated.${U_NAME}.np${np} PROPERTIES
      LABELS "emu;mpi" TIMEOUT 600 PROCESSORS ${np} ENVIRONMENT "${env}")
  endforeach()
endfunction()

function(usine_cuda_emulation_test)
  cmake_parse_arguments(U "" "NAME" "SRCS;CUDA_SRCS;CUDA_HDRS" ${ARGN})
  usine_cuda_emulation_available(available)
  if(NOT available)
    return()
  endif()
  set(rewritten_root ${CMAKE_CURRENT_BINARY_DIR}/${U_NAME}.rewritten)
  _usine_rewrite_cuda(${rewritten_root} "${U_CUDA_SRCS}" "${U_CUDA_HDRS}" rewritten_srcs
                      rewritten)
  _usine_test_executable(${U_NAME} "${U_SRCS};${rewritten}" "usine_cuda_emulator;GTest::gtest_main")
  # The rewritten headers first, ahead of the originals under the repository root.
  target_include_directories(${U_NAME} BEFORE PRIVATE ${rewritten_root})
  # Parameterised cases are named (/B1_H2_T256_D64): no value appended to the CTest name.
  gtest_discover_tests(${U_NAME} NO_PRETTY_VALUES PROPERTIES LABELS emu TIMEOUT 300)
endfunction()
