// Element types. float32 carries activations and parameters, int64 carries class labels, bfloat16 carries
// activations under mixed precision (tensor/autocast.h; the format and its rounding: kernels/bfloat16.h).
// float16 is named for completeness and has no kernels.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string_view>

#include "kernels/bfloat16.h"

namespace dscope {

using kernels::BFloat16;

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
template <>
constexpr DType dtype_of<BFloat16>() {
  return DType::BFloat16;
}

}  // namespace dscope
