// `dscope predict`: class probabilities and the possible-cancer flag for new images. One image: the top
// labels on the terminal. Several images or folders: one CSV row per file, in which a file that cannot be
// read gets its reason in the `error` column while the rest of the batch goes on.
#include <algorithm>
#include <cstdio>
#include <fstream>
#include <map>
#include <memory>
#include <numeric>
#include <optional>

#include "apps/commands.h"
#include "apps/lib/classifier.h"
#include "apps/lib/progress.h"
#include "data/csv.h"
#include "data/image_cache.h"
#include "tensor/error.h"

namespace dscope::apps {
namespace fs = std::filesystem;
namespace {

struct PredictCommand {
  fs::path model = DSCOPE_DEFAULT_MODEL;
  std::vector<fs::path> inputs;
  fs::path out;
  std::int64_t top_k = 3;
  double threshold = -1.0;
  bool quiet = false;
  std::optional<int> views;  // empty: the model's own
};

// Files named directly, and every file under the folders named (hidden ones excepted), in a stable order.
// Nothing is filtered by extension here: a file that is not an image gets its error row like any other.
std::vector<fs::path> list_inputs(const std::vector<fs::path>& inputs) {
  std::vector<fs::path> files;
  for (const fs::path& input : inputs) {
    if (!fs::is_directory(input)) {
      files.push_back(input);
      continue;
    }
    std::vector<fs::path> found;
    for (const fs::directory_entry& entry : fs::recursive_directory_iterator(input))
      if (entry.is_regular_file() && entry.path().filename().string().front() != '.')
        found.push_back(entry.path());
    std::sort(found.begin(), found.end());
    DSCOPE_CHECK(!found.empty(), DataError, "predict: the folder ", input.string(), " holds no files");
    files.insert(files.end(), found.begin(), found.end());
  }
  return files;
}

void run(const PredictCommand& command) {
  Classifier classifier(command.model);
  if (command.views) classifier.set_views(*command.views);
  const std::vector<std::string>& labels = classifier.labels();
  const auto classes = static_cast<std::int64_t>(labels.size());
  const double threshold =
      command.threshold >= 0.0 ? command.threshold : classifier.card().decision.threshold;
  const std::vector<fs::path> files = list_inputs(command.inputs);

  data::CacheOptions cache_options;
  cache_options.shorter_side = classifier.cache_side();
  const bool show = !command.quiet && files.size() > 16;
  Progress reading("reading", static_cast<std::int64_t>(files.size()));
  if (show) cache_options.progress = [&](std::int64_t done, std::int64_t) { reading.update(done, done); };
  const data::ImageCache cache = data::ImageCache::build(files, cache_options);
  if (show) reading.finish();
  std::vector<const data::Image*> images;
  for (const fs::path& file : files)
    if (const data::Image* image = cache.find(file)) images.push_back(image);
  Progress predicting("predicting", static_cast<std::int64_t>(images.size()));
  const std::vector<float> probabilities = classifier.probabilities(images, 64, [&](std::int64_t done) {
    if (show) predicting.update(done, done);
  });
  if (show) predicting.finish();

  std::map<std::string, std::string> errors;
  for (const data::ImportProblem& failure : cache.failures())
    errors[failure.where] = failure.reason;

  if (files.size() == 1 && command.out.empty()) {
    if (!errors.empty()) throw DataError(errors.begin()->second);
    const float* row = probabilities.data();
    std::vector<std::int64_t> order(static_cast<std::size_t>(classes));
    std::iota(order.begin(), order.end(), 0);
    std::stable_sort(order.begin(), order.end(),
                     [&](std::int64_t a, std::int64_t b) { return row[a] > row[b]; });
    std::printf("%s\n", files.front().string().c_str());
    for (std::int64_t k = 0; k < std::min(command.top_k, classes); ++k)
      std::printf("  %-8s %5.1f%%\n",
                  labels[static_cast<std::size_t>(order[static_cast<std::size_t>(k)])].c_str(),
                  100.0 * row[order[static_cast<std::size_t>(k)]]);
    if (classifier.has_decision()) {
      const double positive = classifier.positive_probability(row);
      std::printf("  %s (probability of a possible cancer %.1f%%, threshold %.1f%%)\n",
                  positive >= threshold ? "POSSIBLE CANCER: refer for assessment" : "benign-looking",
                  100.0 * positive, 100.0 * threshold);
    }
    return;
  }

  const fs::path out = command.out.empty() ? fs::path("predictions.csv") : command.out;
  std::ofstream csv(out, std::ios::binary);
  DSCOPE_CHECK(csv.good(), IoError, "predict: cannot write ", out.string());
  csv << "path,predicted";
  for (const std::string& label : labels)
    csv << ',' << data::csv_field(label);
  csv << ",possible_cancer,error\n";
  std::size_t next = 0;
  std::int64_t flagged = 0;
  for (const fs::path& file : files) {
    csv << data::csv_field(file.string());
    const auto error = errors.find(file.string());
    if (error != errors.end()) {
      csv << ',' << std::string(static_cast<std::size_t>(classes) + 1, ',') << ','
          << data::csv_field(error->second) << '\n';
      continue;
    }
    const float* row = probabilities.data() + next++ * static_cast<std::size_t>(classes);
    csv << ',' << labels[static_cast<std::size_t>(std::max_element(row, row + classes) - row)];
    for (std::int64_t c = 0; c < classes; ++c)
      csv << ',' << row[c];
    const bool positive = classifier.has_decision() && classifier.positive_probability(row) >= threshold;
    flagged += positive ? 1 : 0;
    csv << ',' << (classifier.has_decision() ? (positive ? "yes" : "no") : "") << ",\n";
  }
  DSCOPE_CHECK(csv.good(), IoError, "predict: writing ", out.string(), " failed");
  std::printf("%zu files: %zu predicted, %zu could not be read, %lld possible cancer%s -> %s\n", files.size(),
              images.size(), errors.size(), static_cast<long long>(flagged), flagged == 1 ? "" : "s",
              out.string().c_str());
  for (const auto& [path, reason] : errors)
    std::fprintf(stderr, "  %s: %s\n", path.c_str(), reason.c_str());
}

}  // namespace

void add_predict_command(CLI::App& program) {
  auto command = std::make_shared<PredictCommand>();
  CLI::App* predict =
      program.add_subcommand("predict", "Predict the labels of images (files or folders); many go to a CSV");
  predict->add_option("inputs", command->inputs, "Image files and/or folders of images")->required();
  predict->add_option("--model", command->model, "The model file")
      ->check(CLI::ExistingFile)
      ->capture_default_str();
  predict->add_option("--out", command->out,
                      "CSV to write (default predictions.csv when there are several images)");
  predict->add_option("--top-k", command->top_k, "Labels shown for a single image")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  predict
      ->add_option("--threshold", command->threshold,
                   "Possible-cancer threshold on the summed positive probability (default: the model's)")
      ->check(CLI::Range(0.0, 1.0));
  predict->add_flag("--quiet", command->quiet, "No progress bars");
  predict
      ->add_option("--views", command->views,
                   "Views each prediction averages: 1, or 8 (the flips and quarter turns of each image, 8x "
                   "the time); default: the model's")
      ->check(CLI::IsMember({1, 8}));
  predict->callback([command] { run(*command); });
}

}  // namespace dscope::apps
