#include "data/batch_source.h"

#include <algorithm>
#include <cstring>
#include <numeric>

namespace dscope::data {

TensorBatchSource::TensorBatchSource(Tensor images, Tensor labels, std::int64_t batch_size, bool shuffle,
                                     std::uint64_t seed)
    : images_(images.contiguous().to(Device::cpu())),
      labels_(labels.contiguous().to(Device::cpu())),
      batch_size_(batch_size),
      shuffle_(shuffle),
      seed_(seed) {
  DSCOPE_CHECK(images_.rank() == 4 && images_.dtype() == DType::Float32, ShapeError,
               "TensorBatchSource: images must be float32 [N, C, H, W], got ", images_.shape());
  DSCOPE_CHECK(labels_.rank() == 1 && labels_.dtype() == DType::Int64 && labels_.size(0) == images_.size(0),
               ShapeError, "TensorBatchSource: labels must be int64 [", images_.size(0), "], got ",
               labels_.shape());
  DSCOPE_CHECK(batch_size > 0 && images_.size(0) > 0, ValueError,
               "TensorBatchSource: needs a positive batch size and at least one image (batch size ",
               batch_size, ", images ", images_.size(0), ")");
  order_.resize(static_cast<std::size_t>(images_.size(0)));
  std::iota(order_.begin(), order_.end(), 0);
}

std::int64_t TensorBatchSource::batches_per_epoch() const {
  return (images_.size(0) + batch_size_ - 1) / batch_size_;
}

void TensorBatchSource::start_epoch(std::int64_t epoch) {
  std::iota(order_.begin(), order_.end(), 0);
  if (!shuffle_) return;
  Generator generator(seed_ * 1000003u + static_cast<std::uint64_t>(epoch));
  for (std::size_t i = order_.size(); i > 1; --i)
    std::swap(order_[i - 1], order_[generator.below(i)]);
}

Batch TensorBatchSource::batch(std::int64_t index) {
  DSCOPE_CHECK(index >= 0 && index < batches_per_epoch(), ValueError, "TensorBatchSource: batch ", index,
               " of ", batches_per_epoch());
  const std::int64_t first = index * batch_size_;
  const std::int64_t count = std::min(batch_size_, images_.size(0) - first);
  const std::int64_t image_size = images_.numel() / images_.size(0);
  Shape shape = images_.shape();
  shape[0] = count;
  Batch out{Tensor::empty(shape), Tensor::empty({count}, DType::Int64)};
  const float* source = images_.data<float>();
  const std::int64_t* source_labels = labels_.data<std::int64_t>();
  float* destination = out.images.data<float>();
  std::int64_t* destination_labels = out.labels.data<std::int64_t>();
  for (std::int64_t i = 0; i < count; ++i) {
    const std::int64_t from = order_[static_cast<std::size_t>(first + i)];
    std::memcpy(destination + i * image_size, source + from * image_size,
                sizeof(float) * static_cast<std::size_t>(image_size));
    destination_labels[i] = source_labels[from];
  }
  return out;
}

}  // namespace dscope::data
