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
    # With CMAKE_C_EXTENSIONS off the compiler runs in -std=c11; this makes
    # it reject what GCC and Clang accept beyond C11 as well (statement
    # expressions, zero-length arrays, binary literals, ...), which MSVC
    # does not compile. System headers are exempt.
    if(ASOCK_PEDANTIC)
      target_compile_options(${target} PRIVATE -pedantic-errors)
    endif()
  endif()
endfunction()
