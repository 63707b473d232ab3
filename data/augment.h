// Seeded data augmentation for training, and the deterministic transform for evaluation.
//
// Dermoscopy images have no "up" and no preferred handedness, so flips in both axes and quarter turns are
// label-preserving; the random resized crop teaches scale invariance (lesions are photographed at different
// magnifications); colour jitter covers differences between dermatoscopes and lighting. Every random choice
// is drawn from the Generator passed in, in a fixed order, so the same seed gives the same images.
#pragma once

#include <cstdint>

#include "data/image.h"
#include "data/image_transforms.h"
#include "tensor/random.h"

namespace dscope::data {

struct AugmentOptions {
  std::int64_t output_size = 64;  // the square side the network sees
  bool horizontal_flip = true;    // with probability 1/2
  bool vertical_flip = true;      // with probability 1/2
  bool rotate90 = true;           // 0, 1, 2 or 3 quarter turns, equally likely
  // Random resized crop: the crop covers a fraction of the image area drawn uniformly from [scale_min,
  // scale_max] with an aspect ratio (width / height) drawn log-uniformly from [ratio_min, ratio_max]; when
  // such a crop does not fit after 10 tries, the largest centred crop of the nearest ratio is used.
  double scale_min = 0.35, scale_max = 1.0;
  double ratio_min = 3.0 / 4.0, ratio_max = 4.0 / 3.0;
  // Colour jitter: each factor drawn uniformly from [1 - x, 1 + x]; 0 disables it. Applied in the order
  // brightness, contrast, saturation.
  float brightness = 0.2f, contrast = 0.2f, saturation = 0.2f;

  // Scales every strength by `strength` in [0, 1] (0: only resize; 1: these defaults), for a search over how
  // much to augment. Flips and rotations stay on for any strength > 0.
  static AugmentOptions with_strength(std::int64_t output_size, double strength);
};

// One random training view of the image: crop-resize to output_size², flips, rotation, colour jitter.
Image augment(const Image& image, const AugmentOptions& options, Generator& generator);

// The evaluation view: resize the shorter side to output_size, then the centred output_size² crop. Done in
// one pass as crop_resize of the centred min(width, height)² square (odd margins put the extra pixel on the
// right / bottom, as centre_crop does), so nothing is resampled twice; augment with with_strength(size, 0)
// returns exactly this image.
Image evaluation_view(const Image& image, std::int64_t output_size);

}  // namespace dscope::data
