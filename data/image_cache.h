// ImageCache: every image of a dataset decoded once and resized once, held in memory, optionally kept in
// one binary file on disk so that the next run does not decode JPEGs at all.
//
// Decoding a 192×144 JPEG costs about as much as a training step spends on that image at 64×64, so
// decoding every epoch would halve training speed on two cores. Resized so that the shorter side is a little
// above the network's input (9/8 of it by default, room for a random crop), the 10,000 HAM10000 images
// take about 150 MB.
//
// Decoding runs on worker threads. A file that fails to decode is recorded in failures() with its reason,
// and the caller removes it from the dataset (Dataset::without) and reports it: never dropped silently.
//
// Disk file format (little-endian): "DSCOPEIC", u32 version, i64 shorter side, u64 entry count; then per
// entry: u32 path length, path bytes, u64 file size, i64 modification time, i64 width, i64 height, and
// width·height·3 pixel bytes. An entry is reused only when path, size and modification time all match the
// file on disk now; a cache file that is unreadable, truncated or of another version is rebuilt, and
// note() says so.
#pragma once

#include <cstdint>
#include <filesystem>
#include <functional>
#include <string>
#include <unordered_map>
#include <vector>

#include "data/dataset.h"
#include "data/image.h"

namespace dscope::data {

struct CacheOptions {
  std::int64_t shorter_side = 72;  // images are resized so that their shorter side is this
  int threads = 0;                 // decoding threads; 0: one per core
  std::filesystem::path file;      // the disk cache; empty keeps the cache in memory only
  // Called from the calling thread as decoding progresses (images done, images in all).
  std::function<void(std::int64_t done, std::int64_t total)> progress;
};

class ImageCache {
 public:
  ImageCache() = default;
  // Decodes (or reads from the disk cache) every path. Throws ValueError for a shorter side below 1;
  // IoError when the disk cache cannot be written.
  static ImageCache build(const std::vector<std::filesystem::path>& paths, const CacheOptions& options);
  static ImageCache build(const Dataset& dataset, const CacheOptions& options);

  // The cached image of `path`, or nullptr when it is not cached (it failed, or was never listed).
  const Image* find(const std::filesystem::path& path) const;
  const std::vector<ImportProblem>& failures() const { return failures_; }
  std::int64_t shorter_side() const { return shorter_side_; }
  std::int64_t size() const { return static_cast<std::int64_t>(images_.size()); }
  std::int64_t decoded() const { return decoded_; }      // images decoded in this build
  std::int64_t from_disk() const { return from_disk_; }  // images reused from the disk cache
  std::size_t bytes() const;                             // pixel memory held
  const std::string& note() const { return note_; }      // why a disk cache was rebuilt, if it was

 private:
  std::int64_t shorter_side_ = 0;
  std::vector<Image> images_;
  std::unordered_map<std::string, std::size_t> index_;
  std::vector<ImportProblem> failures_;
  std::int64_t decoded_ = 0, from_disk_ = 0;
  std::string note_;
};

// The shorter side a cache should have for a network input of `input_size`: 9/8 of it, rounded.
std::int64_t cache_side_for_input(std::int64_t input_size);

}  // namespace dscope::data
