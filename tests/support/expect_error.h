// Expecting an exception of a given type whose message mentions every fragment (op name, shapes, ...).
#pragma once

#include <gtest/gtest.h>

#include <functional>
#include <string>
#include <vector>

namespace dscope::testing {

template <typename ErrorType>
void expect_error(const std::function<void()>& action, const std::vector<std::string>& fragments) {
  try {
    action();
    FAIL() << "expected an error mentioning " << fragments.front();
  } catch (const ErrorType& error) {
    for (const std::string& fragment : fragments)
      EXPECT_NE(std::string(error.what()).find(fragment), std::string::npos) << error.what();
  }
}

}  // namespace dscope::testing
