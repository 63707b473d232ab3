// ImageLoader: batches of images from an ImageCache for training or evaluation, assembled ahead of time by
// worker threads.
//
// While the network computes on batch i, workers crop, flip, jitter and normalise batches i+1 .. i+prefetch
// into NCHW float tensors, so the training loop only waits when the workers fall behind. Each image's random
// choices come from a generator seeded by (seed, epoch, position in the epoch), never from a shared one, so
// the batches are the same whatever the number of workers and however the threads are scheduled: a run is
// reproducible, and resuming at epoch e gives the batches an uninterrupted run would have given.
#pragma once

#include <condition_variable>
#include <cstdint>
#include <exception>
#include <map>
#include <mutex>
#include <set>
#include <thread>
#include <vector>

#include "data/augment.h"
#include "data/batch_source.h"
#include "data/dataset.h"
#include "data/image_cache.h"
#include "data/image_transforms.h"

namespace dscope::data {

struct LoaderOptions {
  std::int64_t input_size = 64;  // the square side of the batches
  std::int64_t batch_size = 32;
  bool shuffle = false;         // a new order every epoch (training)
  bool balanced = false;        // draw labels equally often (implies a random order)
  double balance_power = 1.0;   // with balanced: each image drawn ∝ 1 / its label's count^power
  bool augment = false;         // random training views; otherwise the evaluation view
  AugmentOptions augmentation;  // used when augment is set; its output_size is replaced by input_size
  Normalization normalization;
  bool drop_last = false;  // drop a last, smaller batch (training with batch norm prefers full batches)
  int workers = 1;         // assembling threads; 0 assembles on the calling thread
  int prefetch = 4;        // batches assembled ahead of the one asked for
  std::uint64_t seed = 0;
};

class ImageLoader : public BatchSource {
 public:
  // The dataset's samples must all be in the cache (ValueError naming the first that is not), so a file
  // that failed to decode has to be removed from the dataset first, visibly.
  ImageLoader(const ImageCache& cache, const Dataset& dataset, LoaderOptions options);
  ~ImageLoader() override;
  ImageLoader(const ImageLoader&) = delete;
  ImageLoader& operator=(const ImageLoader&) = delete;

  std::int64_t batches_per_epoch() const override;
  std::int64_t images_per_epoch() const override;
  void start_epoch(std::int64_t epoch) override;
  // Batches are meant to be asked for in order; asking out of order works but waits for that batch.
  Batch batch(std::int64_t index) override;
  const LoaderOptions& options() const { return options_; }

 private:
  Batch assemble(std::int64_t index) const;
  void work();

  std::vector<const Image*> images_;
  std::vector<std::int64_t> labels_;
  LoaderOptions options_;

  // Shared with the workers, under mutex_.
  std::mutex mutex_;
  std::condition_variable wake_workers_, batch_ready_;
  std::vector<std::int64_t> order_;  // sample indices of the current epoch
  std::int64_t epoch_ = 0;
  std::int64_t next_to_assemble_ = 0, assemble_limit_ = 0;
  std::set<std::int64_t> in_flight_;  // batches a worker is assembling now
  std::map<std::int64_t, Batch> ready_;
  std::map<std::int64_t, std::exception_ptr> failures_;  // thrown while assembling, rethrown by batch()
  bool stopping_ = false;
  std::vector<std::thread> workers_;
};

}  // namespace dscope::data
