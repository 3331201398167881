# Cross-compiles for 64-bit Windows with mingw-w64 and runs what it builds
# (ctest, try_run) under Wine.
#
#   cmake -S . -B build/win \
#         -DCMAKE_TOOLCHAIN_FILE=cmake/mingw-w64-x86_64.cmake \
#         -DCMAKE_PREFIX_PATH="$PWD/build/win-deps/prefix"
#
# On Debian 12 the compiler is the package gcc-mingw-w64-x86-64-posix (the
# posix threads variant: libuv and check use winpthreads through it) and Wine
# the packages wine and wine64. scripts/build-win-deps builds libuv and check
# for Windows into the prefix given as CMAKE_PREFIX_PATH.

set(CMAKE_SYSTEM_NAME Windows)
set(CMAKE_SYSTEM_PROCESSOR x86_64)

set(ASOCK_MINGW_TRIPLE x86_64-w64-mingw32)

# Debian installs each compiler twice, x86_64-w64-mingw32-gcc-posix and
# -gcc-win32, and points the unsuffixed name at one of them through
# update-alternatives; the posix one is named first so that the choice does
# not depend on that setting. Other distributions have only the plain name.
find_program(ASOCK_MINGW_GCC
  NAMES ${ASOCK_MINGW_TRIPLE}-gcc-posix ${ASOCK_MINGW_TRIPLE}-gcc)
if(NOT ASOCK_MINGW_GCC)
  message(FATAL_ERROR "${ASOCK_MINGW_TRIPLE}-gcc not found; on Debian: "
    "apt-get install gcc-mingw-w64-x86-64-posix")
endif()
set(CMAKE_C_COMPILER "${ASOCK_MINGW_GCC}")
find_program(ASOCK_MINGW_GXX
  NAMES ${ASOCK_MINGW_TRIPLE}-g++-posix ${ASOCK_MINGW_TRIPLE}-g++)
if(ASOCK_MINGW_GXX)
  set(CMAKE_CXX_COMPILER "${ASOCK_MINGW_GXX}")
endif()
find_program(ASOCK_MINGW_WINDRES NAMES ${ASOCK_MINGW_TRIPLE}-windres)
if(ASOCK_MINGW_WINDRES)
  set(CMAKE_RC_COMPILER "${ASOCK_MINGW_WINDRES}")
endif()

# Headers, libraries and packages come from the mingw-w64 tree and from the
# prefixes the caller names, never from the host; programs from the host.
# A CMAKE_PREFIX_PATH entry is listed as a root too, because with mode ONLY
# a prefix that is not under a root would be searched as
# /usr/x86_64-w64-mingw32/<prefix> instead.
set(CMAKE_FIND_ROOT_PATH "/usr/${ASOCK_MINGW_TRIPLE}")
foreach(_asock_prefix IN LISTS CMAKE_PREFIX_PATH)
  get_filename_component(_asock_prefix "${_asock_prefix}" ABSOLUTE)
  list(APPEND CMAKE_FIND_ROOT_PATH "${_asock_prefix}")
endforeach()
set(CMAKE_FIND_ROOT_PATH_MODE_PROGRAM NEVER)
set(CMAKE_FIND_ROOT_PATH_MODE_LIBRARY ONLY)
set(CMAKE_FIND_ROOT_PATH_MODE_INCLUDE ONLY)
set(CMAKE_FIND_ROOT_PATH_MODE_PACKAGE ONLY)

# pkg-config must not fall back on the host's .pc files (Debian's libuv.pc
# would hand a Linux library to the Windows link). FindPkgConfig adds each
# CMAKE_PREFIX_PATH entry's lib/pkgconfig through PKG_CONFIG_PATH.
set(ENV{PKG_CONFIG_LIBDIR} "/usr/${ASOCK_MINGW_TRIPLE}/lib/pkgconfig")

# Link libgcc and winpthreads into every program and DLL, so that they run
# under Wine or on a Windows machine without the mingw-w64 runtime DLLs next
# to them.
set(CMAKE_EXE_LINKER_FLAGS_INIT "-static")
set(CMAKE_SHARED_LINKER_FLAGS_INIT "-static")
set(CMAKE_MODULE_LINKER_FLAGS_INIT "-static")

# ctest runs each test executable as `wine NAME.exe ARGS`. Debian's `wine`
# (package wine) starts /usr/lib/wine/wine64 (package wine64) when the
# 32-bit loader is absent. The caller sets WINEPREFIX (a private one: the
# first start in it creates it, which takes a while) and WINEDEBUG=-all.
find_program(ASOCK_WINE NAMES wine wine64 PATHS /usr/lib/wine)
if(ASOCK_WINE)
  set(CMAKE_CROSSCOMPILING_EMULATOR "${ASOCK_WINE}")
endif()
