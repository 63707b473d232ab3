// Division by a divisor fixed at launch, without the GPU's slow integer division: a multiply-high, an add
// and a shift (Granlund and Montgomery, "Division by invariant integers using multiplication", 1994).
//
// For a divisor d ≥ 1 let l = ⌈log₂ d⌉ and m = ⌊2³²·(2^l − d)/d⌋ + 1, which fits 32 bits. Then for every
// 0 ≤ n < 2³¹, ⌊n/d⌋ = (umulhi(n, m) + n) >> l; umulhi(n, m) < n keeps the sum within 32 bits. d = 1
// gives m = 1, l = 0, and n itself. The kernels' indices are non-negative ints, so the range always holds.
//
// Included only by .cu files. divmod runs on the host too, so that tests without a GPU can check it.
#pragma once

#include <stdexcept>

namespace dscope::kernels::cuda {

class FastDivmod {
 public:
  FastDivmod() = default;  // divides by 1
  explicit FastDivmod(int divisor) : divisor_(static_cast<unsigned>(divisor)) {
    if (divisor < 1) throw std::invalid_argument("FastDivmod: the divisor must be at least 1");
    while ((1ull << shift_) < divisor_)
      ++shift_;
    multiplier_ = static_cast<unsigned>(((1ull << 32) * ((1ull << shift_) - divisor_)) / divisor_ + 1);
  }

  __host__ __device__ int divisor() const { return static_cast<int>(divisor_); }

  // n = quotient · divisor + remainder, for 0 ≤ n < 2³¹.
  __host__ __device__ void divmod(int n, int& quotient, int& remainder) const {
    if (divisor_ == 1) {  // the common case of an axis with no inner parts: skip the arithmetic
      quotient = n, remainder = 0;
      return;
    }
    const unsigned u = static_cast<unsigned>(n);
#ifdef __CUDA_ARCH__
    const unsigned high = __umulhi(u, multiplier_);
#else
    const unsigned high = static_cast<unsigned>((static_cast<unsigned long long>(u) * multiplier_) >> 32);
#endif
    const unsigned q = (high + u) >> shift_;
    quotient = static_cast<int>(q);
    remainder = static_cast<int>(u - q * divisor_);
  }

 private:
  unsigned divisor_ = 1, multiplier_ = 1, shift_ = 0;
};

}  // namespace dscope::kernels::cuda
