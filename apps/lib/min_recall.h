// A minimum recall for chosen classes (dscope build --min-recall mel=0.6): the per-class factors of the
// logit adjustment (nn/checkpoint.h LogitAdjustment::class_factor) that make a class reach a recall the user
// asks for on the validation split. A clinician who must not miss melanoma sets the operating point here,
// as the target sensitivity sets the possible-cancer threshold; the price is paid in the recall of the
// classes the boosted one now takes images from, and the build's report says how much.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <utility>
#include <vector>

namespace dscope::apps {

// "LABEL=RECALL", e.g. "mel=0.6", with the recall in (0, 1]. Throws ValueError quoting the text otherwise.
std::pair<std::string, double> parse_min_recall(const std::string& text);

// Factors, one per class (all 1 but those of the classes in `min_recall`, class index → recall), that
// multiply rows of class probabilities (`probabilities`, truth.size() × classes, row-major) so that, with the
// prediction being the class of highest multiplied probability, each class in `min_recall` reaches its recall
// on these rows. Each factor is the smallest ≥ 1 that does it given the others: a class that already reaches
// its recall keeps 1. Classes boosted together take images from each other, so the factors are raised in
// turns until none changes; a recall no factor can reach (rows where the class has probability 0) leaves
// the factor at the largest that helps. ValueError for a class index or recall out of range.
std::vector<float> choose_class_factors(const std::vector<float>& probabilities,
                                        const std::vector<std::int64_t>& truth, std::int64_t classes,
                                        const std::map<std::int64_t, double>& min_recall);

}  // namespace dscope::apps
