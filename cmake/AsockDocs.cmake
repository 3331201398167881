# The API reference: `cmake --build build --target docs` runs doxygen on
# include/asock.h and the guides (docs/Doxyfile.in) into build/docs/html.
# Not part of `all`. Any doxygen warning fails the target, after every
# warning has been printed; scripts/check-docs shows that it does.
#
# Only in asock's own build: a project that adds asock with
# add_subdirectory() may have a `docs` target of its own.
if(NOT CMAKE_SOURCE_DIR STREQUAL PROJECT_SOURCE_DIR)
  return()
endif()

# 1.9 for WARN_AS_ERROR = FAIL_ON_WARNINGS; CI runs Debian 12's 1.9.4. The
# Markdown pages pass through a Python filter (docs/doxygen-md-filter.py).
find_package(Doxygen 1.9 QUIET)
find_package(Python3 QUIET COMPONENTS Interpreter)

if(NOT DOXYGEN_FOUND OR NOT Python3_Interpreter_FOUND)
  string(CONCAT _asock_docs_missing
    "The docs target needs doxygen 1.9 or later and Python 3 "
    "(Debian and Ubuntu: apt-get install doxygen python3; macOS: brew "
    "install doxygen python); configure again once they are there.")
  message(STATUS "API reference: no doxygen 1.9 or no Python 3, "
                 "so the docs target only says how to install them")
  add_custom_target(docs
    COMMAND "${CMAKE_COMMAND}" -E echo "${_asock_docs_missing}"
    COMMAND "${CMAKE_COMMAND}" -E false
    VERBATIM)
  return()
endif()

set(ASOCK_DOCS_DIR "${PROJECT_BINARY_DIR}/docs")
configure_file("${PROJECT_SOURCE_DIR}/docs/Doxyfile.in"
               "${ASOCK_DOCS_DIR}/Doxyfile" @ONLY)
add_custom_target(docs
  COMMAND Doxygen::doxygen "${ASOCK_DOCS_DIR}/Doxyfile"
  WORKING_DIRECTORY "${ASOCK_DOCS_DIR}"
  COMMENT "API reference: ${ASOCK_DOCS_DIR}/html/index.html"
  VERBATIM)
