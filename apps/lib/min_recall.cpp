// How the factors of a minimum recall are found: per row, the factor that would make its true class win;
// the asked share of those, sorted, gives the smallest factor that wins enough rows.
#include "apps/lib/min_recall.h"

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <limits>

#include "tensor/error.h"

namespace dscope::apps {

std::pair<std::string, double> parse_min_recall(const std::string& text) {
  const std::size_t equals = text.find('=');
  DSCOPE_CHECK(equals != std::string::npos && equals > 0 && equals + 1 < text.size(), ValueError,
               "--min-recall '", text, "' is not LABEL=RECALL (e.g. mel=0.6)");
  const std::string label = text.substr(0, equals), number = text.substr(equals + 1);
  char* end = nullptr;
  const double recall = std::strtod(number.c_str(), &end);
  DSCOPE_CHECK(end != nullptr && *end == '\0' && recall > 0.0 && recall <= 1.0, ValueError, "--min-recall '",
               text, "': the recall '", number, "' is not a number in (0, 1]");
  return {label, recall};
}

namespace {

// The factor class `target` needs so that `row` is predicted as it, given the other classes' factors: its
// multiplied probability must beat every other's (strictly, as a tie goes to the lowest index). Infinite
// when the class has probability 0.
double factor_needed(const float* row, std::int64_t classes, std::int64_t target,
                     const std::vector<double>& factor) {
  double strongest_other = 0.0;
  for (std::int64_t k = 0; k < classes; ++k)
    if (k != target)
      strongest_other = std::max(strongest_other, factor[static_cast<std::size_t>(k)] * row[k]);
  const double own = row[target];
  return own > 0.0 ? strongest_other / own : std::numeric_limits<double>::infinity();
}

}  // namespace

std::vector<float> choose_class_factors(const std::vector<float>& probabilities,
                                        const std::vector<std::int64_t>& truth, std::int64_t classes,
                                        const std::map<std::int64_t, double>& min_recall) {
  DSCOPE_CHECK(classes > 0 && probabilities.size() == truth.size() * static_cast<std::size_t>(classes),
               ValueError, "choose_class_factors: ", probabilities.size(), " probabilities for ",
               truth.size(), " rows of ", classes, " classes");
  for (const auto& [label, recall] : min_recall)
    DSCOPE_CHECK(label >= 0 && label < classes && recall > 0.0 && recall <= 1.0, ValueError,
                 "choose_class_factors: minimum recall ", recall, " for class ", label, " of ", classes);
  // A margin over the exact factor, so that the row stays won after the factor is stored as a float and the
  // probabilities are renormalised in float.
  constexpr double kMargin = 1.0 + 1e-5;
  constexpr double kLargest = 1e6;  // the card's bound
  std::vector<double> factor(static_cast<std::size_t>(classes), 1.0);
  bool changed = true;
  for (int round = 0; changed && round < 50; ++round) {
    changed = false;
    for (const auto& [label, recall] : min_recall) {
      std::vector<double> needed;
      for (std::size_t row = 0; row < truth.size(); ++row)
        if (truth[row] == label)
          needed.push_back(factor_needed(probabilities.data() + row * static_cast<std::size_t>(classes),
                                         classes, label, factor));
      if (needed.empty()) continue;  // no images of the class: nothing to reach
      std::sort(needed.begin(), needed.end());
      const auto hits =
          static_cast<std::size_t>(std::ceil(recall * static_cast<double>(needed.size()) - 1e-9));
      double wanted = needed[std::max<std::size_t>(hits, 1) - 1];
      if (!std::isfinite(wanted)) {  // unreachable: as far as the reachable rows go
        const auto finite =
            std::find_if(needed.rbegin(), needed.rend(), [](double value) { return std::isfinite(value); });
        wanted = finite == needed.rend() ? 1.0 : *finite;
      }
      const double chosen = std::clamp(wanted * kMargin, 1.0, kLargest);
      double& current = factor[static_cast<std::size_t>(label)];
      if (chosen > current * (1.0 + 1e-9)) {
        current = chosen;
        changed = true;
      }
    }
  }
  return {factor.begin(), factor.end()};
}

}  // namespace dscope::apps
