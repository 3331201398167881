# libuv and check: their CMake packages where installed, pkg-config where not
# (Debian ships no CMake package for either). The result is an imported
# target name in ASOCK_UV_TARGET and, with tests, ASOCK_CHECK_TARGET. On
# Linux, liburing through pkg-config for the io_uring backend, as
# ASOCK_URING says: AUTO builds it when liburing is found, ON requires it,
# OFF leaves it out; ASOCK_HAVE_URING says whether it is built.

# A shared asock links libuv's shared library where there is one: with a
# static libuv inside it, a program that calls libuv itself (on asock's loop,
# say) would have a second libuv of its own, and the two do not mix. libuv
# up to 1.44 exports its targets without the libuv:: namespace.
find_package(libuv CONFIG QUIET)
if(TARGET libuv::uv AND BUILD_SHARED_LIBS)
  set(ASOCK_UV_TARGET libuv::uv)
elseif(TARGET uv AND BUILD_SHARED_LIBS)
  set(ASOCK_UV_TARGET uv)
elseif(TARGET libuv::uv_a)
  set(ASOCK_UV_TARGET libuv::uv_a)
elseif(TARGET libuv::uv)
  set(ASOCK_UV_TARGET libuv::uv)
elseif(TARGET uv_a)
  set(ASOCK_UV_TARGET uv_a)
elseif(TARGET uv)
  set(ASOCK_UV_TARGET uv)
else()
  find_package(PkgConfig REQUIRED)
  pkg_check_modules(LIBUV REQUIRED IMPORTED_TARGET libuv>=1.44)
  set(ASOCK_UV_TARGET PkgConfig::LIBUV)
  set(ASOCK_UV_FROM_PKGCONFIG ON)
endif()

if(ASOCK_BUILD_TESTS)
  find_package(check CONFIG QUIET)
  if(TARGET Check::check)
    set(ASOCK_CHECK_TARGET Check::check)
  elseif(TARGET Check::checkShared)
    set(ASOCK_CHECK_TARGET Check::checkShared)
  else()
    find_package(PkgConfig REQUIRED)
    pkg_check_modules(CHECK REQUIRED IMPORTED_TARGET check)
    set(ASOCK_CHECK_TARGET PkgConfig::CHECK)
  endif()
endif()

set(ASOCK_HAVE_URING OFF)
if(CMAKE_SYSTEM_NAME STREQUAL "Linux" AND NOT ASOCK_URING STREQUAL "OFF")
  find_package(PkgConfig QUIET)
  if(PKG_CONFIG_FOUND)
    if(ASOCK_URING STREQUAL "ON")
      pkg_check_modules(LIBURING REQUIRED IMPORTED_TARGET liburing>=2.2)
    else()
      pkg_check_modules(LIBURING QUIET IMPORTED_TARGET liburing>=2.2)
    endif()
  elseif(ASOCK_URING STREQUAL "ON")
    message(FATAL_ERROR "ASOCK_URING=ON needs pkg-config to find liburing")
  endif()
  if(TARGET PkgConfig::LIBURING)
    set(ASOCK_HAVE_URING ON)
  endif()
elseif(ASOCK_URING STREQUAL "ON")
  message(FATAL_ERROR "ASOCK_URING=ON: the io_uring backend is Linux's")
endif()
