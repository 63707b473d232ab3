#include "tensor/autocast.h"

#include "tensor/error.h"

namespace dscope {
namespace {
thread_local DType activation_dtype = DType::Float32;
}  // namespace

DType autocast_dtype() {
  return activation_dtype;
}

AutocastGuard::AutocastGuard(DType activations) : previous_(activation_dtype) {
  DSCOPE_CHECK(activations == DType::Float32 || activations == DType::BFloat16, DTypeError,
               "autocast: activations can be stored in float32 or bfloat16, not ", dtype_name(activations));
  activation_dtype = activations;
}

AutocastGuard::~AutocastGuard() {
  activation_dtype = previous_;
}

}  // namespace dscope
