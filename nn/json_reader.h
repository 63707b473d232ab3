// JsonReader: typed access to the fields of a JSON document that came from a file (a model card, a training
// state), where every missing field or wrong type becomes a DataError naming the document and the field by
// its dotted path ("model card of 'model.safetensors': 'architecture.classes' must be an integer, got
// \"seven\""). Without it every caller repeats the same type checks, and nlohmann's own exceptions would
// name neither the file nor the field.
#pragma once

#include <cstdint>
#include <map>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "tensor/error.h"

namespace dscope::nn {

class JsonReader {
 public:
  // `root` must outlive the reader; `context` starts every message, e.g. "model card of 'x.safetensors'".
  JsonReader(const nlohmann::json& root, std::string context);

  // Parses `text` (throwing DataError with `context` if it is not a JSON object).
  static nlohmann::json parse_object(const std::string& text, const std::string& context);

  // The value at a dotted path of object keys; DataError if any step is missing.
  const nlohmann::json& field(const std::string& dotted) const;
  std::int64_t integer(const std::string& dotted) const;
  std::uint64_t unsigned_integer(const std::string& dotted) const;
  double number(const std::string& dotted) const;
  float float32(const std::string& dotted) const;  // a number within float range (or ±infinity)
  bool boolean(const std::string& dotted) const;
  std::string string(const std::string& dotted) const;
  std::vector<std::int64_t> integers(const std::string& dotted) const;
  std::vector<std::uint64_t> unsigned_integers(const std::string& dotted) const;
  std::vector<float> floats(const std::string& dotted) const;
  std::vector<std::string> strings(const std::string& dotted) const;
  std::map<std::string, double> numbers_by_name(const std::string& dotted) const;  // an object of numbers

  // Throws DataError: `context`: parts...
  template <typename... Parts>
  [[noreturn]] void fail(const Parts&... parts) const {
    throw DataError(detail::concat(context_, ": ", parts...));
  }

 private:
  [[noreturn]] void wrong_type(const std::string& dotted, const char* expected,
                               const nlohmann::json& value) const;
  const nlohmann::json& array(const std::string& dotted) const;
  std::int64_t integer_value(const nlohmann::json& value, const std::string& dotted) const;
  std::uint64_t unsigned_value(const nlohmann::json& value, const std::string& dotted) const;
  double number_value(const nlohmann::json& value, const std::string& dotted) const;
  float float32_value(const nlohmann::json& value, const std::string& dotted) const;

  const nlohmann::json& root_;
  std::string context_;
};

// A JSON value shortened for an error message: a corrupt file may hold megabytes in one field.
std::string json_excerpt(const nlohmann::json& value);

}  // namespace dscope::nn
