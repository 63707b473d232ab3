// cuDNN reference path for conv2d: see conv2d_cudnn.h.
//
// Per geometry, pass and math mode, the descriptors are made once and cuDNN's own timing search
// (cudnnFind*Algorithm) picks the fastest algorithm of the requested precision: FMA math for exact FP32,
// default math for TF32 (for float data it lets cuDNN use TF32 tensor cores on Ampere and later). That is
// the choice PyTorch makes with torch.backends.cudnn.benchmark = True and allow_tf32 on or off.
#include <cudnn.h>

#include <map>
#include <mutex>
#include <stdexcept>
#include <string>
#include <tuple>

#include "kernels/cuda/conv2d_cudnn.h"
#include "kernels/cuda/launch.cuh"
#include "kernels/cuda/settings.h"

#define DSCOPE_CUDNN_CHECK(call)                                                                \
  do {                                                                                          \
    const cudnnStatus_t status_ = (call);                                                       \
    if (status_ != CUDNN_STATUS_SUCCESS)                                                        \
      throw std::runtime_error(std::string(#call) + " failed at " + __FILE__ + ":" +            \
                               std::to_string(__LINE__) + ": " + cudnnGetErrorString(status_)); \
  } while (0)

namespace dscope::kernels::cuda::cudnn {
namespace {

enum class Pass { Forward, BackwardInput, BackwardWeight };

cudnnHandle_t handle() {
  static cudnnHandle_t instance = [] {
    cudnnHandle_t created = nullptr;
    DSCOPE_CUDNN_CHECK(cudnnCreate(&created));
    return created;
  }();
  DSCOPE_CUDNN_CHECK(cudnnSetStream(instance, current_stream()));
  return instance;
}

// Descriptors and the chosen algorithm of one (geometry, pass, precision).
struct Plan {
  cudnnTensorDescriptor_t x = nullptr, y = nullptr, bias = nullptr;
  cudnnFilterDescriptor_t w = nullptr;
  cudnnConvolutionDescriptor_t conv = nullptr;
  int algorithm = 0;
  std::size_t workspace = 0;
  cudnnMathType_t math = CUDNN_DEFAULT_MATH;  // the math type the chosen algorithm was timed with
};

using Key = std::tuple<std::int64_t, std::int64_t, std::int64_t, std::int64_t, std::int64_t, std::int64_t,
                       std::int64_t, std::int64_t, std::int64_t, std::int64_t, std::int64_t, std::int64_t,
                       std::int64_t, int, int>;

Plan describe(const Conv2dGeometry& g, cudnnMathType_t math) {
  Plan plan;
  DSCOPE_CUDNN_CHECK(cudnnCreateTensorDescriptor(&plan.x));
  DSCOPE_CUDNN_CHECK(cudnnCreateTensorDescriptor(&plan.y));
  DSCOPE_CUDNN_CHECK(cudnnCreateTensorDescriptor(&plan.bias));
  DSCOPE_CUDNN_CHECK(cudnnCreateFilterDescriptor(&plan.w));
  DSCOPE_CUDNN_CHECK(cudnnCreateConvolutionDescriptor(&plan.conv));
  const auto i = [](std::int64_t value) { return static_cast<int>(value); };
  DSCOPE_CUDNN_CHECK(cudnnSetTensor4dDescriptor(plan.x, CUDNN_TENSOR_NCHW, CUDNN_DATA_FLOAT, i(g.N), i(g.C),
                                                i(g.H), i(g.W)));
  DSCOPE_CUDNN_CHECK(cudnnSetTensor4dDescriptor(plan.y, CUDNN_TENSOR_NCHW, CUDNN_DATA_FLOAT, i(g.N), i(g.K),
                                                i(g.P), i(g.Q)));
  DSCOPE_CUDNN_CHECK(
      cudnnSetTensor4dDescriptor(plan.bias, CUDNN_TENSOR_NCHW, CUDNN_DATA_FLOAT, 1, i(g.K), 1, 1));
  DSCOPE_CUDNN_CHECK(cudnnSetFilter4dDescriptor(plan.w, CUDNN_DATA_FLOAT, CUDNN_TENSOR_NCHW, i(g.K), i(g.C),
                                                i(g.R), i(g.S)));
  DSCOPE_CUDNN_CHECK(cudnnSetConvolution2dDescriptor(plan.conv, i(g.pad_h), i(g.pad_w), i(g.stride_h),
                                                     i(g.stride_w), i(g.dilation_h), i(g.dilation_w),
                                                     CUDNN_CROSS_CORRELATION, CUDNN_DATA_FLOAT));
  DSCOPE_CUDNN_CHECK(cudnnSetConvolutionMathType(plan.conv, math));
  return plan;
}

// The first (fastest) successful result of a cudnnFind* search at the requested precision. Under FMA math
// every result reports CUDNN_FMA_MATH. Under default math (TF32) a result reports the math type it was timed
// with, default or tensor-op, and any of them is allowed: requiring one exact type could skip the fastest
// algorithm, or find none at all.
template <typename Result>
const Result& fastest(const Result* results, int count, cudnnMathType_t math, const char* pass) {
  for (int r = 0; r < count; ++r)
    if (results[r].status == CUDNN_STATUS_SUCCESS &&
        (math != CUDNN_FMA_MATH || results[r].mathType == CUDNN_FMA_MATH))
      return results[r];
  throw std::runtime_error(std::string("cuDNN has no algorithm for this conv2d ") + pass +
                           " at this precision");
}

const Plan& plan_for(const Conv2dGeometry& g, Pass pass) {
  static std::mutex mutex;
  static std::map<Key, Plan> plans;
  // cuDNN multiplies float tensors in FP32 or TF32 only; bf16 operands would need bf16 tensors, which our
  // engine does not store (PyTorch's bf16 convolutions are the reference for that precision).
  if (math_mode() == MathMode::BF16)
    throw std::runtime_error(std::string("cuDNN conv2d ") + (pass == Pass::Forward ? "forward" : "backward") +
                             ": DSCOPE_CUDA_MATH=bf16 has no cuDNN counterpart on float tensors; use fp32 or "
                             "tf32 with DSCOPE_CONV=cudnn");
  const bool tf32 = math_mode() == MathMode::TF32;
  const Key key{g.N,         g.C,        g.H,     g.W,     g.K,          g.R,          g.S,
                g.stride_h,  g.stride_w, g.pad_h, g.pad_w, g.dilation_h, g.dilation_w, static_cast<int>(pass),
                tf32 ? 1 : 0};
  const std::lock_guard<std::mutex> lock(mutex);
  const auto found = plans.find(key);
  if (found != plans.end()) return found->second;

  const cudnnMathType_t math = tf32 ? CUDNN_DEFAULT_MATH : CUDNN_FMA_MATH;
  Plan plan = describe(g, math);
  constexpr int kRequested = 16;
  int returned = 0;
  const cudnnHandle_t h = handle();
  if (pass == Pass::Forward) {
    cudnnConvolutionFwdAlgoPerf_t results[kRequested];
    DSCOPE_CUDNN_CHECK(cudnnFindConvolutionForwardAlgorithm(h, plan.x, plan.w, plan.conv, plan.y, kRequested,
                                                            &returned, results));
    const auto& best = fastest(results, returned, math, "forward");
    plan.algorithm = static_cast<int>(best.algo);
    plan.workspace = best.memory;
    plan.math = best.mathType;
  } else if (pass == Pass::BackwardInput) {
    cudnnConvolutionBwdDataAlgoPerf_t results[kRequested];
    DSCOPE_CUDNN_CHECK(cudnnFindConvolutionBackwardDataAlgorithm(h, plan.w, plan.y, plan.conv, plan.x,
                                                                 kRequested, &returned, results));
    const auto& best = fastest(results, returned, math, "backward input");
    plan.algorithm = static_cast<int>(best.algo);
    plan.workspace = best.memory;
    plan.math = best.mathType;
  } else {
    cudnnConvolutionBwdFilterAlgoPerf_t results[kRequested];
    DSCOPE_CUDNN_CHECK(cudnnFindConvolutionBackwardFilterAlgorithm(h, plan.x, plan.y, plan.conv, plan.w,
                                                                   kRequested, &returned, results));
    const auto& best = fastest(results, returned, math, "backward weight");
    plan.algorithm = static_cast<int>(best.algo);
    plan.workspace = best.memory;
    plan.math = best.mathType;
  }
  // cuDNN picks the kernel from the algorithm and the descriptor's math type together: run with the math
  // type the chosen algorithm was timed with, or it may run a slower variant (PyTorch does the same).
  DSCOPE_CUDNN_CHECK(cudnnSetConvolutionMathType(plan.conv, plan.math));
  return plans.emplace(key, plan).first->second;
}

}  // namespace

void conv2d_forward(const Conv2dGeometry& g, const float* x, const float* w, const float* bias, float* y) {
  const Plan& plan = plan_for(g, Pass::Forward);
  const Scratch<char> workspace(plan.workspace, current_stream());
  const float one = 1.0f, zero = 0.0f;
  DSCOPE_CUDNN_CHECK(cudnnConvolutionForward(handle(), &one, plan.x, x, plan.w, w, plan.conv,
                                             static_cast<cudnnConvolutionFwdAlgo_t>(plan.algorithm),
                                             workspace.get(), plan.workspace, &zero, plan.y, y));
  if (bias != nullptr) DSCOPE_CUDNN_CHECK(cudnnAddTensor(handle(), &one, plan.bias, bias, &one, plan.y, y));
}

void conv2d_backward_input(const Conv2dGeometry& g, const float* grad_y, const float* w, float* grad_x) {
  const Plan& plan = plan_for(g, Pass::BackwardInput);
  const Scratch<char> workspace(plan.workspace, current_stream());
  const float one = 1.0f, zero = 0.0f;
  DSCOPE_CUDNN_CHECK(cudnnConvolutionBackwardData(handle(), &one, plan.w, w, plan.y, grad_y, plan.conv,
                                                  static_cast<cudnnConvolutionBwdDataAlgo_t>(plan.algorithm),
                                                  workspace.get(), plan.workspace, &zero, plan.x, grad_x));
}

void conv2d_backward_weight(const Conv2dGeometry& g, const float* x, const float* grad_y, float* grad_w) {
  const Plan& plan = plan_for(g, Pass::BackwardWeight);
  const Scratch<char> workspace(plan.workspace, current_stream());
  const float one = 1.0f, zero = 0.0f;
  DSCOPE_CUDNN_CHECK(
      cudnnConvolutionBackwardFilter(handle(), &one, plan.x, x, plan.y, grad_y, plan.conv,
                                     static_cast<cudnnConvolutionBwdFilterAlgo_t>(plan.algorithm),
                                     workspace.get(), plan.workspace, &zero, plan.w, grad_w));
}

}  // namespace dscope::kernels::cuda::cudnn
