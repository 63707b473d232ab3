// Strided copy and fill on the CPU (see kernels/copy.h).
#include "kernels/copy.h"

#include "kernels/cpu/strided_loop.h"

namespace dscope::kernels::cpu {

template <typename T>
void copy(const CopyGeometry& g, const T* src, T* dst) {
  const std::int64_t* strides[2] = {g.src_strides, g.dst_strides};
  const std::int64_t src_step = g.rank ? g.src_strides[g.rank - 1] : 0;
  const std::int64_t dst_step = g.rank ? g.dst_strides[g.rank - 1] : 0;
  detail::for_each_run<2>(g.rank, g.shape, strides,
                          [&](const std::int64_t* offsets, std::int64_t length, std::int64_t) {
                            const T* from = src + offsets[0];
                            T* to = dst + offsets[1];
                            if (src_step == 1 && dst_step == 1) {
                              for (std::int64_t i = 0; i < length; ++i)
                                to[i] = from[i];
                            } else {
                              for (std::int64_t i = 0; i < length; ++i)
                                to[i * dst_step] = from[i * src_step];
                            }
                          });
}

template <typename T>
void fill(std::int64_t n, T value, T* dst) {
#pragma omp parallel for schedule(static) if (n > detail::kChunk)
  for (std::int64_t i = 0; i < n; ++i)
    dst[i] = value;
}

template void copy<float>(const CopyGeometry&, const float*, float*);
template void copy<std::int64_t>(const CopyGeometry&, const std::int64_t*, std::int64_t*);
template void fill<float>(std::int64_t, float, float*);
template void fill<std::int64_t>(std::int64_t, std::int64_t, std::int64_t*);
template void copy<BFloat16>(const CopyGeometry&, const BFloat16*, BFloat16*);
template void fill<BFloat16>(std::int64_t, BFloat16, BFloat16*);

}  // namespace dscope::kernels::cpu
