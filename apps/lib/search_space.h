// The standard build's search space: which recipes (apps/lib/build_recipe.h) a hyperparameter search may
// try, and drawing them from a seed.
//
// Each dimension has a default range chosen for HAM10000-like data on a CPU: learning rates on a log scale
// (separate ranges for SGD and AdamW, whose good rates differ by two orders of magnitude), weight decay on a
// log scale, and lists for the discrete choices. A JSON file may override any of them, e.g.
//   {"depths": [8, 14], "input_sizes": [64], "sgd_learning_rate": [0.03, 0.2]}
// and names it does not know are an error (a typo must not silently search the default).
#pragma once

#include <cstdint>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "apps/lib/build_recipe.h"
#include "tensor/random.h"

namespace dscope::apps {

struct LogRange {
  double min = 0.0, max = 0.0;  // 0 < min ≤ max; drawn log-uniformly
};
struct LinearRange {
  double min = 0.0, max = 0.0;  // min ≤ max; drawn uniformly
};

struct SearchSpace {
  std::vector<std::string> optimizers = {"sgd", "adamw"};
  LogRange sgd_learning_rate = {0.02, 0.3};
  LogRange adamw_learning_rate = {3e-4, 3e-3};
  LogRange weight_decay = {1e-5, 1e-3};
  std::vector<int> depths = {8, 14};
  std::vector<double> width_multipliers = {1.0, 1.5};
  std::vector<std::int64_t> input_sizes = {64};
  LinearRange augment_strength = {0.5, 1.0};
  std::vector<std::string> losses = {"weighted_ce", "focal", "ce"};
  LinearRange class_weight_power = {0.3, 1.0};
  std::vector<double> label_smoothing = {0.0, 0.1};
  std::vector<bool> balanced_sampling = {false, true};
  std::vector<std::int64_t> batch_sizes = {32, 64};

  // Overrides the fields present in `json` (an object); throws DataError naming `source` and the field for
  // an unknown name, a wrong type or an empty or invalid range.
  static SearchSpace from_json(const nlohmann::json& json, const std::string& source);
  static SearchSpace from_file(const std::filesystem::path& file);
  nlohmann::json to_json() const;

  // One recipe with `epochs` epochs, every choice drawn from the generator in a fixed order.
  Recipe sample(Generator& generator, std::int64_t epochs) const;
};

}  // namespace dscope::apps
