// Timing a GPU operation for Google Benchmark from the host. Launches run back to back in batches, each
// batch followed by one kernels::cuda::synchronize(), and the wall-clock time of a batch is spread over its
// launches as manual time. A synchronisation after every launch would add its launch and wake-up, 10-20 µs,
// to each: 5-15 % of the 0.1-0.5 ms that a convolution takes on the tensor cores. CUDA events would have to
// be recorded on the backend's own non-blocking stream, which kernels/cuda keeps private.
#pragma once

#include <benchmark/benchmark.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdint>

#include "kernels/cuda/settings.h"

namespace dscope::benchmarks {

// How long a batch of launches should last: long enough that one synchronisation is under 1 % of it.
constexpr double kBatchSeconds = 2e-3;

// Runs `launch` (warmed up already) for `state`, batch after batch; returns the seconds per launch.
template <typename Launch>
double seconds_per_launch(benchmark::State& state, const Launch& launch) {
  const auto seconds_of = [&launch](std::int64_t launches) {
    const auto start = std::chrono::steady_clock::now();
    for (std::int64_t i = 0; i < launches; ++i)
      launch();
    kernels::cuda::synchronize();
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  };
  const double one = seconds_of(1);  // an overestimate (it includes the synchronisation): batches err short
  const auto batch =
      std::clamp<std::int64_t>(static_cast<std::int64_t>(std::ceil(kBatchSeconds / one)), 1, 64);
  double seconds = 0.0;
  while (state.KeepRunningBatch(batch)) {  // counts `batch` iterations, one per launch
    const double elapsed = seconds_of(batch);
    state.SetIterationTime(elapsed);  // adds up: reported per iteration, over all of them
    seconds += elapsed;
  }
  return seconds / static_cast<double>(state.iterations());
}

}  // namespace dscope::benchmarks
