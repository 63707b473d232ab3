// The loop nest shared by every strided CPU kernel (copies, broadcasting arithmetic).
//
// The output is dense, so its linear index runs 0..numel. We cut that range into chunks of kChunk elements
// and give chunks to OpenMP threads; inside a chunk we walk runs along the last dimension, where each
// operand advances by its last stride, so the innermost loop is a plain strided (often unit-stride) loop
// the compiler vectorises. Coordinates are recomputed only at the start of each chunk.
#pragma once

#include <cstdint>

namespace dscope::kernels::cpu::detail {

inline constexpr std::int64_t kChunk = 16384;

// Calls run(offsets, run_length, output_index) for consecutive runs along the last dimension, where
// offsets[j] is the element offset of operand j at the run's start (through strides[j]).
// `Operands` operands, each with its own strides; all share `shape`.
template <int Operands, typename Run>
void for_each_run(int rank, const std::int64_t* shape, const std::int64_t* const* strides, Run run) {
  std::int64_t numel = 1;
  for (int d = 0; d < rank; ++d)
    numel *= shape[d];
  if (numel == 0) return;
  if (rank == 0) {
    std::int64_t offsets[Operands] = {};
    run(offsets, std::int64_t{1}, std::int64_t{0});
    return;
  }
  const std::int64_t last = shape[rank - 1];
  const std::int64_t chunks = (numel + kChunk - 1) / kChunk;
#pragma omp parallel for schedule(static) if (chunks > 1)
  for (std::int64_t chunk = 0; chunk < chunks; ++chunk) {
    const std::int64_t begin = chunk * kChunk;
    const std::int64_t end = begin + kChunk < numel ? begin + kChunk : numel;
    std::int64_t coord[16] = {};
    std::int64_t offsets[Operands] = {};
    for (std::int64_t rest = begin, d = rank - 1; d >= 0; --d) {
      coord[d] = rest % shape[d];
      rest /= shape[d];
      for (int j = 0; j < Operands; ++j)
        offsets[j] += coord[d] * strides[j][d];
    }
    for (std::int64_t index = begin; index < end;) {
      const std::int64_t length =
          (end - index) < (last - coord[rank - 1]) ? (end - index) : (last - coord[rank - 1]);
      run(offsets, length, index);
      index += length;
      // Advance the coordinates past the run: the last one by `length`, carrying into the outer ones.
      for (int j = 0; j < Operands; ++j)
        offsets[j] += length * strides[j][rank - 1];
      coord[rank - 1] += length;
      for (int d = rank - 1; d > 0 && coord[d] == shape[d]; --d) {
        for (int j = 0; j < Operands; ++j)
          offsets[j] += strides[j][d - 1] - shape[d] * strides[j][d];
        coord[d] = 0;
        ++coord[d - 1];
      }
    }
  }
}

}  // namespace dscope::kernels::cpu::detail
