// Element types. float32 carries activations and parameters, int64 carries class labels; the 16-bit
// types are named now so that mixed precision (the CUDA backend) only adds kernels, not a new enum.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string_view>

namespace dscope {

enum class DType : std::uint8_t { Float32, Int64, BFloat16, Float16 };

constexpr std::size_t element_size(DType dtype) {
  switch (dtype) {
    case DType::Float32:
      return 4;
    case DType::Int64:
      return 8;
    case DType::BFloat16:
      return 2;
    case DType::Float16:
      return 2;
  }
  return 0;
}

constexpr std::string_view dtype_name(DType dtype) {
  switch (dtype) {
    case DType::Float32:
      return "float32";
    case DType::Int64:
      return "int64";
    case DType::BFloat16:
      return "bfloat16";
    case DType::Float16:
      return "float16";
  }
  return "unknown";
}

// The DType of a C++ element type, for typed access such as Tensor::data<float>().
template <typename T>
constexpr DType dtype_of();
template <>
constexpr DType dtype_of<float>() {
  return DType::Float32;
}
template <>
constexpr DType dtype_of<std::int64_t>() {
  return DType::Int64;
}

}  // namespace dscope
