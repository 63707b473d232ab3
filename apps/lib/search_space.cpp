#include "apps/lib/search_space.h"

#include <cmath>
#include <fstream>
#include <set>

#include "tensor/error.h"

namespace dscope::apps {
namespace {

template <typename T>
const T& pick(const std::vector<T>& choices, Generator& generator) {
  return choices[static_cast<std::size_t>(generator.below(choices.size()))];
}
bool pick(const std::vector<bool>& choices, Generator& generator) {
  return choices[static_cast<std::size_t>(generator.below(choices.size()))];
}

double draw(const LogRange& range, Generator& generator) {
  return std::exp(std::log(range.min) + generator.uniform() * (std::log(range.max) - std::log(range.min)));
}
double draw(const LinearRange& range, Generator& generator) {
  return range.min + generator.uniform() * (range.max - range.min);
}

// Reads one field of the override file into `target`, checking type and validity.
class Overrides {
 public:
  Overrides(const nlohmann::json& json, std::string source) : json_(json), source_(std::move(source)) {
    if (!json_.is_object()) fail("", "the search space must be a JSON object");
  }

  template <typename T>
  void list(const char* name, std::vector<T>& target) {
    if (!take(name)) return;
    try {
      target = json_.at(name).get<std::vector<T>>();
    } catch (const nlohmann::json::exception&) {
      fail(name, "must be a list of " + std::string(type_name<T>()));
    }
    if (target.empty()) fail(name, "must not be empty");
  }
  void range(const char* name, LogRange& target) {
    double min = 0, max = 0;
    if (!pair(name, min, max)) return;
    if (!(min > 0 && min <= max)) fail(name, "must be [min, max] with 0 < min <= max");
    target = {min, max};
  }
  void range(const char* name, LinearRange& target) {
    double min = 0, max = 0;
    if (!pair(name, min, max)) return;
    if (!(min <= max)) fail(name, "must be [min, max] with min <= max");
    target = {min, max};
  }
  void finish() const {
    for (const auto& [key, value] : json_.items())
      if (known_.count(key) == 0) fail(key, "is not a field of the search space");
  }
  [[noreturn]] void fail(const std::string& field, const std::string& what) const {
    throw DataError(source_ + ": " + (field.empty() ? "" : "'" + field + "' ") + what);
  }

 private:
  template <typename T>
  static const char* type_name() {
    if constexpr (std::is_same_v<T, std::string>) return "strings";
    if constexpr (std::is_same_v<T, bool>) return "booleans";
    if constexpr (std::is_floating_point_v<T>) return "numbers";
    return "integers";
  }
  bool take(const char* name) {
    known_.insert(name);
    return json_.contains(name);
  }
  bool pair(const char* name, double& min, double& max) {
    if (!take(name)) return false;
    const nlohmann::json& value = json_.at(name);
    if (!value.is_array() || value.size() != 2 || !value[0].is_number() || !value[1].is_number())
      fail(name, "must be [min, max]");
    min = value[0].get<double>();
    max = value[1].get<double>();
    return true;
  }

