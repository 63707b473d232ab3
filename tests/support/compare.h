// Comparing a computed array with a reference, with a report a person can act on: the context (op and
// shape), the first mismatching elements with both values, and the maximum absolute and relative error.
#pragma once

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <sstream>
#include <string>
#include <vector>

namespace dscope::testing {

template <typename A, typename B>
::testing::AssertionResult all_close(const std::vector<A>& actual, const std::vector<B>& expected,
                                     double atol, double rtol, const std::string& context) {
  if (actual.size() != expected.size())
    return ::testing::AssertionFailure()
           << context << ": " << actual.size() << " values, expected " << expected.size();
  std::ostringstream first;
  std::size_t mismatches = 0;
  double max_abs = 0.0, max_rel = 0.0;
  for (std::size_t i = 0; i < actual.size(); ++i) {
    const double a = static_cast<double>(actual[i]), e = static_cast<double>(expected[i]);
    const double error = std::abs(a - e);
    max_abs = std::max(max_abs, error);
    if (e != 0.0) max_rel = std::max(max_rel, error / std::abs(e));
    if (!(error <= atol + rtol * std::abs(e))) {  // written so that NaN counts as a mismatch
      if (++mismatches <= 5) first << "\n  [" << i << "] got " << a << ", expected " << e;
    }
  }
  if (mismatches == 0) return ::testing::AssertionSuccess();
  return ::testing::AssertionFailure()
         << context << ": " << mismatches << " of " << actual.size() << " elements differ (max abs error "
         << max_abs << ", max rel error " << max_rel << ")" << first.str();
}

}  // namespace dscope::testing
