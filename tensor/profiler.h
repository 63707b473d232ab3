// CPU kernel profiler: the wall time of every CPU kernel the ops dispatch (tensor/dispatch.h), summed per
// kernel name over a run (per layer for convolutions: "conv2d_forward N64 16→32 64×64 3×3 s2"), to see
// where a training step or an inference pass goes without an outside tool.
//
// Why here: a sampling profiler attributes the work of the OpenMP threads to the kernels' inner loops, not
// to the op that called them, so "how long do the batch norms take in this step" is hard to read from
// `perf`. Every op reaches its kernel through DSCOPE_DISPATCH, so timing that one call site times them all.
//
// Off unless DSCOPE_CPU_PROFILE=1 is set in the environment (then the table goes to stderr when the
// process exits) or enable() is called; when off, a dispatch costs one test of a flag. The time is from
// the call to the return on the calling thread, so it includes the kernel's whole parallel region. GPU
// kernels are not timed here: they return once launched; DSCOPE_CUDA_PROFILE (kernels/cuda/profile.cu)
// times them on the device.
#pragma once

#include <chrono>
#include <cstdint>
#include <string>
#include <vector>

namespace dscope::profiler {

struct KernelTime {
  std::string kernel;  // the name the op dispatched, e.g. "conv2d_forward"
  std::int64_t calls = 0;
  double seconds = 0.0;  // summed over the calls
};

// Whether kernel times are being recorded.
bool enabled();
// Starts (or stops) recording; what was recorded stays until reset().
void enable(bool on = true);
// Forgets what was recorded.
void reset();
// What was recorded, the longest total first.
std::vector<KernelTime> snapshot();
// snapshot() as a table: kernel, calls, total ms, share of the recorded time, mean µs per call.
std::string report();

// Adds the time from its construction to its destruction to `kernel` (a string literal) while recording;
// with `describe`, to "kernel describe()" instead, so that one kernel's calls are told apart by what they
// ran on (a convolution's shape). describe() runs only while recording.
class KernelScope {
 public:
  explicit KernelScope(const char* kernel);
  template <typename Describe>
  KernelScope(const char* kernel, Describe describe) : KernelScope(kernel) {
    if (!recording_) return;
    detail_ = describe();
    start_ = std::chrono::steady_clock::now();  // the description's cost is not the kernel's
  }
  ~KernelScope();
  KernelScope(const KernelScope&) = delete;
  KernelScope& operator=(const KernelScope&) = delete;

 private:
  const char* kernel_;
  bool recording_;
  std::string detail_;
  std::chrono::steady_clock::time_point start_;
};

}  // namespace dscope::profiler