  const nlohmann::json& json_;
  std::string source_;
  std::set<std::string> known_;
};

// Each value of a dimension, set on an otherwise default recipe, must make a valid recipe.
template <typename Values, typename Set>
void check_dimension(const Values& values, Set set) {
  for (const auto& value : values) {
    Recipe probe;
    set(probe, value);
    probe.validate();
  }
}

}  // namespace

SearchSpace SearchSpace::from_json(const nlohmann::json& json, const std::string& source) {
  SearchSpace space;
  Overrides read(json, source);
  read.list("optimizers", space.optimizers);
  read.range("sgd_learning_rate", space.sgd_learning_rate);
  read.range("adamw_learning_rate", space.adamw_learning_rate);
  read.range("weight_decay", space.weight_decay);
  read.list("depths", space.depths);
  read.list("width_multipliers", space.width_multipliers);
  read.list("input_sizes", space.input_sizes);
  read.range("augment_strength", space.augment_strength);
  read.list("losses", space.losses);
  read.range("class_weight_power", space.class_weight_power);
  read.list("label_smoothing", space.label_smoothing);
  read.list("balanced_sampling", space.balanced_sampling);
  read.list("batch_sizes", space.batch_sizes);
  read.finish();
  // Every combination must make a valid recipe: check each value of each dimension (the ends of each range)
  // once, here, on an otherwise default recipe.
  try {
    check_dimension(space.optimizers, [](Recipe& r, const std::string& v) { r.optimizer = v; });
    check_dimension(space.depths, [](Recipe& r, int v) { r.depth = v; });
    check_dimension(space.width_multipliers,
                    [](Recipe& r, double v) { r.width_multiplier = static_cast<float>(v); });
    check_dimension(space.input_sizes, [](Recipe& r, std::int64_t v) { r.input_size = v; });
    check_dimension(space.losses, [](Recipe& r, const std::string& v) { r.loss = v; });
    check_dimension(space.batch_sizes, [](Recipe& r, std::int64_t v) { r.batch_size = v; });
    check_dimension(space.label_smoothing,
                    [](Recipe& r, double v) { r.label_smoothing = static_cast<float>(v); });
    check_dimension(std::vector<double>{space.augment_strength.min, space.augment_strength.max},
                    [](Recipe& r, double v) { r.augment_strength = v; });
    check_dimension(std::vector<double>{space.class_weight_power.min, space.class_weight_power.max},
                    [](Recipe& r, double v) { r.class_weight_power = v; });
    check_dimension(std::vector<double>{space.sgd_learning_rate.max, space.adamw_learning_rate.max},
                    [](Recipe& r, double v) { r.learning_rate = static_cast<float>(v); });
    check_dimension(std::vector<double>{space.weight_decay.max},
                    [](Recipe& r, double v) { r.weight_decay = static_cast<float>(v); });
  } catch (const ValueError& error) {
    read.fail("", std::string("gives an invalid recipe: ") + error.what());
  }
  return space;
}

SearchSpace SearchSpace::from_file(const std::filesystem::path& file) {
  std::ifstream in(file);
  DSCOPE_CHECK(in.good(), IoError, "cannot open the search space ", file.string());
  nlohmann::json json;
  try {
    json = nlohmann::json::parse(in);
  } catch (const nlohmann::json::parse_error& error) {
    throw DataError(file.string() + ": not valid JSON (" + error.what() + ")");
  }
  return from_json(json, file.string());
}

nlohmann::json SearchSpace::to_json() const {
  return {{"optimizers", optimizers},
          {"sgd_learning_rate", {sgd_learning_rate.min, sgd_learning_rate.max}},
          {"adamw_learning_rate", {adamw_learning_rate.min, adamw_learning_rate.max}},
          {"weight_decay", {weight_decay.min, weight_decay.max}},
          {"depths", depths},
          {"width_multipliers", width_multipliers},
          {"input_sizes", input_sizes},
          {"augment_strength", {augment_strength.min, augment_strength.max}},
          {"losses", losses},
          {"class_weight_power", {class_weight_power.min, class_weight_power.max}},
          {"label_smoothing", label_smoothing},
          {"balanced_sampling", balanced_sampling},
          {"batch_sizes", batch_sizes}};
}

Recipe SearchSpace::sample(Generator& generator, std::int64_t epochs) const {
  Recipe recipe;
  recipe.epochs = epochs;
  recipe.optimizer = pick(optimizers, generator);
  recipe.learning_rate = static_cast<float>(
      draw(recipe.optimizer == "sgd" ? sgd_learning_rate : adamw_learning_rate, generator));
  recipe.weight_decay = static_cast<float>(draw(weight_decay, generator));
  recipe.depth = pick(depths, generator);
  recipe.width_multiplier = static_cast<float>(pick(width_multipliers, generator));
  recipe.input_size = pick(input_sizes, generator);
  recipe.augment_strength = draw(augment_strength, generator);
  recipe.loss = pick(losses, generator);
  recipe.class_weight_power = draw(class_weight_power, generator);
  recipe.label_smoothing =
      recipe.loss == "focal" ? 0.0f : static_cast<float>(pick(label_smoothing, generator));
  recipe.balanced_sampling = pick(balanced_sampling, generator);
  recipe.batch_size = pick(batch_sizes, generator);
  recipe.warmup_epochs = 1;
  recipe.weight_average = 0.0;  // not part of the space: trials keep the weights of their last step
  return recipe;
}

}  // namespace dscope::apps
