#include "tensor/profiler.h"

#include <algorithm>
#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <iomanip>
#include <map>
#include <mutex>
#include <sstream>
#include <string_view>

namespace dscope::profiler {
namespace {

struct Totals {
  std::int64_t calls = 0;
  double seconds = 0.0;
};

struct State {
  std::mutex mutex;
  std::map<std::string, Totals, std::less<>> totals;
};

State& state() {
  static State instance;
  return instance;
}

bool environment_asks() {
  const char* value = std::getenv("DSCOPE_CPU_PROFILE");
  return value != nullptr && std::string_view(value) != "" && std::string_view(value) != "0";
}

// With DSCOPE_CPU_PROFILE set, recording starts at the first dispatch and the table is printed at exit. The
// totals are constructed before the exit handler is registered, so that they are destroyed after it runs.
std::atomic<bool>& recording() {
  static std::atomic<bool> flag = [] {
    if (!environment_asks()) return false;
    state();
    std::atexit([] { std::fprintf(stderr, "%s", report().c_str()); });
    return true;
  }();
  return flag;
}

}  // namespace

bool enabled() {
  return recording().load(std::memory_order_relaxed);
}

void enable(bool on) {
  recording().store(on, std::memory_order_relaxed);
}

void reset() {
  State& s = state();
  const std::lock_guard<std::mutex> lock(s.mutex);
  s.totals.clear();
}

std::vector<KernelTime> snapshot() {
  State& s = state();
  std::vector<KernelTime> times;
  {
    const std::lock_guard<std::mutex> lock(s.mutex);
    for (const auto& [kernel, totals] : s.totals)
      times.push_back({kernel, totals.calls, totals.seconds});
  }
  std::stable_sort(times.begin(), times.end(),
                   [](const KernelTime& a, const KernelTime& b) { return a.seconds > b.seconds; });
  return times;
}

// Characters a terminal shows for `text` (UTF-8: every byte but the continuation bytes), for the padding.
std::size_t shown_width(const std::string& text) {
  return static_cast<std::size_t>(std::count_if(
      text.begin(), text.end(), [](char byte) { return (static_cast<unsigned char>(byte) & 0xC0) != 0x80; }));
}

std::string report() {
  const std::vector<KernelTime> times = snapshot();
  double total = 0.0;
  std::size_t width = 6;  // "kernel"
  for (const KernelTime& time : times) {
    total += time.seconds;
    width = std::max(width, shown_width(time.kernel));
  }
  const auto padded = [&](const std::string& text) {
    return text + std::string(width + 2 - shown_width(text), ' ');
  };
  std::ostringstream out;
  out << "dscope CPU kernel profile (DSCOPE_CPU_PROFILE): wall time per dispatched kernel, " << std::fixed
      << std::setprecision(1) << total * 1e3 << " ms in all\n";
  out << padded("kernel") << std::setw(8) << "calls" << std::setw(12) << "total ms" << std::setw(8) << "share"
      << std::setw(12) << "mean us"
      << "\n";
  for (const KernelTime& time : times) {
    out << padded(time.kernel) << std::setw(8) << time.calls << std::setw(12) << std::setprecision(1)
        << time.seconds * 1e3 << std::setw(7) << (total > 0.0 ? 100.0 * time.seconds / total : 0.0) << "%"
        << std::setw(12) << time.seconds * 1e6 / static_cast<double>(std::max<std::int64_t>(time.calls, 1))
        << "\n";
  }
  return out.str();
}

KernelScope::KernelScope(const char* kernel) : kernel_(kernel), recording_(enabled()) {
  if (recording_) start_ = std::chrono::steady_clock::now();
}

KernelScope::~KernelScope() {
  if (!recording_) return;
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
  State& s = state();
  const std::lock_guard<std::mutex> lock(s.mutex);
  const std::string name = detail_.empty() ? std::string(kernel_) : std::string(kernel_) + " " + detail_;
  auto found = s.totals.find(name);
  if (found == s.totals.end()) found = s.totals.emplace(name, Totals{}).first;
  ++found->second.calls;
  found->second.seconds += seconds;
}

}  // namespace dscope::profiler
