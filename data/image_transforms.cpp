// Resampling, crops, flips, quarter turns, colour jitter and the conversion to normalised CHW floats.
//
// Note [resampling weight tables]: resampling is separable, so for each axis we first list, for every output
// coordinate, the input pixels it reads and their weights ("taps"), then apply the horizontal table to every
// needed row and the vertical table to the result, accumulating in float and rounding once at the end.
// Tables are built once per call; the per-pixel loops allocate nothing. An axis that shrinks uses area
// weights: output o covers the source interval [start + o·scale, start + (o+1)·scale) and each input pixel
// weighs its overlap with it. An axis that grows or keeps its size uses bilinear weights with pixel centres
// at half-integers. Taps are clamped to the pixels the source interval touches, so crop_resize over an
// integer rectangle gives exactly resize(crop(...)), and resize is crop_resize over the whole image.
#include "data/image_transforms.h"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <string>
#include <vector>

#include "tensor/error.h"

namespace dscope::data {
namespace {

// The Image struct is plain data, so every public function checks it is consistent before indexing.
void check_image(const Image& image, const char* operation) {
  DSCOPE_CHECK(image.width > 0 && image.height > 0, ValueError, operation, ": image is empty (", image.width,
               "x", image.height, ")");
  DSCOPE_CHECK(image.width <= INT64_MAX / 3 / image.height &&
                   image.pixels.size() == static_cast<std::size_t>(image.width * image.height * 3),
               ValueError, operation, ": image of ", image.width, "x", image.height, " holds ",
               image.pixels.size(), " values, expected ", image.width * image.height * 3);
}

std::uint8_t to_byte(float value) {
  return static_cast<std::uint8_t>(std::clamp(value, 0.0f, 255.0f) + 0.5f);
}

// See Note [resampling weight tables]. Output o reads taps [begin[o], begin[o + 1]).
struct AxisTaps {
  std::vector<std::size_t> begin;
  std::vector<std::int64_t> index;
  std::vector<float> weight;
};

// Taps for resampling the source interval [start, start + length) of an axis of `size` pixels to `out_size`.
AxisTaps axis_taps(double start, double length, std::int64_t size, std::int64_t out_size) {
  const auto first = std::clamp(static_cast<std::int64_t>(std::floor(start)), std::int64_t{0}, size - 1);
  const auto last = std::clamp(static_cast<std::int64_t>(std::ceil(start + length)) - 1, first, size - 1);
  // Positions are computed relative to the whole pixel `first` and the index added last, so an integer
  // start gives bit for bit the weights of resizing the cropped image.
  const double offset = start - static_cast<double>(first);
  AxisTaps taps;
  taps.begin.reserve(static_cast<std::size_t>(out_size) + 1);
  taps.begin.push_back(0);
  const double scale = length / static_cast<double>(out_size);  // source pixels per output pixel
  for (std::int64_t o = 0; o < out_size; ++o) {
    const std::size_t own_begin = taps.index.size();
    if (scale > 1.0) {
      // Both ends use the same expression, so neighbouring outputs share their boundary exactly.
      const double lo = offset + length * static_cast<double>(o) / static_cast<double>(out_size);
      const double hi = offset + length * static_cast<double>(o + 1) / static_cast<double>(out_size);
      double total = 0.0;
      for (auto i = static_cast<std::int64_t>(std::floor(lo)); static_cast<double>(i) < hi; ++i) {
        const double overlap =
            std::min(hi, static_cast<double>(i + 1)) - std::max(lo, static_cast<double>(i));
        if (overlap <= 0.0) continue;
        taps.index.push_back(std::clamp(first + i, first, last));
        taps.weight.push_back(static_cast<float>(overlap));
        total += overlap;
      }
      // Dividing by the covered length rather than by scale makes the weights sum to 1 despite rounding.
      for (std::size_t t = own_begin; t < taps.weight.size(); ++t)
        taps.weight[t] = static_cast<float>(taps.weight[t] / total);
    } else {
      // The centre of output o, in input index coordinates (input pixel i has its centre at i).
      const double centre = offset + (static_cast<double>(o) + 0.5) * scale - 0.5;
      const double below = std::floor(centre);
      const double fraction = centre - below;
      const auto i = first + static_cast<std::int64_t>(below);
      taps.index.push_back(std::clamp(i, first, last));
      taps.weight.push_back(static_cast<float>(1.0 - fraction));
      if (fraction > 0.0) {
        taps.index.push_back(std::clamp(i + 1, first, last));
        taps.weight.push_back(static_cast<float>(fraction));
      }
    }
    taps.begin.push_back(taps.index.size());
  }
  return taps;
}

// Resamples [x, x + width) × [y, y + height) to out_width × out_height; the caller has validated everything.
Image resample(const Image& image, double x, double y, double width, double height, std::int64_t out_width,
               std::int64_t out_height) {
  const AxisTaps columns = axis_taps(x, width, image.width, out_width);
  const AxisTaps rows = axis_taps(y, height, image.height, out_height);
  const auto [row_min, row_max] = std::minmax_element(rows.index.begin(), rows.index.end());
  const std::int64_t first_row = *row_min, row_count = *row_max - *row_min + 1;

  // Horizontal pass over the rows the vertical pass will read: row_count × out_width × 3 floats.
  const auto out_stride = static_cast<std::size_t>(out_width * 3);
  std::vector<float> horizontal(static_cast<std::size_t>(row_count) * out_stride);
  for (std::int64_t r = 0; r < row_count; ++r) {
    const std::uint8_t* in_row = image.pixels.data() + (first_row + r) * image.width * 3;
    float* out_row = horizontal.data() + static_cast<std::size_t>(r) * out_stride;
    for (std::int64_t o = 0; o < out_width; ++o) {
      float red = 0.0f, green = 0.0f, blue = 0.0f;
      for (std::size_t t = columns.begin[o]; t < columns.begin[o + 1]; ++t) {
        const std::uint8_t* pixel = in_row + columns.index[t] * 3;
        const float w = columns.weight[t];
        red += w * pixel[0];
        green += w * pixel[1];
        blue += w * pixel[2];
      }
      out_row[o * 3 + 0] = red;
      out_row[o * 3 + 1] = green;
      out_row[o * 3 + 2] = blue;
    }
  }

  // Vertical pass: each output row is a weighted sum of whole rows, a loop the compiler vectorises.
  Image result(out_width, out_height);
  std::vector<float> sum(out_stride);
  for (std::int64_t o = 0; o < out_height; ++o) {
    std::fill(sum.begin(), sum.end(), 0.0f);
    for (std::size_t t = rows.begin[o]; t < rows.begin[o + 1]; ++t) {
      const float* in_row =
          horizontal.data() + static_cast<std::size_t>(rows.index[t] - first_row) * out_stride;
      const float w = rows.weight[t];
      for (std::size_t k = 0; k < out_stride; ++k)
        sum[k] += w * in_row[k];
    }
    std::uint8_t* out_row = result.pixels.data() + static_cast<std::size_t>(o) * out_stride;
    for (std::size_t k = 0; k < out_stride; ++k)
      out_row[k] = to_byte(sum[k]);
  }
  return result;
}

float luma(const std::uint8_t* pixel) {
  return 0.299f * pixel[0] + 0.587f * pixel[1] + 0.114f * pixel[2];
}

void check_factor(float factor, const char* operation) {
  DSCOPE_CHECK(std::isfinite(factor) && factor >= 0.0f, ValueError, operation,
               ": factor must be finite and non-negative, got ", factor);
}

}  // namespace

Image resize(const Image& image, std::int64_t width, std::int64_t height) {
  check_image(image, "resize");
  DSCOPE_CHECK(width > 0 && height > 0, ValueError, "resize: output size must be positive, got ", width, "x",
               height);
  return resample(image, 0.0, 0.0, static_cast<double>(image.width), static_cast<double>(image.height), width,
                  height);
}

Image resize_shorter_side(const Image& image, std::int64_t shorter_side) {
  check_image(image, "resize_shorter_side");
  DSCOPE_CHECK(shorter_side > 0, ValueError, "resize_shorter_side: shorter side must be positive, got ",
               shorter_side);
  const auto scaled = [&](std::int64_t side, std::int64_t other) {
    return std::max<std::int64_t>(1,
                                  std::llround(static_cast<double>(side) * static_cast<double>(shorter_side) /
                                               static_cast<double>(other)));
  };
  if (image.width <= image.height) return resize(image, shorter_side, scaled(image.height, image.width));
  return resize(image, scaled(image.width, image.height), shorter_side);
}

Image crop(const Image& image, std::int64_t x, std::int64_t y, std::int64_t width, std::int64_t height) {
  check_image(image, "crop");
  DSCOPE_CHECK(
      x >= 0 && y >= 0 && width > 0 && height > 0 && x <= image.width - width && y <= image.height - height,
      ValueError, "crop: rectangle (x ", x, ", y ", y, ", width ", width, ", height ", height,
      ") does not lie inside the ", image.width, "x", image.height, " image");
  Image result(width, height);
  for (std::int64_t row = 0; row < height; ++row) {
    const auto source = image.pixels.begin() + ((y + row) * image.width + x) * 3;
    std::copy(source, source + width * 3, result.pixels.begin() + row * width * 3);
  }
  return result;
}

Image centre_crop(const Image& image, std::int64_t width, std::int64_t height) {
  check_image(image, "centre_crop");
  DSCOPE_CHECK(width > 0 && height > 0 && width <= image.width && height <= image.height, ValueError,
               "centre_crop: ", width, "x", height, " does not fit in the ", image.width, "x", image.height,
               " image");
  // Integer division rounds the left / top margin down, so the odd pixel goes right / bottom.
  return crop(image, (image.width - width) / 2, (image.height - height) / 2, width, height);
}

Image crop_resize(const Image& image, double x, double y, double width, double height, std::int64_t out_width,
                  std::int64_t out_height) {
  check_image(image, "crop_resize");
  // A little slack for rectangles computed in floating point that end a rounding error past the edge.
  constexpr double kSlack = 1e-6;
  const auto image_width = static_cast<double>(image.width), image_height = static_cast<double>(image.height);
  DSCOPE_CHECK(std::isfinite(x) && std::isfinite(y) && std::isfinite(width) && std::isfinite(height) &&
                   x >= 0.0 && y >= 0.0 && width > 0.0 && height > 0.0 && x + width <= image_width + kSlack &&
                   y + height <= image_height + kSlack,
               ValueError, "crop_resize: rectangle (x ", x, ", y ", y, ", width ", width, ", height ", height,
               ") does not lie inside the ", image.width, "x", image.height, " image");
  DSCOPE_CHECK(out_width > 0 && out_height > 0, ValueError, "crop_resize: output size must be positive, got ",
               out_width, "x", out_height);
  return resample(image, x, y, width, height, out_width, out_height);
}

Image flip_horizontal(const Image& image) {
  check_image(image, "flip_horizontal");
  Image result(image.width, image.height);
  for (std::int64_t y = 0; y < image.height; ++y)
    for (std::int64_t x = 0; x < image.width; ++x)
      for (int c = 0; c < 3; ++c)
        result.at(y, x, c) = image.at(y, image.width - 1 - x, c);
  return result;
}

Image flip_vertical(const Image& image) {
  check_image(image, "flip_vertical");
  Image result(image.width, image.height);
  const auto row_bytes = image.width * 3;
  for (std::int64_t y = 0; y < image.height; ++y) {
    const auto source = image.pixels.begin() + (image.height - 1 - y) * row_bytes;
    std::copy(source, source + row_bytes, result.pixels.begin() + y * row_bytes);
  }
  return result;
}

Image rotate90(const Image& image, int quarter_turns) {
  check_image(image, "rotate90");
  const int turns = ((quarter_turns % 4) + 4) % 4;
  if (turns == 0) return image;
  if (turns == 2) return flip_vertical(flip_horizontal(image));
  // Output (y, x) reads, counter-clockwise: input (x, W-1-y); clockwise (3 turns): input (H-1-x, y).
  const std::int64_t width = image.width, height = image.height;
  Image result(height, width);
  for (std::int64_t y = 0; y < width; ++y)
    for (std::int64_t x = 0; x < height; ++x) {
      const std::int64_t source_y = turns == 1 ? x : height - 1 - x;
      const std::int64_t source_x = turns == 1 ? width - 1 - y : y;
      for (int c = 0; c < 3; ++c)
        result.at(y, x, c) = image.at(source_y, source_x, c);
    }
  return result;
}

Image adjust_brightness(const Image& image, float factor) {
  check_image(image, "adjust_brightness");
  check_factor(factor, "adjust_brightness");
  Image result = image;
  for (std::uint8_t& value : result.pixels)
    value = to_byte(factor * value);
  return result;
}

Image adjust_contrast(const Image& image, float factor) {
  check_image(image, "adjust_contrast");
  check_factor(factor, "adjust_contrast");
  double total = 0.0;
  for (std::size_t i = 0; i < image.pixels.size(); i += 3)
    total += luma(&image.pixels[i]);
  const auto mean = static_cast<float>(total / static_cast<double>(image.width * image.height));
  // factor 1 gives 1·p + 0·mean = p exactly, so the identity holds bit for bit.
  const float offset = (1.0f - factor) * mean;
  Image result = image;
  for (std::uint8_t& value : result.pixels)
    value = to_byte(factor * value + offset);
  return result;
}

Image adjust_saturation(const Image& image, float factor) {
  check_image(image, "adjust_saturation");
  check_factor(factor, "adjust_saturation");
  Image result = image;
  for (std::size_t i = 0; i < result.pixels.size(); i += 3) {
    const float offset = (1.0f - factor) * luma(&image.pixels[i]);
    for (std::size_t c = 0; c < 3; ++c)
      result.pixels[i + c] = to_byte(factor * image.pixels[i + c] + offset);
  }
  return result;
}

void to_chw(const Image& image, const Normalization& normalization, float* out) {
  check_image(image, "to_chw");
  DSCOPE_CHECK(out != nullptr, ValueError, "to_chw: output pointer is null");
  // 256 possible values per channel: a lookup table replaces a division per element.
  float table[3][256];
  for (int c = 0; c < 3; ++c) {
    const float mean = normalization.mean[c], deviation = normalization.std[c];
    DSCOPE_CHECK(std::isfinite(mean) && std::isfinite(deviation) && deviation != 0.0f, ValueError,
                 "to_chw: channel ", c, " needs a finite mean and a finite non-zero std, got mean ", mean,
                 ", std ", deviation);
    for (int v = 0; v < 256; ++v)
      table[c][v] = (static_cast<float>(v) / 255.0f - mean) / deviation;
  }
  const auto plane = static_cast<std::size_t>(image.width * image.height);
  for (std::size_t i = 0; i < plane; ++i)
    for (std::size_t c = 0; c < 3; ++c)
      out[c * plane + i] = table[c][image.pixels[i * 3 + c]];
}

}  // namespace dscope::data
