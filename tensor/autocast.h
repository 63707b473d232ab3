// Mixed precision, in the manner of PyTorch's autocast. Inside an AutocastGuard(DType::BFloat16), conv2d
// casts a float32 input to bfloat16 first, and ops store their output in the dtype of their input: so the
// activations of a convolutional network (convolution outputs, batch norm, ReLU, pooling, residual joins)
// and their gradients are stored in bfloat16, half the memory of what the backward keeps and half the
// traffic of the passes that only stream activations. (The ops that take bfloat16 are those: conv2d, the
// batch norms, relu, add_relu, the pools, and cast; the others refuse it with a DTypeError.) What stays
// float32:
//   - the arithmetic: every op widens its bfloat16 operands as it reads them and sums in float;
//   - the weights, their gradients and the optimizer's state (the "master weights": a conv2d takes float32
//     weights and returns a float32 weight gradient, so an update too small for bfloat16 still lands);
//   - the classifier head and the loss: nn::Linear casts its input back to float32.
// The products' precision on the tensor cores is a separate setting (set_cuda_math; mixed-precision
// training wants "bf16" there too, as `dscope build --precision bf16` sets both).
// Per thread, like NoGradGuard; nests, and restores the previous setting on destruction.
#pragma once

#include "tensor/dtype.h"

namespace dscope {

// The dtype conv2d stores activations in: Float32 (the default: autocast off) or BFloat16.
DType autocast_dtype();

class AutocastGuard {
 public:
  // Throws DTypeError for a dtype other than Float32 (which switches autocast off) or BFloat16.
  explicit AutocastGuard(DType activations);
  ~AutocastGuard();
  AutocastGuard(const AutocastGuard&) = delete;
  AutocastGuard& operator=(const AutocastGuard&) = delete;

 private:
  DType previous_;
};

}  // namespace dscope
