# Warning flags for every target the project compiles.
function(asock_set_warnings target)
  if(MSVC)
    target_compile_options(${target} PRIVATE /W4)
    if(ASOCK_WERROR)
      target_compile_options(${target} PRIVATE /WX)
    endif()
  else()
    target_compile_options(${target} PRIVATE
      -Wall -Wextra -Wstrict-prototypes -Wshadow -Wmissing-prototypes
      -Wpointer-arith -Wvla)
    if(ASOCK_WERROR)
      target_compile_options(${target} PRIVATE -Werror)
    endif()
  endif()
endfunction()
