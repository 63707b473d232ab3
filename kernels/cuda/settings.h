// Run-time choices of the CUDA backend: the precision of matrix products (GEMM and convolution) and which
// implementation runs them. Our own kernels are the default; cuBLAS and cuDNN are reference paths a user can
// switch to in the same binary to compare (benchmarks/bench_cuda_conv2d.cpp does exactly that).
//
// Defaults come from the environment when the first CUDA kernel asks:
//   DSCOPE_CUDA_MATH=fp32|tf32|bf16   (default fp32: exact float products, comparable with the CPU)
//   DSCOPE_GEMM=own|cublas       (default own)
//   DSCOPE_CONV=own|direct|cudnn (default own; cudnn only where this build found cuDNN)
// Plain declarations: defined only in CUDA builds (kernels/cuda/settings.cu).
#pragma once

namespace dscope::kernels::cuda {

// FP32: every product in float on the CUDA cores. TF32: the tensor cores multiply operands rounded to
// TensorFloat-32 (10-bit mantissa) and accumulate in float, as PyTorch's allow_tf32 does. BF16: the tensor
// cores multiply operands rounded to bfloat16 (8-bit mantissa, float's exponent range) and accumulate in
// float. Tensors stay float in every mode: weights, activations and gradients are stored and updated in
// FP32, and only the operands of GEMM and convolution are rounded, as they enter the tensor cores.
enum class MathMode { FP32, TF32, BF16 };
// "fp32", "tf32", "bf16".
const char* name_of(MathMode mode);
enum class GemmBackend { Own, Cublas };
// Own: our kernels, each pass by the algorithm that suits its shape (conv2d.cu lists where they depart from
// the plain products on the shared tiled kernel: layout copies on the tensor cores, Winograd in FP32 for 3×3
// stride-1 layers from 64 channels, a kernel of its own for the input gradient of inputs with few
// channels). Direct: every pass as the plain product on the NCHW tensors, to compare with. Cudnn:
// cuDNN, where this build found it.
enum class ConvBackend { Own, Direct, Cudnn };
// "own", "direct", "cudnn".
const char* name_of(ConvBackend backend);

MathMode math_mode();
void set_math_mode(MathMode mode);
GemmBackend gemm_backend();
void set_gemm_backend(GemmBackend backend);
ConvBackend conv_backend();
// Throws std::runtime_error when asked for cuDNN in a build without it.
void set_conv_backend(ConvBackend backend);
bool cudnn_built();

// Waits until every kernel queued so far on the current device has finished (for timing, and for tests).
void synchronize();

}  // namespace dscope::kernels::cuda
