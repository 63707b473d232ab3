// Golden-value fixtures: named arrays written by the generators in tests/fixtures/gen_*.py (PyTorch), read
// back as CPU tensors. The binary format is described in tests/fixtures/README.md; the generators and this
// loader share kFixtureFormatVersion and must change together.
//
// A malformed file is an error naming the file (IoError when it cannot be opened, DataError when its bytes do
// not fit the format), never a crash: every read is bounds-checked against the file's size.
#pragma once

#include <gtest/gtest.h>

#include <cstdint>
#include <map>
#include <optional>
#include <set>
#include <string>

#include "tensor/tensor.h"

namespace dscope::testing {

inline constexpr char kFixtureMagic[8] = {'D', 'S', 'C', 'O', 'P', 'E', 'F', 'X'};
inline constexpr std::uint32_t kFixtureFormatVersion = 1;

// The named arrays of one fixture file, as CPU tensors.
class Fixture {
 public:
  // Throws IoError if the file cannot be read, DataError (naming the file) if it is malformed.
  static Fixture load(const std::string& path);

  // A fresh copy of the array, so callers may mark it requires_grad or modify it. DataError if absent.
  Tensor get(const std::string& name) const;
  bool contains(const std::string& name) const { return arrays_.count(name) != 0; }
  // The names that start with `prefix`, with the prefix removed.
  std::set<std::string> names_under(const std::string& prefix) const;

 private:
  std::string path_;
  std::map<std::string, Tensor> arrays_;
};

// Loads `file` from the test binary's fixture folder (the compile definition DSCOPE_FIXTURE_DIR), or records
// a test failure with the loader's message and returns nothing. Inline, so that the definition comes from
// the test binary that includes it.
inline std::optional<Fixture> load_fixture(const std::string& file) {
  try {
    return Fixture::load(std::string(DSCOPE_FIXTURE_DIR) + "/" + file);
  } catch (const Error& error) {
    ADD_FAILURE() << error.what();
    return std::nullopt;
  }
}

}  // namespace dscope::testing
