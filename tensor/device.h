// Where a tensor's storage lives. Only tensor/dispatch.h and the CUDA runtime wrapper know whether
// this build has CUDA; everything else just carries a Device and passes it to the dispatcher.
#pragma once

#include <ostream>
#include <string>

namespace dscope {

enum class DeviceType { CPU, CUDA };

struct Device {
  DeviceType type = DeviceType::CPU;
  int index = 0;  // which GPU; always 0 for the CPU

  static Device cpu() { return {DeviceType::CPU, 0}; }
  static Device cuda(int index = 0) { return {DeviceType::CUDA, index}; }
  // Parses "cpu", "cuda" or "cuda:N"; throws ValueError otherwise.
  static Device parse(const std::string& text);

  bool is_cpu() const { return type == DeviceType::CPU; }
  bool is_cuda() const { return type == DeviceType::CUDA; }
  bool operator==(const Device&) const = default;
  std::string to_string() const;
};

inline std::ostream& operator<<(std::ostream& out, const Device& device) {
  return out << device.to_string();
}

// True when this build has the CUDA backend and a CUDA device is present.
bool cuda_is_available();
int cuda_device_count();

// The precision of matrix products (GEMM and convolution) on CUDA devices, by name: "fp32" (exact float
// products, the default), "tf32" or "bf16" (the tensor cores multiply operands rounded to TensorFloat-32 or
// bfloat16 and accumulate in float; tensors, weights and optimizer state stay float). See
// kernels/cuda/settings.h. Throws ValueError for another name, DeviceError in a build without CUDA.
void set_cuda_math(const std::string& name);

}  // namespace dscope
