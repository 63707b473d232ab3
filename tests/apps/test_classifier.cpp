// The classifier a model file becomes: probabilities that are distributions, test-time augmentation that
// averages the eight symmetric views (so it changes nothing for an image that looks the same in all), and a
// logit adjustment strength set in place of the card's; the card's views are the default.
#include <gtest/gtest.h>

#include <cmath>
#include <numeric>

#include "apps/lib/classifier.h"
#include "nn/checkpoint.h"
#include "tensor/random.h"
#include "tests/data/temp_folder.h"

namespace dscope::apps {
namespace {

nn::ResNet tiny_network(std::uint64_t seed) {
  nn::ResNetConfig config = nn::resnet_config(8, 3, nn::StemKind::Small, 0.5f);
  config.seed = seed;
  return nn::ResNet(config);
}

nn::ModelCard tiny_card(std::int64_t input_size = 16) {
  nn::ModelCard card;
  card.labels = {"a", "b", "c"};
  card.input.height = card.input.width = input_size;
  card.input.mean = {0.5f, 0.5f, 0.5f};
  card.input.stddev = {0.25f, 0.25f, 0.25f};
  return card;
}

std::filesystem::path save_tiny_model(const testing::TempFolder& folder, const std::vector<float>& prior = {},
                                      std::int64_t views = 1) {
  nn::ResNet model = tiny_network(3);
  nn::ModelCard card;
  card.labels = {"a", "b", "c"};
  card.input.height = card.input.width = 16;
  card.input.mean = {0.5f, 0.5f, 0.5f};
  card.input.stddev = {0.25f, 0.25f, 0.25f};
  card.input.views = views;
  card.adjustment = {prior, prior.empty() ? 0.0 : 0.5, {}, {}};
  const std::filesystem::path path = folder / ("tiny_" + std::to_string(views) + ".safetensors");
  nn::save_model(path, model, card);
  return path;
}

data::Image noise_image(std::uint64_t seed) {
  Generator generator(seed);
  data::Image image(18, 18);
  for (std::uint8_t& value : image.pixels)
    value = static_cast<std::uint8_t>(generator.below(256));
  return image;
}

TEST(Classifier, ProbabilitiesAreDistributionsWithOneOrEightViews) {
  testing::TempFolder folder;
  Classifier classifier(save_tiny_model(folder));
  const data::Image first = noise_image(1), second = noise_image(2);
  for (const int views : {1, 8}) {
    classifier.set_views(views);
    const std::vector<float> probabilities = classifier.probabilities({&first, &second});
    ASSERT_EQ(probabilities.size(), 6u);
    for (int row = 0; row < 2; ++row)
      EXPECT_NEAR(std::accumulate(probabilities.begin() + row * 3, probabilities.begin() + row * 3 + 3, 0.0f),
                  1.0f, 1e-5f);
  }
  EXPECT_THROW(classifier.set_views(4), ValueError);
}

TEST(Classifier, EightViewsOfASymmetricImageEqualOneView) {
  testing::TempFolder folder;
  Classifier classifier(save_tiny_model(folder));
  data::Image flat(18, 18);
  for (std::size_t i = 0; i < flat.pixels.size(); ++i)
    flat.pixels[i] = static_cast<std::uint8_t>(40 + 70 * (i % 3));
  const std::vector<float> one = classifier.probabilities({&flat});
  classifier.set_views(8);
  const std::vector<float> eight = classifier.probabilities({&flat});
  for (std::size_t k = 0; k < one.size(); ++k)
    EXPECT_NEAR(one[k], eight[k], 1e-5f);
  // A noisy image is not symmetric: its eight views differ, and so does their average.
  const data::Image noisy = noise_image(3);
  classifier.set_views(1);
  const std::vector<float> single = classifier.probabilities({&noisy});
  classifier.set_views(8);
  EXPECT_NE(single, classifier.probabilities({&noisy}));
}

TEST(Classifier, TheCardsViewsAreTheDefault) {
  testing::TempFolder folder;
  const data::Image noisy = noise_image(5);
  Classifier one_view(save_tiny_model(folder, {}, 1));
  Classifier eight_views(save_tiny_model(folder, {}, 8));
  EXPECT_EQ(one_view.views(), 1);
  ASSERT_EQ(eight_views.views(), 8);
  const std::vector<float> averaged = eight_views.probabilities({&noisy});
  EXPECT_NE(one_view.probabilities({&noisy}), averaged);
  one_view.set_views(8);
  EXPECT_EQ(one_view.probabilities({&noisy}), averaged);  // the same weights: only the views differed
}

TEST(Classifier, AdjustmentStrengthCanBeSetInPlaceOfTheCards) {
  testing::TempFolder folder;
  const std::vector<float> prior = {0.6f, 0.3f, 0.1f};
  Classifier classifier(save_tiny_model(folder, prior));
  const data::Image image = noise_image(4);
  classifier.set_adjusted(false);
  const std::vector<float> network = classifier.probabilities({&image});
  classifier.set_adjusted(true);
  for (const double strength : {0.5, 0.0, -1.0}) {  // 0.5 is the card's own
    classifier.set_adjustment_strength(strength);
    std::vector<float> expected = network;
    adjust_probabilities({prior, strength, {}, {}}, expected);
    const std::vector<float> got = classifier.probabilities({&image});
    for (std::size_t c = 0; c < 3; ++c)
      EXPECT_NEAR(got[c], expected[c], 1e-6f) << "strength " << strength;
  }
  EXPECT_THROW(classifier.set_adjustment_strength(std::nan("")), ValueError);

  Classifier without_prior(save_tiny_model(folder));
  EXPECT_NO_THROW(without_prior.set_adjustment_strength(0.0));
  EXPECT_THROW(without_prior.set_adjustment_strength(0.3), ValueError);
}

TEST(Classifier, AnEnsembleAveragesItsNetworksEachAtItsOwnInputSize) {
  testing::TempFolder folder;
  const nn::ResNet first = tiny_network(3), second = tiny_network(4);
  nn::save_model(folder / "first.safetensors", first, tiny_card(16));
  nn::save_model(folder / "second.safetensors", second, tiny_card(12));
  nn::ModelCard card = tiny_card(16);
  card.members = {tiny_card(16), tiny_card(12)};
  nn::save_ensemble(folder / "both.safetensors", {&first, &second}, card);
  card.members = {tiny_card(16), tiny_card(16)};
  nn::save_ensemble(folder / "twice.safetensors", {&first, &first}, card);

  const Classifier one(folder / "first.safetensors"), other(folder / "second.safetensors"),
      both(folder / "both.safetensors"), twice(folder / "twice.safetensors");
  EXPECT_EQ(both.network_count(), 2u);
  EXPECT_EQ(one.describe(), "ResNet-8 (widths 8/16/32) on 16×16 inputs, 1 view");
  EXPECT_EQ(both.describe(),
            "ensemble of 2: ResNet-8 (widths 8/16/32) on 16×16 inputs + ResNet-8 (widths 8/16/32) on 12×12 "
            "inputs, 1 view");
  EXPECT_EQ(both.cache_side(), one.cache_side());  // the larger input's
  EXPECT_GT(one.cache_side(), other.cache_side());
  const data::Image image = noise_image(6);  // 18 pixels: the cache side of a 16-pixel input
  const std::vector<float> alone = one.probabilities({&image}), second_alone = other.probabilities({&image});
  // Two copies of one network: the average of equal values is that value, bit for bit.
  EXPECT_EQ(twice.probabilities({&image}), alone);
  const std::vector<float> averaged = both.probabilities({&image});
  ASSERT_EQ(averaged.size(), alone.size());
  for (std::size_t k = 0; k < averaged.size(); ++k)
    EXPECT_NEAR(averaged[k], (alone[k] + second_alone[k]) / 2.0f, 1e-6f) << k;
  EXPECT_NE(alone, second_alone);
}

}  // namespace
}  // namespace dscope::apps
