// dropout (see dropout.h and kernels/dropout.h).
//
// A composite: draw the mask (0 for dropped elements, 1/(1 − p) for kept ones), then multiply. The product's
// backward multiplies grad_y by the same saved mask, which is exactly dropout's gradient, so no backward is
// written here. Each training call takes one 64-bit seed from the generator, and the mask is a function of
// that seed alone; evaluation and p = 0 return x itself and draw nothing. p = 1 is rejected: it would make
// the output identically zero (always a configuration mistake) and the scale 1/(1 − p) infinite.
#include "tensor/ops/dropout.h"

#include "kernels/dropout.h"
#include "tensor/dispatch.h"
#include "tensor/ops/arithmetic.h"
#include "tensor/ops/checks.h"

namespace dscope {

Tensor dropout(const Tensor& x, float p, bool training, Generator& generator) {
  detail::check_float(x, "dropout", "x");
  DSCOPE_CHECK(p >= 0.0f && p < 1.0f, ValueError, "dropout: p must be in [0, 1) but is ", p, " (x ",
               x.shape(), ")");
  if (!training || p == 0.0f) return x;
  Tensor mask = Tensor::empty(x.shape(), DType::Float32, x.device());
  DSCOPE_DISPATCH(x.device(), dropout_mask, x.numel(), p, generator.next_u64(), mask.data<float>());
  return x * mask;
}

}  // namespace dscope
