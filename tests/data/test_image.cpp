// Image files: PNG and JPEG round trips through write_image / read_image, BMP and PNG variants (greyscale,
// RGBA) built byte by byte here so the test needs no encoder of its own, and every error a bad file can
// raise: missing, a directory, empty, another format, truncated, absurd dimensions.
#include <gtest/gtest.h>

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <random>
#include <string>
#include <vector>

#include "data/image.h"
#include "tensor/error.h"
#include "tests/support/expect_error.h"

namespace dscope::data {
namespace {

namespace fs = std::filesystem;
using Bytes = std::vector<std::uint8_t>;
using testing::expect_error;

// A fresh folder per test, removed afterwards; the name is unique across parallel test processes.
class ImageFileTest : public ::testing::Test {
 protected:
  void SetUp() override {
    const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
    const auto stamp = std::chrono::steady_clock::now().time_since_epoch().count();
    folder_ =
        fs::temp_directory_path() / ("dscope_test_image_" + std::string(info->name()) + "_" +
                                     std::to_string(stamp) + "_" + std::to_string(std::random_device{}()));
    fs::create_directories(folder_);
  }
  void TearDown() override {
    std::error_code ignored;
    fs::remove_all(folder_, ignored);
  }
  fs::path path(const std::string& name) const { return folder_ / name; }
  void write_bytes(const fs::path& file, const Bytes& bytes) const {
    std::ofstream out(file, std::ios::binary);
    out.write(reinterpret_cast<const char*>(bytes.data()), static_cast<std::streamsize>(bytes.size()));
  }
  Bytes read_bytes(const fs::path& file) const {
    std::ifstream in(file, std::ios::binary);
    return Bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  }

