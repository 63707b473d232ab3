// BatchSource: what the trainer reads batches from. The data layer's loaders implement it for image
// folders and HAM10000; TensorBatchSource serves tensors already in memory (tests, synthetic tasks).
#pragma once

#include <cstdint>
#include <vector>

#include "tensor/random.h"
#include "tensor/tensor.h"

namespace dscope::data {

struct Batch {
  Tensor images;  // [N, C, H, W] float32
  Tensor labels;  // [N] int64
};

class BatchSource {
 public:
  virtual ~BatchSource() = default;
  virtual std::int64_t batches_per_epoch() const = 0;
  virtual std::int64_t images_per_epoch() const = 0;
  // Called before each epoch's first batch (a training source reshuffles here).
  virtual void start_epoch(std::int64_t epoch) = 0;
  // Batch `index` in [0, batches_per_epoch()) of the current epoch.
  virtual Batch batch(std::int64_t index) = 0;
};

// Batches drawn from images [N, C, H, W] and labels [N] held in memory. With shuffle, each epoch visits
// the images in a new order drawn from `seed` and the epoch number, so a run is reproducible and an
// epoch's order does not depend on how many epochs ran before it (which matters when resuming). Batches are
// on the CPU, as the loaders' are (tensors given on a GPU are copied to the host once): the trainer moves
// each batch to its device.
class TensorBatchSource : public BatchSource {
 public:
  TensorBatchSource(Tensor images, Tensor labels, std::int64_t batch_size, bool shuffle,
                    std::uint64_t seed = 0);
  std::int64_t batches_per_epoch() const override;
  std::int64_t images_per_epoch() const override { return images_.size(0); }
  void start_epoch(std::int64_t epoch) override;
  Batch batch(std::int64_t index) override;

 private:
  Tensor images_, labels_;
  std::int64_t batch_size_;
  bool shuffle_;
  std::uint64_t seed_;
  std::vector<std::int64_t> order_;
};

}  // namespace dscope::data
