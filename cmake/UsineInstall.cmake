# install(EXPORT ...) so that `find_package(usine CONFIG)` works from an install prefix:
#   cmake --install build --prefix /opt/usine
#   cmake -DCMAKE_PREFIX_PATH=/opt/usine ...   then   target_link_libraries(app usine::kernels)
include_guard(GLOBAL)
include(CMakePackageConfigHelpers)

set(USINE_INSTALL_CMAKEDIR ${CMAKE_INSTALL_LIBDIR}/cmake/usine)

install(EXPORT usineTargets NAMESPACE usine:: DESTINATION ${USINE_INSTALL_CMAKEDIR})
configure_package_config_file(cmake/usineConfig.cmake.in
  ${PROJECT_BINARY_DIR}/usineConfig.cmake
  INSTALL_DESTINATION ${USINE_INSTALL_CMAKEDIR})
write_basic_package_version_file(${PROJECT_BINARY_DIR}/usineConfigVersion.cmake
  COMPATIBILITY SameMinorVersion)
install(FILES
  ${PROJECT_BINARY_DIR}/usineConfig.cmake
  ${PROJECT_BINARY_DIR}/usineConfigVersion.cmake
  ${PROJECT_SOURCE_DIR}/cmake/FindNCCL.cmake
  DESTINATION ${USINE_INSTALL_CMAKEDIR})
