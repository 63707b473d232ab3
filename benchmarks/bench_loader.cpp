// How fast the data pipeline delivers 64×64 training images, to compare with how fast the network consumes
// them (bench_training: ResNet-8 trains at a few hundred images per second on two cores).
//   cold:   decode the JPEG + resize to the cache size (ImageCache::build, every core), images/s;
//   cached: one epoch of batches from the in-memory cache, with augmentation (random resized crop, flips,
//           rotation, colour jitter, normalisation) or with the evaluation view, images/s.
// Images come from DSCOPE_BENCH_IMAGES (any folder, searched recursively; e.g. the 192×144 HAM10000 JPEGs),
// by default the sample shipped in data/samples/ham10000 (96×72). At most DSCOPE_BENCH_LIMIT images
// (default 2000) are used, so a run takes seconds.
#include <benchmark/benchmark.h>

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <string>

#include "data/image_cache.h"
#include "data/image_loader.h"

namespace dscope::data {
namespace {

constexpr std::int64_t kInputSize = 64, kBatchSize = 64;

const Dataset& bench_dataset() {
  static const Dataset dataset = [] {
    const char* folder = std::getenv("DSCOPE_BENCH_IMAGES");
    const char* limit_text = std::getenv("DSCOPE_BENCH_LIMIT");
    const std::filesystem::path root =
        folder != nullptr ? std::filesystem::path(folder) : std::filesystem::path(DSCOPE_SAMPLE_IMAGES);
    const std::size_t limit = limit_text != nullptr ? std::stoul(limit_text) : 2000;
    Dataset found;
    found.labels = {"any"};
    for (const auto& entry : std::filesystem::recursive_directory_iterator(root))
      if (entry.is_regular_file() && has_image_extension(entry.path()))
        found.samples.push_back({entry.path(), 0, ""});
    std::sort(found.samples.begin(), found.samples.end(),
              [](const Sample& a, const Sample& b) { return a.path < b.path; });
    if (found.samples.size() > limit) found.samples.resize(limit);
    return found;
  }();
  return dataset;
}

CacheOptions cache_options() {
  CacheOptions options;
  options.shorter_side = cache_side_for_input(kInputSize);
  return options;
}

void BM_Cold_DecodeAndResize(benchmark::State& state) {
  const Dataset& dataset = bench_dataset();
  for (auto _ : state) {
    const ImageCache cache = ImageCache::build(dataset, cache_options());
    if (!cache.failures().empty()) state.SkipWithError(cache.failures().front().reason.c_str());
    benchmark::DoNotOptimize(cache.bytes());
  }
  state.SetItemsProcessed(state.iterations() * static_cast<std::int64_t>(dataset.samples.size()));
  state.counters["images"] = static_cast<double>(dataset.samples.size());
}

void run_epochs(benchmark::State& state, bool augment) {
  const Dataset& dataset = bench_dataset();
  static const ImageCache cache = ImageCache::build(dataset, cache_options());
  LoaderOptions options;
  options.input_size = kInputSize;
  options.batch_size = kBatchSize;
  options.shuffle = augment;
  options.augment = augment;
  options.workers = static_cast<int>(state.range(0));
  ImageLoader loader(cache, dataset, options);
  std::int64_t epoch = 0, images = 0;
  for (auto _ : state) {
    loader.start_epoch(++epoch);
    for (std::int64_t b = 0; b < loader.batches_per_epoch(); ++b)
      images += loader.batch(b).labels.size(0);
  }
  state.SetItemsProcessed(images);
}

void BM_Cached_AugmentedEpoch(benchmark::State& state) {
  run_epochs(state, true);
}
void BM_Cached_EvaluationEpoch(benchmark::State& state) {
  run_epochs(state, false);
}

BENCHMARK(BM_Cold_DecodeAndResize)->Unit(benchmark::kMillisecond)->UseRealTime()->MinTime(2.0);
// Argument: worker threads (0 assembles on the calling thread).
BENCHMARK(BM_Cached_AugmentedEpoch)->Arg(0)->Arg(1)->Arg(2)->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK(BM_Cached_EvaluationEpoch)->Arg(0)->Arg(2)->Unit(benchmark::kMillisecond)->UseRealTime();

}  // namespace
}  // namespace dscope::data

BENCHMARK_MAIN();
