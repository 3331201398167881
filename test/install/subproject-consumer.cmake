# The subproject-consumer test, run by ctest as `cmake -D... -P`: builds
# test/install/subproject/ four times, asock added with add_subdirectory()
# and with FetchContent, each as a shared and as a static library, and runs
# its program each time (the program checks the header against the library
# it loaded, and the shared/static define the target passed on).
cmake_minimum_required(VERSION 3.21)

foreach(_var ASOCK_SOURCE_DIR ASOCK_WORK_DIR CMAKE_C_COMPILER CMAKE_GENERATOR)
  if("${${_var}}" STREQUAL "")
    message(FATAL_ERROR "subproject-consumer: -D${_var}=... is required")
  endif()
endforeach()
file(REMOVE_RECURSE "${ASOCK_WORK_DIR}")
file(MAKE_DIRECTORY "${ASOCK_WORK_DIR}")
if(CMAKE_HOST_WIN32)
  set(exe_suffix ".exe")
else()
  set(exe_suffix "")
endif()

function(run what)
  execute_process(COMMAND ${ARGN}
    RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE out)
  if(NOT rc STREQUAL "0")
    string(REPLACE ";" " " cmd "${ARGN}")
    message(FATAL_ERROR "subproject-consumer: ${what} failed (${rc})\n"
                        "  command: ${cmd}\n${out}")
  endif()
  message(STATUS "${what}: ok")
endfunction()

foreach(way add_subdirectory fetchcontent)
  foreach(shared ON OFF)
    set(dir "${ASOCK_WORK_DIR}/${way}-shared-${shared}")
    run("${way}, BUILD_SHARED_LIBS=${shared}: configure"
      "${CMAKE_COMMAND}" -S "${CMAKE_CURRENT_LIST_DIR}/subproject" -B "${dir}"
      -G "${CMAKE_GENERATOR}"
      "-DCMAKE_C_COMPILER=${CMAKE_C_COMPILER}"
      "-DCMAKE_BUILD_TYPE=Release"
      "-DBUILD_SHARED_LIBS=${shared}"
      "-DASOCK_WAY=${way}"
      "-DASOCK_SOURCE_DIR=${ASOCK_SOURCE_DIR}"
      "-DFETCHCONTENT_SOURCE_DIR_ASOCK=${ASOCK_SOURCE_DIR}"
      "-DFETCHCONTENT_FULLY_DISCONNECTED=ON")
    run("${way}, BUILD_SHARED_LIBS=${shared}: build"
      "${CMAKE_COMMAND}" --build "${dir}" --config Release -j 2)
    run("${way}, BUILD_SHARED_LIBS=${shared}: run"
      "${dir}/bin/asock-consumer${exe_suffix}")
  endforeach()
endforeach()
