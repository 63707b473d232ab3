// Fused optimizer updates on the GPU: see kernels/optimizer_update.h. One thread per element, the CPU
// kernel's arithmetic in the same order.
#include "kernels/cuda/block_reduce.cuh"
#include "kernels/cuda/launch.cuh"
#include "kernels/optimizer_update.h"

namespace dscope::kernels::cuda {
namespace {

__global__ void sgd_kernel(std::int64_t n, SgdUpdate u, float* param, const float* grad,
                           float* momentum_buffer) {
  DSCOPE_GRID_STRIDE_LOOP(i, n) {
    const float d = grad[i] + u.weight_decay * param[i];
    if (momentum_buffer == nullptr) {
      param[i] -= u.learning_rate * d;
      continue;
    }
    const float buffer = u.momentum * momentum_buffer[i] + d;
    momentum_buffer[i] = buffer;
    param[i] -= u.learning_rate * (u.nesterov ? d + u.momentum * buffer : buffer);
  }
}

__global__ void adam_kernel(std::int64_t n, AdamUpdate u, float l2, float shrink, float* param,
                            const float* grad, float* exp_avg, float* exp_avg_sq) {
  const float step_size = u.learning_rate / u.bias_correction1;
  DSCOPE_GRID_STRIDE_LOOP(i, n) {
    const float p = param[i] * shrink;
    const float g = grad[i] + l2 * p;
    const float m = u.beta1 * exp_avg[i] + (1.0f - u.beta1) * g;
    const float v = u.beta2 * exp_avg_sq[i] + (1.0f - u.beta2) * g * g;
    exp_avg[i] = m;
    exp_avg_sq[i] = v;
    param[i] = p - step_size * (m / (sqrtf(v) / u.bias_correction2_sqrt + u.epsilon));
  }
}

constexpr int kSquaresThreads = 512;
constexpr unsigned kSquaresBlocks = 256;

// Each block adds its share of x² in double and writes one partial; the host adds the partials.
__global__ void sum_of_squares_kernel(std::int64_t n, const float* x, double* partials) {
  double total = 0.0;
  for (std::int64_t i = static_cast<std::int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < n;
       i += static_cast<std::int64_t>(gridDim.x) * blockDim.x)
    total += static_cast<double>(x[i]) * static_cast<double>(x[i]);
  total = block_sum(total);
  if (threadIdx.x == 0) partials[blockIdx.x] = total;
}

}  // namespace

void sgd_update(std::int64_t n, const SgdUpdate& update, float* param, const float* grad,
                float* momentum_buffer) {
  if (n == 0) return;
  sgd_kernel<<<blocks_for(n), kThreadsPerBlock, 0, current_stream()>>>(n, update, param, grad,
                                                                       momentum_buffer);
  check_launch("sgd_update");
}

void adam_update(std::int64_t n, const AdamUpdate& update, float* param, const float* grad, float* exp_avg,
                 float* exp_avg_sq) {
  if (n == 0) return;
  // As on the CPU: Adam folds weight decay into the gradient (L2); AdamW shrinks the parameter first, by a
  // factor computed in double from the float hyper-parameters.
  const float l2 = update.decoupled_weight_decay ? 0.0f : update.weight_decay;
  const float shrink = update.decoupled_weight_decay
                           ? static_cast<float>(1.0 - static_cast<double>(update.learning_rate) *
                                                          static_cast<double>(update.weight_decay))
                           : 1.0f;
  adam_kernel<<<blocks_for(n), kThreadsPerBlock, 0, current_stream()>>>(n, update, l2, shrink, param, grad,
                                                                        exp_avg, exp_avg_sq);
  check_launch("adam_update");
}

void sum_of_squares(std::int64_t n, const float* x, double* total) {
  *total = 0.0;
  if (n == 0) return;
  const cudaStream_t stream = current_stream();
  const Scratch<double> partials(kSquaresBlocks, stream);
  sum_of_squares_kernel<<<kSquaresBlocks, kSquaresThreads, 0, stream>>>(n, x, partials.get());
  check_launch("sum_of_squares");
  double host[kSquaresBlocks];
  DSCOPE_CUDA_CHECK(cudaMemcpyAsync(host, partials.get(), sizeof(host), cudaMemcpyDeviceToHost, stream));
  DSCOPE_CUDA_CHECK(cudaStreamSynchronize(stream));
  for (double partial : host)
    *total += partial;
}

}  // namespace dscope::kernels::cuda
