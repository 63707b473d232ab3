#include "apps/lib/build_recipe.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <fstream>
#include <sstream>

#include "apps/lib/classifier.h"
#include "apps/lib/progress.h"
#include "apps/lib/report.h"
#include "apps/lib/trainer.h"
#include "data/class_balance.h"
#include "data/csv.h"
#include "data/image_cache.h"
#include "data/image_loader.h"
#include "data/split.h"
#include "nn/checkpoint.h"
#include "nn/focal_loss.h"
#include "nn/resnet.h"
#include "optim/adam.h"
#include "optim/param_groups.h"
#include "optim/schedule.h"
#include "optim/sgd.h"
#include "tensor/ops/cross_entropy.h"

namespace dscope::apps {
namespace fs = std::filesystem;

void Recipe::validate() const {
  DSCOPE_CHECK(depth == 8 || depth == 14 || depth == 18 || depth == 34 || depth == 50, ValueError,
               "recipe: depth ", depth, " is not one of 8, 14, 18, 34, 50");
  DSCOPE_CHECK(width_multiplier > 0.0f && width_multiplier <= 8.0f, ValueError, "recipe: width multiplier ",
               width_multiplier, " is outside (0, 8]");
  DSCOPE_CHECK(input_size >= 16 && input_size <= 512, ValueError, "recipe: input size ", input_size,
               " is outside [16, 512]");
  DSCOPE_CHECK(optimizer == "sgd" || optimizer == "adamw", ValueError, "recipe: optimizer '", optimizer,
               "' is neither sgd nor adamw");
  DSCOPE_CHECK(learning_rate > 0.0f && learning_rate < 10.0f && weight_decay >= 0.0f && weight_decay < 1.0f,
               ValueError, "recipe: learning rate ", learning_rate, " or weight decay ", weight_decay,
               " out of range");
  DSCOPE_CHECK(batch_size >= 2 && epochs >= 1 && warmup_epochs >= 0, ValueError, "recipe: batch size ",
               batch_size, " must be at least 2 (batch norm), epochs ", epochs, " at least 1");
  DSCOPE_CHECK(augment_strength >= 0.0 && augment_strength <= 1.0, ValueError, "recipe: augment strength ",
               augment_strength, " is outside [0, 1]");
  DSCOPE_CHECK(loss == "ce" || loss == "weighted_ce" || loss == "focal", ValueError, "recipe: loss '", loss,
               "' is not one of ce, weighted_ce, focal");
  DSCOPE_CHECK(class_weight_power >= 0.0 && class_weight_power <= 1.0 && label_smoothing >= 0.0f &&
                   label_smoothing < 1.0f && focal_gamma >= 0.0f,
               ValueError, "recipe: class weight power ", class_weight_power, ", label smoothing ",
               label_smoothing, " or focal gamma ", focal_gamma, " out of range");
}

std::string Recipe::describe() const {
  std::ostringstream out;
  out << "resnet" << depth << " w" << width_multiplier << " " << input_size << "px " << optimizer << " lr "
      << learning_rate << " wd " << weight_decay << " bs " << batch_size << " " << epochs << " ep aug "
      << augment_strength << " " << loss;
  if (loss != "ce") out << "(" << class_weight_power << ")";
  if (label_smoothing > 0.0f) out << " ls " << label_smoothing;
  if (balanced_sampling) out << " balanced";
  return out.str();
}

data::Dataset import_dataset(const fs::path& data, const fs::path& metadata,
                             const std::vector<std::string>& known_labels) {
  if (metadata.empty()) return data::import_label_folders(data);
  return data::import_ham10000(data, metadata, known_labels);
}

void report_import_problems(const data::Dataset& dataset, std::FILE* log, const fs::path& csv,
                            std::size_t limit) {
  if (dataset.problems.empty()) return;
  std::fprintf(log, "skipped %zu:\n", dataset.problems.size());
  for (std::size_t i = 0; i < dataset.problems.size() && i < limit; ++i)
    std::fprintf(log, "  %s: %s\n", dataset.problems[i].where.c_str(), dataset.problems[i].reason.c_str());
  if (dataset.problems.size() > limit)
    std::fprintf(log, "  ... and %zu more%s\n", dataset.problems.size() - limit,
                 csv.empty() ? "" : (" (all in " + csv.string() + ")").c_str());
  if (csv.empty()) return;
  std::ofstream out(csv, std::ios::binary);
  DSCOPE_CHECK(out.good(), IoError, "cannot write ", csv.string());
  out << "where,reason\n";
  for (const data::ImportProblem& problem : dataset.problems)
    out << data::csv_field(problem.where) << ',' << data::csv_field(problem.reason) << '\n';
}

namespace {

using Clock = std::chrono::steady_clock;

double seconds_since(Clock::time_point start) {
  return std::chrono::duration<double>(Clock::now() - start).count();
}

// Per-channel mean and standard deviation of the training images' pixels (in [0, 1]), so the network's
// input is centred whatever the dermatoscope's colour balance.
data::Normalization channel_statistics(const data::ImageCache& cache, const data::Dataset& train) {
  double sum[3] = {0, 0, 0}, squares[3] = {0, 0, 0};
  double count = 0;
  for (const data::Sample& sample : train.samples) {
    const data::Image& image = *cache.find(sample.path);
    for (std::size_t i = 0; i < image.pixels.size(); i += 3)
      for (std::size_t c = 0; c < 3; ++c) {
        const double value = image.pixels[i + c] / 255.0;
        sum[c] += value;
        squares[c] += value * value;
      }
    count += static_cast<double>(image.pixels.size() / 3);
  }
  data::Normalization normalization;
  for (std::size_t c = 0; c < 3; ++c) {
    const double mean = sum[c] / count;
    normalization.mean[c] = static_cast<float>(mean);
    normalization.std[c] = static_cast<float>(std::sqrt(std::max(squares[c] / count - mean * mean, 1e-6)));
  }
  return normalization;
}

std::unique_ptr<optim::Optimizer> make_optimizer(const Recipe& recipe, nn::Module& model) {
  std::vector<optim::ParamGroup> groups =
      optim::weight_decay_groups(model, recipe.learning_rate, recipe.weight_decay);
  if (recipe.optimizer == "adamw") return std::make_unique<optim::AdamW>(std::move(groups));
  return std::make_unique<optim::Sgd>(std::move(groups), optim::SgdOptions{0.9f, true});
}

LossFunction make_loss(const Recipe& recipe, const std::vector<std::int64_t>& train_counts) {
  Tensor weights;
  if (recipe.loss != "ce") {
    const std::vector<float> values = data::class_weights(train_counts, recipe.class_weight_power);
    weights = Tensor::from_vector(values, {static_cast<std::int64_t>(values.size())});
  }
  if (recipe.loss == "focal") {
    nn::FocalLossOptions options;
    options.gamma = recipe.focal_gamma;
    options.alpha = weights;
    return [options](const Tensor& logits, const Tensor& labels) {
      return nn::focal_loss(logits, labels, options);
    };
  }
  CrossEntropyOptions options;
  options.class_weights = weights;
  options.label_smoothing = recipe.label_smoothing;
  return [options](const Tensor& logits, const Tensor& labels) {
    return cross_entropy(logits, labels, options);
  };
}

std::vector<const data::Image*> images_of(const data::ImageCache& cache, const data::Dataset& part) {
  std::vector<const data::Image*> images;
  for (const data::Sample& sample : part.samples)
    images.push_back(cache.find(sample.path));
  return images;
}

std::vector<std::int64_t> labels_of(const data::Dataset& part) {
  std::vector<std::int64_t> labels;
  for (const data::Sample& sample : part.samples)
    labels.push_back(sample.label);
  return labels;
}

// Seconds one epoch will take: a few training steps and evaluation passes of a throwaway model of the same
// configuration, timed after a warm-up step (first-touch allocations).
double estimate_epoch_seconds(const Recipe& recipe, const nn::ResNetConfig& config, data::ImageLoader& train,
                              std::int64_t validation_images) {
  nn::ResNet probe(config);
  auto optimizer = make_optimizer(recipe, probe);
  train.start_epoch(0);
  const std::int64_t steps = std::min<std::int64_t>(4, train.batches_per_epoch());
  Clock::time_point start = Clock::now();
  std::int64_t images = 0;
  for (std::int64_t step = 0; step < steps; ++step) {
    if (step == 1) {
      start = Clock::now();
      images = 0;
    }
    const data::Batch batch = train.batch(step);
    optimizer->zero_grad();
    cross_entropy(probe.forward(batch.images), batch.labels).backward();
    optimizer->step();
    images += batch.labels.size(0);
  }
  const double per_image = seconds_since(start) / static_cast<double>(std::max<std::int64_t>(images, 1));
  // Evaluation (forward only, no graph) runs about three times faster than a training step per image.
  return per_image *
         (static_cast<double>(train.images_per_epoch()) + static_cast<double>(validation_images) / 3.0);
}

}  // namespace

BuildResult run_build(const BuildOptions& options, const Recipe& given_recipe) {
  const Clock::time_point start = Clock::now();
  Recipe recipe = given_recipe;
  recipe.validate();
  DSCOPE_CHECK(options.target_sensitivity > 0.0 && options.target_sensitivity <= 1.0, ValueError,
               "build: target sensitivity ", options.target_sensitivity, " is outside (0, 1]");
  fs::create_directories(options.out);
  std::FILE* log = options.log;

  // Import, then decode everything once; files that fail to decode leave the dataset visibly.
  data::Dataset dataset = import_dataset(options.data, options.metadata);
  data::CacheOptions cache_options;
  cache_options.shorter_side = data::cache_side_for_input(recipe.input_size);
  cache_options.file = options.cache_file;
  Progress decoding("decoding", static_cast<std::int64_t>(dataset.samples.size()), log);
  if (options.show_progress)
    cache_options.progress = [&](std::int64_t done, std::int64_t) { decoding.update(done, done); };
  const data::ImageCache cache = data::ImageCache::build(dataset, cache_options);
  if (options.show_progress) decoding.finish(cache.from_disk() > 0 ? "from the disk cache" : "");
  if (!cache.note().empty()) std::fprintf(log, "note: %s\n", cache.note().c_str());
  dataset = dataset.without(cache.failures());
  std::fprintf(log, "%s", dataset.summary().c_str());
  report_import_problems(dataset, log, options.out / "import_problems.csv");
  const std::vector<std::int64_t> counts = dataset.counts_per_label();
  for (std::size_t label = 0; label < counts.size(); ++label)
    DSCOPE_CHECK(counts[label] >= 2, DataError, "build: label '", dataset.labels[label], "' has ",
                 counts[label], " usable image", counts[label] == 1 ? "" : "s",
                 "; every label needs at least 2 to be learnt");

  // Split by lesion, stratified by label, and write the manifest.
  const data::Split split = data::split_dataset(dataset,
                                                {1.0 - options.validation_fraction - options.test_fraction,
                                                 options.validation_fraction, options.test_fraction},
                                                options.seed);
  data::write_manifest(options.out / "split.csv", dataset, split);
  const data::Dataset train = data::subset(dataset, split[data::Part::Train]);
  const data::Dataset validation = data::subset(dataset, split[data::Part::Validation]);
  const data::Dataset test = data::subset(dataset, split[data::Part::Test]);
  DSCOPE_CHECK(
      static_cast<std::int64_t>(train.samples.size()) >= recipe.batch_size && !validation.samples.empty(),
      DataError, "build: the split has ", train.samples.size(), " training and ", validation.samples.size(),
      " validation images; training needs at least one batch (", recipe.batch_size,
      ") and validation at least one image");
  std::fprintf(log, "split (seed %llu): %zu train, %zu validation, %zu test images\n",
               static_cast<unsigned long long>(options.seed), train.samples.size(), validation.samples.size(),
               test.samples.size());

  // The binary decision: the positive labels this dataset has.
  std::vector<std::string> positives;
  for (const std::string& label :
       options.positive_labels.empty() ? default_positive_labels() : options.positive_labels) {
    const bool known = std::find(dataset.labels.begin(), dataset.labels.end(), label) != dataset.labels.end();
    DSCOPE_CHECK(known || options.positive_labels.empty(), ValueError, "build: positive label '", label,
                 "' is not one of the data's labels");
    if (known) positives.push_back(label);
  }

  const data::Normalization normalization = channel_statistics(cache, train);
  data::LoaderOptions train_options;
  train_options.input_size = recipe.input_size;
  train_options.batch_size = recipe.batch_size;
  train_options.shuffle = true;
  train_options.balanced = recipe.balanced_sampling;
  train_options.augment = recipe.augment_strength > 0.0;
  train_options.augmentation =
      data::AugmentOptions::with_strength(recipe.input_size, recipe.augment_strength);
  train_options.normalization = normalization;
  train_options.drop_last = true;
  train_options.seed = options.seed;
  data::LoaderOptions evaluation_options = train_options;
  evaluation_options.shuffle = evaluation_options.balanced = evaluation_options.augment = false;
  evaluation_options.drop_last = false;
  evaluation_options.batch_size = 128;
  data::ImageLoader train_loader(cache, train, train_options);
  data::ImageLoader validation_loader(cache, validation, evaluation_options);

  nn::ResNetConfig config = nn::resnet_config(recipe.depth, static_cast<std::int64_t>(dataset.labels.size()),
                                              nn::StemKind::Small, recipe.width_multiplier);
  config.seed = options.seed;
  if (options.time_limit_seconds > 0.0) {
    const double epoch_seconds = estimate_epoch_seconds(recipe, config, train_loader,
                                                        static_cast<std::int64_t>(validation.samples.size()));
    const double left = options.time_limit_seconds * 0.9 - seconds_since(start);
    const auto fit = std::max<std::int64_t>(1, static_cast<std::int64_t>(left / epoch_seconds));
    if (fit < recipe.epochs) {
      std::fprintf(log, "time limit: an epoch takes about %.0f s here, so %lld of %lld epochs fit in %s\n",
                   epoch_seconds, static_cast<long long>(fit), static_cast<long long>(recipe.epochs),
                   Progress::format_duration(options.time_limit_seconds).c_str());
      recipe.epochs = fit;
    }
  }
  std::fprintf(log, "recipe: %s\n", recipe.describe().c_str());

  nn::ResNet model(config);
  auto optimizer = make_optimizer(recipe, model);
  TrainerOptions trainer_options;
  trainer_options.epochs = recipe.epochs;
  trainer_options.selection = SelectionMetric::BalancedAccuracy;
  trainer_options.log_path = (options.out / "training.jsonl").string();
  trainer_options.show_progress = options.show_progress;
  trainer_options.progress_stream = log;
  fs::remove(trainer_options.log_path);
  Trainer trainer(model, *optimizer, make_loss(recipe, train.counts_per_label()), trainer_options);
  const std::int64_t steps_per_epoch = train_loader.batches_per_epoch();
  const optim::WarmupCosineSchedule schedule(
      recipe.learning_rate, recipe.epochs * steps_per_epoch,
      std::min(recipe.warmup_epochs, recipe.epochs - 1) * steps_per_epoch, 0.0f, 0.1f);
  trainer.set_schedule(schedule);

  nn::ModelCard card;
  card.labels = dataset.labels;
  card.input.height = card.input.width = recipe.input_size;
  card.input.mean.assign(normalization.mean.begin(), normalization.mean.end());
  card.input.stddev.assign(normalization.std.begin(), normalization.std.end());
  card.training.seed = options.seed;
  const fs::path model_path = options.out / "model.safetensors";
  trainer.on_best([&](const EpochMetrics& metrics) {
    card.training.epochs = metrics.epoch;
    card.training.best_epoch = metrics.epoch;
    card.training.best_validation = {{"balanced_accuracy", metrics.validation_balanced_accuracy},
                                     {"accuracy", metrics.validation_accuracy},
                                     {"loss", metrics.validation_loss}};
    nn::save_model(model_path, model, card);
  });
  const TrainingSummary summary = trainer.fit(train_loader, &validation_loader);

  // The possible-cancer threshold: chosen on validation for the target sensitivity, stored in the model.
  BuildResult result;
  result.model = model_path;
  result.epochs_trained = static_cast<std::int64_t>(summary.history.size());
  result.best_epoch = summary.best_epoch;
  result.best_validation_balanced_accuracy = summary.best_value;
  nn::load_model(model_path, model);
  card.training.epochs = result.epochs_trained;
  if (!positives.empty()) {
    card.decision = {"possible_cancer", positives, 0.5, options.target_sensitivity};
    nn::save_model(model_path, model, card);
    const Classifier classifier(model_path);
    const std::vector<float> probabilities = classifier.probabilities(images_of(cache, validation));
    const std::vector<double> score = positive_probability(dataset.labels, probabilities, positives);
    std::vector<bool> positive;
    for (const data::Sample& sample : validation.samples)
      positive.push_back(std::find(positives.begin(), positives.end(),
                                   dataset.labels[static_cast<std::size_t>(sample.label)]) !=
                         positives.end());
    card.decision.threshold = threshold_for_sensitivity(score, positive, options.target_sensitivity);
  }
  result.threshold = card.decision.threshold;
  nn::save_model(model_path, model, card);

  // The held-out score, exactly as `dscope score` computes it: from the saved file.
  const bool has_test = !test.samples.empty();
  const data::Dataset& scored = has_test ? test : validation;
  result.scored_part = has_test ? "test" : "validation";
  const Classifier classifier(model_path);
  result.test = compute_scores(dataset.labels, classifier.probabilities(images_of(cache, scored)),
                               labels_of(scored), positives, result.threshold);
  ReportContext context;
  context.title = "dscope build: score on the held-out " + result.scored_part + " split";
  context.model = model_path.string();
  context.data = (options.data / options.metadata.filename()).string() + " (" + result.scored_part +
                 " split of " + (options.out / "split.csv").string() + ")";
  context.training_log = trainer_options.log_path;
  std::ostringstream notes;
  notes << "Built with `" << recipe.describe() << "`, seed " << options.seed << ": " << result.epochs_trained
        << " epochs, best validation balanced accuracy " << result.best_validation_balanced_accuracy
        << " at epoch " << result.best_epoch << ". Split: " << train.samples.size() << " train, "
        << validation.samples.size() << " validation, " << test.samples.size()
        << " test images, grouped by lesion.";
  if (!positives.empty())
    notes << " The possible-cancer threshold " << result.threshold
          << " was chosen on the validation split for a "
          << "sensitivity of at least " << options.target_sensitivity << ".";
  context.notes = notes.str();
  write_report(options.out, result.test, context);
  result.seconds = seconds_since(start);
  return result;
}

}  // namespace dscope::apps
