// Image files: decoding with stb_image (JPEG, PNG, BMP only) and encoding with stb_image_write.
//
// read_image reads the bytes itself and hands them to decode_image, so files and in-memory buffers share one
// decoder and one set of error messages; stb's own file I/O is compiled out. The header is parsed first
// (stbi_info) and images over kMaxPixels are rejected before any pixel buffer is allocated, so a crafted
// header cannot make us allocate gigabytes. stb keeps its failure reason in a thread-local, so reading it
// right after the failing call is safe while the loader decodes on several threads. Writing encodes into
// memory and then writes the file with an ofstream, so a failed write (full disk, missing folder) is seen.
#include "data/image.h"

#include <algorithm>
#include <cctype>
#include <climits>
#include <fstream>
#include <memory>

#include "tensor/error.h"

#define STBI_ONLY_JPEG
#define STBI_ONLY_PNG
#define STBI_ONLY_BMP
#define STBI_NO_STDIO
#define STB_IMAGE_IMPLEMENTATION
#include <stb_image.h>

#define STBI_WRITE_NO_STDIO
#define STB_IMAGE_WRITE_IMPLEMENTATION
#include <stb_image_write.h>

namespace dscope::data {
namespace {

// 2^28 pixels is 768 MiB of RGB: far beyond any dermoscopy image, yet still allocatable.
constexpr std::int64_t kMaxPixels = std::int64_t{1} << 28;
// Baseline JPEG stores each side in 16 bits.
constexpr std::int64_t kMaxJpegSide = 65535;

std::string lowercase_extension(const std::filesystem::path& path) {
  std::string extension = path.extension().string();
  std::transform(extension.begin(), extension.end(), extension.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return extension;
}

const char* failure_reason() {
  const char* reason = stbi_failure_reason();
  return reason != nullptr ? reason : "unknown reason";
}

// stb_image_write calls this with each piece of the encoded file.
void append_to_vector(void* context, void* data, int size) {
  auto* bytes = static_cast<std::vector<std::uint8_t>*>(context);
  const auto* begin = static_cast<const std::uint8_t*>(data);
  bytes->insert(bytes->end(), begin, begin + size);
}

}  // namespace

Image::Image(std::int64_t image_width, std::int64_t image_height) : width(image_width), height(image_height) {
  DSCOPE_CHECK(width > 0 && height > 0, ValueError, "Image: width and height must be positive, got ", width,
               "x", height);
  DSCOPE_CHECK(width <= kMaxPixels / height, ValueError, "Image: ", width, "x", height,
               " exceeds the limit of ", kMaxPixels, " pixels");
  pixels.assign(static_cast<std::size_t>(width * height * 3), 0);
}

bool has_image_extension(const std::filesystem::path& path) {
  const std::string extension = lowercase_extension(path);
  return extension == ".jpg" || extension == ".jpeg" || extension == ".png" || extension == ".bmp";
}

Image read_image(const std::filesystem::path& path) {
  // A directory opens like a file on Linux and only fails on reading, with no useful message.
  std::error_code ignored;
  DSCOPE_CHECK(!std::filesystem::is_directory(path, ignored), IoError, "read_image: cannot read ",
               path.string(), ": it is a directory");
  std::ifstream file(path, std::ios::binary | std::ios::ate);
  DSCOPE_CHECK(file.is_open(), IoError, "read_image: cannot open ", path.string());
  const std::streamoff size = file.tellg();
  DSCOPE_CHECK(size >= 0, IoError, "read_image: cannot read ", path.string());
  // Checked before allocating, as decode_image would reject it anyway.
  DSCOPE_CHECK(size <= INT_MAX, DataError, path.string(), ": ", size, " bytes is too large to decode");
  std::vector<std::uint8_t> bytes(static_cast<std::size_t>(size));
  file.seekg(0);
  file.read(reinterpret_cast<char*>(bytes.data()), size);
  DSCOPE_CHECK(file.gcount() == size, IoError, "read_image: cannot read ", path.string(), " (got ",
               file.gcount(), " of ", size, " bytes)");
  return decode_image(bytes, path.string());
}

Image decode_image(std::span<const std::uint8_t> bytes, const std::string& name) {
  DSCOPE_CHECK(!bytes.empty(), DataError, name, ": empty file");
  DSCOPE_CHECK(bytes.size() <= static_cast<std::size_t>(INT_MAX), DataError, name, ": ", bytes.size(),
               " bytes is too large to decode");
  const int length = static_cast<int>(bytes.size());

  int width = 0, height = 0, channels_in_file = 0;
  DSCOPE_CHECK(stbi_info_from_memory(bytes.data(), length, &width, &height, &channels_in_file) == 1,
               DataError, name, ": not a decodable image (", failure_reason(), ")");
  DSCOPE_CHECK(width > 0 && height > 0 && std::int64_t{width} * height <= kMaxPixels, DataError, name,
               ": image of ", width, "x", height, " pixels exceeds the limit of ", kMaxPixels, " pixels");

  constexpr int kChannels = 3;  // stb expands greyscale to RGB and drops alpha for us
  std::unique_ptr<stbi_uc, decltype(&stbi_image_free)> decoded(
      stbi_load_from_memory(bytes.data(), length, &width, &height, &channels_in_file, kChannels),
      &stbi_image_free);
  DSCOPE_CHECK(decoded != nullptr, DataError, name, ": not a decodable image (", failure_reason(), ")");

  Image image;
  image.width = width;
  image.height = height;
  const std::size_t count = static_cast<std::size_t>(width) * static_cast<std::size_t>(height) * kChannels;
  image.pixels.assign(decoded.get(), decoded.get() + count);
  return image;
}

void write_image(const std::filesystem::path& path, const Image& image, int jpeg_quality) {
  const std::string extension = lowercase_extension(path);
  const bool png = extension == ".png";
  const bool jpeg = extension == ".jpg" || extension == ".jpeg";
  DSCOPE_CHECK(png || jpeg, ValueError, "write_image: ", path.string(),
               ": unknown extension; expected .png, .jpg or .jpeg");
  DSCOPE_CHECK(image.width > 0 && image.height > 0, ValueError, "write_image: ", path.string(),
               ": image is empty (", image.width, "x", image.height, ")");
  DSCOPE_CHECK(image.width <= kMaxPixels / image.height &&
                   image.pixels.size() == static_cast<std::size_t>(image.width * image.height * 3),
               ValueError, "write_image: ", path.string(), ": image of ", image.width, "x", image.height,
               " holds ", image.pixels.size(), " values, expected width * height * 3");
  DSCOPE_CHECK(!jpeg || (jpeg_quality >= 1 && jpeg_quality <= 100), ValueError,
               "write_image: ", path.string(), ": JPEG quality must be in 1..100, got ", jpeg_quality);
  DSCOPE_CHECK(!jpeg || (image.width <= kMaxJpegSide && image.height <= kMaxJpegSide), ValueError,
               "write_image: ", path.string(), ": JPEG sides are at most ", kMaxJpegSide, ", got ",
               image.width, "x", image.height);

  std::vector<std::uint8_t> encoded;
  const int width = static_cast<int>(image.width), height = static_cast<int>(image.height);
  const int ok = png ? stbi_write_png_to_func(append_to_vector, &encoded, width, height, 3,
                                              image.pixels.data(), width * 3)
                     : stbi_write_jpg_to_func(append_to_vector, &encoded, width, height, 3,
                                              image.pixels.data(), jpeg_quality);
  DSCOPE_CHECK(ok != 0, ValueError, "write_image: ", path.string(), ": stb_image_write could not encode a ",
               image.width, "x", image.height, " image");

  std::ofstream file(path, std::ios::binary | std::ios::trunc);
  DSCOPE_CHECK(file.is_open(), IoError, "write_image: cannot open ", path.string(), " for writing");
  file.write(reinterpret_cast<const char*>(encoded.data()), static_cast<std::streamsize>(encoded.size()));
  file.close();
  DSCOPE_CHECK(!file.fail(), IoError, "write_image: cannot write ", path.string());
}

}  // namespace dscope::data
