# Link-time optimisation (ASOCK_IPO): lets the compiler inline across asock's
# source files, which the per-message path crosses several times (start,
# check, system call, completion). In the echo benchmark it takes about 15%
# off the instructions per message. Only in optimised configurations, and
# only where the result still links everywhere: a shared library, or a
# static one built by GCC, whose fat objects carry ordinary code beside the
# intermediate one for programs linked without LTO or by another compiler.
include(CheckIPOSupported)

set(ASOCK_IPO_ACTIVE OFF)
if(ASOCK_IPO AND (BUILD_SHARED_LIBS OR CMAKE_C_COMPILER_ID STREQUAL "GNU"))
  check_ipo_supported(RESULT _asock_ipo_ok OUTPUT _asock_ipo_why LANGUAGES C)
  if(_asock_ipo_ok)
    set(ASOCK_IPO_ACTIVE ON)
  else()
    message(STATUS "asock: link-time optimisation not available: ${_asock_ipo_why}")
  endif()
endif()

# Turns link-time optimisation on for target in optimised configurations.
# The example and benchmark programs use it too, so that what they measure
# is what a program built with LTO against asock gets.
function(asock_enable_ipo target)
  if(NOT ASOCK_IPO_ACTIVE)
    return()
  endif()
  foreach(_cfg RELEASE RELWITHDEBINFO MINSIZEREL)
    set_property(TARGET ${target} PROPERTY INTERPROCEDURAL_OPTIMIZATION_${_cfg} ON)
  endforeach()
  if(NOT BUILD_SHARED_LIBS AND CMAKE_C_COMPILER_ID STREQUAL "GNU")
    target_compile_options(${target} PRIVATE
      "$<$<OR:$<CONFIG:Release>,$<CONFIG:RelWithDebInfo>,$<CONFIG:MinSizeRel>>:-ffat-lto-objects>")
  endif()
endfunction()
