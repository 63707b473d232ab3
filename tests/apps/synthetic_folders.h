// A tiny labelled image set for workbench tests, written as label folders into a TempFolder.
#pragma once

#include <cstdint>
#include <filesystem>
#include <string>

#include "data/image.h"
#include "tests/data/temp_folder.h"

namespace dscope::testing {

// Three labels that a tiny network can tell apart in a few epochs: mostly red, mostly green, mostly blue
// images with noise, `per_label` of each (ROOT/akiec, ROOT/mel, ROOT/nv), alternately PNG (24×24) and JPEG
// (30×20), so resizing and decoding are exercised.
inline void write_colour_folders(const TempFolder& folder, const std::string& root, int per_label) {
  const char* labels[] = {"akiec", "mel", "nv"};
  std::uint32_t state = 12345;
  const auto noise = [&] {
    state = state * 1664525u + 1013904223u;
    return static_cast<int>(state >> 27);  // 0..31
  };
  for (int label = 0; label < 3; ++label)
    for (int i = 0; i < per_label; ++i) {
      const bool png = i % 2 == 0;
      data::Image image(png ? 24 : 30, png ? 24 : 20);
      for (std::int64_t p = 0; p < image.width * image.height; ++p)
        for (int c = 0; c < 3; ++c)
          image.pixels[static_cast<std::size_t>(p * 3 + c)] =
              static_cast<std::uint8_t>((c == label ? 180 : 40) + noise());
      const std::filesystem::path file =
          folder / (root + "/" + labels[label] + "/" + std::to_string(i) + (png ? ".png" : ".jpg"));
      std::filesystem::create_directories(file.parent_path());
      data::write_image(file, image);
    }
}

}  // namespace dscope::testing
