// The random training view (torchvision's RandomResizedCrop, flips, quarter turns, ColorJitter) and the
// deterministic evaluation view.
//
// Draws from the Generator, in this order (a draw is skipped when its option is off):
//   1. the crop: up to 10 tries of uniform() for the area fraction, then uniform() for the log aspect ratio;
//      the first try that fits then draws below(height - h + 1) for the top edge and below(width - w + 1)
//      for the left edge;
//   2. horizontal flip: uniform() < 1/2;   3. vertical flip: uniform() < 1/2;   4. quarter turns: below(4);
//   5. brightness, contrast, saturation factors: one uniform() each.
// Crop rectangles are whole pixels, as in torchvision, and the crop is resampled once, by crop_resize.
// evaluation_view is crop_resize over the centred square, which is also exactly what the crop falls back to
// when the options allow only full-area square crops (strength 0), so augment at strength 0 equals it.
#include "data/augment.h"

#include <algorithm>
#include <cmath>

#include "tensor/error.h"

namespace dscope::data {
namespace {

struct CropRectangle {
  std::int64_t x = 0, y = 0, width = 0, height = 0;
};

// torchvision's RandomResizedCrop.get_params, drawing from `generator` in the order documented above.
CropRectangle random_resized_crop(const Image& image, const AugmentOptions& options, Generator& generator) {
  const auto width = static_cast<double>(image.width), height = static_cast<double>(image.height);
  const double area = width * height;
  const double log_ratio_min = std::log(options.ratio_min), log_ratio_max = std::log(options.ratio_max);
  for (int attempt = 0; attempt < 10; ++attempt) {
    const double target_area =
        area * (options.scale_min + (options.scale_max - options.scale_min) * generator.uniform());
    const double ratio = std::exp(log_ratio_min + (log_ratio_max - log_ratio_min) * generator.uniform());
    const std::int64_t crop_width = std::llround(std::sqrt(target_area * ratio));
    const std::int64_t crop_height = std::llround(std::sqrt(target_area / ratio));
    if (crop_width > 0 && crop_width <= image.width && crop_height > 0 && crop_height <= image.height) {
      CropRectangle crop;
      crop.width = crop_width;
      crop.height = crop_height;
      crop.y = static_cast<std::int64_t>(
          generator.below(static_cast<std::uint64_t>(image.height - crop_height + 1)));
      crop.x = static_cast<std::int64_t>(
          generator.below(static_cast<std::uint64_t>(image.width - crop_width + 1)));
      return crop;
    }
  }
  // Fallback: the whole image, narrowed to the nearest allowed aspect ratio and centred.
  CropRectangle crop{0, 0, image.width, image.height};
  const double image_ratio = width / height;
  if (image_ratio < options.ratio_min)
    crop.height = std::clamp<std::int64_t>(std::llround(width / options.ratio_min), 1, image.height);
  else if (image_ratio > options.ratio_max)
    crop.width = std::clamp<std::int64_t>(std::llround(height * options.ratio_max), 1, image.width);
  crop.x = (image.width - crop.width) / 2;
  crop.y = (image.height - crop.height) / 2;
  return crop;
}

// A factor drawn uniformly from [1 - amount, 1 + amount].
float jitter_factor(float amount, Generator& generator) {
  return 1.0f + amount * (2.0f * generator.uniform() - 1.0f);
}

void check_options(const AugmentOptions& options) {
  DSCOPE_CHECK(options.output_size > 0, ValueError, "augment: output_size must be positive, got ",
               options.output_size);
  DSCOPE_CHECK(
      std::isfinite(options.scale_max) && options.scale_min > 0.0 && options.scale_min <= options.scale_max,
      ValueError, "augment: scale range must satisfy 0 < scale_min <= scale_max, got [", options.scale_min,
      ", ", options.scale_max, "]");
  DSCOPE_CHECK(
      std::isfinite(options.ratio_max) && options.ratio_min > 0.0 && options.ratio_min <= options.ratio_max,
      ValueError, "augment: ratio range must satisfy 0 < ratio_min <= ratio_max, got [", options.ratio_min,
      ", ", options.ratio_max, "]");
  for (const float amount : {options.brightness, options.contrast, options.saturation})
    DSCOPE_CHECK(amount >= 0.0f && amount <= 1.0f, ValueError,
                 "augment: colour jitter amounts must lie in [0, 1], got brightness ", options.brightness,
                 ", contrast ", options.contrast, ", saturation ", options.saturation);
}

}  // namespace

AugmentOptions AugmentOptions::with_strength(std::int64_t output_size, double strength) {
  DSCOPE_CHECK(output_size > 0, ValueError,
               "AugmentOptions::with_strength: output_size must be positive, got ", output_size);
  DSCOPE_CHECK(strength >= 0.0 && strength <= 1.0, ValueError,
               "AugmentOptions::with_strength: strength must lie in [0, 1], got ", strength);
  const AugmentOptions defaults;
  AugmentOptions options;
  options.output_size = output_size;
  options.horizontal_flip = options.vertical_flip = options.rotate90 = strength > 0.0;
  // std::lerp and pow(·, 0 or 1) are exact at the ends, so strength 1 reproduces the defaults bit for bit
  // and strength 0 gives exactly 1 (full-area, square crops) and 0 (no jitter).
  options.scale_min = std::lerp(1.0, defaults.scale_min, strength);
  options.scale_max = std::lerp(1.0, defaults.scale_max, strength);
  // The ratio range shrinks toward 1 on a log scale, so it stays symmetric around 1 like the default.
  options.ratio_min = std::pow(defaults.ratio_min, strength);
  options.ratio_max = std::pow(defaults.ratio_max, strength);
  const auto scaled = [strength](float amount) { return static_cast<float>(amount * strength); };
  options.brightness = scaled(defaults.brightness);
  options.contrast = scaled(defaults.contrast);
  options.saturation = scaled(defaults.saturation);
  return options;
}

Image augment(const Image& image, const AugmentOptions& options, Generator& generator) {
  DSCOPE_CHECK(image.width > 0 && image.height > 0, ValueError, "augment: image is empty (", image.width, "x",
               image.height, ")");
  check_options(options);
  const CropRectangle crop = random_resized_crop(image, options, generator);
  Image view = crop_resize(image, static_cast<double>(crop.x), static_cast<double>(crop.y),
                           static_cast<double>(crop.width), static_cast<double>(crop.height),
                           options.output_size, options.output_size);
  if (options.horizontal_flip && generator.uniform() < 0.5f) view = flip_horizontal(view);
  if (options.vertical_flip && generator.uniform() < 0.5f) view = flip_vertical(view);
  if (options.rotate90) view = rotate90(view, static_cast<int>(generator.below(4)));
  if (options.brightness > 0.0f) view = adjust_brightness(view, jitter_factor(options.brightness, generator));
  if (options.contrast > 0.0f) view = adjust_contrast(view, jitter_factor(options.contrast, generator));
  if (options.saturation > 0.0f) view = adjust_saturation(view, jitter_factor(options.saturation, generator));
  return view;
}

Image evaluation_view(const Image& image, std::int64_t output_size) {
  DSCOPE_CHECK(image.width > 0 && image.height > 0, ValueError, "evaluation_view: image is empty (",
               image.width, "x", image.height, ")");
  DSCOPE_CHECK(output_size > 0, ValueError, "evaluation_view: output_size must be positive, got ",
               output_size);
  // Resizing the shorter side to output_size and cropping the centre is the same as resampling the centred
  // min(width, height)² square, done here in one pass; odd margins put the extra pixel right / bottom.
  const std::int64_t side = std::min(image.width, image.height);
  return crop_resize(image, static_cast<double>((image.width - side) / 2),
                     static_cast<double>((image.height - side) / 2), static_cast<double>(side),
                     static_cast<double>(side), output_size, output_size);
}

}  // namespace dscope::data
