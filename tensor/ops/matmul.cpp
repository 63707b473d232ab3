// matmul and linear (see matmul.h).
//
// A matrix view reaches the GEMM without a copy when one of its two strides is 1: row-major with the
// other stride as leading dimension, or a transposed row-major matrix. Only other layouts are copied.
// Backward: grad_a = grad_y · bᵀ and grad_b = aᵀ · grad_y, per batch; both are GEMMs on transposed views.
#include "tensor/ops/matmul.h"

#include "kernels/gemm.h"
#include "tensor/autograd/node.h"
#include "tensor/dispatch.h"
#include "tensor/ops/arithmetic.h"
#include "tensor/ops/checks.h"

namespace dscope {
namespace {

// How one operand is handed to the GEMM: its data, whether it is read transposed, its leading dimension,
// and its batch stride (0 when one matrix serves every batch entry).
struct GemmOperand {
  Tensor storage;
  bool transposed = false;
  std::int64_t leading = 0;
  std::int64_t batch_stride = 0;
};

GemmOperand as_gemm_operand(const Tensor& x) {
  const std::int64_t rank = x.rank(), rows = x.size(-2), cols = x.size(-1);
  const std::int64_t row_stride = x.strides()[static_cast<std::size_t>(rank - 2)];
  const std::int64_t col_stride = x.strides()[static_cast<std::size_t>(rank - 1)];
  GemmOperand operand;
  operand.storage = x;
  if ((col_stride == 1 || cols == 1) && (row_stride >= cols || rows == 1)) {
    operand.leading = rows == 1 ? cols : row_stride;
  } else if ((row_stride == 1 || rows == 1) && (col_stride >= rows || cols == 1)) {
    operand.transposed = true;
    operand.leading = cols == 1 ? rows : col_stride;
  } else {
    operand.storage = dense_copy(x);
    operand.leading = cols;
  }
  operand.batch_stride = rank == 3 ? operand.storage.strides()[0] : 0;
  return operand;
}

}  // namespace

Tensor matmul(const Tensor& a, const Tensor& b) {
  detail::check_float(a, "matmul", "a");
  detail::check_float(b, "matmul", "b");
  detail::check_same_device(a, b, "matmul");
  DSCOPE_CHECK((a.rank() == 2 && b.rank() == 2) || (a.rank() == 3 && b.rank() == 3), ShapeError,
               "matmul: expects two matrices [M,K]·[K,N] or two batches [B,M,K]·[B,K,N], got ", a.shape(),
               " and ", b.shape());
  DSCOPE_CHECK(a.size(-1) == b.size(-2), ShapeError, "matmul: inner dimensions differ (", a.size(-1), " vs ",
               b.size(-2), ") for ", a.shape(), " · ", b.shape());
  const bool batched = a.rank() == 3;
  DSCOPE_CHECK(!batched || a.size(0) == b.size(0), ShapeError, "matmul: batch sizes differ for ", a.shape(),
               " · ", b.shape());
  const std::int64_t batches = batched ? a.size(0) : 1;
  const std::int64_t M = a.size(-2), K = a.size(-1), N = b.size(-1);
  Tensor y = Tensor::empty(batched ? Shape{batches, M, N} : Shape{M, N}, DType::Float32, a.device());

  const GemmOperand op_a = as_gemm_operand(a), op_b = as_gemm_operand(b);
  kernels::GemmGeometry g;
  g.M = M, g.N = N, g.K = K;
  g.transpose_a = op_a.transposed, g.transpose_b = op_b.transposed;
  g.lda = op_a.leading, g.ldb = op_b.leading, g.ldc = N;
  for (std::int64_t batch = 0; batch < batches; ++batch) {
    DSCOPE_DISPATCH(a.device(), gemm, g, 1.0f, op_a.storage.data<float>() + batch * op_a.batch_stride,
                    op_b.storage.data<float>() + batch * op_b.batch_stride, 0.0f,
                    y.data<float>() + batch * M * N);
  }

  const Tensor a_saved = b.requires_grad() ? a.detach() : Tensor();
  const Tensor b_saved = a.requires_grad() ? b.detach() : Tensor();
  return autograd::record("matmul", y, {a, b},
                          [a_saved, b_saved](const Tensor& grad_y) -> autograd::Gradients {
                            return {b_saved.defined() ? matmul(grad_y, b_saved.transpose(-1, -2)) : Tensor(),
                                    a_saved.defined() ? matmul(a_saved.transpose(-1, -2), grad_y) : Tensor()};
                          });
}

Tensor linear(const Tensor& x, const Tensor& weight, const Tensor& bias) {
  detail::check_float(x, "linear", "x");
  detail::check_float(weight, "linear", "weight");
  DSCOPE_CHECK(x.rank() == 2 && weight.rank() == 2 && x.size(1) == weight.size(1), ShapeError,
               "linear: expects x [N, in] and weight [out, in], got x ", x.shape(), " and weight ",
               weight.shape());
  const Tensor y = matmul(x, weight.transpose(0, 1));
  if (!bias.defined()) return y;
  DSCOPE_CHECK(bias.rank() == 1 && bias.size(0) == weight.size(0), ShapeError, "linear: bias ", bias.shape(),
               " does not match weight ", weight.shape(), " (expected [", weight.size(0), "])");
  return y + bias;
}

}  // namespace dscope
