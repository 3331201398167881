# Installation: headers, the library, a CMake package (asockConfig.cmake,
# asockConfigVersion.cmake, asockTargets.cmake) and a pkg-config file.

set(ASOCK_CMAKE_DIR "${CMAKE_INSTALL_LIBDIR}/cmake/asock")

install(TARGETS asock EXPORT asockTargets
  ARCHIVE DESTINATION ${CMAKE_INSTALL_LIBDIR}
  LIBRARY DESTINATION ${CMAKE_INSTALL_LIBDIR}
  RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR}
  INCLUDES DESTINATION ${CMAKE_INSTALL_INCLUDEDIR})
install(FILES include/asock.h DESTINATION ${CMAKE_INSTALL_INCLUDEDIR})
install(FILES "${PROJECT_BINARY_DIR}/include/asock/version.h"
  DESTINATION ${CMAKE_INSTALL_INCLUDEDIR}/asock)

install(EXPORT asockTargets NAMESPACE asock:: DESTINATION ${ASOCK_CMAKE_DIR})

configure_package_config_file(cmake/asockConfig.cmake.in
  "${PROJECT_BINARY_DIR}/asockConfig.cmake"
  INSTALL_DESTINATION ${ASOCK_CMAKE_DIR})
write_basic_package_version_file("${PROJECT_BINARY_DIR}/asockConfigVersion.cmake"
  VERSION ${PROJECT_VERSION} COMPATIBILITY SameMajorVersion)
install(FILES
  "${PROJECT_BINARY_DIR}/asockConfig.cmake"
  "${PROJECT_BINARY_DIR}/asockConfigVersion.cmake"
  DESTINATION ${ASOCK_CMAKE_DIR})

# asock.pc is written when it is installed, not when the build is configured,
# so that its prefix is the one the files really go to: `cmake --install
# --prefix DIR` changes CMAKE_INSTALL_PREFIX only inside the install script,
# and a file configured earlier would still point at the configured prefix.
if(BUILD_SHARED_LIBS)
  set(ASOCK_PC_CFLAGS "-DUSING_ASOCK_SHARED")
else()
  set(ASOCK_PC_CFLAGS "")
endif()
foreach(_asock_dir LIBDIR INCLUDEDIR)
  if(IS_ABSOLUTE "${CMAKE_INSTALL_${_asock_dir}}")
    set(ASOCK_PC_${_asock_dir} "${CMAKE_INSTALL_${_asock_dir}}")
  else()
    set(ASOCK_PC_${_asock_dir} "\${prefix}/${CMAKE_INSTALL_${_asock_dir}}")
  endif()
endforeach()
install(CODE "
  set(ASOCK_PC_PREFIX \"\${CMAKE_INSTALL_PREFIX}\")
  set(ASOCK_PC_LIBDIR [[${ASOCK_PC_LIBDIR}]])
  set(ASOCK_PC_INCLUDEDIR [[${ASOCK_PC_INCLUDEDIR}]])
  set(ASOCK_PC_CFLAGS [[${ASOCK_PC_CFLAGS}]])
  set(PROJECT_VERSION [[${PROJECT_VERSION}]])
  configure_file([[${PROJECT_SOURCE_DIR}/cmake/asock.pc.in]]
                 [[${PROJECT_BINARY_DIR}/pkgconfig/asock.pc]] @ONLY)")
install(FILES "${PROJECT_BINARY_DIR}/pkgconfig/asock.pc"
  DESTINATION ${CMAKE_INSTALL_LIBDIR}/pkgconfig)
