# Installation: headers, the library, a CMake package (asockConfig.cmake,
# asockConfigVersion.cmake and the targets) and pkg-config files.
#
# A shared and a static build may be installed into one prefix (Debian's
# libasock-dev holds both). Their targets files have names of their own,
# asockSharedTargets.cmake and asockStaticTargets.cmake, and
# asockConfig.cmake loads one of them (ASOCK_USE_STATIC_LIBS chooses). A
# static build also writes asock-static.pc, which names the archive by its
# path. The headers and asockConfig.cmake are the same from either build,
# but asock.pc is not (a shared asock's passes -DUSING_ASOCK_SHARED): a
# prefix with both should have the shared build's, so the static build adds
# only its own files there (debian/rules shows how).

set(ASOCK_CMAKE_DIR "${CMAKE_INSTALL_LIBDIR}/cmake/asock")

install(TARGETS asock EXPORT asockTargets
  ARCHIVE DESTINATION ${CMAKE_INSTALL_LIBDIR}
  LIBRARY DESTINATION ${CMAKE_INSTALL_LIBDIR}
  RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR}
  INCLUDES DESTINATION ${CMAKE_INSTALL_INCLUDEDIR})
install(FILES include/asock.h DESTINATION ${CMAKE_INSTALL_INCLUDEDIR})
install(FILES "${PROJECT_BINARY_DIR}/include/asock/version.h"
  DESTINATION ${CMAKE_INSTALL_INCLUDEDIR}/asock)

if(BUILD_SHARED_LIBS)
  set(_asock_targets_file asockSharedTargets.cmake)
else()
  set(_asock_targets_file asockStaticTargets.cmake)
endif()
install(EXPORT asockTargets NAMESPACE asock:: DESTINATION ${ASOCK_CMAKE_DIR}
  FILE ${_asock_targets_file})

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
set(_asock_pc_files asock.pc)
if(NOT BUILD_SHARED_LIBS)
  list(APPEND _asock_pc_files asock-static.pc)
endif()
set(ASOCK_PC_ARCHIVE
  "${CMAKE_STATIC_LIBRARY_PREFIX}asock${CMAKE_STATIC_LIBRARY_SUFFIX}")
# The io_uring backend links liburing.
if(ASOCK_HAVE_URING)
  set(ASOCK_PC_REQUIRES ", liburing >= 2.2")
else()
  set(ASOCK_PC_REQUIRES "")
endif()
foreach(_asock_pc IN LISTS _asock_pc_files)
  install(CODE "
    set(ASOCK_PC_PREFIX \"\${CMAKE_INSTALL_PREFIX}\")
    set(ASOCK_PC_LIBDIR [[${ASOCK_PC_LIBDIR}]])
    set(ASOCK_PC_INCLUDEDIR [[${ASOCK_PC_INCLUDEDIR}]])
    set(ASOCK_PC_CFLAGS [[${ASOCK_PC_CFLAGS}]])
    set(ASOCK_PC_ARCHIVE [[${ASOCK_PC_ARCHIVE}]])
    set(ASOCK_PC_REQUIRES [[${ASOCK_PC_REQUIRES}]])
    set(PROJECT_VERSION [[${PROJECT_VERSION}]])
    configure_file([[${PROJECT_SOURCE_DIR}/cmake/${_asock_pc}.in]]
                   [[${PROJECT_BINARY_DIR}/pkgconfig/${_asock_pc}]] @ONLY)")
  install(FILES "${PROJECT_BINARY_DIR}/pkgconfig/${_asock_pc}"
    DESTINATION ${CMAKE_INSTALL_LIBDIR}/pkgconfig)
endforeach()
