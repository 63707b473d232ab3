// `dscope score`: how good a model is on a labelled set of images. Writes report.json, report.md and SVG
// plots (apps/lib/report.h). Label folders are matched to the model's labels by name, so folders in another
// order, or only some of the labels, score correctly; a folder named after no label of the model is an error.
#include <algorithm>
#include <cstdio>
#include <memory>
#include <optional>

#include "apps/commands.h"
#include "apps/lib/build_recipe.h"
#include "apps/lib/classifier.h"
#include "apps/lib/progress.h"
#include "apps/lib/report.h"
#include "apps/lib/scores.h"
#include "data/image_cache.h"
#include "data/split.h"
#include "tensor/error.h"

namespace dscope::apps {
namespace {

struct ScoreCommand {
  std::filesystem::path model, data, metadata, out, split;
  std::string part = "test";
  double threshold = -1.0;                 // negative: the model's own
  std::optional<double> logit_adjustment;  // empty: the model's own
  bool quiet = false;
  std::optional<int> views;  // empty: the model's own
};

// The dataset's labels as indices of the model's labels.
std::vector<std::int64_t> model_label_indices(const data::Dataset& dataset,
                                              const std::vector<std::string>& model_labels,
                                              const std::filesystem::path& data) {
  std::vector<std::int64_t> indices;
  for (const std::string& label : dataset.labels) {
    const auto found = std::find(model_labels.begin(), model_labels.end(), label);
    DSCOPE_CHECK(found != model_labels.end(), DataError, "score: ", (data / label).string(), " is named '",
                 label, "', which is not one of the model's labels (", detail::concat(model_labels.size()),
                 ": ", join_labels(model_labels), ")");
    indices.push_back(found - model_labels.begin());
  }
  return indices;
}

void run(const ScoreCommand& command) {
  Classifier classifier(command.model);
  if (command.views) classifier.set_views(*command.views);
  if (command.logit_adjustment) classifier.set_adjustment_strength(*command.logit_adjustment);
  const std::vector<std::string>& labels = classifier.labels();
  data::Dataset dataset = command.metadata.empty()
                              ? data::import_label_folders(command.data, 1)
                              : data::import_ham10000(command.data, command.metadata, labels);
  if (!command.split.empty()) {
    const data::Split split = data::read_manifest(command.split, dataset);
    const auto parts = {data::Part::Train, data::Part::Validation, data::Part::Test};
    const auto part = std::find_if(parts.begin(), parts.end(),
                                   [&](data::Part p) { return command.part == data::part_name(p); });
    dataset = data::subset(dataset, split[*part]);
  }
  const std::vector<std::int64_t> to_model = model_label_indices(dataset, labels, command.data);

  data::CacheOptions cache_options;
  cache_options.shorter_side = classifier.cache_side();
  Progress decoding("decoding", static_cast<std::int64_t>(dataset.samples.size()));
  if (!command.quiet)
    cache_options.progress = [&](std::int64_t done, std::int64_t) { decoding.update(done, done); };
  const data::ImageCache cache = data::ImageCache::build(dataset, cache_options);
  if (!command.quiet) decoding.finish();
  dataset = dataset.without(cache.failures());
  DSCOPE_CHECK(!dataset.samples.empty(), DataError, "score: no image in ", command.data.string(),
               " could be read");
  report_import_problems(dataset, stderr, {});

  std::vector<const data::Image*> images;
  std::vector<std::int64_t> truth;
  for (const data::Sample& sample : dataset.samples) {
    images.push_back(cache.find(sample.path));
    truth.push_back(to_model[static_cast<std::size_t>(sample.label)]);
  }
  Progress predicting("scoring", static_cast<std::int64_t>(images.size()));
  const std::vector<float> probabilities = classifier.probabilities(images, 64, [&](std::int64_t done) {
    if (!command.quiet) predicting.update(done, done);
  });
  if (!command.quiet) predicting.finish();
  const nn::BinaryDecision& decision = classifier.card().decision;
  const Scores scores = compute_scores(labels, probabilities, truth, decision.positive_labels,
                                       command.threshold >= 0.0 ? command.threshold : decision.threshold);

  ReportContext context;
  context.model = command.model.string();
  context.model_summary = classifier.describe();
  context.data =
      command.data.string() +
      (command.split.empty() ? "" : " (" + command.part + " split of " + command.split.string() + ")");
  const std::filesystem::path log = command.model.parent_path() / "training.jsonl";
  if (std::filesystem::exists(log)) context.training_log = log;
  write_report(command.out, scores, context);
  std::printf("%lld images: accuracy %.3f, balanced accuracy %.3f, macro F1 %.3f, macro AUC %.3f\n",
              static_cast<long long>(scores.n), scores.accuracy, scores.balanced_accuracy, scores.macro_f1,
              scores.auc_macro);
  if (!scores.binary.positive_labels.empty())
    std::printf("possible cancer (threshold %.3f): sensitivity %.3f, specificity %.3f\n",
                scores.binary.threshold, scores.binary.sensitivity, scores.binary.specificity);
  std::printf("report: %s\n", (command.out / "report.md").string().c_str());
}

}  // namespace

void add_score_command(CLI::App& program) {
  auto command = std::make_shared<ScoreCommand>();
  CLI::App* score =
      program.add_subcommand("score", "Score a model on labelled images: report.json, report.md, plots");
  score->add_option("--model", command->model, "The model file (model.safetensors from dscope build)")
      ->required()
      ->check(CLI::ExistingFile);
  score->add_option("--data", command->data, "Label folders, or the HAM10000 images folder with --metadata")
      ->required();
  score->add_option("--metadata", command->metadata, "HAM10000_metadata.csv")->check(CLI::ExistingFile);
  score->add_option("--out", command->out, "Folder for report.json, report.md and the plots")->required();
  score
      ->add_option("--split", command->split,
                   "A split manifest (split.csv from dscope build): score one part of it")
      ->check(CLI::ExistingFile);
  score->add_option("--part", command->part, "The part of --split to score")
      ->check(CLI::IsMember({"train", "validation", "test"}))
      ->capture_default_str();
  score
      ->add_option("--threshold", command->threshold,
                   "Possible-cancer threshold on the summed positive probability (default: the model's)")
      ->check(CLI::Range(0.0, 1.0));
  score->add_option("--logit-adjustment", command->logit_adjustment,
                    "Score with this logit adjustment strength instead of the model's (0: none; a minimum "
                    "recall's class factors stay); the possible-cancer threshold stays the model's unless "
                    "--threshold is given");
  score->add_flag("--quiet", command->quiet, "No progress bars");
  score
      ->add_option("--views", command->views,
                   "Views each prediction averages: 1, or 8 (the flips and quarter turns of each image, 8x "
                   "the time); default: the model's")
      ->check(CLI::IsMember({1, 8}));
  score->callback([command] { run(*command); });
}

}  // namespace dscope::apps
