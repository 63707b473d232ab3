// GEMM on the GPU: see kernels/gemm.h. Ours runs on the shared tiled kernel (implicit_gemm.cuh) with operands
// that read A and B through their transposes and leading dimensions (on the tensor cores, from copies turned
// round where that lets them travel four values at a time); with DSCOPE_GEMM=cublas (settings.h) cuBLAS runs
// it instead, as the reference to compare against.
#include <cublas_v2.h>

#include <climits>
#include <stdexcept>
#include <string>

#include "kernels/cuda/implicit_gemm.cuh"
#include "kernels/cuda/transpose.cuh"
#include "kernels/gemm.h"

#define DSCOPE_CUBLAS_CHECK(call)                                                                 \
  do {                                                                                            \
    const cublasStatus_t status_ = (call);                                                        \
    if (status_ != CUBLAS_STATUS_SUCCESS)                                                         \
      throw std::runtime_error(std::string(#call) + " failed at " + __FILE__ + ":" +              \
                               std::to_string(__LINE__) + ": " + cublasGetStatusString(status_)); \
  } while (0)

namespace dscope::kernels::cuda {
namespace {

struct GemmOperands {
  int M, N, K;
  implicit_gemm::Gather a, b;
  float* c_data;
  std::int64_t ldc;
  float alpha, beta;

  __device__ void store(int m, int n, float sum) const {
    float& out = c_data[m * ldc + n];
    out = alpha * sum + (beta == 0.0f ? 0.0f : beta * out);  // beta = 0 ignores C, even NaN
  }
};

// The Gathers' offsets are 32-bit: every element of an operand must be within INT_MAX of its start.
void check_extent(std::int64_t lines, std::int64_t stride, std::int64_t depth, const char* operand) {
  if ((lines > 0 && (lines - 1) * stride + depth > INT_MAX) || stride > INT_MAX)
    throw std::runtime_error(std::string("gemm: operand ") + operand +
                             " too large for the CUDA kernels' 32-bit offsets");
}

cublasHandle_t cublas_handle() {
  static cublasHandle_t handle = [] {
    cublasHandle_t created = nullptr;
    DSCOPE_CUBLAS_CHECK(cublasCreate(&created));
    return created;
  }();
  DSCOPE_CUBLAS_CHECK(cublasSetStream(handle, current_stream()));
  return handle;
}

// cuBLAS is column-major. A row-major matrix with leading dimension ld is the column-major matrix of its
// transpose, so C = op(A)·op(B) in row-major is Cᵀ = op(B)ᵀ·op(A)ᵀ in column-major: swap the operands.
void gemm_cublas(const GemmGeometry& g, float alpha, const float* a, const float* b, float beta, float* c) {
  // An empty C needs no call; cuBLAS would reject it anyway, its ldc being 0 when N = 0.
  if (g.M == 0 || g.N == 0) return;
  const cublasHandle_t handle = cublas_handle();
  const auto i = [](std::int64_t value) { return static_cast<int>(value); };
  // cuBLAS wants every leading dimension ≥ 1, but an operand with a zero extent (A [M, 0] when K = 0) can
  // arrive with 0; it is never read, so any value ≥ 1 serves.
  const auto ld = [](std::int64_t value) { return static_cast<int>(value < 1 ? 1 : value); };
  const cublasOperation_t op_b = g.transpose_b ? CUBLAS_OP_T : CUBLAS_OP_N,
                          op_a = g.transpose_a ? CUBLAS_OP_T : CUBLAS_OP_N;
  if (math_mode() == MathMode::BF16) {
    // Float matrices multiplied on the tensor cores with operands rounded to bf16: our BF16 mode's
    // precision.
    DSCOPE_CUBLAS_CHECK(cublasSetMathMode(handle, CUBLAS_DEFAULT_MATH));
    DSCOPE_CUBLAS_CHECK(cublasGemmEx(handle, op_b, op_a, i(g.N), i(g.M), i(g.K), &alpha, b, CUDA_R_32F,
                                     ld(g.ldb), a, CUDA_R_32F, ld(g.lda), &beta, c, CUDA_R_32F, ld(g.ldc),
                                     CUBLAS_COMPUTE_32F_FAST_16BF, CUBLAS_GEMM_DEFAULT));
    return;
  }
  DSCOPE_CUBLAS_CHECK(cublasSetMathMode(
      handle, math_mode() == MathMode::TF32 ? CUBLAS_TF32_TENSOR_OP_MATH : CUBLAS_PEDANTIC_MATH));
  DSCOPE_CUBLAS_CHECK(cublasSgemm(handle, op_b, op_a, i(g.N), i(g.M), i(g.K), &alpha, b, ld(g.ldb), a,
                                  ld(g.lda), &beta, c, ld(g.ldc)));
}

}  // namespace

void gemm(const GemmGeometry& g, float alpha, const float* a, const float* b, float beta, float* c) {
  if (g.M > INT_MAX || g.N > INT_MAX || g.K > INT_MAX)
    throw std::runtime_error("gemm: extents too large for the CUDA kernels' 32-bit indices");
  if (gemm_backend() == GemmBackend::Cublas) return gemm_cublas(g, alpha, a, b, beta, c);
  // A(m, k) is a[m·lda + k], or a[k·lda + m] transposed; B(k, n) is b[k·ldb + n], or b[n·ldb + k].
  check_extent(g.transpose_a ? g.K : g.M, g.lda, g.transpose_a ? g.M : g.K, "A");
  check_extent(g.transpose_b ? g.N : g.K, g.ldb, g.transpose_b ? g.K : g.N, "B");
  GemmOperands ops;
  ops.M = static_cast<int>(g.M), ops.N = static_cast<int>(g.N), ops.K = static_cast<int>(g.K);
  // On the tensor cores an operand whose lines run along memory (A transposed, B not) is first copied
  // turned round, so that its four neighbouring k travel in one copy as the other's do (the same trade as
  // conv2d's channels-last copies, Note [channels-last copies] in conv2d_operands.cuh: one pass over the
  // operand for four times fewer copies into shared memory).
  const bool turn = math_mode() != MathMode::FP32 && ops.K % 4 == 0;
  const bool turn_a = turn && g.transpose_a, turn_b = turn && !g.transpose_b;
  const cudaStream_t stream = current_stream();
  const Scratch<float> a_turned(turn_a ? static_cast<std::size_t>(g.M) * g.K : 0, stream);
  const Scratch<float> b_turned(turn_b ? static_cast<std::size_t>(g.N) * g.K : 0, stream);
  if (turn_a) transpose(1, ops.K, ops.M, static_cast<int>(g.lda), a, a_turned.get(), "gemm A turned round");
  if (turn_b) transpose(1, ops.K, ops.N, static_cast<int>(g.ldb), b, b_turned.get(), "gemm B turned round");
  ops.a = turn_a ? implicit_gemm::matrix(a_turned.get(), ops.K, true, ops.K)
                 : implicit_gemm::matrix(a, static_cast<int>(g.lda), !g.transpose_a, ops.K);
  ops.b = turn_b ? implicit_gemm::matrix(b_turned.get(), ops.K, true, ops.K)
                 : implicit_gemm::matrix(b, static_cast<int>(g.ldb), g.transpose_b, ops.K);
  ops.c_data = c, ops.ldc = g.ldc, ops.alpha = alpha, ops.beta = beta;
  run_implicit_gemm(ops, "gemm");
}

}  // namespace dscope::kernels::cuda
