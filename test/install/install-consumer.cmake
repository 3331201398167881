# The install-consumer test, run by ctest as `cmake -D... -P` (the -D values
# come from test/install/CMakeLists.txt):
#
#   1. `cmake --install` the build tree into a fresh prefix and check what
#      landed there;
#   2. configure, build and run find-package/ against that prefix through
#      find_package(asock);
#   3. build the same main.c with the compiler alone, using the flags
#      `pkg-config asock` gives (`asock-static` for a static asock), and run
#      it.
#
# With -DASOCK_INSTALLED_PREFIX=DIR, step 1 installs nothing and checks the
# asock already installed in DIR instead (scripts/test-all's package stage
# passes /usr, where the Debian packages put it), which may hold a shared
# and a static asock side by side; BUILD_SHARED_LIBS then says which of the
# two the consumers use, and ASOCK_BUILD_DIR is not needed.
#
# Everything happens under ASOCK_WORK_DIR, which is emptied first, so that a
# failed run can be inspected and the next one starts clean.
cmake_minimum_required(VERSION 3.16)

set(_required ASOCK_SOURCE_DIR ASOCK_WORK_DIR ASOCK_CONSUMER_DIR ASOCK_VERSION
              CMAKE_C_COMPILER CMAKE_GENERATOR CMAKE_INSTALL_LIBDIR)
if("${ASOCK_INSTALLED_PREFIX}" STREQUAL "")
  list(APPEND _required ASOCK_BUILD_DIR)
endif()
foreach(_var IN LISTS _required)
  if("${${_var}}" STREQUAL "")
    message(FATAL_ERROR "install-consumer: -D${_var}=... is required")
  endif()
endforeach()

if("${ASOCK_INSTALLED_PREFIX}" STREQUAL "")
  set(prefix "${ASOCK_WORK_DIR}/prefix")
else()
  set(prefix "${ASOCK_INSTALLED_PREFIX}")
endif()
if(IS_ABSOLUTE "${CMAKE_INSTALL_LIBDIR}")
  message(FATAL_ERROR "install-consumer: an absolute CMAKE_INSTALL_LIBDIR "
                      "(${CMAKE_INSTALL_LIBDIR}) cannot be redirected to a "
                      "test prefix")
endif()
set(libdir "${prefix}/${CMAKE_INSTALL_LIBDIR}")
file(REMOVE_RECURSE "${ASOCK_WORK_DIR}")
file(MAKE_DIRECTORY "${ASOCK_WORK_DIR}")

if(CMAKE_HOST_WIN32)
  set(exe_suffix ".exe")
else()
  set(exe_suffix "")
endif()
set(config_args "")
if(NOT "${ASOCK_CONFIG}" STREQUAL "")
  set(config_args --config "${ASOCK_CONFIG}")
endif()
separate_arguments(consumer_flags NATIVE_COMMAND "${ASOCK_CONSUMER_FLAGS}")

# Runs a command; on failure stops the test with the command and its output.
function(run what)
  execute_process(COMMAND ${ARGN}
    RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE out)
  if(NOT rc STREQUAL "0")
    string(REPLACE ";" " " cmd "${ARGN}")
    message(FATAL_ERROR "install-consumer: ${what} failed (${rc})\n"
                        "  command: ${cmd}\n${out}")
  endif()
  message(STATUS "${what}: ok")
  string(STRIP "${out}" out)
  set(run_output "${out}" PARENT_SCOPE)
endfunction()

# Like run(), but returns the command's standard output, stripped.
function(query var what)
  execute_process(COMMAND ${ARGN}
    RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE err
    OUTPUT_STRIP_TRAILING_WHITESPACE)
  if(NOT rc STREQUAL "0")
    string(REPLACE ";" " " cmd "${ARGN}")
    message(FATAL_ERROR "install-consumer: ${what} failed (${rc})\n"
                        "  command: ${cmd}\n${out}${err}")
  endif()
  set(${var} "${out}" PARENT_SCOPE)
endfunction()

function(expect_equal what got want)
  if(NOT "${got}" STREQUAL "${want}")
    message(FATAL_ERROR "install-consumer: ${what} is '${got}', "
                        "expected '${want}'")
  endif()
