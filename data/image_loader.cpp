#include "data/image_loader.h"

#include <algorithm>
#include <numeric>

#include "data/class_balance.h"
#include "tensor/error.h"
#include "tensor/random.h"

namespace dscope::data {

ImageLoader::ImageLoader(const ImageCache& cache, const Dataset& dataset, LoaderOptions options)
    : options_(std::move(options)) {
  DSCOPE_CHECK(
      options_.input_size >= 1 && options_.batch_size >= 1 && options_.workers >= 0 && options_.prefetch >= 0,
      ValueError, "image loader: input size ", options_.input_size, ", batch size ", options_.batch_size,
      ", workers ", options_.workers, " and prefetch ", options_.prefetch,
      " must be positive (workers and prefetch may be 0)");
  options_.augmentation.output_size = options_.input_size;
  for (const Sample& sample : dataset.samples) {
    const Image* image = cache.find(sample.path);
    DSCOPE_CHECK(image != nullptr, ValueError, "image loader: ", sample.path.string(),
                 " is not in the image cache (did it fail to decode? remove it with Dataset::without)");
    images_.push_back(image);
    labels_.push_back(sample.label);
  }
  DSCOPE_CHECK(!images_.empty(), ValueError, "image loader: the dataset has no images");
  order_.resize(images_.size());
  std::iota(order_.begin(), order_.end(), 0);
  for (int w = 0; w < options_.workers; ++w)
    workers_.emplace_back([this] { work(); });
}

ImageLoader::~ImageLoader() {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    stopping_ = true;
  }
  wake_workers_.notify_all();
  for (std::thread& worker : workers_)
    worker.join();
}

std::int64_t ImageLoader::images_per_epoch() const {
  const auto images = static_cast<std::int64_t>(images_.size());
  return options_.drop_last && images >= options_.batch_size
             ? images / options_.batch_size * options_.batch_size
             : images;
}

std::int64_t ImageLoader::batches_per_epoch() const {
  return (images_per_epoch() + options_.batch_size - 1) / options_.batch_size;
}

void ImageLoader::start_epoch(std::int64_t epoch) {
  std::vector<std::int64_t> order;
  if (options_.balanced) {
    order = balanced_epoch(labels_, static_cast<std::int64_t>(images_.size()), options_.seed, epoch,
                           options_.balance_power);
  } else {
    order.resize(images_.size());
    std::iota(order.begin(), order.end(), 0);
    if (options_.shuffle) {
      Generator generator(options_.seed * 0x9E3779B97F4A7C15ULL + static_cast<std::uint64_t>(epoch) + 1);
      for (std::size_t i = order.size(); i > 1; --i)
        std::swap(order[i - 1], order[generator.below(i)]);
    }
  }
  std::unique_lock<std::mutex> lock(mutex_);
  // Workers read order_ while assembling: let those in flight finish before replacing it.
  batch_ready_.wait(lock, [this] { return in_flight_.empty(); });
  order_ = std::move(order);
  epoch_ = epoch;
  ready_.clear();
  failures_.clear();
  next_to_assemble_ = 0;
  assemble_limit_ = std::min(batches_per_epoch(), static_cast<std::int64_t>(options_.prefetch) + 1);
  lock.unlock();
  wake_workers_.notify_all();
}

Batch ImageLoader::assemble(std::int64_t index) const {
  const std::int64_t first = index * options_.batch_size;
  const std::int64_t count = std::min(options_.batch_size, images_per_epoch() - first);
  const std::int64_t side = options_.input_size, plane = 3 * side * side;
  Tensor images = Tensor::empty({count, 3, side, side});
  std::vector<std::int64_t> labels(static_cast<std::size_t>(count));
  float* out = images.data<float>();
  for (std::int64_t i = 0; i < count; ++i) {
    const std::int64_t sample = order_[static_cast<std::size_t>(first + i)];
    const Image& source = *images_[static_cast<std::size_t>(sample)];
    labels[static_cast<std::size_t>(i)] = labels_[static_cast<std::size_t>(sample)];
    if (options_.augment) {
      // One generator per (seed, epoch, position): independent of which thread assembles the image.
      const auto position = static_cast<std::uint64_t>(first + i);
      Generator generator(options_.seed ^ (0xD6E8FEB86659FD93ULL * (static_cast<std::uint64_t>(epoch_) + 1)) ^
                          (0x9E3779B97F4A7C15ULL * (position + 1)));
      to_chw(augment(source, options_.augmentation, generator), options_.normalization, out + i * plane);
    } else {
      to_chw(evaluation_view(source, side), options_.normalization, out + i * plane);
    }
  }
  return {images, Tensor::from_int64(labels, {count})};
}

void ImageLoader::work() {
  std::unique_lock<std::mutex> lock(mutex_);
  while (true) {
    wake_workers_.wait(lock, [this] { return stopping_ || next_to_assemble_ < assemble_limit_; });
    if (stopping_) return;
    const std::int64_t index = next_to_assemble_++;
    in_flight_.insert(index);
    lock.unlock();
    // An exception must not escape the thread (that would end the program): it is handed to batch().
    Batch batch;
    std::exception_ptr failure;
    try {
      batch = assemble(index);
    } catch (...) {
      failure = std::current_exception();
    }
    lock.lock();
    in_flight_.erase(index);
    if (failure) failures_.emplace(index, failure);
    ready_.emplace(index, std::move(batch));
    batch_ready_.notify_all();
  }
}

Batch ImageLoader::batch(std::int64_t index) {
  DSCOPE_CHECK(index >= 0 && index < batches_per_epoch(), ValueError, "image loader: batch ", index,
               " is outside the epoch's ", batches_per_epoch(), " batches");
  if (workers_.empty()) return assemble(index);
  std::unique_lock<std::mutex> lock(mutex_);
  // Let the workers run up to `prefetch` batches past this one; a jump ahead skips the batches between.
  assemble_limit_ = std::max(assemble_limit_, std::min(batches_per_epoch(), index + 1 + options_.prefetch));
  next_to_assemble_ = std::max(next_to_assemble_, index);
  wake_workers_.notify_all();
  // Wait until it is ready, unless nobody will make it (it was taken before, or skipped by a jump).
  const auto nobody_will = [&] {
    return index < next_to_assemble_ && in_flight_.count(index) == 0 && ready_.count(index) == 0;
  };
  batch_ready_.wait(lock, [&] { return ready_.count(index) > 0 || nobody_will(); });
  const auto found = ready_.find(index);
  if (found == ready_.end()) {
    lock.unlock();
    return assemble(index);
  }
  Batch batch = std::move(found->second);
  ready_.erase(found);
  if (const auto failed = failures_.find(index); failed != failures_.end()) {
    const std::exception_ptr failure = failed->second;
    failures_.erase(failed);
    std::rethrow_exception(failure);
  }
  return batch;
}

}  // namespace dscope::data
