// The caching allocator (see allocator.h). Blocks are cached by exact byte size: a training step asks for
// the same sizes every iteration, so exact matches hit almost always, and no block is ever split.
// Sizes are rounded up to 512 bytes (small) or 64 KiB (large) so that slightly different shapes share bins.
#include "tensor/allocator.h"

#include <cstdlib>
#include <map>
#include <mutex>
#include <new>
#include <vector>

#include "tensor/dispatch.h"

namespace dscope {
namespace {

constexpr std::size_t kAlignment = 64;

std::size_t rounded_size(std::size_t bytes) {
  const std::size_t granule = bytes < (1u << 20) ? 512 : (64u << 10);
  const std::size_t size = bytes == 0 ? granule : bytes;
  return (size + granule - 1) / granule * granule;
}

class DeviceCache {
 public:
  explicit DeviceCache(Device device) : device_(device) {}
  ~DeviceCache() = default;  // blocks still cached at exit are reclaimed by the operating system

  void* take(std::size_t bytes) {
    const std::size_t size = rounded_size(bytes);
    {
      std::lock_guard<std::mutex> lock(mutex_);
      auto bin = free_.find(size);
      if (bin != free_.end() && !bin->second.empty()) {
        void* block = bin->second.back();
        bin->second.pop_back();
        stats_.cached_bytes -= size;
        note_in_use(size);
        ++stats_.cache_hits;
        return block;
      }
      ++stats_.cache_misses;
    }
    void* block = system_allocate(size);
    std::lock_guard<std::mutex> lock(mutex_);
    note_in_use(size);
    return block;
  }

  void give_back(void* block, std::size_t bytes) {
    const std::size_t size = rounded_size(bytes);
    std::lock_guard<std::mutex> lock(mutex_);
    free_[size].push_back(block);
    stats_.in_use_bytes -= size;
    stats_.cached_bytes += size;
  }

  void empty() {
    std::lock_guard<std::mutex> lock(mutex_);
    for (auto& [size, blocks] : free_)
      for (void* block : blocks)
        system_free(block);
    free_.clear();
    stats_.cached_bytes = 0;
  }

  AllocatorStats stats() {
    std::lock_guard<std::mutex> lock(mutex_);
    return stats_;
  }

  void reset_peak() {
    std::lock_guard<std::mutex> lock(mutex_);
    stats_.peak_in_use_bytes = stats_.in_use_bytes;
  }

 private:
  void note_in_use(std::size_t size) {
    stats_.in_use_bytes += size;
    if (stats_.in_use_bytes > stats_.peak_in_use_bytes) stats_.peak_in_use_bytes = stats_.in_use_bytes;
  }

  void* system_allocate(std::size_t size) {
    if (device_.is_cpu()) {
      void* block = std::aligned_alloc(kAlignment, size);
      if (block == nullptr) {
        // Cached blocks of other sizes may be what stands between us and success: free them and retry once.
        empty();
        block = std::aligned_alloc(kAlignment, size);
      }
      if (block == nullptr) throw std::bad_alloc();
      return block;
    }
    DSCOPE_CHECK(device_.index < cuda_device_count(), DeviceError, "allocate: ", device_,
                 " requested but this machine has ", cuda_device_count(), " CUDA device(s)");
    try {
      return DSCOPE_CUDA_RUNTIME(device_allocate, size, device_.index);
    } catch (const std::runtime_error&) {
      // As on the host: cached blocks of other sizes may be what stands in the way, and the kernels' scratch
      // pool, which keeps what it freed. Free both and retry once; if the release fails too, the retry's
      // error is the one reported.
      empty();
      try {
        DSCOPE_CUDA_RUNTIME(release_scratch, device_.index);
      } catch (const std::runtime_error&) {
      }
    }
    try {
      return DSCOPE_CUDA_RUNTIME(device_allocate, size, device_.index);
    } catch (const std::runtime_error& error) {
      throw CudaError(detail::concat("allocate ", size, " bytes on ", device_, ": ", error.what()));
    }
  }

  void system_free(void* block) {
    if (device_.is_cpu()) {
      std::free(block);
    } else {
      // A failed free at this point (the driver is shutting down) has nowhere to be reported: the
      // caller is a destructor. The block is lost either way, so the error is dropped on purpose.
      try {
        DSCOPE_CUDA_RUNTIME(device_free, block, device_.index);
      } catch (const std::runtime_error&) {
      }
    }
  }

  Device device_;
  std::mutex mutex_;
  std::map<std::size_t, std::vector<void*>> free_;
  AllocatorStats stats_;
};

DeviceCache& cache_for(Device device) {
  // Leaked on purpose: tensors held in static objects may be freed after any static cache would be destroyed.
  static DeviceCache* cpu_cache = new DeviceCache(Device::cpu());
  static std::mutex cuda_mutex;
  static std::map<int, DeviceCache*>* cuda_caches = new std::map<int, DeviceCache*>();
  if (device.is_cpu()) return *cpu_cache;
  std::lock_guard<std::mutex> lock(cuda_mutex);
  DeviceCache*& cache = (*cuda_caches)[device.index];
  if (cache == nullptr) cache = new DeviceCache(device);
  return *cache;
}

}  // namespace

void* allocate(std::size_t bytes, Device device) {
  return cache_for(device).take(bytes);
}
void deallocate(void* block, std::size_t bytes, Device device) {
  cache_for(device).give_back(block, bytes);
}
AllocatorStats allocator_stats(Device device) {
  return cache_for(device).stats();
}
void reset_peak_in_use(Device device) {
  cache_for(device).reset_peak();
}
void empty_cache(Device device) {
  cache_for(device).empty();
}

}  // namespace dscope
