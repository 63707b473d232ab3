// Augmentation: reproducible from the seed, square output of the requested size from any input shape,
// strength 0 equal to the evaluation view, flips and quarter turns at their stated rates, and bad options.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <random>
#include <vector>

#include "data/augment.h"
#include "tensor/error.h"
#include "tests/support/expect_error.h"

namespace dscope::data {
namespace {

using testing::expect_error;

Image random_image(std::int64_t width, std::int64_t height, unsigned seed) {
  std::mt19937 random(seed);
  Image image(width, height);
  for (std::uint8_t& value : image.pixels)
    value = static_cast<std::uint8_t>(random() & 0xff);
  return image;
}

// Options that only flip or turn: the crop is always the whole (square) image and colours stay.
AugmentOptions only(bool horizontal_flip, bool vertical_flip, bool rotate) {
  AugmentOptions options = AugmentOptions::with_strength(16, 0.0);
  options.horizontal_flip = horizontal_flip;
  options.vertical_flip = vertical_flip;
  options.rotate90 = rotate;
  return options;
}

// A 16×16 black image whose top-left 4×4 corner is white: which corner is white says how it was moved.
Image corner_marked() {
  Image image(16, 16);
  for (std::int64_t y = 0; y < 4; ++y)
    for (std::int64_t x = 0; x < 4; ++x)
      for (int c = 0; c < 3; ++c)
        image.at(y, x, c) = 255;
  return image;
}

// 0 top-left, 1 top-right, 2 bottom-left, 3 bottom-right.
int white_corner(const Image& image) {
  const std::int64_t last = image.width - 1;
  if (image.at(0, 0, 0) == 255) return 0;
  if (image.at(0, last, 0) == 255) return 1;
  if (image.at(last, 0, 0) == 255) return 2;
  return 3;
}

TEST(Augment, SameSeedGivesTheSameImages) {
  const Image image = random_image(80, 60, 1);
  const AugmentOptions options;
  Generator first(7), second(7);
  for (int i = 0; i < 5; ++i)
    EXPECT_EQ(augment(image, options, first).pixels, augment(image, options, second).pixels) << "draw " << i;
}

TEST(Augment, DifferentSeedsGiveDifferentImages) {
  const Image image = random_image(80, 60, 1);
  const AugmentOptions options;
  Generator first(7), second(8);
  EXPECT_NE(augment(image, options, first).pixels, augment(image, options, second).pixels);
}

TEST(Augment, OutputIsTheRequestedSquareForAnyInputShape) {
  Generator generator(3);
  const AugmentOptions options = AugmentOptions::with_strength(32, 1.0);
  // Landscape, portrait, smaller than the output, and extreme aspect ratios that force the fallback crop.
  for (const auto& [width, height] : {std::pair{100, 50}, std::pair{50, 100}, std::pair{20, 10},
                                      std::pair{1, 1}, std::pair{200, 3}, std::pair{3, 200}}) {
    const Image image = random_image(width, height, 2);
    for (int i = 0; i < 10; ++i) {
      const Image view = augment(image, options, generator);
      ASSERT_EQ(view.width, 32) << width << "x" << height;
      ASSERT_EQ(view.height, 32) << width << "x" << height;
      ASSERT_EQ(view.pixels.size(), 32u * 32u * 3u);
    }
  }
}

TEST(Augment, StrengthZeroIsTheEvaluationView) {
  Generator generator(11);
  const AugmentOptions options = AugmentOptions::with_strength(64, 0.0);
  EXPECT_FALSE(options.horizontal_flip || options.vertical_flip || options.rotate90);
  // Odd margins (193 - 144 = 49) and portrait images included.
  for (const auto& [width, height] : {std::pair{192, 144}, std::pair{144, 192}, std::pair{193, 144},
                                      std::pair{50, 50}, std::pair{30, 70}}) {
    const Image image = random_image(width, height, 4);
    const Image expected = evaluation_view(image, 64);
    for (int i = 0; i < 3; ++i)
      EXPECT_EQ(augment(image, options, generator).pixels, expected.pixels) << width << "x" << height;
  }
}

TEST(Augment, StrengthOneIsTheDefaultsAndHalfIsBetween) {
  const AugmentOptions defaults;
  const AugmentOptions full = AugmentOptions::with_strength(48, 1.0);
  EXPECT_EQ(full.output_size, 48);
  EXPECT_TRUE(full.horizontal_flip && full.vertical_flip && full.rotate90);
  EXPECT_EQ(full.scale_min, defaults.scale_min);
  EXPECT_EQ(full.scale_max, defaults.scale_max);
  EXPECT_EQ(full.ratio_min, defaults.ratio_min);
  EXPECT_EQ(full.ratio_max, defaults.ratio_max);
  EXPECT_EQ(full.brightness, defaults.brightness);
  EXPECT_EQ(full.contrast, defaults.contrast);
  EXPECT_EQ(full.saturation, defaults.saturation);

  const AugmentOptions half = AugmentOptions::with_strength(48, 0.5);
  EXPECT_TRUE(half.horizontal_flip && half.vertical_flip && half.rotate90);
  EXPECT_NEAR(half.scale_min, 1.0 - 0.5 * (1.0 - 0.35), 1e-12);
  EXPECT_DOUBLE_EQ(half.scale_max, 1.0);
  EXPECT_NEAR(half.ratio_min, std::sqrt(0.75), 1e-12);
  EXPECT_NEAR(half.ratio_max, std::sqrt(4.0 / 3.0), 1e-12);
  EXPECT_FLOAT_EQ(half.brightness, 0.1f);
}

TEST(Augment, FlipsHappenAboutHalfTheTime) {
  const Image image = corner_marked();
  Generator generator(21);
  int horizontal = 0, vertical = 0;
  for (int i = 0; i < 200; ++i) {
    horizontal += white_corner(augment(image, only(true, false, false), generator)) == 1;
    vertical += white_corner(augment(image, only(false, true, false), generator)) == 2;
  }
  // Binomial(200, 1/2) has standard deviation about 7; these bounds are 5.7 deviations wide.
  EXPECT_GT(horizontal, 60);
  EXPECT_LT(horizontal, 140);
  EXPECT_GT(vertical, 60);
  EXPECT_LT(vertical, 140);
}

TEST(Augment, EveryQuarterTurnOccurs) {
  const Image image = corner_marked();
  Generator generator(22);
  int counts[4] = {0, 0, 0, 0};
  for (int i = 0; i < 200; ++i)
    ++counts[white_corner(augment(image, only(false, false, true), generator))];
  for (int corner = 0; corner < 4; ++corner) {
    EXPECT_GT(counts[corner], 20) << "corner " << corner;
    EXPECT_LT(counts[corner], 80) << "corner " << corner;
  }
}

TEST(Augment, RejectsBadOptions) {
  const Image image = random_image(20, 20, 5);
  Generator generator(1);
  AugmentOptions options;
  options.output_size = 0;
  expect_error<ValueError>([&] { augment(image, options, generator); }, {"augment", "output_size"});
  options = AugmentOptions{};
  options.scale_min = 0.9;
  options.scale_max = 0.5;
  expect_error<ValueError>([&] { augment(image, options, generator); }, {"augment", "scale"});
  options = AugmentOptions{};
  options.ratio_min = 0.0;
  expect_error<ValueError>([&] { augment(image, options, generator); }, {"augment", "ratio"});
  options = AugmentOptions{};
  options.contrast = 1.5f;
  expect_error<ValueError>([&] { augment(image, options, generator); }, {"augment", "contrast"});
  expect_error<ValueError>([&] { augment(Image{}, AugmentOptions{}, generator); }, {"augment", "empty"});
  expect_error<ValueError>([] { AugmentOptions::with_strength(64, 1.5); }, {"with_strength", "1.5"});
  expect_error<ValueError>([] { AugmentOptions::with_strength(0, 0.5); }, {"with_strength", "output_size"});
}

TEST(EvaluationView, IsTheCentredSquareResized) {
  // 192×144 with the 24-column margins red and the centred 144×144 square blue: the view is all blue.
  Image image(192, 144);
  for (std::int64_t y = 0; y < 144; ++y)
    for (std::int64_t x = 0; x < 192; ++x)
      image.at(y, x, (x >= 24 && x < 168) ? 2 : 0) = 200;
  const Image view = evaluation_view(image, 64);
  ASSERT_EQ(view.width, 64);
  ASSERT_EQ(view.height, 64);
  for (std::size_t i = 0; i < view.pixels.size(); i += 3) {
    ASSERT_EQ(view.pixels[i], 0) << "pixel " << i / 3;
    ASSERT_EQ(view.pixels[i + 2], 200) << "pixel " << i / 3;
  }
  EXPECT_EQ(evaluation_view(image, 64).pixels, view.pixels);
  expect_error<ValueError>([&] { evaluation_view(image, 0); }, {"evaluation_view"});
}

}  // namespace
}  // namespace dscope::data
