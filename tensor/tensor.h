// Tensor: an n-dimensional view (shape, strides, offset) of a shared Storage, plus its autograd state.
//
// A Tensor is a cheap handle: copying it shares the same TensorImpl, as in PyTorch. Views (reshape,
// permute, narrow, expand) make a new TensorImpl over the same Storage, so they cost no copy; strides
// are in elements and may be 0 (expand, for broadcasting). Kernels receive raw pointers from data<T>(),
// which already includes the offset.
//
// Differentiable methods (the views, contiguous, backward) are declared here for PyTorch-like spelling
// (x.reshape(...), loss.backward()) but defined beside their backward in tensor/ops/ and tensor/autograd/,
// so this core file knows nothing about the graph beyond the fields it stores.
#pragma once

#include <cstdint>
#include <memory>
#include <ostream>
#include <vector>

#include "tensor/device.h"
#include "tensor/dtype.h"
#include "tensor/error.h"
#include "tensor/shape.h"
#include "tensor/storage.h"

namespace dscope {

namespace autograd {
class Node;
}
class Generator;

struct TensorImpl {
  std::shared_ptr<Storage> storage;
  std::int64_t offset = 0;  // in elements, from the start of storage
  Shape shape;
  Strides strides;  // in elements, one per dimension
  DType dtype = DType::Float32;

  // Autograd state. A leaf with requires_grad collects its gradient in `grad`; a tensor computed from
  // such leaves has `grad_fn`, the graph node that turns its gradient into its inputs' gradients.
  bool requires_grad = false;
  std::shared_ptr<autograd::Node> grad_fn;
  std::shared_ptr<TensorImpl> grad;
  // The node that accumulates into this leaf's grad, shared by every op that uses the leaf; weak, because
  // the node holds the leaf strongly and the graph, not the leaf, decides how long the node lives.
  std::weak_ptr<autograd::Node> grad_accumulator;
};

class Tensor {
 public:
  Tensor() = default;  // an undefined tensor: no storage; defined() is false
  explicit Tensor(std::shared_ptr<TensorImpl> impl) : impl_(std::move(impl)) {}

  // ---- Creation (no autograd history; requires_grad is false) ----
  static Tensor empty(const Shape& shape, DType dtype = DType::Float32, Device device = Device::cpu());
  static Tensor zeros(const Shape& shape, DType dtype = DType::Float32, Device device = Device::cpu());
  static Tensor ones(const Shape& shape, DType dtype = DType::Float32, Device device = Device::cpu());
  static Tensor full(const Shape& shape, float value, Device device = Device::cpu());
  static Tensor scalar(float value, Device device = Device::cpu());  // rank 0
  // Copies `values` (row-major; size must equal shape.numel()) into a new tensor.
  static Tensor from_vector(const std::vector<float>& values, const Shape& shape,
                            Device device = Device::cpu());
  // The same for int64 elements (class labels).
  static Tensor from_int64(const std::vector<std::int64_t>& values, const Shape& shape,
                           Device device = Device::cpu());
  // Seeded random fills; the same generator state gives the same values on every machine.
  static Tensor randn(const Shape& shape, Generator& generator, float mean = 0.0f, float stddev = 1.0f);
  static Tensor uniform(const Shape& shape, Generator& generator, float low = 0.0f, float high = 1.0f);

  // ---- Geometry ----
  bool defined() const { return impl_ != nullptr; }
  const Shape& shape() const { return checked().shape; }
  // Extent of one dimension; negative axes count from the end.
  std::int64_t size(std::int64_t axis) const;
  std::int64_t rank() const { return shape().rank(); }
  std::int64_t numel() const { return shape().numel(); }
  const Strides& strides() const { return checked().strides; }
  std::int64_t offset() const { return checked().offset; }
  DType dtype() const { return checked().dtype; }
  Device device() const { return checked().storage->device(); }
  // True when the elements are laid out densely in row-major order (views of size-1 dims excepted).
  bool is_contiguous() const;

