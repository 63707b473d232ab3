// GEMM: C = alpha · op(A) · op(B) + beta · C for row-major matrices with leading dimensions.
//
// op(X) is X or Xᵀ. Row-major with a leading dimension means element (i, j) of a stored matrix is at
// X[i * ld + j]. Shapes after op: op(A) is [M, K], op(B) is [K, N], C is [M, N].
// beta = 0 overwrites C (its old contents are ignored, even NaN); beta = 1 accumulates.
#pragma once

#include <cstdint>

namespace dscope::kernels {

struct GemmGeometry {
  std::int64_t M = 0, N = 0, K = 0;
  bool transpose_a = false, transpose_b = false;
  std::int64_t lda = 0, ldb = 0, ldc = 0;  // leading dimensions of A, B, C as stored
};

namespace reference {
template <typename T>
void gemm(const GemmGeometry& g, T alpha, const T* a, const T* b, T beta, T* c) {
  for (std::int64_t i = 0; i < g.M; ++i)
    for (std::int64_t j = 0; j < g.N; ++j) {
      T total = 0;
      for (std::int64_t k = 0; k < g.K; ++k) {
        T a_ik = g.transpose_a ? a[k * g.lda + i] : a[i * g.lda + k];
        T b_kj = g.transpose_b ? b[j * g.ldb + k] : b[k * g.ldb + j];
        total += a_ik * b_kj;
      }
      T& out = c[i * g.ldc + j];
      out = alpha * total + (beta == T(0) ? T(0) : beta * out);
    }
}
}  // namespace reference

namespace cpu {
// Every CPU GEMM is multi-threaded through OpenMP when called outside a parallel region and single-threaded
// inside one (so callers may run several GEMMs in parallel, one per thread).
//
// gemm: Eigen's, or ours with DSCOPE_CPU_GEMM=packed in the environment, to compare the two in one binary.
// Eigen's stays the default while ours is not measurably faster on the shapes conv2d gives it (bench_gemm,
// and bench_training under each setting; cpu/gemm_packed.cpp, Note [where it stands]).
void gemm(const GemmGeometry& g, float alpha, const float* a, const float* b, float beta, float* c);
// Our packed, register-blocked GEMM (cpu/gemm_packed.cpp): vectorised for AVX-512 or AVX2 + FMA, plain C++
// on other processors.
void gemm_packed(const GemmGeometry& g, float alpha, const float* a, const float* b, float beta, float* c);
// Eigen's blocked GEMM, kept as the reference and the fallback.
void gemm_eigen(const GemmGeometry& g, float alpha, const float* a, const float* b, float beta, float* c);
}  // namespace cpu

namespace cuda {
// Same contract, on device pointers: our tiled kernel (exact FP32 or TF32 tensor cores), or cuBLAS, as
// kernels/cuda/settings.h chooses.
void gemm(const GemmGeometry& g, float alpha, const float* a, const float* b, float beta, float* c);
}  // namespace cuda

}  // namespace dscope::kernels
