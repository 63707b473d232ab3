#include "data/dataset.h"

#include <algorithm>
#include <map>
#include <set>
#include <sstream>

#include "data/csv.h"
#include "data/image.h"
#include "tensor/error.h"

namespace dscope::data {
namespace fs = std::filesystem;

namespace {

std::string trim(const std::string& text) {
  const auto first = text.find_first_not_of(" \t\r");
  if (first == std::string::npos) return "";
  return text.substr(first, text.find_last_not_of(" \t\r") - first + 1);
}

std::string lower(std::string text) {
  std::transform(text.begin(), text.end(), text.begin(), [](unsigned char c) { return std::tolower(c); });
  return text;
}

void sort_samples(Dataset& dataset) {
  std::sort(dataset.samples.begin(), dataset.samples.end(),
            [](const Sample& a, const Sample& b) { return a.path < b.path; });
}

}  // namespace

std::vector<std::int64_t> Dataset::counts_per_label() const {
  std::vector<std::int64_t> counts(labels.size(), 0);
  for (const Sample& sample : samples)
    ++counts[static_cast<std::size_t>(sample.label)];
  return counts;
}

std::string Dataset::summary() const {
  std::ostringstream out;
  const std::vector<std::int64_t> counts = counts_per_label();
  std::size_t width = 5;
  for (const std::string& label : labels)
    width = std::max(width, label.size());
  out << samples.size() << " images in " << labels.size() << " labels\n";
  for (std::size_t i = 0; i < labels.size(); ++i) {
    const std::string count = std::to_string(counts[i]);
    out << "  " << labels[i] << std::string(width - labels[i].size(), ' ')
        << std::string(2 + std::to_string(samples.size()).size() - count.size(), ' ') << count;
    if (!samples.empty())
      out << "  ("
          << (100 * counts[i] + static_cast<std::int64_t>(samples.size()) / 2) /
                 static_cast<std::int64_t>(samples.size())
          << "%)";
    out << '\n';
  }
  if (!problems.empty()) out << problems.size() << " skipped (listed above)\n";
  if (ignored_files > 0) out << ignored_files << " files without an image extension ignored\n";
  return out.str();
}

Dataset Dataset::without(const std::vector<ImportProblem>& failed) const {
  std::set<std::string> drop;
  for (const ImportProblem& problem : failed)
    drop.insert(problem.where);
  Dataset kept = *this;
  kept.samples.clear();
  for (const Sample& sample : samples)
    if (drop.count(sample.path.string()) == 0) kept.samples.push_back(sample);
  kept.problems.insert(kept.problems.end(), failed.begin(), failed.end());
  return kept;
}

Dataset import_label_folders(const fs::path& root, std::size_t minimum_labels) {
  DSCOPE_CHECK(fs::is_directory(root), DataError, "label folders: ", root.string(),
               " is not a folder (expected one sub-folder of images per label)");
  Dataset dataset;
  std::vector<fs::path> folders;
  for (const fs::directory_entry& entry : fs::directory_iterator(root)) {
    if (entry.is_directory() && entry.path().filename().string().front() != '.')
      folders.push_back(entry.path());
    else if (entry.is_regular_file())
      ++dataset.ignored_files;
  }
  std::sort(folders.begin(), folders.end());
  DSCOPE_CHECK(folders.size() >= std::max<std::size_t>(minimum_labels, 1), DataError,
               "label folders: ", root.string(), " holds ", folders.size(), " label folder",
               folders.size() == 1 ? "" : "s", minimum_labels >= 2 ? "; a classifier needs at least two" : "",
               " (one sub-folder of images per label)");
  for (const fs::path& folder : folders) {
    const auto label = static_cast<std::int64_t>(dataset.labels.size());
    dataset.labels.push_back(folder.filename().string());
    std::int64_t images = 0;
    for (const fs::directory_entry& entry : fs::directory_iterator(folder)) {
      if (entry.is_directory()) {
        dataset.problems.push_back(
            {entry.path().string(), "a folder inside a label folder (sub-folders are not searched)"});
      } else if (has_image_extension(entry.path())) {
        dataset.samples.push_back({entry.path(), label, ""});
        ++images;
      } else {
        ++dataset.ignored_files;
      }
    }
    DSCOPE_CHECK(images > 0, DataError, "label folders: the label folder ", folder.string(),
                 " holds no images (.jpg, .jpeg, .png or .bmp)");
  }
  sort_samples(dataset);
  return dataset;
}

const std::vector<std::string>& ham10000_labels() {
  static const std::vector<std::string> labels = {"akiec", "bcc", "bkl", "df", "mel", "nv", "vasc"};
  return labels;
}

Dataset import_ham10000(const fs::path& images, const fs::path& metadata,
                        const std::vector<std::string>& known_labels) {
  DSCOPE_CHECK(fs::is_directory(images), DataError, "HAM10000: the images folder ", images.string(),
               " is not a folder");
  const CsvTable table = read_csv(metadata);
  const std::string name = metadata.string();
  const std::int64_t lesion_column = table.column("lesion_id"), image_column = table.column("image_id"),
                     label_column = table.column("dx");
  DSCOPE_CHECK(lesion_column >= 0 && image_column >= 0 && label_column >= 0, DataError, name,
               ":1: the header needs the columns lesion_id, image_id and dx (it has ", table.header.size(),
               " columns, starting with '", table.header.front(), "')");

  const std::vector<std::string>& candidates = known_labels.empty() ? ham10000_labels() : known_labels;
  std::map<std::string, std::vector<Sample>> by_label;
  std::vector<ImportProblem> problems;
  for (const CsvProblem& problem : table.problems)
    problems.push_back({detail::concat(name, ":", problem.line), "malformed line: " + problem.reason});

  // Index the folder and its sub-folders once (the release ships HAM10000_images_part_1 and _2; checking
  // 10,000 paths one stat at a time is slow on network file systems). Sorted, so that when an image id
  // is found twice the same copy wins on every machine, and the other is reported.
  std::vector<fs::path> found_files;
  for (const fs::directory_entry& entry : fs::recursive_directory_iterator(images))
    if (entry.is_regular_file() && has_image_extension(entry.path())) found_files.push_back(entry.path());
  std::sort(found_files.begin(), found_files.end());
  std::map<std::string, fs::path> files;
  for (const fs::path& file : found_files)
    if (const auto [kept, inserted] = files.emplace(file.stem().string(), file); !inserted)
      problems.push_back({file.string(), "a second file for image " + kept->first + " (using " +
                                             kept->second.string() + ")"});

  std::set<std::string> seen;
  for (const CsvRecord& record : table.records) {
    const std::string where = detail::concat(name, ":", record.line);
    const std::string lesion = trim(record.fields[static_cast<std::size_t>(lesion_column)]);
    const std::string image = trim(record.fields[static_cast<std::size_t>(image_column)]);
    const std::string label = lower(trim(record.fields[static_cast<std::size_t>(label_column)]));
    if (image.empty() || lesion.empty()) {
      problems.push_back({where, "empty image_id or lesion_id"});
    } else if (std::find(candidates.begin(), candidates.end(), label) == candidates.end()) {
      problems.push_back({where, "unknown diagnosis '" + label + "'"});
    } else if (!seen.insert(image).second) {
      problems.push_back({where, "image " + image + " is listed twice"});
    } else if (const auto file = files.find(image); file == files.end()) {
      problems.push_back({where, "image " + image + " is not in " + images.string()});
    } else {
      by_label[label].push_back({file->second, 0, lesion});
    }
  }

  Dataset dataset;
  dataset.problems = std::move(problems);
  for (const std::string& label : candidates) {
    const auto found = by_label.find(label);
    if (found == by_label.end()) continue;
    const auto index = static_cast<std::int64_t>(dataset.labels.size());
    dataset.labels.push_back(label);
    for (Sample& sample : found->second) {
      sample.label = index;
      dataset.samples.push_back(std::move(sample));
    }
  }
  DSCOPE_CHECK(!dataset.samples.empty(), DataError, "HAM10000: no usable row in ", name, " (",
               table.records.size(), " rows, ", dataset.problems.size(),
               " skipped; the first: ", dataset.problems.empty() ? "none" : dataset.problems.front().reason,
               ")");
  DSCOPE_CHECK(dataset.labels.size() >= 2, DataError, "HAM10000: only one diagnosis (",
               dataset.labels.front(), ") has images in ", name, "; a classifier needs at least two");
  sort_samples(dataset);
  return dataset;
}

}  // namespace dscope::data
