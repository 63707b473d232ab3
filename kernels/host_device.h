// DSCOPE_HOST_DEVICE marks the few inline helpers that CPU and CUDA kernels share (a window's bounds, the
// dropout draw), so both backends compute them with the very same code.
#pragma once

#if defined(__CUDACC__)
#define DSCOPE_HOST_DEVICE __host__ __device__
#else
#define DSCOPE_HOST_DEVICE
#endif
