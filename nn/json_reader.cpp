#include "nn/json_reader.h"

#include <cmath>
#include <limits>

namespace dscope::nn {

using Json = nlohmann::json;

std::string json_excerpt(const Json& value) {
  std::string text = value.dump(-1, ' ', false, Json::error_handler_t::replace);
  if (text.size() > 60) text = text.substr(0, 57) + "...";
  return text;
}

JsonReader::JsonReader(const Json& root, std::string context) : root_(root), context_(std::move(context)) {}

Json JsonReader::parse_object(const std::string& text, const std::string& context) {
  Json document;
  try {
    document = Json::parse(text);
  } catch (const Json::exception& error) {
    throw DataError(detail::concat(context, ": not valid JSON (", error.what(), ")"));
  }
  DSCOPE_CHECK(document.is_object(), DataError, context, ": a JSON ", document.type_name(),
               ", expected an object");
  return document;
}

const Json& JsonReader::field(const std::string& dotted) const {
  const Json* node = &root_;
  std::size_t start = 0;
  while (true) {
    const std::size_t dot = dotted.find('.', start);
    const std::string key = dotted.substr(start, dot == std::string::npos ? std::string::npos : dot - start);
    if (!node->is_object() || node->find(key) == node->end()) fail("'", dotted, "' is missing");
    node = &*node->find(key);
    if (dot == std::string::npos) return *node;
    start = dot + 1;
  }
}

void JsonReader::wrong_type(const std::string& dotted, const char* expected, const Json& value) const {
  fail("'", dotted, "' must be ", expected, ", got ", json_excerpt(value));
}

const Json& JsonReader::array(const std::string& dotted) const {
  const Json& value = field(dotted);
  if (!value.is_array()) wrong_type(dotted, "an array", value);
  return value;
}

std::int64_t JsonReader::integer_value(const Json& value, const std::string& dotted) const {
  // nlohmann stores non-negative integers as unsigned, so a value above INT64_MAX is an integer that does not
  // fit.
  if (!value.is_number_integer() ||
      (value.is_number_unsigned() && value.get<std::uint64_t>() > std::numeric_limits<std::int64_t>::max()))
    wrong_type(dotted, "a 64-bit integer", value);
  return value.get<std::int64_t>();
}

std::uint64_t JsonReader::unsigned_value(const Json& value, const std::string& dotted) const {
  if (!value.is_number_unsigned()) wrong_type(dotted, "a non-negative integer", value);
  return value.get<std::uint64_t>();
}

double JsonReader::number_value(const Json& value, const std::string& dotted) const {
  if (!value.is_number()) wrong_type(dotted, "a number", value);
  return value.get<double>();
}

float JsonReader::float32_value(const Json& value, const std::string& dotted) const {
  // Converting a finite double beyond float's range is undefined behaviour, so it is refused first.
  const double number = number_value(value, dotted);
  if (std::isfinite(number) && std::abs(number) > std::numeric_limits<float>::max())
    wrong_type(dotted, "a number within float range", value);
  return static_cast<float>(number);
}

std::int64_t JsonReader::integer(const std::string& dotted) const {
  return integer_value(field(dotted), dotted);
}

std::uint64_t JsonReader::unsigned_integer(const std::string& dotted) const {
  return unsigned_value(field(dotted), dotted);
}

double JsonReader::number(const std::string& dotted) const {
  return number_value(field(dotted), dotted);
}

float JsonReader::float32(const std::string& dotted) const {
  return float32_value(field(dotted), dotted);
}

bool JsonReader::boolean(const std::string& dotted) const {
  const Json& value = field(dotted);
  if (!value.is_boolean()) wrong_type(dotted, "true or false", value);
  return value.get<bool>();
}

std::string JsonReader::string(const std::string& dotted) const {
  const Json& value = field(dotted);
  if (!value.is_string()) wrong_type(dotted, "a string", value);
  return value.get<std::string>();
}

std::vector<std::int64_t> JsonReader::integers(const std::string& dotted) const {
  std::vector<std::int64_t> out;
  for (const Json& value : array(dotted))
    out.push_back(integer_value(value, dotted + "[]"));
  return out;
}

std::vector<std::uint64_t> JsonReader::unsigned_integers(const std::string& dotted) const {
  std::vector<std::uint64_t> out;
  for (const Json& value : array(dotted))
    out.push_back(unsigned_value(value, dotted + "[]"));
  return out;
}

std::vector<float> JsonReader::floats(const std::string& dotted) const {
  std::vector<float> out;
  for (const Json& value : array(dotted))
    out.push_back(float32_value(value, dotted + "[]"));
  return out;
}

std::vector<std::string> JsonReader::strings(const std::string& dotted) const {
  std::vector<std::string> out;
  for (const Json& value : array(dotted)) {
    if (!value.is_string()) wrong_type(dotted + "[]", "a string", value);
    out.push_back(value.get<std::string>());
  }
  return out;
}

std::map<std::string, double> JsonReader::numbers_by_name(const std::string& dotted) const {
  const Json& value = field(dotted);
  if (!value.is_object()) wrong_type(dotted, "an object", value);
  std::map<std::string, double> out;
  for (const auto& [key, number] : value.items())
    out.emplace(key, number_value(number, dotted + "." + key));
  return out;
}

}  // namespace dscope::nn
