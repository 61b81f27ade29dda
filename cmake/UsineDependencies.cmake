# The libraries every build needs. The CUDA toolkit is found in the top-level CMakeLists.txt.
include_guard(GLOBAL)

find_package(Threads REQUIRED)
find_package(absl CONFIG REQUIRED)

set(BLA_VENDOR OpenBLAS)
find_package(BLAS REQUIRED)
find_path(USINE_CBLAS_INCLUDE_DIR cblas.h
  HINTS /usr/include/x86_64-linux-gnu/openblas-pthread /usr/include/openblas
  REQUIRED)

find_package(MPI REQUIRED COMPONENTS C)
# usine uses MPI's C API only; Open MPI's deprecated C++ bindings would need libmpi_cxx.
set_property(TARGET MPI::MPI_C APPEND PROPERTY
  INTERFACE_COMPILE_DEFINITIONS OMPI_SKIP_MPICXX=1 MPICH_SKIP_MPICXX=1)
# As root Open MPI refuses to start without these; more ranks than cores need oversubscription.
set(USINE_MPIEXEC_FLAGS --oversubscribe CACHE STRING "Extra mpirun flags for the mpi tests")
set(USINE_MPI_TEST_ENV
  "OMPI_ALLOW_RUN_AS_ROOT=1;OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1;OMPI_MCA_rmaps_base_oversubscribe=1")

# The tokenizer reads encoder.json with nlohmann-json and takes Unicode classes from ICU.
find_package(nlohmann_json 3 REQUIRED)
find_package(ICU REQUIRED COMPONENTS uc)

# The run configuration is TOML, read with toml++ 3 (Debian: libtomlplusplus-dev). Only its
# headers are used (runtime/train/internal/run_config_reader.cc), so it is no dependency of
# the installed package.
find_package(tomlplusplus 3 CONFIG REQUIRED)

set(HDF5_PREFER_PARALLEL TRUE)
find_package(HDF5 REQUIRED COMPONENTS C)
if(NOT HDF5_IS_PARALLEL)
  message(FATAL_ERROR "usine needs a parallel (MPI) HDF5; on Debian: libhdf5-openmpi-dev")
endif()
