// Dataset: which image files there are, with which label, from which lesion; and the two ways of getting
// one: label folders (the way no-code tools import images) and the HAM10000 release (an image folder plus
// its metadata CSV).
//
// Importing lists files and checks metadata; it does not decode images (the image cache does, in parallel,
// and reports the files that fail). Everything that is skipped is reported in `problems` with where and why,
// and the summary says how many, so no image is ever dropped silently.
#pragma once

#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

namespace dscope::data {

struct Sample {
  std::filesystem::path path;
  std::int64_t label = 0;  // index into Dataset::labels
  // Images of one group must never be split apart: HAM10000's lesion_id (several photographs of the same
  // lesion). Empty for images that stand alone.
  std::string group;
};

struct ImportProblem {
  std::string where;  // a path, or "file:line"
  std::string reason;
};

struct Dataset {
  // Label folders: sorted by name, so the order is the same on every machine; HAM10000: in the order of
  // its known labels, those with at least one image.
  std::vector<std::string> labels;
  std::vector<Sample> samples;  // sorted by path
  std::vector<ImportProblem> problems;
  std::int64_t ignored_files = 0;  // files that are not images (no image extension), not problems

  std::vector<std::int64_t> counts_per_label() const;
  // One line per label with its image count, then how many files were skipped and ignored.
  std::string summary() const;
  // The same dataset without the samples whose paths are listed (e.g. those that failed to decode), with a
  // problem recorded for each.
  Dataset without(const std::vector<ImportProblem>& failed) const;
};

// ROOT/<label>/<image>: one folder per label, named after it; images directly inside (sub-folders are not
// searched, so a stray "old/" folder is not silently mixed in: it is reported). Files without an image
// extension are counted as ignored. Throws DataError when ROOT is not a folder, when it holds fewer than
// `minimum_labels` label folders (training needs two; scoring can take one), or when a label folder holds no
// images (naming it).
Dataset import_label_folders(const std::filesystem::path& root, std::size_t minimum_labels = 2);

// The HAM10000 release: `metadata` is HAM10000_metadata.csv (lesion_id, image_id, dx, ... in any column
// order; quoted fields allowed) and images are <image_id>.jpg (or .jpeg/.png/.bmp) anywhere under `images`
// (the release splits them over two folders). Rows with a missing
// image, an unknown dx, an empty id or a malformed line are reported with their line numbers and skipped.
// `known_labels` defaults to HAM10000's seven diagnoses. Throws IoError when the CSV cannot be read and
// DataError when a required column is missing or no row is usable.
Dataset import_ham10000(const std::filesystem::path& images, const std::filesystem::path& metadata,
                        const std::vector<std::string>& known_labels = {});

// HAM10000's diagnoses in the release's own order (alphabetical): akiec, bcc, bkl, df, mel, nv, vasc.
const std::vector<std::string>& ham10000_labels();

}  // namespace dscope::data
