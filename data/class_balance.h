// Class imbalance: HAM10000 is two thirds nv (benign naevi) and 1% df. Trained naively, a network learns
// to say "nv" and is 67% accurate while missing melanomas. Two remedies, usable alone or together:
//   - per-class loss weights, larger for rare classes (for weighted cross-entropy or focal loss);
//   - a class-balanced sampler that draws every class equally often, or part of the way there.
#pragma once

#include <cstdint>
#include <vector>

namespace dscope::data {

// Weight of class c proportional to 1 / count_c^power: power 1 is inverse frequency, 0.5 a smoothed
// version (rare classes weigh more, but not 60× more), 0 uniform. Normalised so that the weight averaged
// over the images is 1 (the loss keeps its scale). A class with no images gets weight 0. Throws
// ValueError for a negative count or a power outside [0, 1].
std::vector<float> class_weights(const std::vector<std::int64_t>& counts, double power = 1.0);

// An epoch of `epoch_size` sample indices drawn with replacement, each sample with probability
// proportional to 1 / its label's count^power, from the seed and the epoch number. Power 1 makes every
// label equally likely; 0.5 draws a label in proportion to the square root of its count (rare labels
// are seen more often than they occur, but their few images are not repeated as often as under power
// 1); 0 draws labels as often as they occur. `labels[i]` is sample i's label. Throws ValueError for a
// power outside [0, 1].
std::vector<std::int64_t> balanced_epoch(const std::vector<std::int64_t>& labels, std::int64_t epoch_size,
                                         std::uint64_t seed, std::int64_t epoch, double power = 1.0);

}  // namespace dscope::data