endfunction()

# ---- 1. install -----------------------------------------------------------

if("${ASOCK_INSTALLED_PREFIX}" STREQUAL "")
  run("cmake --install into ${prefix}"
      "${CMAKE_COMMAND}" --install "${ASOCK_BUILD_DIR}" --prefix "${prefix}"
      ${config_args})
else()
  message(STATUS "checking the asock installed in ${prefix}")
endif()

if(BUILD_SHARED_LIBS)
  set(_targets asockSharedTargets.cmake)
  set(_pc_files asock.pc)
else()
  set(_targets asockStaticTargets.cmake)
  set(_pc_files asock.pc asock-static.pc)
endif()
set(_installed
    include/asock.h
    include/asock/version.h
    ${CMAKE_INSTALL_LIBDIR}/cmake/asock/asockConfig.cmake
    ${CMAKE_INSTALL_LIBDIR}/cmake/asock/asockConfigVersion.cmake
    ${CMAKE_INSTALL_LIBDIR}/cmake/asock/${_targets})
foreach(_pc IN LISTS _pc_files)
  list(APPEND _installed ${CMAKE_INSTALL_LIBDIR}/pkgconfig/${_pc})
endforeach()
foreach(_file IN LISTS _installed)
  if(NOT EXISTS "${prefix}/${_file}")
    message(FATAL_ERROR "install-consumer: ${_file} was not installed")
  endif()
endforeach()

# Only public headers are installed: each one must come from include/ (or be
# generated from an include/*.in), never from src/. A prefix installed by
# others holds other headers too: there, asock's own are those checked.
if("${ASOCK_INSTALLED_PREFIX}" STREQUAL "")
  file(GLOB_RECURSE _headers RELATIVE "${prefix}/include" "${prefix}/include/*")
else()
  file(GLOB_RECURSE _headers RELATIVE "${prefix}/include"
       "${prefix}/include/asock.h" "${prefix}/include/asock/*")
endif()
foreach(_h IN LISTS _headers)
  if(NOT EXISTS "${ASOCK_SOURCE_DIR}/include/${_h}" AND
     NOT EXISTS "${ASOCK_SOURCE_DIR}/include/${_h}.in")
    message(FATAL_ERROR "install-consumer: include/${_h} was installed but "
                        "is not a public header")
  endif()
endforeach()

# The library of the kind that was built, and only that kind; a prefix
# installed by others may hold both kinds.
if(NOT CMAKE_HOST_WIN32)
  file(GLOB _static "${libdir}/libasock.a")
  file(GLOB _shared "${libdir}/libasock.so*" "${libdir}/libasock*.dylib")
  if(NOT "${ASOCK_INSTALLED_PREFIX}" STREQUAL "")
    if(BUILD_SHARED_LIBS AND NOT _shared)
      message(FATAL_ERROR "install-consumer: no shared libasock in ${libdir}")
    elseif(NOT BUILD_SHARED_LIBS AND NOT _static)
      message(FATAL_ERROR "install-consumer: no libasock.a in ${libdir}")
    endif()
  elseif(BUILD_SHARED_LIBS)
    if(NOT _shared OR _static)
      message(FATAL_ERROR "install-consumer: expected only a shared "
                          "libasock in ${libdir}; found: ${_shared} ${_static}")
    endif()
  elseif(NOT _static OR _shared)
    message(FATAL_ERROR "install-consumer: expected only libasock.a in "
                        "${libdir}; found: ${_shared} ${_static}")
  endif()
endif()

