// Elementwise arithmetic on the GPU: see kernels/elementwise.h. One thread per output element, grid-stride.
//
// Broadcast operands are read through their strides (0 along broadcast axes), which costs an index
// decomposition per element; when both operands are dense and of the output's shape (the common case in a
// training step: residual additions, gradient sums), a plain indexed loop runs instead.
#include "kernels/cuda/launch.cuh"
#include "kernels/elementwise.h"

namespace dscope::kernels::cuda {
namespace {

struct Add {
  __device__ float operator()(float a, float b) const { return a + b; }
};
struct Sub {
  __device__ float operator()(float a, float b) const { return a - b; }
};
struct Mul {
  __device__ float operator()(float a, float b) const { return a * b; }
};
struct Div {
  __device__ float operator()(float a, float b) const { return a / b; }
};

template <typename Op>
__global__ void binary_dense_kernel(std::int64_t n, const float* a, const float* b, float* y, Op op) {
  DSCOPE_GRID_STRIDE_LOOP(i, n) {
    y[i] = op(a[i], b[i]);
  }
}

template <typename Op>
__global__ void binary_broadcast_kernel(BroadcastGeometry g, std::int64_t n, const float* a, const float* b,
                                        float* y, Op op) {
  DSCOPE_GRID_STRIDE_LOOP(i, n) {
    std::int64_t rest = i, a_at = 0, b_at = 0;
    for (int axis = g.rank - 1; axis >= 0; --axis) {
      const std::int64_t index = rest % g.shape[axis];
      rest /= g.shape[axis];
      a_at += index * g.a_strides[axis];
      b_at += index * g.b_strides[axis];
    }
    y[i] = op(a[a_at], b[b_at]);
  }
}

// Whether `strides` are the dense row-major strides of the output shape.
bool is_dense(const BroadcastGeometry& g, const std::int64_t* strides) {
  std::int64_t expected = 1;
  for (int axis = g.rank - 1; axis >= 0; --axis) {
    if (g.shape[axis] != 1 && strides[axis] != expected) return false;
    expected *= g.shape[axis];
  }
  return true;
}

template <typename Op>
void binary(const char* name, const BroadcastGeometry& g, const float* a, const float* b, float* y) {
  std::int64_t n = 1;
  for (int axis = 0; axis < g.rank; ++axis)
    n *= g.shape[axis];
  if (n == 0) return;
  if (is_dense(g, g.a_strides) && is_dense(g, g.b_strides))
    binary_dense_kernel<<<blocks_for(n), kThreadsPerBlock, 0, current_stream()>>>(n, a, b, y, Op{});
  else
    binary_broadcast_kernel<<<blocks_for(n), kThreadsPerBlock, 0, current_stream()>>>(g, n, a, b, y, Op{});
  check_launch(name);
}

template <typename Map>
__global__ void unary_kernel(std::int64_t n, const float* x, float* y, Map map) {
  DSCOPE_GRID_STRIDE_LOOP(i, n) {
    y[i] = map(x[i]);
  }
}

template <typename Map>
void unary(const char* name, std::int64_t n, const float* x, float* y, Map map) {
  if (n == 0) return;
  unary_kernel<<<blocks_for(n), kThreadsPerBlock, 0, current_stream()>>>(n, x, y, map);
  check_launch(name);
}

struct AddScalar {
  float scalar;
  __device__ float operator()(float x) const { return x + scalar; }
};
struct MulScalar {
  float scalar;
  __device__ float operator()(float x) const { return x * scalar; }
};
struct Negate {
  __device__ float operator()(float x) const { return -x; }
};
struct Exponential {
  __device__ float operator()(float x) const { return expf(x); }
};
struct Logarithm {
  __device__ float operator()(float x) const { return logf(x); }
};

template <typename T>
__global__ void axpy_kernel(std::int64_t n, float alpha, const T* x, T* y) {
  DSCOPE_GRID_STRIDE_LOOP(i, n) {
    store_float(&y[i], as_float(y[i]) + alpha * as_float(x[i]));
  }
}

}  // namespace

void add(const BroadcastGeometry& g, const float* a, const float* b, float* y) {
  binary<Add>("add", g, a, b, y);
}
void sub(const BroadcastGeometry& g, const float* a, const float* b, float* y) {
  binary<Sub>("sub", g, a, b, y);
}
void mul(const BroadcastGeometry& g, const float* a, const float* b, float* y) {
  binary<Mul>("mul", g, a, b, y);
}
void div(const BroadcastGeometry& g, const float* a, const float* b, float* y) {
  binary<Div>("div", g, a, b, y);
}

void add_scalar(std::int64_t n, const float* x, float scalar, float* y) {
  unary("add_scalar", n, x, y, AddScalar{scalar});
}
void mul_scalar(std::int64_t n, const float* x, float scalar, float* y) {
  unary("mul_scalar", n, x, y, MulScalar{scalar});
}
void neg(std::int64_t n, const float* x, float* y) {
  unary("neg", n, x, y, Negate{});
}
void exp(std::int64_t n, const float* x, float* y) {
  unary("exp", n, x, y, Exponential{});
}
void log(std::int64_t n, const float* x, float* y) {
  unary("log", n, x, y, Logarithm{});
}

void axpy(std::int64_t n, float alpha, const float* x, float* y) {
  if (n == 0) return;
  axpy_kernel<float><<<blocks_for(n), kThreadsPerBlock, 0, current_stream()>>>(n, alpha, x, y);
  check_launch("axpy");
}
void axpy(std::int64_t n, float alpha, const BFloat16* x, BFloat16* y) {
  if (n == 0) return;
  axpy_kernel<BFloat16><<<blocks_for(n), kThreadsPerBlock, 0, current_stream()>>>(n, alpha, x, y);
  check_launch("axpy");
}

}  // namespace dscope::kernels::cuda
