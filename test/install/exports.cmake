# exports: the shared library exports exactly the functions include/asock.h
# declares with ASOCK_EXTERN, no more (no internal asock__ symbol, no
# libuv or libc symbol re-exported) and no fewer.
#
#   cmake -DASOCK_HEADER=include/asock.h -DASOCK_LIBRARY=libasock.so
#         -DASOCK_NM=nm -DASOCK_OBJDUMP=objdump -P exports.cmake
#
# ELF libraries are read with nm (defined dynamic symbols); a Windows DLL
# with objdump -p (its export table).
cmake_minimum_required(VERSION 3.16)

file(READ "${ASOCK_HEADER}" header)
# Declarations span lines: "ASOCK_EXTERN <type> [*]name(".
string(REGEX MATCHALL "ASOCK_EXTERN[^;(]*[ \t\r\n*](asock_[a-z0-9_]+)[ \t\r\n]*\\("
  decls "${header}")
set(declared "")
foreach(d IN LISTS decls)
  string(REGEX MATCH "(asock_[a-z0-9_]+)[ \t\r\n]*\\($" _ "${d}")
  list(APPEND declared "${CMAKE_MATCH_1}")
endforeach()
list(REMOVE_DUPLICATES declared)
list(SORT declared)
list(LENGTH declared ndeclared)
if(ndeclared LESS 50)
  message(FATAL_ERROR "only ${ndeclared} ASOCK_EXTERN declarations found in "
    "${ASOCK_HEADER}: the pattern no longer matches the header")
endif()

set(exported "")
if(ASOCK_LIBRARY MATCHES "\\.dll$")
  execute_process(COMMAND "${ASOCK_OBJDUMP}" -p "${ASOCK_LIBRARY}"
    OUTPUT_VARIABLE out RESULT_VARIABLE rc)
  if(NOT rc EQUAL 0)
    message(FATAL_ERROR "${ASOCK_OBJDUMP} -p ${ASOCK_LIBRARY} failed")
  endif()
  # The name pointer table follows its heading, one "\t[   3] asock_cancel"
  # row per export, up to a blank line.
  string(FIND "${out}" "[Ordinal/Name Pointer] Table" at)
  if(at LESS 0)
    message(FATAL_ERROR "no export table in ${ASOCK_LIBRARY}")
  endif()
  string(SUBSTRING "${out}" ${at} -1 out)
  # Brackets would group list elements: the rows' "[   3]" become "<   3>".
  string(REPLACE "[" "<" out "${out}")
  string(REPLACE "]" ">" out "${out}")
  string(REPLACE "\n" ";" lines "${out}")
  list(REMOVE_AT lines 0)
  foreach(line IN LISTS lines)
    if(NOT line MATCHES "^[ \t]*< *[0-9]+> ([A-Za-z_][A-Za-z0-9_@]*)")
      break()
    endif()
    list(APPEND exported "${CMAKE_MATCH_1}")
  endforeach()
else()
  execute_process(COMMAND "${ASOCK_NM}" -D --defined-only "${ASOCK_LIBRARY}"
    OUTPUT_VARIABLE out RESULT_VARIABLE rc)
  if(NOT rc EQUAL 0)
    message(FATAL_ERROR "${ASOCK_NM} -D ${ASOCK_LIBRARY} failed")
  endif()
  string(REPLACE "\n" ";" lines "${out}")
  foreach(line IN LISTS lines)
    # "0000000000012230 T asock_send"; data (B, D, R) counts too.
    if(line MATCHES "^[0-9a-fA-F]+ [A-Za-z] ([^ ]+)$")
      list(APPEND exported "${CMAKE_MATCH_1}")
    endif()
  endforeach()
endif()
list(REMOVE_DUPLICATES exported)
list(SORT exported)

set(extra ${exported})
list(REMOVE_ITEM extra ${declared})
set(missing ${declared})
list(REMOVE_ITEM missing ${exported})
list(LENGTH exported nexported)
if(extra OR missing)
  string(REPLACE ";" "\n  " extra_text "${extra}")
  string(REPLACE ";" "\n  " missing_text "${missing}")
  message(FATAL_ERROR "${ASOCK_LIBRARY} does not export exactly what "
    "${ASOCK_HEADER} declares.\nExported but not declared:\n  ${extra_text}\n"
    "Declared but not exported:\n  ${missing_text}")
endif()
message(STATUS "${nexported} exported symbols, each declared in the header")
