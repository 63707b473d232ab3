// GEMM on the CPU: the choice between our packed GEMM and Eigen's, and Eigen's (see kernels/gemm.h).
//
// Our matrices are row-major with leading dimensions, which Eigen expresses as a Map with an OuterStride.
// A transposed operand is the same memory mapped the other way round, so no copy is made. Eigen
// parallelises a large product with OpenMP by itself; inside an enclosing parallel region it runs on the
// calling thread only, which lets conv2d run one GEMM per image on each core.
#include "kernels/gemm.h"

#include <Eigen/Core>
#include <cstdlib>
#include <string_view>

namespace dscope::kernels::cpu {
namespace {

using RowMajor = Eigen::Matrix<float, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
using ColMajor = Eigen::Matrix<float, Eigen::Dynamic, Eigen::Dynamic, Eigen::ColMajor>;
using Stride = Eigen::OuterStride<>;
template <typename Matrix>
using ConstMap = Eigen::Map<const Matrix, Eigen::Unaligned, Stride>;

// Stored row-major [rows, cols] with leading dimension ld; read transposed it is col-major [cols, rows].
template <typename Body>
void with_operand(const float* data, std::int64_t rows, std::int64_t cols, std::int64_t ld, bool transpose,
                  Body body) {
  if (transpose) {
    body(ConstMap<ColMajor>(data, cols, rows, Stride(ld)));
  } else {
    body(ConstMap<RowMajor>(data, rows, cols, Stride(ld)));
  }
}

bool packed_chosen() {
  static const bool chosen = [] {
    const char* value = std::getenv("DSCOPE_CPU_GEMM");
    return value != nullptr && std::string_view(value) == "packed";
  }();
  return chosen;
}

}  // namespace

void gemm(const GemmGeometry& g, float alpha, const float* a, const float* b, float beta, float* c) {
  if (packed_chosen()) {
    gemm_packed(g, alpha, a, b, beta, c);
  } else {
    gemm_eigen(g, alpha, a, b, beta, c);
  }
}

void gemm_eigen(const GemmGeometry& g, float alpha, const float* a, const float* b, float beta, float* c) {
  Eigen::Map<RowMajor, Eigen::Unaligned, Stride> out(c, g.M, g.N, Stride(g.ldc));
  if (g.M == 0 || g.N == 0) return;
  if (beta == 0.0f) {
    out.setZero();  // beta = 0 must ignore C's contents, even NaN
  } else if (beta != 1.0f) {
    out *= beta;
  }
  if (g.K == 0) return;
  const std::int64_t a_rows = g.transpose_a ? g.K : g.M, a_cols = g.transpose_a ? g.M : g.K;
  const std::int64_t b_rows = g.transpose_b ? g.N : g.K, b_cols = g.transpose_b ? g.K : g.N;
  with_operand(a, a_rows, a_cols, g.lda, g.transpose_a, [&](const auto& op_a) {
    with_operand(b, b_rows, b_cols, g.ldb, g.transpose_b,
                 [&](const auto& op_b) { out.noalias() += alpha * (op_a * op_b); });
  });
}

}  // namespace dscope::kernels::cpu
