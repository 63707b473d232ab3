// Storage: one allocation that one or more tensors view. Views (reshape, permute, slices, expand)
// share a Storage and differ only in shape, strides and offset, so they cost no copy.
#pragma once

#include <cstddef>

#include "tensor/device.h"

namespace dscope {

class Storage {
 public:
  Storage(std::size_t bytes, Device device);
  ~Storage();
  Storage(const Storage&) = delete;
  Storage& operator=(const Storage&) = delete;

  void* data() { return data_; }
  const void* data() const { return data_; }
  std::size_t bytes() const { return bytes_; }
  Device device() const { return device_; }

 private:
  void* data_;
  std::size_t bytes_;
  Device device_;
};

}  // namespace dscope
