// Geometric and photometric operations on an Image, and turning an Image into network input.
//
// Shrinking uses area averaging (each output pixel is the mean of the input area it covers, with
// fractional edge weights), so a 192×144 lesion image brought to 64×48 keeps its fine texture as an
// average instead of aliasing it away, as point-sampled bilinear would. Enlarging uses bilinear
// interpolation with pixel centres at half-integers (OpenCV's and PyTorch's align_corners=False convention).
// resize() picks per axis: area when that axis shrinks, bilinear when it grows or stays.
#pragma once

#include <array>
#include <cstdint>

#include "data/image.h"

namespace dscope::data {

// Resizes to width × height (both positive; ValueError otherwise).
Image resize(const Image& image, std::int64_t width, std::int64_t height);
// Resizes keeping the aspect ratio so that the shorter side becomes `shorter_side` (the longer side is
// rounded to the nearest pixel).
Image resize_shorter_side(const Image& image, std::int64_t shorter_side);
// The rectangle [x, x + width) × [y, y + height), which must lie inside the image (ValueError otherwise).
Image crop(const Image& image, std::int64_t x, std::int64_t y, std::int64_t width, std::int64_t height);
// The centred width × height rectangle (odd margins put the extra pixel on the right / bottom).
Image centre_crop(const Image& image, std::int64_t width, std::int64_t height);
// A crop of the rectangle (x, y, width, height), in real-valued pixel coordinates inside the image,
// resampled to out_width × out_height in one pass (area when shrinking, bilinear when enlarging), so that a
// random resized crop does not resample twice.
Image crop_resize(const Image& image, double x, double y, double width, double height, std::int64_t out_width,
                  std::int64_t out_height);

Image flip_horizontal(const Image& image);
Image flip_vertical(const Image& image);
// Rotates by quarter_turns × 90° counter-clockwise (any integer; taken modulo 4). Swaps width and height
// for odd turns.
Image rotate90(const Image& image, int quarter_turns);

// Photometric jitter with factors as in torchvision's ColorJitter: brightness scales every value; contrast
// blends with the mean grey level of the image; saturation blends each pixel with its own grey value
// (ITU-R 601 luma: 0.299 R + 0.587 G + 0.114 B). Factor 1 leaves the image unchanged; results are rounded
// and clamped to [0, 255].
Image adjust_brightness(const Image& image, float factor);
Image adjust_contrast(const Image& image, float factor);
Image adjust_saturation(const Image& image, float factor);

// Per-channel normalisation: value = (pixel / 255 - mean[c]) / std[c].
struct Normalization {
  std::array<float, 3> mean = {0.5f, 0.5f, 0.5f};
  std::array<float, 3> std = {0.25f, 0.25f, 0.25f};
};

// Writes the image as normalised float32 CHW into `out` (3 * height * width floats): the layout of one
// image inside an NCHW batch.
void to_chw(const Image& image, const Normalization& normalization, float* out);

}  // namespace dscope::data