# A shared library exports asock's public functions and nothing of its
# internals (asock__*): everything else is hidden by default, and ASOCK_EXTERN
# belongs on public declarations only.
if(BUILD_SHARED_LIBS AND CMAKE_HOST_UNIX AND NOT CMAKE_HOST_APPLE)
  find_program(NM_EXECUTABLE nm)
  if(NM_EXECUTABLE)
    file(GLOB _so "${libdir}/libasock.so")
    query(_symbols "nm -D" "${NM_EXECUTABLE}" -D --defined-only "${_so}")
    string(REPLACE "\n" ";" _symbols "${_symbols}")
    set(_exported 0)
    foreach(_line IN LISTS _symbols)
      # "<address> <type> <name>": the types of functions and data.
      if(NOT _line MATCHES "^[0-9a-fA-F]+ [TDBRVWi] ([^ ]+)$")
        continue()
      endif()
      set(_sym "${CMAKE_MATCH_1}")
      if(_sym MATCHES "^_")
        continue() # the linker's own (_init, _fini, _edata, ...)
      endif()
      if(_sym MATCHES "^asock__" OR NOT _sym MATCHES "^asock_")
        message(FATAL_ERROR "install-consumer: libasock.so exports '${_sym}', "
                            "which is not public API")
      endif()
      math(EXPR _exported "${_exported} + 1")
    endforeach()
    if(_exported EQUAL 0)
      message(FATAL_ERROR "install-consumer: libasock.so exports no asock_ "
                          "function")
    endif()
    message(STATUS "libasock.so exports ${_exported} asock_ symbols, no "
                   "internals: ok")
  endif()
endif()

# A shared asock must be found at run time; the find_package consumer gets an
# RPATH from CMake, the pkg-config one gets it from here.
if(BUILD_SHARED_LIBS)
  if(CMAKE_HOST_WIN32)
    set(ENV{PATH} "${prefix}/bin;$ENV{PATH}")
  elseif(CMAKE_HOST_APPLE)
    set(ENV{DYLD_LIBRARY_PATH} "${libdir}:$ENV{DYLD_LIBRARY_PATH}")
  else()
    set(ENV{LD_LIBRARY_PATH} "${libdir}:$ENV{LD_LIBRARY_PATH}")
  endif()
endif()

# ---- 2. find_package(asock) -----------------------------------------------

set(fp_build "${ASOCK_WORK_DIR}/find-package")
set(fp_args
  -S "${ASOCK_CONSUMER_DIR}" -B "${fp_build}"
  -G "${CMAKE_GENERATOR}"
  "-DCMAKE_C_COMPILER=${CMAKE_C_COMPILER}"
  "-DCMAKE_PREFIX_PATH=${prefix}"
  # Neither the package registries nor an earlier configure may supply asock.
  -DCMAKE_FIND_USE_PACKAGE_REGISTRY=OFF
  -DCMAKE_FIND_USE_SYSTEM_PACKAGE_REGISTRY=OFF
  "-DASOCK_EXPECTED_PREFIX=${prefix}"
  "-DASOCK_EXPECT_SHARED=${BUILD_SHARED_LIBS}")
# Where both kinds are installed, this picks one; alone, the kind installed
# must be the kind asked for.
if(BUILD_SHARED_LIBS)
  list(APPEND fp_args -DASOCK_USE_STATIC_LIBS=OFF)
else()
  list(APPEND fp_args -DASOCK_USE_STATIC_LIBS=ON)
endif()
if(NOT "${CMAKE_GENERATOR_PLATFORM}" STREQUAL "")
  list(APPEND fp_args -A "${CMAKE_GENERATOR_PLATFORM}")
endif()
if(NOT "${CMAKE_GENERATOR_TOOLSET}" STREQUAL "")
  list(APPEND fp_args -T "${CMAKE_GENERATOR_TOOLSET}")
endif()
if(NOT "${CMAKE_MAKE_PROGRAM}" STREQUAL "")
  list(APPEND fp_args "-DCMAKE_MAKE_PROGRAM=${CMAKE_MAKE_PROGRAM}")
endif()
if(NOT "${ASOCK_CONFIG}" STREQUAL "")
  list(APPEND fp_args "-DCMAKE_BUILD_TYPE=${ASOCK_CONFIG}")
endif()
if(NOT "${ASOCK_CONSUMER_FLAGS}" STREQUAL "")
  list(APPEND fp_args "-DCMAKE_C_FLAGS=${ASOCK_CONSUMER_FLAGS}")
endif()
if(NOT "${ASOCK_CONSUMER_LINK_FLAGS}" STREQUAL "")
  list(APPEND fp_args "-DCMAKE_EXE_LINKER_FLAGS=${ASOCK_CONSUMER_LINK_FLAGS}")
