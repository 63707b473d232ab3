# One place that sets the compile options of our own targets: warnings (as errors unless
# DSCOPE_WARNINGS_AS_ERRORS is off), the processor tuning, sanitizers. Third-party headers come in as
# SYSTEM includes so their warnings do not count.

# Eigen's GEMM is 25-40% faster with GCC 12 when -mtune=generic is added to -march=native
# (measured on the project machine, see MEASURED.md), so the pair is used together.
function(dscope_target_options target)
  target_compile_options(${target} PRIVATE
    $<$<COMPILE_LANGUAGE:CXX>:-Wall -Wextra -Wpedantic -Wshadow>
    $<$<COMPILE_LANGUAGE:CUDA>:-Xcompiler=-Wall,-Wextra,-Wshadow>)
  if(DSCOPE_WARNINGS_AS_ERRORS)
    target_compile_options(${target} PRIVATE
      $<$<COMPILE_LANGUAGE:CXX>:-Werror>
      $<$<COMPILE_LANGUAGE:CUDA>:-Xcompiler=-Werror -Werror all-warnings>)
  endif()
  if(DSCOPE_NATIVE)
    target_compile_options(${target} PRIVATE $<$<COMPILE_LANGUAGE:CXX>:-march=native -mtune=generic>)
  endif()
  if(DSCOPE_SANITIZE)
    target_compile_options(${target} PRIVATE $<$<COMPILE_LANGUAGE:CXX>:-fsanitize=address,undefined -fno-omit-frame-pointer>)
    target_link_options(${target} PRIVATE -fsanitize=address,undefined)
  endif()
endfunction()
