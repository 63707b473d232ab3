// Image: 8-bit RGB pixels in memory, and reading and writing them as files.
//
// Every image dscope handles is RGB, interleaved, row-major (HWC): pixel (y, x) channel c is
// pixels[(y * width + x) * 3 + c]. Greyscale and greyscale+alpha are expanded to RGB and alpha is dropped
// (dermoscopy images have none worth keeping), so nothing downstream needs to care what the file held.
// Decoding is stb_image (JPEG baseline and progressive, PNG, BMP); writing is stb_image_write.
#pragma once

#include <cstdint>
#include <filesystem>
#include <span>
#include <string>
#include <vector>

namespace dscope::data {

struct Image {
  std::int64_t width = 0, height = 0;
  std::vector<std::uint8_t> pixels;  // height * width * 3, RGB interleaved

  Image() = default;
  // A black image of the given size; ValueError unless both sides are positive.
  Image(std::int64_t width, std::int64_t height);
  std::uint8_t& at(std::int64_t y, std::int64_t x, int channel) {
    return pixels[static_cast<std::size_t>((y * width + x) * 3 + channel)];
  }
  std::uint8_t at(std::int64_t y, std::int64_t x, int channel) const {
    return pixels[static_cast<std::size_t>((y * width + x) * 3 + channel)];
  }
};

// True for the extensions we decode: .jpg .jpeg .png .bmp, in any letter case.
bool has_image_extension(const std::filesystem::path& path);

// Decodes a file. Throws IoError when it cannot be opened or read, DataError naming the path and stb's
// reason when the bytes are not a decodable image (truncated, corrupt, another format).
Image read_image(const std::filesystem::path& path);
// Decodes bytes already in memory; `name` is what error messages call them.
Image decode_image(std::span<const std::uint8_t> bytes, const std::string& name);

// Writes PNG (lossless) or JPEG (quality 1..100), chosen by the extension (.png, .jpg/.jpeg). Throws
// ValueError for another extension or an empty image, IoError when the file cannot be written.
void write_image(const std::filesystem::path& path, const Image& image, int jpeg_quality = 90);

}  // namespace dscope::data