  // ---- Element access ----
  // Pointer to the first element (offset applied), on the tensor's device. Throws DTypeError if T does not
  // match dtype(). Only valid for the strides the tensor has: call contiguous() first if a kernel needs
  // dense.
  template <typename T>
  T* data() const {
    check_dtype(dtype_of<T>());
    return static_cast<T*>(checked().storage->data()) + checked().offset;
  }
  void* raw_data() const;
  // The single element of a one-element tensor, copied to the host.
  template <typename T>
  T item() const;
  // All elements in row-major order, copied to the host.
  template <typename T>
  std::vector<T> to_vector() const;

  // ---- Devices and copies (no autograd history) ----
  // This tensor on `device`: itself if already there, else a dense copy.
  Tensor to(Device device) const;
  // A view of the same storage with no grad_fn and requires_grad false: cuts the graph.
  Tensor detach() const;
  // A raw view with the given geometry over this tensor's storage. No checks beyond bounds, no autograd:
  // for ops that build their own views and record their own backward.
  Tensor as_strided(const Shape& shape, const Strides& strides, std::int64_t offset) const;

  // ---- Autograd (see tensor/autograd/) ----
  bool requires_grad() const { return checked().requires_grad; }
  // Marks a leaf as wanting a gradient. Throws AutogradError on a non-leaf (its flag comes from its inputs).
  Tensor& set_requires_grad(bool requires_grad);
  bool is_leaf() const { return checked().grad_fn == nullptr; }
  const std::shared_ptr<autograd::Node>& grad_fn() const { return checked().grad_fn; }
  // The gradient accumulated into this leaf by backward(); undefined until the first backward.
  Tensor grad() const;
  void set_grad(const Tensor& grad);
  // Backpropagates from this tensor. A scalar (one element) needs no argument: its gradient is 1. A larger
  // tensor needs `grad_output` of its own shape. The graph is freed afterwards unless retain_graph is true.
  void backward(const Tensor& grad_output = Tensor(), bool retain_graph = false) const;

  // ---- Differentiable views (defined in tensor/ops/views.cpp) ----
  Tensor reshape(const Shape& shape) const;  // -1 in one place infers that extent; copies if not viewable
  Tensor view(const Shape& shape) const;     // like reshape but never copies: throws ShapeError instead
  Tensor permute(const std::vector<std::int64_t>& order) const;
  Tensor transpose(std::int64_t axis_a, std::int64_t axis_b) const;
  Tensor narrow(std::int64_t axis, std::int64_t start, std::int64_t length) const;
  Tensor expand(const Shape& shape) const;  // broadcast size-1 dims to `shape` with stride 0
  Tensor flatten(std::int64_t start_axis = 0, std::int64_t end_axis = -1) const;
  Tensor unsqueeze(std::int64_t axis) const;
  Tensor squeeze(std::int64_t axis) const;
  Tensor contiguous() const;  // itself when already contiguous, else a dense copy (gradient passes through)

  TensorImpl* impl() const { return impl_.get(); }
  const std::shared_ptr<TensorImpl>& impl_ptr() const { return impl_; }
  // Two handles to the same tensor (not equal values).
  bool same(const Tensor& other) const { return impl_ == other.impl_; }

 private:
  const TensorImpl& checked() const;
  void check_dtype(DType expected) const;

  std::shared_ptr<TensorImpl> impl_;
};

// A dense, row-major copy of x on the same device, without autograd history. The building block of
// contiguous(), to() and clone-like operations.
Tensor dense_copy(const Tensor& x);
// x's values as a dense tensor of `dtype`, without autograd history: x itself (detached) when it is already
// dense and of that dtype, else a copy, converted between float32 and bfloat16 where they differ (rounded to
// nearest, ties to even, when narrowing: kernels/bfloat16.h). How ops that compute in float32 read bfloat16
// operands and store bfloat16 results (mixed precision: tensor/autocast.h). Throws DTypeError for another
// pair of dtypes.
Tensor dense_as(const Tensor& x, DType dtype);
// Copies the elements of `source` into `destination` (same shape, dtype and device; any strides, but no
// two destination elements may share memory). No autograd: for ops that assemble their outputs.
void copy_elements(const Tensor& source, const Tensor& destination);

// Prints values (abbreviated past a few thousand elements), shape, dtype, device and grad_fn.
std::ostream& operator<<(std::ostream& out, const Tensor& tensor);

}  // namespace dscope
