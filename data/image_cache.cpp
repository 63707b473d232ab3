#include "data/image_cache.h"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstring>
#include <fstream>
#include <mutex>
#include <thread>

#include "data/image_transforms.h"
#include "tensor/error.h"

namespace dscope::data {
namespace fs = std::filesystem;

namespace {

constexpr char kMagic[8] = {'D', 'S', 'C', 'O', 'P', 'E', 'I', 'C'};
constexpr std::uint32_t kVersion = 1;

// What identifies the file an entry was decoded from: if either changes, the entry is stale.
struct FileStamp {
  std::uint64_t size = 0;
  std::int64_t modified = 0;
  bool operator==(const FileStamp&) const = default;
};

FileStamp stamp_of(const fs::path& path) {
  std::error_code error;
  FileStamp stamp;
  stamp.size = fs::file_size(path, error);
  if (error) return {};
  stamp.modified = static_cast<std::int64_t>(fs::last_write_time(path, error).time_since_epoch().count());
  return stamp;
}

struct DiskEntry {
  FileStamp stamp;
  Image image;
};

template <typename T>
bool read_value(std::istream& in, T& value) {
  return static_cast<bool>(in.read(reinterpret_cast<char*>(&value), sizeof value));
}
template <typename T>
void write_value(std::ostream& out, const T& value) {
  out.write(reinterpret_cast<const char*>(&value), sizeof value);
}

// Reads a disk cache made for `shorter_side`. Returns false with `why` set when the file is not usable as a
// whole; entries are then all decoded again.
bool read_disk_cache(const fs::path& file, std::int64_t shorter_side,
                     std::unordered_map<std::string, DiskEntry>& entries, std::string& why) {
  std::ifstream in(file, std::ios::binary);
  if (!in) {
    why = "cannot be opened";
    return false;
  }
  char magic[8];
  std::uint32_t version = 0;
  std::int64_t side = 0;
  std::uint64_t count = 0;
  if (!in.read(magic, 8) || std::memcmp(magic, kMagic, 8) != 0 || !read_value(in, version) ||
      !read_value(in, side) || !read_value(in, count)) {
    why = "is not a dscope image cache";
    return false;
  }
  if (version != kVersion) {
    why = detail::concat("has format version ", version, ", this build writes ", kVersion);
    return false;
  }
  if (side != shorter_side) {
    why = detail::concat("holds images at shorter side ", side, ", this run needs ", shorter_side);
    return false;
  }
  for (std::uint64_t i = 0; i < count; ++i) {
    std::uint32_t length = 0;
    DiskEntry entry;
    std::int64_t width = 0, height = 0;
    // Bounds before allocating: a corrupt length must not become a huge allocation.
    if (!read_value(in, length) || length > 4096) break;
    std::string path(length, '\0');
    if (!in.read(path.data(), length) || !read_value(in, entry.stamp.size) ||
        !read_value(in, entry.stamp.modified) || !read_value(in, width) || !read_value(in, height) ||
        width <= 0 || height <= 0 || width > 1 << 15 || height > 1 << 15)
      break;
    entry.image = Image(width, height);
    if (!in.read(reinterpret_cast<char*>(entry.image.pixels.data()),
                 static_cast<std::streamsize>(entry.image.pixels.size())))
      break;
    entries.emplace(std::move(path), std::move(entry));
    if (i + 1 == count) return true;
  }
  if (count == 0) return true;
  why = detail::concat("is truncated or corrupt after ", entries.size(), " of ", count, " images");
  entries.clear();
  return false;
}

void write_disk_cache(const fs::path& file, std::int64_t shorter_side, const std::vector<fs::path>& paths,
                      const std::vector<FileStamp>& stamps, const std::vector<Image>& images,
                      const std::vector<bool>& ok) {
  // Written to a temporary name and renamed, so an interrupted write never leaves a half cache behind.
  const fs::path partial = fs::path(file.string() + ".partial");
  {
    std::ofstream out(partial, std::ios::binary | std::ios::trunc);
    DSCOPE_CHECK(out.good(), IoError, "cannot write the image cache ", partial.string());
    out.write(kMagic, 8);
    write_value(out, kVersion);
    write_value(out, shorter_side);
    write_value(out, static_cast<std::uint64_t>(std::count(ok.begin(), ok.end(), true)));
    for (std::size_t i = 0; i < paths.size(); ++i) {
      if (!ok[i]) continue;
      const std::string path = paths[i].string();
      write_value(out, static_cast<std::uint32_t>(path.size()));
      out.write(path.data(), static_cast<std::streamsize>(path.size()));
      write_value(out, stamps[i].size);
      write_value(out, stamps[i].modified);
      write_value(out, images[i].width);
      write_value(out, images[i].height);
      out.write(reinterpret_cast<const char*>(images[i].pixels.data()),
                static_cast<std::streamsize>(images[i].pixels.size()));
    }
    DSCOPE_CHECK(out.good(), IoError, "writing the image cache ", partial.string(), " failed (disk full?)");
  }
  fs::rename(partial, file);
}

}  // namespace

std::int64_t cache_side_for_input(std::int64_t input_size) {
  return (input_size * 9 + 4) / 8;
}

ImageCache ImageCache::build(const Dataset& dataset, const CacheOptions& options) {
  std::vector<fs::path> paths;
  paths.reserve(dataset.samples.size());
  for (const Sample& sample : dataset.samples)
    paths.push_back(sample.path);
  return build(paths, options);
}

ImageCache ImageCache::build(const std::vector<fs::path>& paths, const CacheOptions& options) {
  DSCOPE_CHECK(options.shorter_side >= 1, ValueError, "image cache: shorter side must be at least 1, got ",
               options.shorter_side);
  ImageCache cache;
  cache.shorter_side_ = options.shorter_side;
  const std::size_t total = paths.size();
  std::vector<Image> images(total);
  std::vector<FileStamp> stamps(total);
  std::vector<bool> ok(total, false);
  std::vector<std::string> errors(total);

  std::unordered_map<std::string, DiskEntry> disk;
  if (!options.file.empty() && fs::exists(options.file)) {
    std::string why;
    if (!read_disk_cache(options.file, options.shorter_side, disk, why))
      cache.note_ = "the image cache " + options.file.string() + " " + why + "; rebuilding it";
  }
  std::vector<std::size_t> to_decode;
  for (std::size_t i = 0; i < total; ++i) {
    stamps[i] = stamp_of(paths[i]);
    const auto found = disk.find(paths[i].string());
    if (found != disk.end() && found->second.stamp == stamps[i] && stamps[i].size > 0) {
      images[i] = std::move(found->second.image);
      ok[i] = true;
      ++cache.from_disk_;
    } else {
      to_decode.push_back(i);
    }
  }
  disk.clear();

  std::atomic<std::size_t> next{0};
  std::atomic<std::int64_t> done{0};
  std::mutex mutex;
  std::condition_variable progressed;
  const auto work = [&] {
    for (std::size_t k = next++; k < to_decode.size(); k = next++) {
      const std::size_t i = to_decode[k];
      try {
        images[i] = resize_shorter_side(read_image(paths[i]), options.shorter_side);
      } catch (const std::exception& error) {
        errors[i] = error.what();
      }
      ++done;
      progressed.notify_one();
    }
  };
  const unsigned cores = std::max(1u, std::thread::hardware_concurrency());
  const std::size_t thread_count =
      std::min<std::size_t>(options.threads > 0 ? static_cast<std::size_t>(options.threads) : cores,
                            std::max<std::size_t>(1, to_decode.size()));
  std::vector<std::thread> threads;
  for (std::size_t t = 0; t < thread_count; ++t)
    threads.emplace_back(work);
  const auto total_done = [&] { return cache.from_disk_ + done.load(); };
  while (done.load() < static_cast<std::int64_t>(to_decode.size())) {
    std::unique_lock<std::mutex> lock(mutex);
    progressed.wait_for(lock, std::chrono::milliseconds(100));
    lock.unlock();
    if (options.progress) options.progress(total_done(), static_cast<std::int64_t>(total));
  }
  for (std::thread& thread : threads)
    thread.join();
  if (options.progress) options.progress(static_cast<std::int64_t>(total), static_cast<std::int64_t>(total));

  for (const std::size_t i : to_decode) {
    if (errors[i].empty()) {
      ok[i] = true;
      ++cache.decoded_;
    } else {
      cache.failures_.push_back({paths[i].string(), errors[i]});
    }
  }
  if (!options.file.empty() && (cache.decoded_ > 0 || !cache.note_.empty() || !fs::exists(options.file)))
    write_disk_cache(options.file, options.shorter_side, paths, stamps, images, ok);
  for (std::size_t i = 0; i < total; ++i) {
    if (!ok[i]) continue;
    cache.index_.emplace(paths[i].string(), cache.images_.size());
    cache.images_.push_back(std::move(images[i]));
  }
  return cache;
}

const Image* ImageCache::find(const fs::path& path) const {
  const auto found = index_.find(path.string());
  return found == index_.end() ? nullptr : &images_[found->second];
}

std::size_t ImageCache::bytes() const {
  std::size_t sum = 0;
  for (const Image& image : images_)
    sum += image.pixels.size();
  return sum;
}

}  // namespace dscope::data