endif()

run("find_package consumer: configure" "${CMAKE_COMMAND}" ${fp_args})
run("find_package consumer: build"
    "${CMAKE_COMMAND}" --build "${fp_build}" ${config_args})
run("find_package consumer: run" "${fp_build}/bin/asock-consumer${exe_suffix}")
message(STATUS "  ${run_output}")

# ---- 3. pkg-config --------------------------------------------------------

if(CMAKE_HOST_WIN32)
  message(STATUS "pkg-config consumer: skipped on Windows")
  return()
endif()
if("${PKG_CONFIG_EXECUTABLE}" STREQUAL "" OR NOT EXISTS "${PKG_CONFIG_EXECUTABLE}")
  message(FATAL_ERROR "install-consumer: pkg-config was not found "
                      "(PKG_CONFIG_EXECUTABLE='${PKG_CONFIG_EXECUTABLE}')")
endif()

if("$ENV{PKG_CONFIG_PATH}" STREQUAL "")
  set(ENV{PKG_CONFIG_PATH} "${libdir}/pkgconfig")
else()
  set(ENV{PKG_CONFIG_PATH} "${libdir}/pkgconfig:$ENV{PKG_CONFIG_PATH}")
endif()
set(pc "${PKG_CONFIG_EXECUTABLE}")

# asock.pc and asock-static.pc are written at install time, so they name
# the prefix given to `cmake --install --prefix`, not the one the build was
# configured with.
foreach(_pc IN LISTS _pc_files)
  string(REGEX REPLACE "\\.pc$" "" _module "${_pc}")
  query(_v "pkg-config --modversion ${_module}"
        "${pc}" --modversion ${_module})
  expect_equal("pkg-config --modversion ${_module}" "${_v}" "${ASOCK_VERSION}")
  query(_v "pkg-config --variable=prefix ${_module}"
        "${pc}" --variable=prefix ${_module})
  expect_equal("the prefix in ${_pc}" "${_v}" "${prefix}")
  query(_v "pkg-config --variable=libdir ${_module}"
        "${pc}" --variable=libdir ${_module})
  expect_equal("the libdir in ${_pc}" "${_v}" "${libdir}")
endforeach()

# A shared libasock links libuv itself, so the program needs -lasock alone.
# A static libasock.a does not carry its dependencies: asock-static.pc
# requires libuv outright, and asock.pc lists it under Requires.private,
# in the link line only with --static. asock.pc's -lasock is the archive
# only where no shared libasock sits beside it.
set(pc_ways "")
if(BUILD_SHARED_LIBS)
  list(APPEND pc_ways "--cflags --libs asock")
else()
  list(APPEND pc_ways "--cflags --libs asock-static")
  if(NOT _shared)
    list(APPEND pc_ways "--static --cflags --libs asock")
  endif()
endif()

set(cc_args -Wall -Wextra -Werror
  "-DASOCK_EXPECTED_VERSION=\"${ASOCK_VERSION}\"")
if(BUILD_SHARED_LIBS)
  list(APPEND cc_args -DASOCK_EXPECT_SHARED)
endif()
set(_n 0)
foreach(_way IN LISTS pc_ways)
  separate_arguments(pc_args UNIX_COMMAND "${_way}")
  query(_flags "pkg-config ${_way}" "${pc}" ${pc_args})
  message(STATUS "pkg-config ${_way}: ${_flags}")
  separate_arguments(pc_flags UNIX_COMMAND "${_flags}")

  math(EXPR _n "${_n} + 1")
  set(pc_exe "${ASOCK_WORK_DIR}/pkg-config/asock-consumer-${_n}")
  file(MAKE_DIRECTORY "${ASOCK_WORK_DIR}/pkg-config")
  run("pkg-config consumer (${_way}): build"
      "${CMAKE_C_COMPILER}" ${consumer_flags} ${cc_args}
      "${ASOCK_CONSUMER_DIR}/main.c" -o "${pc_exe}" ${pc_flags})
  run("pkg-config consumer (${_way}): run" "${pc_exe}")
  message(STATUS "  ${run_output}")
endforeach()
