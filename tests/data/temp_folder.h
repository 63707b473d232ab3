// A fresh folder under the system temporary directory for one test, removed with everything in it when
// the test ends; and small helpers to fill it with files.
#pragma once

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <string>

#include "data/image.h"

namespace dscope::testing {

class TempFolder {
 public:
  TempFolder() {
    const ::testing::TestInfo* test = ::testing::UnitTest::GetInstance()->current_test_info();
    path_ = std::filesystem::temp_directory_path() /
            (std::string("dscope_") + test->test_suite_name() + "_" + test->name());
    std::filesystem::remove_all(path_);
    std::filesystem::create_directories(path_);
  }
  ~TempFolder() {
    std::error_code ignored;
    std::filesystem::remove_all(path_, ignored);
  }
  TempFolder(const TempFolder&) = delete;
  TempFolder& operator=(const TempFolder&) = delete;

  const std::filesystem::path& path() const { return path_; }
  std::filesystem::path operator/(const std::string& name) const { return path_ / name; }

  // Writes `text` to `name` (creating folders on the way) and returns its path.
  std::filesystem::path write_text(const std::string& name, const std::string& text) const {
    const std::filesystem::path file = path_ / name;
    std::filesystem::create_directories(file.parent_path());
    std::ofstream(file, std::ios::binary) << text;
    return file;
  }
  // Writes a width × height image of one colour (by the extension: .png or .jpg) and returns its path.
  std::filesystem::path write_flat_image(const std::string& name, std::int64_t width, std::int64_t height,
                                         std::uint8_t red, std::uint8_t green = 0,
                                         std::uint8_t blue = 0) const {
    const std::filesystem::path file = path_ / name;
    std::filesystem::create_directories(file.parent_path());
    data::Image image(width, height);
    for (std::int64_t i = 0; i < width * height; ++i) {
      image.pixels[static_cast<std::size_t>(i * 3)] = red;
      image.pixels[static_cast<std::size_t>(i * 3 + 1)] = green;
      image.pixels[static_cast<std::size_t>(i * 3 + 2)] = blue;
    }
    data::write_image(file, image);
    return file;
  }

 private:
  std::filesystem::path path_;
};

}  // namespace dscope::testing
