// Image transforms: area averaging and bilinear values worked by hand, identities (same-size resize, factor
// 1 jitter, four quarter turns), where crops, flips and turns move a marked pixel, the normalised CHW layout,
// and bad arguments.
#include <gtest/gtest.h>

#include <cstdint>
#include <functional>
#include <random>
#include <vector>

#include "data/image_transforms.h"
#include "tensor/error.h"
#include "tests/support/expect_error.h"

namespace dscope::data {
namespace {

using Bytes = std::vector<std::uint8_t>;
using testing::expect_error;

Image make_image(std::int64_t width, std::int64_t height,
                 const std::function<std::uint8_t(std::int64_t, std::int64_t, int)>& value) {
  Image image(width, height);
  for (std::int64_t y = 0; y < height; ++y)
    for (std::int64_t x = 0; x < width; ++x)
      for (int c = 0; c < 3; ++c)
        image.at(y, x, c) = value(y, x, c);
  return image;
}

Image random_image(std::int64_t width, std::int64_t height, unsigned seed) {
  std::mt19937 random(seed);
  Image image(width, height);
  for (std::uint8_t& value : image.pixels)
    value = static_cast<std::uint8_t>(random() & 0xff);
  return image;
}

// A black image with one white pixel at (y, x).
Image marked(std::int64_t width, std::int64_t height, std::int64_t y, std::int64_t x) {
  Image image(width, height);
  for (int c = 0; c < 3; ++c)
    image.at(y, x, c) = 255;
  return image;
}

// Where the single white pixel of `image` is, as (y, x); (-1, -1) if there is none.
std::pair<std::int64_t, std::int64_t> find_mark(const Image& image) {
  for (std::int64_t y = 0; y < image.height; ++y)
    for (std::int64_t x = 0; x < image.width; ++x)
      if (image.at(y, x, 0) == 255) return {y, x};
  return {-1, -1};
}

TEST(Resize, AreaAveragingKeepsConstantBlocks) {
  // 4×4 made of four 2×2 blocks, one colour each.
  const std::uint8_t blocks[2][2][3] = {{{10, 20, 30}, {40, 50, 60}}, {{70, 80, 90}, {200, 210, 220}}};
  const Image image = make_image(4, 4, [&](auto y, auto x, int c) { return blocks[y / 2][x / 2][c]; });
  const Image small = resize(image, 2, 2);
  ASSERT_EQ(small.width, 2);
  ASSERT_EQ(small.height, 2);
  for (int y = 0; y < 2; ++y)
    for (int x = 0; x < 2; ++x)
      for (int c = 0; c < 3; ++c)
        EXPECT_EQ(small.at(y, x, c), blocks[y][x][c]) << y << "," << x << "," << c;
}

TEST(Resize, AreaAveragingOfACheckerboardIsGreyNotAliased) {
  const Image board = make_image(8, 8, [](auto y, auto x, int) { return (x + y) % 2 ? 255 : 0; });
  const Image small = resize(board, 4, 4);
  for (std::uint8_t value : small.pixels)
    EXPECT_TRUE(value == 127 || value == 128) << int{value};
}

TEST(Resize, AreaAveragingWeighsFractionalEdges) {
  // Width 5 to 2: output 0 covers [0, 2.5) = 0 + 50 + half of 100, over 2.5 → 40; output 1 → 160.
  const std::uint8_t row[5] = {0, 50, 100, 150, 200};
  const Image image = make_image(5, 1, [&](auto, auto x, int) { return row[x]; });
  const Image small = resize(image, 2, 1);
  EXPECT_EQ(small.at(0, 0, 0), 40);
  EXPECT_EQ(small.at(0, 1, 0), 160);
}

TEST(Resize, BilinearUsesHalfPixelCentres) {
  // Width 2 to 4: output centres fall at input coordinates -0.25 (clamped), 0.25, 0.75, 1.25 (clamped).
  const Image image = make_image(2, 1, [](auto, auto x, int) { return x == 0 ? 0 : 100; });
  const Image large = resize(image, 4, 1);
  EXPECT_EQ(large.at(0, 0, 1), 0);
  EXPECT_EQ(large.at(0, 1, 1), 25);
  EXPECT_EQ(large.at(0, 2, 1), 75);
  EXPECT_EQ(large.at(0, 3, 1), 100);
}

TEST(Resize, EnlargedRampStaysMonotonicWithItsEndpoints) {
  const Image ramp = make_image(4, 2, [](auto, auto x, int) { return static_cast<std::uint8_t>(x * 85); });
  const Image large = resize(ramp, 13, 5);
  for (std::int64_t y = 0; y < large.height; ++y) {
    EXPECT_EQ(large.at(y, 0, 0), 0);
    EXPECT_EQ(large.at(y, 12, 0), 255);
    for (std::int64_t x = 1; x < large.width; ++x)
      EXPECT_LE(large.at(y, x - 1, 0), large.at(y, x, 0)) << "row " << y << " column " << x;
  }
}

TEST(Resize, SameSizeIsTheIdentity) {
  const Image image = random_image(7, 5, 1);
  EXPECT_EQ(resize(image, 7, 5).pixels, image.pixels);
}

TEST(Resize, MixedAxesShrinkOneAndGrowTheOther) {
  // Columns shrink by area (pairs average), rows grow by bilinear (a single row is repeated).
  const Image image = make_image(4, 1, [](auto, auto x, int) { return static_cast<std::uint8_t>(x * 20); });
  const Image result = resize(image, 2, 3);
  for (std::int64_t y = 0; y < 3; ++y) {
    EXPECT_EQ(result.at(y, 0, 2), 10);
    EXPECT_EQ(result.at(y, 1, 2), 50);
  }
}

TEST(Resize, ShorterSideKeepsTheAspectRatio) {
  const Image landscape = resize_shorter_side(random_image(192, 144, 2), 64);
  EXPECT_EQ(landscape.width, 85);  // 192 · 64 / 144 = 85.33
  EXPECT_EQ(landscape.height, 64);
  const Image portrait = resize_shorter_side(random_image(100, 300, 3), 10);
  EXPECT_EQ(portrait.width, 10);
  EXPECT_EQ(portrait.height, 30);
}

TEST(Crop, TakesTheRectangleAtItsCoordinates) {
  const Image image = random_image(6, 5, 4);
  const Image piece = crop(image, 1, 2, 3, 2);
  ASSERT_EQ(piece.width, 3);
  ASSERT_EQ(piece.height, 2);
  for (std::int64_t y = 0; y < 2; ++y)
    for (std::int64_t x = 0; x < 3; ++x)
      for (int c = 0; c < 3; ++c)
        EXPECT_EQ(piece.at(y, x, c), image.at(y + 2, x + 1, c));
  EXPECT_EQ(crop(image, 0, 0, 6, 5).pixels, image.pixels);
}

TEST(Crop, CentreCropPutsTheOddPixelRightAndBottom) {
  // 5×4 to 2×1: margins 3 horizontally (1 left, 2 right) and 3 vertically (1 top, 2 bottom).
  const Image image = marked(5, 4, 1, 1);
  const Image piece = centre_crop(image, 2, 1);
  EXPECT_EQ(find_mark(piece), std::make_pair(std::int64_t{0}, std::int64_t{0}));
}

TEST(CropResize, IntegerRectangleEqualsCropThenResize) {
  const Image image = random_image(40, 30, 5);
  for (const auto& [out_width, out_height] : {std::pair{8, 6}, std::pair{25, 40}, std::pair{17, 17}}) {
    const Image one_pass = crop_resize(image, 5, 3, 20, 17, out_width, out_height);
    const Image two_passes = resize(crop(image, 5, 3, 20, 17), out_width, out_height);
    EXPECT_EQ(one_pass.pixels, two_passes.pixels) << out_width << "x" << out_height;
  }
  EXPECT_EQ(crop_resize(image, 0, 0, 40, 30, 13, 9).pixels, resize(image, 13, 9).pixels);
}

TEST(CropResize, FractionalRectangleWeighsPartialPixels) {
  // [0.5, 2.5) of 0, 100, 200 shrunk to one pixel: (half of 0 + 100 + half of 200) / 2 = 100.
  const Image image = make_image(3, 1, [](auto, auto x, int) { return static_cast<std::uint8_t>(x * 100); });
  EXPECT_EQ(crop_resize(image, 0.5, 0.0, 2.0, 1.0, 1, 1).at(0, 0, 0), 100);
}

TEST(Flip, MovesAMarkedPixelToTheMirroredPlace) {
  const Image image = marked(4, 3, 0, 1);
  EXPECT_EQ(find_mark(flip_horizontal(image)), std::make_pair(std::int64_t{0}, std::int64_t{2}));
  EXPECT_EQ(find_mark(flip_vertical(image)), std::make_pair(std::int64_t{2}, std::int64_t{1}));
  EXPECT_EQ(flip_horizontal(flip_horizontal(image)).pixels, image.pixels);
}

TEST(Rotate90, TurnsCounterClockwise) {
  // 4 wide, 3 high, marked at the top-right corner.
  const Image image = marked(4, 3, 0, 3);
  const Image once = rotate90(image, 1);
  EXPECT_EQ(once.width, 3);
  EXPECT_EQ(once.height, 4);
  EXPECT_EQ(find_mark(once), std::make_pair(std::int64_t{0}, std::int64_t{0}));  // top-left
  const Image twice = rotate90(image, 2);
  EXPECT_EQ(twice.width, 4);
  EXPECT_EQ(find_mark(twice), std::make_pair(std::int64_t{2}, std::int64_t{0}));  // bottom-left
  const Image clockwise = rotate90(image, -1);
  EXPECT_EQ(clockwise.width, 3);
  EXPECT_EQ(find_mark(clockwise), std::make_pair(std::int64_t{3}, std::int64_t{2}));  // bottom-right
  EXPECT_EQ(rotate90(image, 3).pixels, clockwise.pixels);
  EXPECT_EQ(rotate90(image, 5).pixels, once.pixels);
}

TEST(Rotate90, FourTurnsAreTheIdentity) {
  const Image image = random_image(5, 3, 6);
  EXPECT_EQ(rotate90(image, 4).pixels, image.pixels);
  EXPECT_EQ(rotate90(rotate90(rotate90(rotate90(image, 1), 1), 1), 1).pixels, image.pixels);
  EXPECT_EQ(rotate90(image, -8).width, 5);
}

TEST(ColourJitter, FactorOneIsTheIdentity) {
  const Image image = random_image(9, 7, 7);
  EXPECT_EQ(adjust_brightness(image, 1.0f).pixels, image.pixels);
  EXPECT_EQ(adjust_contrast(image, 1.0f).pixels, image.pixels);
  EXPECT_EQ(adjust_saturation(image, 1.0f).pixels, image.pixels);
}

TEST(ColourJitter, BrightnessScalesAndClamps) {
  const Image image =
      make_image(1, 1, [](auto, auto, int c) { return static_cast<std::uint8_t>(100 + c * 50); });
  EXPECT_EQ(adjust_brightness(image, 0.5f).pixels, (Bytes{50, 75, 100}));
  EXPECT_EQ(adjust_brightness(image, 2.0f).pixels, (Bytes{200, 255, 255}));
}

TEST(ColourJitter, ContrastZeroIsTheMeanGrey) {
  // Two pixels with luma 0 and 200: every value becomes the mean, 100.
  const Image image = make_image(2, 1, [](auto, auto x, int) { return x == 0 ? 0 : 200; });
  EXPECT_EQ(adjust_contrast(image, 0.0f).pixels, Bytes(6, 100));
}

TEST(ColourJitter, SaturationZeroIsGrey) {
  const Image grey = adjust_saturation(random_image(6, 6, 8), 0.0f);
  for (std::size_t i = 0; i < grey.pixels.size(); i += 3) {
    EXPECT_EQ(grey.pixels[i], grey.pixels[i + 1]);
    EXPECT_EQ(grey.pixels[i], grey.pixels[i + 2]);
  }
  // Pure red has luma 0.299 · 255 = 76.2.
  const Image red = make_image(1, 1, [](auto, auto, int c) { return c == 0 ? 255 : 0; });
  EXPECT_EQ(adjust_saturation(red, 0.0f).pixels, (Bytes{76, 76, 76}));
}

TEST(ToChw, WritesNormalisedPlanes) {
  const Image image = random_image(3, 2, 9);
  Normalization normalization;
  normalization.mean = {0.1f, 0.2f, 0.3f};
  normalization.std = {0.5f, 0.25f, 2.0f};
  std::vector<float> out(18);
  to_chw(image, normalization, out.data());
  for (int c = 0; c < 3; ++c)
    for (std::int64_t y = 0; y < 2; ++y)
      for (std::int64_t x = 0; x < 3; ++x) {
        const float expected =
            (static_cast<float>(image.at(y, x, c)) / 255.0f - normalization.mean[c]) / normalization.std[c];
        EXPECT_FLOAT_EQ(out[static_cast<std::size_t>(c * 6 + y * 3 + x)], expected)
            << c << "," << y << "," << x;
      }
}

TEST(ImageTransforms, RejectBadArguments) {
  const Image image = random_image(4, 3, 10);
  expect_error<ValueError>([&] { resize(image, 0, 3); }, {"resize", "0x3"});
  expect_error<ValueError>([&] { resize(Image{}, 2, 2); }, {"resize", "empty"});
  expect_error<ValueError>([&] { resize_shorter_side(image, 0); }, {"resize_shorter_side"});
  expect_error<ValueError>([&] { crop(image, 2, 0, 3, 3); }, {"crop", "4x3"});
  expect_error<ValueError>([&] { crop(image, -1, 0, 1, 1); }, {"crop"});
  expect_error<ValueError>([&] { centre_crop(image, 5, 1); }, {"centre_crop"});
  expect_error<ValueError>([&] { crop_resize(image, 0.5, 0.0, 4.0, 3.0, 2, 2); }, {"crop_resize"});
  expect_error<ValueError>([&] { crop_resize(image, 0.0, 0.0, 4.0, 3.0, 2, 0); }, {"crop_resize"});
  expect_error<ValueError>([&] { adjust_brightness(image, -0.1f); }, {"adjust_brightness"});
  expect_error<ValueError>([&] { adjust_contrast(image, -1.0f); }, {"adjust_contrast"});
  expect_error<ValueError>([&] { adjust_saturation(image, -2.0f); }, {"adjust_saturation"});
  Normalization zero_std;
  zero_std.std[1] = 0.0f;
  std::vector<float> out(36);
  expect_error<ValueError>([&] { to_chw(image, zero_std, out.data()); }, {"to_chw", "std"});
  Image inconsistent = image;
  inconsistent.pixels.resize(5);
  expect_error<ValueError>([&] { flip_horizontal(inconsistent); }, {"flip_horizontal", "holds 5 values"});
}

}  // namespace
}  // namespace dscope::data
