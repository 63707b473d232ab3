// Where the GPU's time goes, kernel by kernel, with DSCOPE_CUDA_PROFILE=1: see launch.cuh.
//
// check_launch() records a CUDA event on the stream after every launch, labelled with the launch's name. At
// exit the time between each event and the one before it is added to that label: the kernel's own run
// time, plus any time the GPU sat idle waiting for it to be launched (so a host-bound stretch shows up
// against the kernel that ended it). One line per label goes to stderr, largest first. An event per launch
// costs a few microseconds of host time; leave it off when timing a whole run.
#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <mutex>
#include <string>
#include <utility>
#include <vector>

#include "kernels/cuda/launch.cuh"

namespace dscope::kernels::cuda {
namespace {

struct Recorded {
  const char* label;
  cudaEvent_t event;
};

std::mutex profile_mutex;
std::vector<Recorded>& recorded() {
  static std::vector<Recorded> events;
  return events;
}

void report_profile() {
  const std::lock_guard<std::mutex> lock(profile_mutex);
  std::vector<Recorded>& events = recorded();
  if (events.size() < 2) return;
  if (cudaEventSynchronize(events.back().event) != cudaSuccess) return;
  std::map<std::string, std::pair<int, double>> by_label;  // calls, milliseconds
  double total = 0.0;
  for (std::size_t i = 1; i < events.size(); ++i) {
    float ms = 0.0f;
    if (cudaEventElapsedTime(&ms, events[i - 1].event, events[i].event) != cudaSuccess) continue;
    auto& entry = by_label[events[i].label];
    entry.first += 1, entry.second += ms, total += ms;
  }
  std::vector<std::pair<std::string, std::pair<int, double>>> rows(by_label.begin(), by_label.end());
  std::sort(rows.begin(), rows.end(),
            [](const auto& x, const auto& y) { return x.second.second > y.second.second; });
  std::fprintf(stderr, "dscope CUDA profile: %zu launches, %.3f ms between the first and the last\n",
               events.size(), total);
  std::fprintf(stderr, "%10s %8s %7s  %s\n", "ms", "calls", "share", "kernel");
  for (const auto& [label, figures] : rows)
    std::fprintf(stderr, "%10.3f %8d %6.1f%%  %s\n", figures.second, figures.first,
                 total > 0.0 ? 100.0 * figures.second / total : 0.0, label.c_str());
  for (const Recorded& r : events)
    cudaEventDestroy(r.event);
  events.clear();
}

}  // namespace

bool profiling() {
  static const bool enabled = [] {
    const char* value = std::getenv("DSCOPE_CUDA_PROFILE");
    return value != nullptr && std::string(value) == "1";
  }();
  return enabled;
}

void record_launch(const char* kernel) {
  const std::lock_guard<std::mutex> lock(profile_mutex);
  std::vector<Recorded>& events = recorded();
  // Registered after the CUDA runtime started, so it runs before the runtime's own teardown.
  if (events.empty()) std::atexit(report_profile);
  cudaEvent_t event = nullptr;
  DSCOPE_CUDA_CHECK(cudaEventCreate(&event));
  DSCOPE_CUDA_CHECK(cudaEventRecord(event, current_stream()));
  events.push_back({kernel, event});
}

}  // namespace dscope::kernels::cuda
