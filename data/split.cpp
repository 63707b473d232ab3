#include "data/split.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <map>

#include "data/csv.h"
#include "tensor/error.h"
#include "tensor/random.h"

namespace dscope::data {

const char* part_name(Part part) {
  switch (part) {
    case Part::Train:
      return "train";
    case Part::Validation:
      return "validation";
    case Part::Test:
      return "test";
  }
  return "unknown";
}

namespace {

struct Group {
  std::vector<std::int64_t> members;  // sample indices
  std::int64_t label = 0;             // the majority label of its images
};

std::vector<Group> make_groups(const Dataset& dataset) {
  std::map<std::string, std::size_t> index_of;
  std::vector<Group> groups;
  for (std::size_t i = 0; i < dataset.samples.size(); ++i) {
    const Sample& sample = dataset.samples[i];
    if (sample.group.empty()) {
      groups.push_back({{static_cast<std::int64_t>(i)}, sample.label});
      continue;
    }
    const auto [found, inserted] = index_of.emplace(sample.group, groups.size());
    if (inserted) groups.emplace_back();
    groups[found->second].members.push_back(static_cast<std::int64_t>(i));
  }
  for (Group& group : groups) {
    std::map<std::int64_t, std::int64_t> votes;
    for (const std::int64_t member : group.members)
      ++votes[dataset.samples[static_cast<std::size_t>(member)].label];
    group.label = std::max_element(votes.begin(), votes.end(), [](const auto& a, const auto& b) {
                    return a.second < b.second;
                  })->first;
  }
  return groups;
}

}  // namespace

Split split_dataset(const Dataset& dataset, const SplitFractions& fractions, std::uint64_t seed) {
  const std::array<double, 3> share = {fractions.train, fractions.validation, fractions.test};
  DSCOPE_CHECK(share[0] >= 0 && share[1] >= 0 && share[2] >= 0 &&
                   std::abs(share[0] + share[1] + share[2] - 1.0) < 1e-6,
               ValueError, "split: fractions must be non-negative and sum to 1, got train ", share[0],
               ", validation ", share[1], ", test ", share[2]);
  const std::vector<Group> groups = make_groups(dataset);
  Split split;
  for (std::size_t label = 0; label < dataset.labels.size(); ++label) {
    std::vector<const Group*> mine;
    std::int64_t images = 0;
    for (const Group& group : groups)
      if (group.label == static_cast<std::int64_t>(label)) {
        mine.push_back(&group);
        images += static_cast<std::int64_t>(group.members.size());
      }
    // Shuffle (Fisher-Yates, from a generator of its own per label so that adding a label does not move
    // the others), then deal the largest groups first: they are the hardest to place near the targets.
    Generator generator(seed * 0x9E3779B97F4A7C15ULL + label + 1);
    for (std::size_t i = mine.size(); i > 1; --i)
      std::swap(mine[i - 1], mine[generator.below(i)]);
    std::stable_sort(mine.begin(), mine.end(),
                     [](const Group* a, const Group* b) { return a->members.size() > b->members.size(); });
    std::array<double, 3> filled = {0, 0, 0};
    for (const Group* group : mine) {
      // The part furthest below its target takes the group; parts with no share never do.
      std::size_t best = 3;
      double best_deficit = 0;
      for (std::size_t part = 0; part < 3; ++part) {
        if (share[part] <= 0) continue;
        const double deficit = share[part] * static_cast<double>(images) - filled[part];
        if (best == 3 || deficit > best_deficit) {
          best = part;
          best_deficit = deficit;
        }
      }
      filled[best] += static_cast<double>(group->members.size());
      split.indices[best].insert(split.indices[best].end(), group->members.begin(), group->members.end());
    }
  }
  for (auto& part : split.indices)
    std::sort(part.begin(), part.end());
  return split;
}

Dataset subset(const Dataset& dataset, const std::vector<std::int64_t>& indices) {
  Dataset part;
  part.labels = dataset.labels;
  part.samples.reserve(indices.size());
  for (const std::int64_t index : indices) {
    DSCOPE_CHECK(index >= 0 && index < static_cast<std::int64_t>(dataset.samples.size()), ValueError,
                 "subset: sample index ", index, " is outside the dataset of ", dataset.samples.size());
    part.samples.push_back(dataset.samples[static_cast<std::size_t>(index)]);
  }
  return part;
}

void write_manifest(const std::filesystem::path& file, const Dataset& dataset, const Split& split) {
  std::ofstream out(file, std::ios::binary);
  DSCOPE_CHECK(out.good(), IoError, "cannot write the split manifest ", file.string());
  out << "path,label,group,split\n";
  for (std::size_t part = 0; part < 3; ++part)
    for (const std::int64_t index : split.indices[part]) {
      const Sample& sample = dataset.samples[static_cast<std::size_t>(index)];
      out << csv_field(sample.path.string()) << ','
          << csv_field(dataset.labels[static_cast<std::size_t>(sample.label)]) << ','
          << csv_field(sample.group) << ',' << part_name(static_cast<Part>(part)) << '\n';
    }
  DSCOPE_CHECK(out.good(), IoError, "writing the split manifest ", file.string(), " failed");
}

std::string split_digest(const Dataset& dataset, const Split& split) {
  std::vector<std::string> lines;
  for (std::size_t part = 0; part < 3; ++part)
    for (const std::int64_t index : split.indices[part]) {
      const Sample& sample = dataset.samples[static_cast<std::size_t>(index)];
      lines.push_back(std::string(part_name(static_cast<Part>(part))) + ',' +
                      dataset.labels[static_cast<std::size_t>(sample.label)] + ',' +
                      sample.path.filename().string());
    }
  std::sort(lines.begin(), lines.end());
  std::uint64_t hash = 0xcbf29ce484222325ULL;  // FNV-1a 64-bit offset basis and prime
  for (const std::string& line : lines)
    for (const char c : line + '\n') {
      hash ^= static_cast<unsigned char>(c);
      hash *= 0x100000001b3ULL;
    }
  char digits[17];
  std::snprintf(digits, sizeof digits, "%016llx", static_cast<unsigned long long>(hash));
  return digits;
}

Split read_manifest(const std::filesystem::path& file, const Dataset& dataset) {
  const CsvTable table = read_csv(file);
  const std::string name = file.string();
  const std::int64_t path_column = table.column("path"), label_column = table.column("label"),
                     split_column = table.column("split");
  DSCOPE_CHECK(path_column >= 0 && label_column >= 0 && split_column >= 0, DataError, name,
               ":1: a split manifest needs the columns path, label and split");
  if (!table.problems.empty())
    throw DataError(
        detail::concat(name, ":", table.problems.front().line, ": ", table.problems.front().reason));
  std::map<std::string, std::int64_t> index_of;
  for (std::size_t i = 0; i < dataset.samples.size(); ++i)
    index_of.emplace(dataset.samples[i].path.string(), static_cast<std::int64_t>(i));
  Split split;
  std::vector<bool> listed(dataset.samples.size(), false);
  for (const CsvRecord& record : table.records) {
    const std::string& path = record.fields[static_cast<std::size_t>(path_column)];
    const std::string& label = record.fields[static_cast<std::size_t>(label_column)];
    const std::string& part = record.fields[static_cast<std::size_t>(split_column)];
    const auto found = index_of.find(path);
    DSCOPE_CHECK(found != index_of.end(), DataError, name, ":", record.line, ": ", path,
                 " is not an image of this dataset");
    const Sample& sample = dataset.samples[static_cast<std::size_t>(found->second)];
    DSCOPE_CHECK(dataset.labels[static_cast<std::size_t>(sample.label)] == label, DataError, name, ":",
                 record.line, ": ", path, " has label ", label, " here but ",
                 dataset.labels[static_cast<std::size_t>(sample.label)], " in the dataset");
    std::size_t which = 3;
    for (std::size_t p = 0; p < 3; ++p)
      if (part == part_name(static_cast<Part>(p))) which = p;
    DSCOPE_CHECK(which < 3, DataError, name, ":", record.line, ": split '", part,
                 "' is not train, validation or test");
    DSCOPE_CHECK(!listed[static_cast<std::size_t>(found->second)], DataError, name, ":", record.line, ": ",
                 path, " is listed twice");
    listed[static_cast<std::size_t>(found->second)] = true;
    split.indices[which].push_back(found->second);
  }
  for (std::size_t i = 0; i < listed.size(); ++i)
    DSCOPE_CHECK(listed[i], DataError, name, ": ", dataset.samples[i].path.string(),
                 " is in the dataset but not in the manifest");
  for (auto& part : split.indices)
    std::sort(part.begin(), part.end());
  return split;
}

}  // namespace dscope::data
