// The image cache (decode once, failures reported, disk cache reused and rebuilt when stale or corrupt)
// and the prefetching loader (batch shapes and labels, determinism whatever the number of workers).
#include <gtest/gtest.h>

#include <fstream>

#include "data/image_cache.h"
#include "data/image_loader.h"
#include "tensor/error.h"
#include "tests/data/temp_folder.h"
#include "tests/support/expect_error.h"

namespace dscope::data {
namespace {

// Two labels of flat images, red for "a" and blue for "b", of varied sizes, plus one corrupt file.
Dataset make_folder(const testing::TempFolder& root, int per_label) {
  for (int i = 0; i < per_label; ++i) {
    root.write_flat_image("a/" + std::to_string(i) + ".png", 40 + i, 30, 200, 0, 0);
    root.write_flat_image("b/" + std::to_string(i) + ".jpg", 30, 40 + i, 0, 0, 200);
  }
  return import_label_folders(root.path());
}

CacheOptions cache_options(std::int64_t shorter_side, int threads = 0, std::filesystem::path file = {}) {
  CacheOptions options;
  options.shorter_side = shorter_side;
  options.threads = threads;
  options.file = std::move(file);
  return options;
}

std::vector<float> values(const Tensor& tensor) {
  const float* data = tensor.data<float>();
  return std::vector<float>(data, data + tensor.numel());
}

TEST(ImageCache, DecodesEveryImageAndReportsTheOnesThatFail) {
  testing::TempFolder root;
  make_folder(root, 3);
  root.write_text("a/broken.jpg", "this is not a JPEG");
  const Dataset dataset = import_label_folders(root.path());
  ASSERT_EQ(dataset.samples.size(), 7u);
  const ImageCache cache = ImageCache::build(dataset, cache_options(12, 2));
  EXPECT_EQ(cache.size(), 6);
  ASSERT_EQ(cache.failures().size(), 1u);
  EXPECT_NE(cache.failures()[0].where.find("broken.jpg"), std::string::npos);
  const Image* image = cache.find(root / "a/0.png");
  ASSERT_NE(image, nullptr);
  EXPECT_EQ(image->height, 12);  // 40×30 → 16×12
  EXPECT_EQ(image->width, 16);
  EXPECT_EQ(cache.find(root / "a/broken.jpg"), nullptr);
  const Dataset usable = dataset.without(cache.failures());
  EXPECT_EQ(usable.samples.size(), 6u);
  // The loader refuses a dataset that still lists the broken file, naming it.
  testing::expect_error<ValueError>([&] { ImageLoader(cache, dataset, {}); }, {"broken.jpg"});
}

TEST(ImageCache, DiskCacheIsReusedAndRebuiltWhenStaleOrCorrupt) {
  testing::TempFolder root;
  const Dataset dataset = make_folder(root, 2);
  CacheOptions options = cache_options(10, 1, root / "cache.bin");
  const ImageCache first = ImageCache::build(dataset, options);
  EXPECT_EQ(first.decoded(), 4);
  EXPECT_TRUE(std::filesystem::exists(options.file));
  const ImageCache second = ImageCache::build(dataset, options);
  EXPECT_EQ(second.decoded(), 0);
  EXPECT_EQ(second.from_disk(), 4);
  EXPECT_EQ(second.find(root / "b/1.jpg")->pixels, first.find(root / "b/1.jpg")->pixels);

  // A changed file is decoded again; the others still come from disk.
  root.write_flat_image("a/1.png", 50, 50, 0, 255, 0);
  const ImageCache third = ImageCache::build(dataset, options);
  EXPECT_EQ(third.decoded(), 1);
  EXPECT_EQ(third.find(root / "a/1.png")->at(0, 0, 1), 255);

  // Another size, or a truncated file: rebuilt, and the note says why.
  options.shorter_side = 8;
  EXPECT_NE(ImageCache::build(dataset, options).note().find("shorter side 10"), std::string::npos);
  const auto size = std::filesystem::file_size(options.file);
  std::filesystem::resize_file(options.file, size / 2);
  const ImageCache rebuilt = ImageCache::build(dataset, options);
  EXPECT_NE(rebuilt.note().find("truncated"), std::string::npos) << rebuilt.note();
  EXPECT_EQ(rebuilt.decoded(), 4);
  EXPECT_EQ(std::filesystem::file_size(options.file), size);
  root.write_text("cache.bin", "garbage");
  EXPECT_NE(ImageCache::build(dataset, options).note().find("not a dscope image cache"), std::string::npos);
}

TEST(ImageLoader, BatchesHaveTheRightShapesLabelsAndValues) {
  testing::TempFolder root;
  const Dataset dataset = make_folder(root, 5);
  const ImageCache cache = ImageCache::build(dataset, cache_options(9));
  LoaderOptions options;
  options.input_size = 8;
  options.batch_size = 4;
  options.normalization = {{0, 0, 0}, {1, 1, 1}};
  ImageLoader loader(cache, dataset, options);
  EXPECT_EQ(loader.batches_per_epoch(), 3);  // 10 images: 4 + 4 + 2
  loader.start_epoch(1);
  std::int64_t images = 0;
  for (std::int64_t b = 0; b < loader.batches_per_epoch(); ++b) {
    const Batch batch = loader.batch(b);
    const std::int64_t count = batch.labels.size(0);
    EXPECT_EQ(batch.images.shape(), Shape({count, 3, 8, 8}));
    for (std::int64_t i = 0; i < count; ++i) {
      const std::int64_t label = batch.labels.data<std::int64_t>()[i];
      // Red images are label a (0), blue ones b (1): the pixel at the centre says which.
      const float red = batch.images.data<float>()[((i * 3 + 0) * 8 + 4) * 8 + 4];
      const float blue = batch.images.data<float>()[((i * 3 + 2) * 8 + 4) * 8 + 4];
      EXPECT_EQ(label, red > blue ? 0 : 1);
    }
    images += count;
  }
  EXPECT_EQ(images, 10);
  options.drop_last = true;
  EXPECT_EQ(ImageLoader(cache, dataset, options).batches_per_epoch(), 2);
}

TEST(ImageLoader, AugmentedBatchesAreTheSameWithAnyNumberOfWorkers) {
  testing::TempFolder root;
  const Dataset dataset = make_folder(root, 6);
  const ImageCache cache = ImageCache::build(dataset, cache_options(18));
  LoaderOptions options;
  options.input_size = 16;
  options.batch_size = 5;
  options.shuffle = true;
  options.augment = true;
  options.seed = 42;
  std::vector<std::vector<float>> runs;
  for (const int workers : {0, 1, 3}) {
    options.workers = workers;
    ImageLoader loader(cache, dataset, options);
    std::vector<float> all;
    for (const std::int64_t epoch : {1, 2}) {
      loader.start_epoch(epoch);
      for (std::int64_t b = 0; b < loader.batches_per_epoch(); ++b) {
        const std::vector<float> batch = values(loader.batch(b).images);
        all.insert(all.end(), batch.begin(), batch.end());
      }
    }
    runs.push_back(all);
  }
  EXPECT_EQ(runs[0], runs[1]);
  EXPECT_EQ(runs[0], runs[2]);
}

TEST(ImageLoader, EpochsDifferWhenShuffledAndBatchesCanBeAskedOutOfOrder) {
  testing::TempFolder root;
  const Dataset dataset = make_folder(root, 8);
  const ImageCache cache = ImageCache::build(dataset, cache_options(9));
  LoaderOptions options;
  options.input_size = 8;
  options.batch_size = 16;
  options.shuffle = true;
  options.workers = 2;
  ImageLoader loader(cache, dataset, options);
  loader.start_epoch(1);
  const Batch last = loader.batch(0);
  const std::vector<std::int64_t> first_labels(last.labels.data<std::int64_t>(),
                                               last.labels.data<std::int64_t>() + 16);
  loader.start_epoch(2);
  const Batch jumped = loader.batch(0);  // asked again after a new epoch: a new order
  const std::vector<std::int64_t> second_labels(jumped.labels.data<std::int64_t>(),
                                                jumped.labels.data<std::int64_t>() + 16);
  EXPECT_NE(first_labels, second_labels);
  EXPECT_EQ(values(loader.batch(0).images), values(jumped.images));  // the same batch asked twice
  EXPECT_THROW(loader.batch(5), ValueError);
}

}  // namespace
}  // namespace dscope::data
