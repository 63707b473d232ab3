// Splits: no lesion in two splits, each label's share in each split close to the whole's, deterministic
// from the seed, and the manifest reads back to the same split.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <map>
#include <set>

#include "data/split.h"
#include "tensor/error.h"
#include "tensor/random.h"
#include "tests/data/temp_folder.h"
#include "tests/support/expect_error.h"

namespace dscope::data {
namespace {

// A HAM10000-like dataset without files: seven labels with very unequal counts, lesions of 1–4 images.
Dataset synthetic_lesions(std::uint64_t seed) {
  Dataset dataset;
  dataset.labels = {"akiec", "bcc", "bkl", "df", "mel", "nv", "vasc"};
  const std::int64_t lesions_per_label[] = {60, 90, 190, 20, 200, 1200, 25};
  Generator generator(seed);
  std::int64_t image = 0;
  for (std::int64_t label = 0; label < 7; ++label)
    for (std::int64_t lesion = 0; lesion < lesions_per_label[label]; ++lesion) {
      const std::int64_t photographs = 1 + static_cast<std::int64_t>(generator.below(4));
      for (std::int64_t p = 0; p < photographs; ++p)
        dataset.samples.push_back(
            {detail::concat("img_", image++, ".jpg"), label, detail::concat("lesion_", label, "_", lesion)});
    }
  return dataset;
}

TEST(Split, NoLesionIsInTwoSplitsAndEveryImageIsInOne) {
  const Dataset dataset = synthetic_lesions(1);
  const Split split = split_dataset(dataset, {}, 7);
  std::map<std::string, std::set<int>> parts_of_lesion;
  std::vector<int> times_listed(dataset.samples.size(), 0);
  for (int part = 0; part < 3; ++part)
    for (const std::int64_t index : split.indices[static_cast<std::size_t>(part)]) {
      ++times_listed[static_cast<std::size_t>(index)];
      parts_of_lesion[dataset.samples[static_cast<std::size_t>(index)].group].insert(part);
    }
  for (const auto& [lesion, parts] : parts_of_lesion)
    EXPECT_EQ(parts.size(), 1u) << lesion << " is in " << parts.size() << " splits";
  for (const int times : times_listed)
    ASSERT_EQ(times, 1);
}

TEST(Split, EachLabelsShareInEachSplitIsNearTheTarget) {
  const Dataset dataset = synthetic_lesions(2);
  const SplitFractions fractions{0.7, 0.15, 0.15};
  const Split split = split_dataset(dataset, fractions, 3);
  const std::vector<std::int64_t> totals = dataset.counts_per_label();
  const double targets[3] = {fractions.train, fractions.validation, fractions.test};
  for (int part = 0; part < 3; ++part) {
    std::vector<std::int64_t> counts(dataset.labels.size(), 0);
    for (const std::int64_t index : split.indices[static_cast<std::size_t>(part)])
      ++counts[static_cast<std::size_t>(dataset.samples[static_cast<std::size_t>(index)].label)];
    for (std::size_t label = 0; label < counts.size(); ++label) {
      const double share = static_cast<double>(counts[label]) / static_cast<double>(totals[label]);
      // Within a few points: a rare label with ~50 images and lesions of up to 4 cannot do much better.
      EXPECT_NEAR(share, targets[part], 0.05)
          << dataset.labels[label] << " in " << part_name(static_cast<Part>(part));
      EXPECT_GT(counts[label], 0) << dataset.labels[label] << " is missing from a split";
    }
  }
}

TEST(Split, SameSeedSameSplitOtherSeedOtherSplit) {
  const Dataset dataset = synthetic_lesions(3);
  const Split a = split_dataset(dataset, {}, 11), b = split_dataset(dataset, {}, 11),
              c = split_dataset(dataset, {}, 12);
  EXPECT_EQ(a.indices, b.indices);
  EXPECT_NE(a.indices, c.indices);
}

TEST(Split, ImagesWithoutGroupsAreSplitOneByOne) {
  Dataset dataset;
  dataset.labels = {"a", "b"};
  for (int i = 0; i < 100; ++i)
    dataset.samples.push_back({detail::concat("x", i), i % 2, ""});
  const Split split = split_dataset(dataset, {0.8, 0.2, 0.0}, 1);
  EXPECT_EQ(split[Part::Train].size(), 80u);
  EXPECT_EQ(split[Part::Validation].size(), 20u);
  EXPECT_TRUE(split[Part::Test].empty());
}

TEST(Split, FractionsMustBeSharesOfOne) {
  const Dataset dataset = synthetic_lesions(4);
  testing::expect_error<ValueError>([&] { split_dataset(dataset, {0.5, 0.5, 0.5}, 1); }, {"sum to 1"});
  testing::expect_error<ValueError>([&] { split_dataset(dataset, {1.2, -0.2, 0.0}, 1); }, {"non-negative"});
}

TEST(Split, ManifestReadsBackToTheSameSplit) {
  testing::TempFolder folder;
  const Dataset dataset = synthetic_lesions(5);
  const Split split = split_dataset(dataset, {}, 6);
  write_manifest(folder / "split.csv", dataset, split);
  EXPECT_EQ(read_manifest(folder / "split.csv", dataset).indices, split.indices);
}

TEST(Split, DigestIgnoresFoldersAndOrderButNotAMovedImage) {
  const Dataset dataset = synthetic_lesions(5);
  const Split split = split_dataset(dataset, {}, 6);
  const std::string digest = split_digest(dataset, split);
  EXPECT_EQ(digest.size(), 16u);

  Dataset elsewhere = dataset;  // the same files read from another folder
  for (Sample& sample : elsewhere.samples)
    sample.path = "/somewhere/else" / sample.path;
  EXPECT_EQ(split_digest(elsewhere, split), digest);
  Split reordered = split;
  std::reverse(reordered.indices[0].begin(), reordered.indices[0].end());
  EXPECT_EQ(split_digest(dataset, reordered), digest);

  Split moved = split;  // one test image moved to training
  moved.indices[0].push_back(moved.indices[2].back());
  moved.indices[2].pop_back();
  EXPECT_NE(split_digest(dataset, moved), digest);
  EXPECT_NE(split_digest(dataset, split_dataset(dataset, {}, 7)), digest);
}

TEST(Split, ManifestThatDoesNotFitTheDatasetNamesTheLine) {
  testing::TempFolder folder;
  Dataset dataset;
  dataset.labels = {"a", "b"};
  dataset.samples = {{"one.jpg", 0, ""}, {"two.jpg", 1, ""}};
  const auto manifest = [&](const std::string& body) {
    return folder.write_text("m.csv", "path,label,group,split\n" + body);
  };
  testing::expect_error<DataError>(
      [&] { read_manifest(manifest("one.jpg,a,,train\nthree.jpg,b,,test\n"), dataset); },
      {"m.csv:3", "three.jpg"});
  testing::expect_error<DataError>(
      [&] { read_manifest(manifest("one.jpg,b,,train\ntwo.jpg,b,,test\n"), dataset); },
      {"m.csv:2", "label b"});
  testing::expect_error<DataError>(
      [&] { read_manifest(manifest("one.jpg,a,,holdout\ntwo.jpg,b,,test\n"), dataset); },
      {"m.csv:2", "holdout"});
  testing::expect_error<DataError>([&] { read_manifest(manifest("one.jpg,a,,train\n"), dataset); },
                                   {"two.jpg", "not in the manifest"});
  EXPECT_EQ(read_manifest(manifest("two.jpg,b,,test\none.jpg,a,,train\n"), dataset)[Part::Test],
            (std::vector<std::int64_t>{1}));
}

}  // namespace
}  // namespace dscope::data