 private:
  fs::path folder_;
};

// Every pixel different, so a transposed or shifted read cannot pass.
Image pattern(std::int64_t width, std::int64_t height) {
  Image image(width, height);
  for (std::int64_t y = 0; y < height; ++y)
    for (std::int64_t x = 0; x < width; ++x)
      for (int c = 0; c < 3; ++c)
        image.at(y, x, c) = static_cast<std::uint8_t>(y * 40 + x * 7 + c * 90);
  return image;
}

void append_u32_big_endian(Bytes& bytes, std::uint32_t value) {
  for (int shift = 24; shift >= 0; shift -= 8)
    bytes.push_back(static_cast<std::uint8_t>(value >> shift));
}
void append_u16_little_endian(Bytes& bytes, std::uint32_t value) {
  bytes.push_back(static_cast<std::uint8_t>(value));
  bytes.push_back(static_cast<std::uint8_t>(value >> 8));
}
void append_u32_little_endian(Bytes& bytes, std::uint32_t value) {
  append_u16_little_endian(bytes, value & 0xffff);
  append_u16_little_endian(bytes, value >> 16);
}

std::uint32_t crc32(const std::uint8_t* data, std::size_t size) {
  std::uint32_t crc = 0xffffffffu;
  for (std::size_t i = 0; i < size; ++i) {
    crc ^= data[i];
    for (int bit = 0; bit < 8; ++bit)
      crc = (crc >> 1) ^ (0xedb88320u & (0u - (crc & 1u)));
  }
  return ~crc;
}

void append_png_chunk(Bytes& png, const char* type, const Bytes& data) {
  append_u32_big_endian(png, static_cast<std::uint32_t>(data.size()));
  const std::size_t start = png.size();
  png.insert(png.end(), type, type + 4);
  png.insert(png.end(), data.begin(), data.end());
  append_u32_big_endian(png, crc32(png.data() + start, png.size() - start));
}

// An 8-bit PNG of the given colour type (0 grey, 2 RGB, 4 grey+alpha, 6 RGBA) whose image data is
// `scanlines` (each row: filter byte 0, then the samples) in one uncompressed ("stored") deflate block,
// which is valid zlib that needs no compressor.
Bytes make_png(std::uint32_t width, std::uint32_t height, std::uint8_t colour_type, const Bytes& scanlines) {
  Bytes png = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'};
  Bytes header;
  append_u32_big_endian(header, width);
  append_u32_big_endian(header, height);
  header.insert(header.end(),
                {8, colour_type, 0, 0, 0});  // bit depth, colour, compression, filter, interlace
  append_png_chunk(png, "IHDR", header);

  Bytes zlib = {0x78, 0x01, 0x01};  // zlib header, then a final stored block
  append_u16_little_endian(zlib, static_cast<std::uint32_t>(scanlines.size()));
  append_u16_little_endian(zlib, static_cast<std::uint32_t>(~scanlines.size() & 0xffff));
  zlib.insert(zlib.end(), scanlines.begin(), scanlines.end());
  std::uint32_t a = 1, b = 0;  // Adler-32
  for (std::uint8_t value : scanlines) {
    a = (a + value) % 65521;
    b = (b + a) % 65521;
  }
  append_u32_big_endian(zlib, (b << 16) | a);
  append_png_chunk(png, "IDAT", zlib);
  append_png_chunk(png, "IEND", {});
  return png;
}

// A 2×2 24-bit BMP. BMP stores rows bottom-up, each pixel as B, G, R, each row padded to 4 bytes.
Bytes make_bmp_2x2(const Image& image) {
  Bytes bmp = {'B', 'M'};
  append_u32_little_endian(bmp, 54 + 16);  // file size: headers + 2 rows of 8 bytes
  append_u32_little_endian(bmp, 0);        // reserved
  append_u32_little_endian(bmp, 54);       // offset of the pixels
  append_u32_little_endian(bmp, 40);       // BITMAPINFOHEADER
  append_u32_little_endian(bmp, 2);        // width
  append_u32_little_endian(bmp, 2);        // height (positive: bottom-up)
  append_u16_little_endian(bmp, 1);        // planes
  append_u16_little_endian(bmp, 24);       // bits per pixel
  append_u32_little_endian(bmp, 0);        // no compression
  append_u32_little_endian(bmp, 16);       // pixel bytes
  append_u32_little_endian(bmp, 2835);     // 72 dpi, both axes
  append_u32_little_endian(bmp, 2835);
  append_u32_little_endian(bmp, 0);  // palette colours
  append_u32_little_endian(bmp, 0);  // important colours
  for (std::int64_t y = 1; y >= 0; --y) {
    for (std::int64_t x = 0; x < 2; ++x)
      bmp.insert(bmp.end(), {image.at(y, x, 2), image.at(y, x, 1), image.at(y, x, 0)});
    bmp.insert(bmp.end(), {0, 0});
  }
  return bmp;
}

TEST_F(ImageFileTest, PngRoundTripIsExact) {
  const Image image = pattern(5, 3);
  write_image(path("pattern.png"), image);
  const Image back = read_image(path("pattern.png"));
  EXPECT_EQ(back.width, 5);
  EXPECT_EQ(back.height, 3);
  EXPECT_EQ(back.pixels, image.pixels);
}

TEST_F(ImageFileTest, JpegRoundTripOfFlatColourIsClose) {
  Image image(16, 12);
  for (std::size_t i = 0; i < image.pixels.size(); i += 3) {
    image.pixels[i] = 200;
    image.pixels[i + 1] = 100;
    image.pixels[i + 2] = 50;
  }
  for (const char* name : {"flat.jpg", "flat.JPEG"}) {
    write_image(path(name), image, 95);
    const Image back = read_image(path(name));
    ASSERT_EQ(back.width, 16);
    ASSERT_EQ(back.height, 12);
    for (std::size_t i = 0; i < back.pixels.size(); ++i)
      ASSERT_NEAR(back.pixels[i], image.pixels[i], 3) << name << " value " << i;
  }
}

TEST_F(ImageFileTest, DecodesBmpWithItsBottomUpRows) {
  const Image image = pattern(2, 2);
  write_bytes(path("tiny.bmp"), make_bmp_2x2(image));
  const Image back = read_image(path("tiny.bmp"));
  EXPECT_EQ(back.width, 2);
  EXPECT_EQ(back.height, 2);
  EXPECT_EQ(back.pixels, image.pixels);
}

TEST_F(ImageFileTest, DecodeFromMemoryMatchesTheFile) {
  const Image image = pattern(4, 4);
  write_image(path("memory.png"), image);
  const Bytes bytes = read_bytes(path("memory.png"));
  EXPECT_EQ(decode_image(bytes, "memory.png").pixels, image.pixels);
}

TEST(ImageDecode, ExpandsGreyscaleToRgb) {
  // 3×1 grey: 0, 128, 255.
  const Image image = decode_image(make_png(3, 1, 0, {0, 0, 128, 255}), "grey.png");
  ASSERT_EQ(image.width, 3);
  ASSERT_EQ(image.height, 1);
  EXPECT_EQ(image.pixels, (Bytes{0, 0, 0, 128, 128, 128, 255, 255, 255}));
}

TEST(ImageDecode, DropsAlpha) {
  // 2×2 RGBA; alpha varies but must not change the colours.
  const Bytes scanlines = {0, 10, 20, 30, 255, 40,  50,  60,  0,  //
                           0, 70, 80, 90, 128, 100, 110, 120, 1};
  const Image rgba = decode_image(make_png(2, 2, 6, scanlines), "rgba.png");
  EXPECT_EQ(rgba.pixels, (Bytes{10, 20, 30, 40, 50, 60, 70, 80, 90, 100, 110, 120}));
  // Grey + alpha becomes grey RGB.
  const Image grey_alpha = decode_image(make_png(1, 1, 4, {0, 77, 3}), "grey_alpha.png");
  EXPECT_EQ(grey_alpha.pixels, (Bytes{77, 77, 77}));
}

TEST_F(ImageFileTest, MissingFileIsAnIoErrorNamingIt) {
  const fs::path missing = path("missing.png");
  expect_error<IoError>([&] { read_image(missing); }, {missing.string()});
}

TEST_F(ImageFileTest, DirectoryIsAnIoError) {
  fs::create_directories(path("folder.png"));
  expect_error<IoError>([&] { read_image(path("folder.png")); }, {"folder.png", "directory"});
}

TEST_F(ImageFileTest, EmptyFileIsADataError) {
  write_bytes(path("empty.jpg"), {});
  expect_error<DataError>([&] { read_image(path("empty.jpg")); }, {path("empty.jpg").string(), "empty file"});
}

TEST_F(ImageFileTest, TextRenamedJpgIsADataErrorNamingThePath) {
  const std::string text = "lesion_id,image_id,dx\nHAM_0000118,ISIC_0027419,bkl\n";
  write_bytes(path("notes.jpg"), Bytes(text.begin(), text.end()));
  expect_error<DataError>([&] { read_image(path("notes.jpg")); }, {path("notes.jpg").string()});
}

TEST_F(ImageFileTest, TruncatedJpegIsADataError) {
  // Noise compresses badly, so most of the file is entropy-coded data and half of it ends mid-scan.
  Image noise(64, 64);
  std::mt19937 random(5);
  for (std::uint8_t& value : noise.pixels)
    value = static_cast<std::uint8_t>(random() & 0xff);
  write_image(path("whole.jpg"), noise);
  const Bytes whole = read_bytes(path("whole.jpg"));
  ASSERT_GT(whole.size(), 2000u);
  write_bytes(path("half.jpg"),
              Bytes(whole.begin(), whole.begin() + static_cast<std::ptrdiff_t>(whole.size() / 2)));
  expect_error<DataError>([&] { read_image(path("half.jpg")); }, {path("half.jpg").string()});
}

TEST(ImageDecode, AbsurdDimensionsAreRejectedBeforeAllocating) {
  // A valid PNG header claiming 16384 × 16385 pixels (768 MiB of RGB) with one byte of data: just over our
  // limit of 2^28 pixels, and under stb's own limit of 2^30 bytes, so it is our check that fires.
  expect_error<DataError>([] { decode_image(make_png(16384, 16385, 2, {0}), "huge.png"); },
                          {"huge.png", "16384x16385", "exceeds"});
}

TEST(ImageExtension, RecognisesDecodableExtensionsInAnyCase) {
  EXPECT_TRUE(has_image_extension("a/ISIC_0027419.jpg"));
  EXPECT_TRUE(has_image_extension("ISIC_0027419.JPG"));
  EXPECT_TRUE(has_image_extension("x.jpeg"));
  EXPECT_TRUE(has_image_extension("x.Png"));
  EXPECT_TRUE(has_image_extension("x.bmp"));
  EXPECT_FALSE(has_image_extension("metadata.txt"));
  EXPECT_FALSE(has_image_extension("README"));
  EXPECT_FALSE(has_image_extension(".jpg.bak"));
  EXPECT_FALSE(has_image_extension("x.gif"));
}

TEST_F(ImageFileTest, WriteRejectsBadArguments) {
  const Image image = pattern(2, 2);
  expect_error<ValueError>([&] { write_image(path("x.gif"), image); }, {"x.gif", "extension"});
  expect_error<ValueError>([&] { write_image(path("x"), image); }, {"extension"});
  expect_error<ValueError>([&] { write_image(path("x.png"), Image{}); }, {"empty"});
  expect_error<ValueError>([&] { write_image(path("x.jpg"), image, 0); }, {"quality"});
  expect_error<ValueError>([&] { write_image(path("x.jpg"), image, 101); }, {"quality"});
  Image inconsistent = image;
  inconsistent.pixels.pop_back();
  expect_error<ValueError>([&] { write_image(path("x.png"), inconsistent); }, {"width * height * 3"});
}

TEST_F(ImageFileTest, WriteIntoAMissingFolderIsAnIoError) {
  const fs::path target = path("no_such_folder") / "x.png";
  expect_error<IoError>([&] { write_image(target, pattern(2, 2)); }, {target.string()});
}

TEST(ImageConstruction, IsBlackAndNeedsPositiveSides) {
  const Image image(3, 2);
  EXPECT_EQ(image.pixels, Bytes(18, 0));
  expect_error<ValueError>([] { Image(0, 2); }, {"positive"});
  expect_error<ValueError>([] { Image(3, -1); }, {"positive"});
}

}  // namespace
}  // namespace dscope::data
