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
#   usine_cuda_emulation_available(<var>)
#     -> <var> ON where emulated tests are built: x86-64 Linux (the emulator switches stacks by
#        hand), python3 found, and not under ThreadSanitizer (which cannot follow those switches).

include_guard(GLOBAL)

function(usine_cuda_emulation_available out)
  get_property(known GLOBAL PROPERTY _usine_cuda_emulation_available SET)
  if(NOT known)
    set(available OFF)
    find_package(Python3 COMPONENTS Interpreter QUIET)
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

function(usine_cuda_emulation_test)
  cmake_parse_arguments(U "" "NAME" "SRCS;CUDA_SRCS;CUDA_HDRS" ${ARGN})
  usine_cuda_emulation_available(available)
  if(NOT available)
    return()
  endif()
  set(emulator_dir ${PROJECT_SOURCE_DIR}/tests/testing/cuda_emulator)
  set(script ${emulator_dir}/transform_cuda_source.py)
  set(rewritten_root ${CMAKE_CURRENT_BINARY_DIR}/${U_NAME}.rewritten)
  set(originals "")
  set(rewritten "")
  foreach(file IN LISTS U_CUDA_SRCS U_CUDA_HDRS)
    list(APPEND originals ${PROJECT_SOURCE_DIR}/${file})
    list(APPEND rewritten ${rewritten_root}/${file})
  endforeach()
  list(TRANSFORM U_CUDA_SRCS PREPEND ${rewritten_root}/ OUTPUT_VARIABLE rewritten_srcs)
  add_custom_command(OUTPUT ${rewritten}
    COMMAND ${Python3_EXECUTABLE} ${script} --source-root ${PROJECT_SOURCE_DIR}
            --output-root ${rewritten_root} ${U_CUDA_SRCS} ${U_CUDA_HDRS}
    DEPENDS ${originals} ${script}
    COMMENT "Rewriting the CUDA sources of ${U_NAME} for the CUDA emulator"
    VERBATIM)
  # Host C++ whatever the extension. nvcc's `#pragma unroll` is unknown to the host compiler;
  # it has no meaning for the emulation.
  set_source_files_properties(${rewritten_srcs} PROPERTIES
    LANGUAGE CXX
    COMPILE_OPTIONS "-include;${emulator_dir}/cuda_emulator_prelude.h;-Wno-unknown-pragmas")
  _usine_test_executable(${U_NAME} "${U_SRCS};${rewritten}" "usine_cuda_emulator;GTest::gtest_main")
  # The rewritten headers first, ahead of the originals under the repository root.
  target_include_directories(${U_NAME} BEFORE PRIVATE ${rewritten_root})
  # Parameterised cases are named (/B1_H2_T256_D64): no value appended to the CTest name.
  gtest_discover_tests(${U_NAME} NO_PRETTY_VALUES PROPERTIES LABELS emu TIMEOUT 300)
endfunction()
