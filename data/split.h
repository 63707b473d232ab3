// Train / validation / test splits without leakage: stratified by label, grouped by lesion.
//
// HAM10000 holds several photographs of many lesions. If one photograph of a lesion is in training and
// another in the test split, the test measures recognition of that lesion, not diagnosis, and accuracy is
// inflated. So whole groups (lesion_id) go to one split, and within each label the groups are dealt out so
// that every split gets close to its share of that label's images: a rare class such as df (1% of
// HAM10000) is then present in every split.
//
// A split is a pure function of the dataset and the seed, and it is written out as a manifest CSV
// (path, label, group, split) so that a run can be reproduced and audited, and read back.
#pragma once

#include <array>
#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

#include "data/dataset.h"

namespace dscope::data {

enum class Part { Train = 0, Validation = 1, Test = 2 };
const char* part_name(Part part);

struct SplitFractions {
  double train = 0.7, validation = 0.15, test = 0.15;  // non-negative, summing to 1
};

struct Split {
  std::array<std::vector<std::int64_t>, 3> indices;  // sample indices per Part, ascending
  const std::vector<std::int64_t>& operator[](Part part) const {
    return indices[static_cast<std::size_t>(part)];
  }
};

// Splits the dataset's samples. Samples with an empty group are groups of one. Throws ValueError for
// fractions that are negative or do not sum to 1 (within 1e-6).
Split split_dataset(const Dataset& dataset, const SplitFractions& fractions, std::uint64_t seed);

// The dataset restricted to one part of a split (same labels, samples in split order).
Dataset subset(const Dataset& dataset, const std::vector<std::int64_t>& indices);

// Writes path,label,group,split for every sample in the split, sorted by split then path.
void write_manifest(const std::filesystem::path& file, const Dataset& dataset, const Split& split);
// Reads a manifest back against the same dataset: every path must be a sample of the dataset with the same
// label. Throws DataError naming the line otherwise, or when a sample of the dataset is missing from it.
Split read_manifest(const std::filesystem::path& file, const Dataset& dataset);

// A fingerprint of a split: 16 hex digits of a 64-bit FNV-1a hash over the sorted lines "part,label,file
// name" of every sample. It ignores the folder the images were read from (a split of ../data/x.jpg and of
// /home/me/data/x.jpg is the same split) and the order of the samples, and changes when any image moves to
// another part. Model files record it so a build can check that weights it is given were trained on its
// training images only.
std::string split_digest(const Dataset& dataset, const Split& split);

}  // namespace dscope::data
