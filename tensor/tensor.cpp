// Tensor core: creation, geometry, element access, device transfer and the raw (non-differentiable) views.
#include "tensor/tensor.h"

#include <algorithm>
#include <cstring>

#include "kernels/convert.h"
#include "kernels/copy.h"
#include "tensor/dispatch.h"
#include "tensor/random.h"

namespace dscope {
namespace {

std::shared_ptr<TensorImpl> new_impl(const Shape& shape, DType dtype, Device device) {
  for (std::int64_t extent : shape)
    DSCOPE_CHECK(extent >= 0, ShapeError, "tensor: negative extent in shape ", shape);
  auto impl = std::make_shared<TensorImpl>();
  impl->storage =
      std::make_shared<Storage>(static_cast<std::size_t>(shape.numel()) * element_size(dtype), device);
  impl->shape = shape;
  impl->strides = contiguous_strides(shape);
  impl->dtype = dtype;
  return impl;
}

// Copies `bytes` between any two devices (host memory is the CPU device).
void copy_bytes(void* destination, Device to, const void* source, Device from, std::size_t bytes) {
  if (bytes == 0) return;
  if (to.is_cpu() && from.is_cpu()) {
    std::memcpy(destination, source, bytes);
    return;
  }
  if constexpr (detail::kCudaBuilt) {
    using Direction = kernels::cuda::CopyDirection;
    const Direction direction = from.is_cpu() ? Direction::HostToDevice
                                : to.is_cpu() ? Direction::DeviceToHost
                                              : Direction::DeviceToDevice;
    try {
      DSCOPE_CUDA_RUNTIME(device_copy, destination, source, bytes, direction);
    } catch (const std::runtime_error& error) {
      throw CudaError(detail::concat("copy from ", from, " to ", to, ": ", error.what()));
    }
  } else {
    detail::throw_cuda_unavailable("copy");
  }
}

template <typename T>
void fill_with(const Tensor& tensor, T value) {
  DSCOPE_DISPATCH(tensor.device(), fill<T>, tensor.numel(), value, tensor.data<T>());
}

}  // namespace

const TensorImpl& Tensor::checked() const {
  if (impl_ == nullptr)
    throw Error("tensor: use of an undefined tensor (default-constructed or an absent gradient)");
  return *impl_;
}

void Tensor::check_dtype(DType expected) const {
  DSCOPE_CHECK(dtype() == expected, DTypeError, "tensor: element access as ", dtype_name(expected),
               " but the tensor holds ", dtype_name(dtype()), " (shape ", shape(), ")");
}

Tensor Tensor::empty(const Shape& shape, DType dtype, Device device) {
  return Tensor(new_impl(shape, dtype, device));
}

Tensor Tensor::zeros(const Shape& shape, DType dtype, Device device) {
  Tensor tensor = empty(shape, dtype, device);
  if (dtype == DType::Float32)
    fill_with(tensor, 0.0f);
  else if (dtype == DType::Int64)
    fill_with(tensor, std::int64_t{0});
  else if (dtype == DType::BFloat16)
    fill_with(tensor, kernels::to_bfloat16(0.0f));
  else
    throw DTypeError(detail::concat("zeros: ", dtype_name(dtype), " tensors are not supported yet"));
  return tensor;
}

Tensor Tensor::ones(const Shape& shape, DType dtype, Device device) {
  Tensor tensor = empty(shape, dtype, device);
  if (dtype == DType::Float32)
    fill_with(tensor, 1.0f);
  else if (dtype == DType::Int64)
    fill_with(tensor, std::int64_t{1});
  else if (dtype == DType::BFloat16)
    fill_with(tensor, kernels::to_bfloat16(1.0f));
  else
    throw DTypeError(detail::concat("ones: ", dtype_name(dtype), " tensors are not supported yet"));
  return tensor;
}

Tensor Tensor::full(const Shape& shape, float value, Device device) {
  Tensor tensor = empty(shape, DType::Float32, device);
  fill_with(tensor, value);
  return tensor;
}

Tensor Tensor::scalar(float value, Device device) {
  return full(Shape{}, value, device);
}

Tensor Tensor::from_vector(const std::vector<float>& values, const Shape& shape, Device device) {
  DSCOPE_CHECK(static_cast<std::int64_t>(values.size()) == shape.numel(), ShapeError,
               "from_vector: ", values.size(), " values cannot fill shape ", shape, " (", shape.numel(),
               " elements)");
  Tensor tensor = empty(shape, DType::Float32, device);
  copy_bytes(tensor.raw_data(), device, values.data(), Device::cpu(), values.size() * sizeof(float));
  return tensor;
}

Tensor Tensor::from_int64(const std::vector<std::int64_t>& values, const Shape& shape, Device device) {
  DSCOPE_CHECK(static_cast<std::int64_t>(values.size()) == shape.numel(), ShapeError,
               "from_vector: ", values.size(), " values cannot fill shape ", shape, " (", shape.numel(),
               " elements)");
  Tensor tensor = empty(shape, DType::Int64, device);
  copy_bytes(tensor.raw_data(), device, values.data(), Device::cpu(), values.size() * sizeof(std::int64_t));
  return tensor;
}

Tensor Tensor::randn(const Shape& shape, Generator& generator, float mean, float stddev) {
  std::vector<float> values(static_cast<std::size_t>(shape.numel()));
  for (float& value : values)
    value = mean + stddev * generator.normal();
  return from_vector(values, shape);
}

Tensor Tensor::uniform(const Shape& shape, Generator& generator, float low, float high) {
  std::vector<float> values(static_cast<std::size_t>(shape.numel()));
  for (float& value : values)
    value = low + (high - low) * generator.uniform();
  return from_vector(values, shape);
}

std::int64_t Tensor::size(std::int64_t axis) const {
  return shape()[normalize_axis(axis, rank(), "size")];
}

bool Tensor::is_contiguous() const {
  std::int64_t expected = 1;
  for (std::int64_t axis = rank() - 1; axis >= 0; --axis) {
    const std::int64_t extent = shape()[axis];
    if (extent != 1 && strides()[static_cast<std::size_t>(axis)] != expected) return false;
    expected *= extent;
  }
  return true;
}

void* Tensor::raw_data() const {
  return static_cast<char*>(checked().storage->data()) +
         static_cast<std::size_t>(checked().offset) * element_size(checked().dtype);
}

template <typename T>
T Tensor::item() const {
  DSCOPE_CHECK(numel() == 1, ShapeError, "item: needs a tensor of one element, got shape ", shape());
  return to_vector<T>()[0];
}

template <typename T>
std::vector<T> Tensor::to_vector() const {
  check_dtype(dtype_of<T>());
  const Tensor dense = is_contiguous() ? *this : dense_copy(*this);
  std::vector<T> values(static_cast<std::size_t>(numel()));
  copy_bytes(values.data(), Device::cpu(), dense.raw_data(), device(), values.size() * sizeof(T));
  return values;
}

template float Tensor::item<float>() const;
template std::int64_t Tensor::item<std::int64_t>() const;
template std::vector<float> Tensor::to_vector<float>() const;
template std::vector<std::int64_t> Tensor::to_vector<std::int64_t>() const;
template std::vector<BFloat16> Tensor::to_vector<BFloat16>() const;

Tensor Tensor::to(Device target) const {
  if (device() == target) return *this;
  const Tensor dense = is_contiguous() ? *this : dense_copy(*this);
  Tensor moved = empty(shape(), dtype(), target);
  copy_bytes(moved.raw_data(), target, dense.raw_data(), device(),
             static_cast<std::size_t>(numel()) * element_size(dtype()));
  return moved;
}

Tensor Tensor::detach() const {
  auto view = std::make_shared<TensorImpl>();
  view->storage = checked().storage;
  view->offset = offset();
  view->shape = shape();
  view->strides = strides();
  view->dtype = dtype();
  return Tensor(view);
}

Tensor Tensor::as_strided(const Shape& new_shape, const Strides& new_strides, std::int64_t new_offset) const {
  DSCOPE_CHECK(static_cast<std::int64_t>(new_strides.size()) == new_shape.rank(), ShapeError,
               "as_strided: ", new_strides.size(), " strides for shape ", new_shape);
  // Bounds: the furthest element the view can reach must lie inside the storage.
  std::int64_t last = new_offset;
  for (std::int64_t axis = 0; axis < new_shape.rank(); ++axis) {
    if (new_shape[axis] == 0) {
      last = new_offset;
      break;
    }
    last += (new_shape[axis] - 1) * new_strides[static_cast<std::size_t>(axis)];
  }
  const auto capacity = static_cast<std::int64_t>(checked().storage->bytes() / element_size(dtype()));
  DSCOPE_CHECK(new_offset >= 0 && (new_shape.numel() == 0 || last < capacity), ShapeError,
               "as_strided: view ", new_shape, " at offset ", new_offset, " runs past a storage of ",
               capacity, " elements");
  Tensor view = detach();
  view.impl()->shape = new_shape;
  view.impl()->strides = new_strides;
  view.impl()->offset = new_offset;
  return view;
}

Tensor& Tensor::set_requires_grad(bool requires_grad) {
  DSCOPE_CHECK(is_leaf(), AutogradError,
               "set_requires_grad: only leaf tensors can be marked; this one was computed by ",
               "an operation and requires a gradient because its inputs do");
  DSCOPE_CHECK(!requires_grad || dtype() == DType::Float32, DTypeError,
               "set_requires_grad: only float32 tensors can require gradients, got ", dtype_name(dtype()));
  impl_->requires_grad = requires_grad;
  return *this;
}

Tensor Tensor::grad() const {
  return checked().grad ? Tensor(checked().grad) : Tensor();
}

void Tensor::set_grad(const Tensor& grad) {
  if (grad.defined())
    DSCOPE_CHECK(grad.shape() == shape(), ShapeError, "set_grad: gradient of shape ", grad.shape(),
                 " for a tensor of shape ", shape());
  checked();
  impl_->grad = grad.impl_ptr();
}

Tensor dense_copy(const Tensor& x) {
  Tensor out = Tensor::empty(x.shape(), x.dtype(), x.device());
  copy_elements(x, out);
  return out;
}

Tensor dense_as(const Tensor& x, DType dtype) {
  const Tensor dense = x.is_contiguous() ? x.detach() : dense_copy(x);
  if (dense.dtype() == dtype) return dense;
  Tensor y = Tensor::empty(x.shape(), dtype, x.device());
  if (x.dtype() == DType::Float32 && dtype == DType::BFloat16)
    DSCOPE_DISPATCH(x.device(), float_to_bfloat16, x.numel(), dense.data<float>(), y.data<BFloat16>());
  else if (x.dtype() == DType::BFloat16 && dtype == DType::Float32)
    DSCOPE_DISPATCH(x.device(), bfloat16_to_float, x.numel(), dense.data<BFloat16>(), y.data<float>());
  else
    throw DTypeError(detail::concat("convert: no conversion from ", dtype_name(x.dtype()), " to ",
                                    dtype_name(dtype), " (shape ", x.shape(), ")"));
  return y;
}

void copy_elements(const Tensor& source, const Tensor& destination) {
  DSCOPE_CHECK(source.shape() == destination.shape(), ShapeError, "copy: source ", source.shape(),
               " and destination ", destination.shape(), " differ in shape");
  DSCOPE_CHECK(source.dtype() == destination.dtype() && source.device() == destination.device(), DTypeError,
               "copy: source and destination differ in dtype or device");
  DSCOPE_CHECK(source.rank() <= kernels::kMaxRank, ShapeError, "copy: rank ", source.rank(),
               " is above the supported ", kernels::kMaxRank);
  kernels::CopyGeometry geometry;
  geometry.rank = static_cast<int>(source.rank());
  for (int axis = 0; axis < geometry.rank; ++axis) {
    geometry.shape[axis] = source.shape()[axis];
    geometry.src_strides[axis] = source.strides()[static_cast<std::size_t>(axis)];
    geometry.dst_strides[axis] = destination.strides()[static_cast<std::size_t>(axis)];
  }
  if (source.dtype() == DType::Float32) {
    DSCOPE_DISPATCH(source.device(), copy<float>, geometry, source.data<float>(), destination.data<float>());
  } else if (source.dtype() == DType::Int64) {
    DSCOPE_DISPATCH(source.device(), copy<std::int64_t>, geometry, source.data<std::int64_t>(),
                    destination.data<std::int64_t>());
  } else if (source.dtype() == DType::BFloat16) {
    DSCOPE_DISPATCH(source.device(), copy<BFloat16>, geometry, source.data<BFloat16>(),
                    destination.data<BFloat16>());
  } else {
    throw DTypeError(detail::concat("copy: ", dtype_name(source.dtype()), " tensors are not supported yet"));
  }
}

}  // namespace dscope
