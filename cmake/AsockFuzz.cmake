# ASOCK_BUILD_FUZZ builds the libFuzzer targets in fuzz/. Everything the
# project compiles is then instrumented alike: the library with libFuzzer's
# coverage (fuzzer-no-link), so that the fuzzer is guided by the library's
# branches and not only the harness's, and with AddressSanitizer and
# UndefinedBehaviorSanitizer, so that a memory error or undefined behaviour
# anywhere is a finding. Only the fuzz targets link libFuzzer itself
# (fuzz/CMakeLists.txt); the tests and examples stay ordinary programs.
if(ASOCK_BUILD_FUZZ)
  if(NOT CMAKE_C_COMPILER_ID MATCHES "Clang")
    message(FATAL_ERROR
      "ASOCK_BUILD_FUZZ needs clang (libFuzzer): -DCMAKE_C_COMPILER=clang")
  endif()
  if("thread" IN_LIST ASOCK_SANITIZE)
    message(FATAL_ERROR "ASOCK_BUILD_FUZZ cannot be combined with the thread "
                        "sanitizer")
  endif()
  add_compile_options(-fsanitize=fuzzer-no-link,address,undefined
                      -fno-sanitize-recover=undefined -fno-omit-frame-pointer
                      -g)
  add_link_options(-fsanitize=address,undefined)
endif()
