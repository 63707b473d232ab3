#include "data/class_balance.h"

#include <algorithm>
#include <cmath>

#include "tensor/error.h"
#include "tensor/random.h"

namespace dscope::data {

std::vector<float> class_weights(const std::vector<std::int64_t>& counts, double power) {
  DSCOPE_CHECK(power >= 0.0 && power <= 1.0, ValueError, "class_weights: power must be in [0, 1], got ",
               power);
  double images = 0.0, weighted = 0.0;
  std::vector<double> raw(counts.size(), 0.0);
  for (std::size_t c = 0; c < counts.size(); ++c) {
    DSCOPE_CHECK(counts[c] >= 0, ValueError, "class_weights: class ", c, " has a negative count ", counts[c]);
    if (counts[c] == 0) continue;
    raw[c] = std::pow(static_cast<double>(counts[c]), -power);
    images += static_cast<double>(counts[c]);
    weighted += raw[c] * static_cast<double>(counts[c]);
  }
  std::vector<float> weights(counts.size(), 0.0f);
  for (std::size_t c = 0; c < counts.size(); ++c)
    if (weighted > 0) weights[c] = static_cast<float>(raw[c] * images / weighted);
  return weights;
}

std::vector<std::int64_t> balanced_epoch(const std::vector<std::int64_t>& labels, std::int64_t epoch_size,
                                         std::uint64_t seed, std::int64_t epoch, double power) {
  DSCOPE_CHECK(epoch_size >= 0, ValueError, "balanced_epoch: epoch size must be non-negative, got ",
               epoch_size);
  DSCOPE_CHECK(power >= 0.0 && power <= 1.0, ValueError, "balanced_epoch: power must be in [0, 1], got ",
               power);
  std::vector<std::vector<std::int64_t>> by_label;
  for (std::size_t i = 0; i < labels.size(); ++i) {
    DSCOPE_CHECK(labels[i] >= 0, ValueError, "balanced_epoch: sample ", i, " has label ", labels[i]);
    const auto label = static_cast<std::size_t>(labels[i]);
    if (label >= by_label.size()) by_label.resize(label + 1);
    by_label[label].push_back(static_cast<std::int64_t>(i));
  }
  std::vector<const std::vector<std::int64_t>*> present;
  for (const auto& members : by_label)
    if (!members.empty()) present.push_back(&members);
  std::vector<std::int64_t> order;
  if (present.empty()) return order;
  // Two draws per index: first a label, with probability ∝ count^(1 − power), then a sample of it
  // uniformly. Equal label weights draw the label with below(), as builds did before the power existed,
  // so that their epochs are drawn again exactly.
  std::vector<double> cumulative_weight;
  for (const auto* members : present) {
    const double weight = std::pow(static_cast<double>(members->size()), 1.0 - power);
    cumulative_weight.push_back((cumulative_weight.empty() ? 0.0 : cumulative_weight.back()) + weight);
  }
  Generator generator(seed ^ (0xD1B54A32D192ED03ULL * static_cast<std::uint64_t>(epoch + 1)));
  const auto draw_label = [&]() -> std::size_t {
    if (power == 1.0) return generator.below(present.size());
    const double point = static_cast<double>(generator.uniform()) * cumulative_weight.back();
    const auto above = std::upper_bound(cumulative_weight.begin(), cumulative_weight.end(), point);
    return std::min(static_cast<std::size_t>(above - cumulative_weight.begin()), present.size() - 1);
  };
  order.reserve(static_cast<std::size_t>(epoch_size));
  for (std::int64_t i = 0; i < epoch_size; ++i) {
    const auto& members = *present[draw_label()];
    order.push_back(members[generator.below(members.size())]);
  }
  return order;
}

}  // namespace dscope::data
