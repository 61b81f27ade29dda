# CTest script: install usine from BUILD_DIR into a scratch prefix, then configure, build and
# run the examples against it with find_package(usine CONFIG), and run the installed `usine`.
# Proves that the exported package is complete. Arguments: -DSOURCE_DIR= -DBUILD_DIR= -DWORK_DIR= -DMPIEXEC=
foreach(var SOURCE_DIR BUILD_DIR WORK_DIR MPIEXEC)
  if(NOT ${var})
    message(FATAL_ERROR "CheckInstalledPackage.cmake needs -D${var}=...")
  endif()
endforeach()

function(run)
  execute_process(COMMAND ${ARGN} RESULT_VARIABLE rc)
  if(NOT rc EQUAL 0)
    string(REPLACE ";" " " cmd "${ARGN}")
    message(FATAL_ERROR "failed (${rc}): ${cmd}")
  endif()
endfunction()

file(REMOVE_RECURSE ${WORK_DIR})
run(${CMAKE_COMMAND} --install ${BUILD_DIR} --prefix ${WORK_DIR}/prefix)
run(${WORK_DIR}/prefix/bin/usine prep --help)
run(${CMAKE_COMMAND} -S ${SOURCE_DIR}/examples -B ${WORK_DIR}/build -G Ninja
    -DCMAKE_PREFIX_PATH=${WORK_DIR}/prefix -DCMAKE_CXX_COMPILER_LAUNCHER=ccache)
run(${CMAKE_COMMAND} --build ${WORK_DIR}/build)
run(${WORK_DIR}/build/tensor_ops/tensor_ops cpu)
run(${MPIEXEC} -np 2 --oversubscribe ${WORK_DIR}/build/allreduce/allreduce)
run(${MPIEXEC} -np 2 --oversubscribe ${WORK_DIR}/build/custom_model/custom_model ${WORK_DIR}/custom_model)
# Tensor-parallel MLP at TP 2, then TP 2 x DP 2; it fails unless its losses match an unsplit
# copy of the model trained alongside.
run(${MPIEXEC} -np 2 --oversubscribe ${WORK_DIR}/build/tp_mlp/tp_mlp --tp 2)
run(${MPIEXEC} -np 4 --oversubscribe ${WORK_DIR}/build/tp_mlp/tp_mlp --tp 2)
