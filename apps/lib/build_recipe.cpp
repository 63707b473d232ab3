#include "apps/lib/build_recipe.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <fstream>
#include <iomanip>
#include <numeric>
#include <sstream>
#include <vector>

#include "apps/lib/classifier.h"
#include "apps/lib/min_recall.h"
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
#include "optim/training_state.h"
#include "tensor/autocast.h"
#include "tensor/autograd/grad_mode.h"
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
  DSCOPE_CHECK(weight_average >= 0.0 && weight_average < 1.0, ValueError, "recipe: weight average decay ",
               weight_average, " is outside [0, 1)");
  DSCOPE_CHECK(sampling_power >= 0.0 && sampling_power <= 1.0, ValueError, "recipe: sampling power ",
               sampling_power, " is outside [0, 1]");
}

std::string Recipe::describe() const {
  std::ostringstream out;
  out << "resnet" << depth << " w" << width_multiplier << " " << input_size << "px " << optimizer << " lr "
      << learning_rate << " wd " << weight_decay << " bs " << batch_size << " " << epochs << " ep aug "
      << augment_strength << " " << loss;
  if (loss != "ce") out << "(" << class_weight_power << ")";
  if (label_smoothing > 0.0f) out << " ls " << label_smoothing;
  if (balanced_sampling) out << " balanced";
  if (balanced_sampling && sampling_power != 1.0) out << "(" << sampling_power << ")";
  if (weight_average > 0.0) out << " ema " << weight_average;
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

LossFunction make_loss(const Recipe& recipe, const std::vector<std::int64_t>& train_counts, Device device) {
  Tensor weights;
  if (recipe.loss != "ce") {
    const std::vector<float> values = data::class_weights(train_counts, recipe.class_weight_power);
    weights = Tensor::from_vector(values, {static_cast<std::int64_t>(values.size())}).to(device);
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

// Seconds one epoch will take, measured the way the trainer runs one (Trainer::train_epoch and
// Trainer::evaluate): a few training steps of a throwaway model of the same configuration, each waiting for
// its loss, and an evaluation pass (no graph, the batch norms folded) of the last batch; each timed after a
// warm-up run of its own (first-touch allocations, the GPU's first launches).
double estimate_epoch_seconds(const Recipe& recipe, const nn::ResNetConfig& config, data::ImageLoader& train,
                              std::int64_t validation_images, Device device, DType activations) {
  nn::ResNet probe(config);
  probe.to(device);
  auto optimizer = make_optimizer(recipe, probe);
  train.start_epoch(0);
  std::vector<data::Batch> batches;
  for (std::int64_t index = 0; index < std::min<std::int64_t>(4, train.batches_per_epoch()); ++index)
    batches.push_back(train.batch(index));
  const auto wait_for_device = [&probe] { (void)probe.parameters().front().to(Device::cpu()); };
  const auto train_step = [&](const data::Batch& batch) {
    optimizer->zero_grad();
    const AutocastGuard autocast(activations);
    const Tensor loss = cross_entropy(probe.forward(batch.images.to(device)), batch.labels.to(device));
    (void)loss.item<float>();
    loss.backward();
    optimizer->step();
  };
  train_step(batches.front());
  wait_for_device();
  Clock::time_point start = Clock::now();
  std::int64_t images = 0;
  for (const data::Batch& batch : batches) {
    train_step(batch);
    images += batch.labels.size(0);
  }
  wait_for_device();
  const double train_per_image =
      seconds_since(start) / static_cast<double>(std::max<std::int64_t>(images, 1));

  probe.eval();
  const NoGradGuard no_grad;
  const data::Batch& last = batches.back();
  const auto evaluate = [&] { (void)probe.forward(last.images.to(device)).to(Device::cpu()); };
  evaluate();
  start = Clock::now();
  evaluate();
  const double evaluation_per_image =
      seconds_since(start) / static_cast<double>(std::max<std::int64_t>(last.labels.size(0), 1));
  return train_per_image * static_cast<double>(train.images_per_epoch()) +
         evaluation_per_image * static_cast<double>(validation_images);
}

data::LoaderOptions loader_options(const Recipe& recipe, const data::Normalization& normalization,
                                   std::uint64_t seed, bool training) {
  data::LoaderOptions options;
  options.input_size = recipe.input_size;
  options.normalization = normalization;
  options.seed = seed;
  if (training) {
    options.batch_size = recipe.batch_size;
    options.shuffle = true;
    options.balanced = recipe.balanced_sampling;
    options.balance_power = recipe.sampling_power;
    options.augment = recipe.augment_strength > 0.0;
    options.augmentation = data::AugmentOptions::with_strength(recipe.input_size, recipe.augment_strength);
    options.drop_last = true;  // batch norm prefers full batches
  } else {
    options.batch_size = 128;
  }
  return options;
}

nn::ResNetConfig model_config(const Recipe& recipe, std::int64_t classes, std::uint64_t seed) {
  nn::ResNetConfig config =
      nn::resnet_config(recipe.depth, classes, nn::StemKind::Small, recipe.width_multiplier);
  config.seed = seed;
  return config;
}

}  // namespace

nlohmann::json recipe_to_json(const Recipe& recipe) {
  return {{"depth", recipe.depth},
          {"width_multiplier", recipe.width_multiplier},
          {"input_size", recipe.input_size},
          {"optimizer", recipe.optimizer},
          {"learning_rate", recipe.learning_rate},
          {"weight_decay", recipe.weight_decay},
          {"batch_size", recipe.batch_size},
          {"epochs", recipe.epochs},
          {"warmup_epochs", recipe.warmup_epochs},
          {"augment_strength", recipe.augment_strength},
          {"loss", recipe.loss},
          {"class_weight_power", recipe.class_weight_power},
          {"label_smoothing", recipe.label_smoothing},
          {"focal_gamma", recipe.focal_gamma},
          {"balanced_sampling", recipe.balanced_sampling},
          {"sampling_power", recipe.sampling_power},
          {"weight_average", recipe.weight_average}};
}

Recipe recipe_from_json(const nlohmann::json& json) {
  Recipe recipe;
  const auto read = [&](const char* name, auto& field) {
    try {
      field = json.at(name).get<std::remove_reference_t<decltype(field)>>();
    } catch (const nlohmann::json::exception&) {
      throw DataError(detail::concat("recipe: '", name, "' is missing or of the wrong type"));
    }
  };
  read("depth", recipe.depth);
  read("width_multiplier", recipe.width_multiplier);
  read("input_size", recipe.input_size);
  read("optimizer", recipe.optimizer);
  read("learning_rate", recipe.learning_rate);
  read("weight_decay", recipe.weight_decay);
  read("batch_size", recipe.batch_size);
  read("epochs", recipe.epochs);
  read("warmup_epochs", recipe.warmup_epochs);
  read("augment_strength", recipe.augment_strength);
  read("loss", recipe.loss);
  read("class_weight_power", recipe.class_weight_power);
  read("label_smoothing", recipe.label_smoothing);
  read("focal_gamma", recipe.focal_gamma);
  read("balanced_sampling", recipe.balanced_sampling);
  // Recipes written before the weight average existed have none.
  recipe.weight_average = 0.0;
  if (json.contains("weight_average")) read("weight_average", recipe.weight_average);
  // Those from before the sampling power balanced fully.
  if (json.contains("sampling_power")) read("sampling_power", recipe.sampling_power);
  recipe.validate();
  return recipe;
}

void check_selection_metric(const std::string& name) {
  DSCOPE_CHECK(
      name == "balanced_accuracy" || name == "macro_f1" || name == "accuracy" || name == "malignant_recall",
      ValueError, "metric '", name,
      "' is not one of balanced_accuracy, macro_f1, accuracy, malignant_recall");
}

double selection_metric(const std::string& name, const ConfusionMatrix& confusion,
                        const std::vector<std::string>& labels,
                        const std::vector<std::string>& positive_labels) {
  check_selection_metric(name);
  if (name == "accuracy") return confusion.accuracy();
  if (name == "balanced_accuracy") return confusion.balanced_accuracy();
  if (name == "macro_f1") return confusion.macro_f1();
  std::vector<bool> positive(static_cast<std::size_t>(confusion.classes()), false);
  for (std::size_t c = 0; c < positive.size() && c < labels.size(); ++c)
    positive[c] =
        std::find(positive_labels.begin(), positive_labels.end(), labels[c]) != positive_labels.end();
  return confusion.group_recall(positive);
}

// ---------------------------------------------------------------------------------------------------------
// BuildData

BuildData::BuildData(const BuildOptions& options, std::int64_t input_size) : options_(options) {
  DSCOPE_CHECK(options_.target_sensitivity > 0.0 && options_.target_sensitivity <= 1.0, ValueError,
               "build: target sensitivity ", options_.target_sensitivity, " is outside (0, 1]");
  fs::create_directories(options_.out);
  std::FILE* log = options_.log;
  dataset_ = import_dataset(options_.data, options_.metadata);
  // Decode everything once; files that fail to decode leave the dataset, visibly, before the split.
  const data::ImageCache& decoded = cache(input_size);
  if (!decoded.note().empty()) std::fprintf(log, "note: %s\n", decoded.note().c_str());
  dataset_ = dataset_.without(decoded.failures());
  std::fprintf(log, "%s", dataset_.summary().c_str());
  report_import_problems(dataset_, log, options_.out / "import_problems.csv");
  const std::vector<std::int64_t> counts = dataset_.counts_per_label();
  for (std::size_t label = 0; label < counts.size(); ++label)
    DSCOPE_CHECK(counts[label] >= 2, DataError, "build: label '", dataset_.labels[label], "' has ",
                 counts[label], " usable image", counts[label] == 1 ? "" : "s",
                 "; every label needs at least 2 to be learnt");

  const data::Split split =
      options_.split_file.empty()
          ? data::split_dataset(dataset_,
                                {1.0 - options_.validation_fraction - options_.test_fraction,
                                 options_.validation_fraction, options_.test_fraction},
                                options_.seed)
          : data::read_manifest(options_.split_file, dataset_);
  data::write_manifest(options_.out / "split.csv", dataset_, split);
  split_digest_ = data::split_digest(dataset_, split);
  for (std::size_t p = 0; p < 3; ++p)
    parts_[p] = data::subset(dataset_, split.indices[p]);
  DSCOPE_CHECK(parts_[0].samples.size() >= 2 && !parts_[1].samples.empty(), DataError,
               "build: the split has ", parts_[0].samples.size(), " training and ", parts_[1].samples.size(),
               " validation images; there are too few images to train and validate");
  const std::string origin = options_.split_file.empty() ? "seed " + std::to_string(options_.seed)
                                                         : "from " + options_.split_file.string();
  std::fprintf(log, "split (%s): %zu train, %zu validation, %zu test images\n", origin.c_str(),
               parts_[0].samples.size(), parts_[1].samples.size(), parts_[2].samples.size());

  for (const std::string& label :
       options_.positive_labels.empty() ? default_positive_labels() : options_.positive_labels) {
    const bool known =
        std::find(dataset_.labels.begin(), dataset_.labels.end(), label) != dataset_.labels.end();
    DSCOPE_CHECK(known || options_.positive_labels.empty(), ValueError, "build: positive label '", label,
                 "' is not one of the data's labels");
    if (known) positives_.push_back(label);
  }
  // Checked here, before any training, rather than when the factors are chosen at the end.
  for (const auto& [label, recall] : options_.min_recall)
    DSCOPE_CHECK(std::find(dataset_.labels.begin(), dataset_.labels.end(), label) != dataset_.labels.end(),
                 ValueError, "--min-recall ", label, "=", recall, ": '", label,
                 "' is not one of the labels (", join_labels(dataset_.labels), ")");
}

const data::ImageCache& BuildData::cache(std::int64_t input_size) {
  const std::int64_t side = data::cache_side_for_input(input_size);
  const auto found = caches_.find(side);
  if (found != caches_.end()) return found->second;
  data::CacheOptions cache_options;
  cache_options.shorter_side = side;
  if (!options_.cache_file.empty())
    cache_options.file = options_.cache_file.string() + (caches_.empty() ? "" : "." + std::to_string(side));
  Progress decoding("decoding", static_cast<std::int64_t>(dataset_.samples.size()), options_.log);
  if (options_.show_progress)
    cache_options.progress = [&](std::int64_t done, std::int64_t) { decoding.update(done, done); };
  data::ImageCache cache = data::ImageCache::build(dataset_, cache_options);
  if (options_.show_progress) decoding.finish(cache.from_disk() > 0 ? "from the disk cache" : "");
  return caches_.emplace(side, std::move(cache)).first->second;
}

const data::Normalization& BuildData::normalization(std::int64_t input_size) {
  const auto found = normalizations_.find(input_size);
  if (found != normalizations_.end()) return found->second;
  return normalizations_.emplace(input_size, channel_statistics(cache(input_size), part(data::Part::Train)))
      .first->second;
}

// ---------------------------------------------------------------------------------------------------------
// RecipeTraining

namespace {
// Moves the model to the build's device before the optimizer is made from its parameters.
nn::Module& placed(nn::Module& model, Device device) {
  model.to(device);
  return model;
}
}  // namespace

struct RecipeTraining::State {
  BuildData& data;
  Recipe recipe;
  std::string metric;
  nn::ResNet model;
  std::unique_ptr<optim::Optimizer> optimizer;
  data::ImageLoader train, validation;
  LossFunction loss;
  std::unique_ptr<optim::WeightAverage> average;  // when the recipe asks for one
  nn::ModelCard card;
  double best_value = -1.0;

  State(BuildData& build, const Recipe& given, std::string metric_name)
      : data(build),
        recipe(given),
        metric(std::move(metric_name)),
        model(model_config(given, static_cast<std::int64_t>(build.dataset().labels.size()),
                           build.options().seed)),
        optimizer(make_optimizer(given, placed(model, build.options().device))),
        train(build.cache(given.input_size), build.part(data::Part::Train),
              loader_options(given, build.normalization(given.input_size), build.options().seed, true)),
        validation(build.cache(given.input_size), build.part(data::Part::Validation),
                   loader_options(given, build.normalization(given.input_size), build.options().seed, false)),
        loss(make_loss(given, build.part(data::Part::Train).counts_per_label(), build.options().device)) {
    const data::Normalization& normalization = build.normalization(given.input_size);
    card.labels = build.dataset().labels;
    card.input.height = card.input.width = given.input_size;
    card.input.mean.assign(normalization.mean.begin(), normalization.mean.end());
    card.input.stddev.assign(normalization.std.begin(), normalization.std.end());
    card.training.seed = build.options().seed;
    card.training.split_digest = build.split_digest();
    if (given.weight_average > 0.0)
      average = std::make_unique<optim::WeightAverage>(model, given.weight_average);
  }
};

RecipeTraining::RecipeTraining(BuildData& data, const Recipe& recipe, fs::path folder, std::string metric)
    : folder_(std::move(folder)) {
  recipe.validate();
  check_selection_metric(metric);
  DSCOPE_CHECK(static_cast<std::int64_t>(data.part(data::Part::Train).samples.size()) >= recipe.batch_size,
               DataError, "build: ", data.part(data::Part::Train).samples.size(),
               " training images are fewer than one batch of ", recipe.batch_size);
  fs::create_directories(folder_);
  state_ = std::make_unique<State>(data, recipe, std::move(metric));
  // A folder trained with another recipe is not this training's: start afresh rather than mix them.
  const fs::path recipe_file = folder_ / "recipe.json";
  const nlohmann::json recipe_json = recipe_to_json(recipe);
  if (fs::exists(recipe_file)) {
    std::ifstream in(recipe_file);
    nlohmann::json stored;
    try {
      stored = nlohmann::json::parse(in);
    } catch (const nlohmann::json::exception&) {
      stored = nullptr;
    }
    if (stored != recipe_json) {
      for (const char* name : {"last.safetensors", "state.safetensors", "best.safetensors",
                               "average.safetensors", "training.jsonl"})
        fs::remove(folder_ / name);
    }
  }
  std::ofstream(recipe_file) << recipe_json.dump(2) << '\n';

  const fs::path last = folder_ / "last.safetensors", state = folder_ / "state.safetensors";
  if (fs::exists(last) && fs::exists(state)) {
    // Resume. A checkpoint cut short by a kill, or a model and state of different epochs, cannot be trusted:
    // the training then starts over.
    try {
      const nn::ModelCard card = nn::load_model(last, state_->model);
      const optim::TrainingProgress progress = optim::load_training_state(state, *state_->optimizer, {});
      DSCOPE_CHECK(card.training.epochs == progress.epoch, DataError,
                   "model and state are of different epochs");
      if (state_->average) {
        // The averages go through the model: load them, take them over, then load the trained weights again.
        const nn::ModelCard averaged = nn::load_model(average_model(), state_->model);
        DSCOPE_CHECK(averaged.training.epochs == progress.epoch, DataError,
                     "the weight average and the state are of different epochs");
        state_->average->reset_from_model(static_cast<std::int64_t>(progress.values.at("average_updates")));
        nn::load_model(last, state_->model);
      }
      epochs_done_ = progress.epoch;
      best_epoch_ = static_cast<std::int64_t>(progress.values.at("best_epoch"));
      state_->best_value = progress.values.at("best_value");
      best_validation_ = nn::read_model_card(best_model()).training.best_validation;
    } catch (const Error& error) {
      std::fprintf(data.options().log,
                   "note: the checkpoint in %s cannot be resumed (%s); training it again\n",
                   folder_.string().c_str(), error.what());
      state_ = std::make_unique<State>(data, recipe, state_->metric);
      epochs_done_ = best_epoch_ = 0;
      best_validation_.clear();
      fs::remove(folder_ / "training.jsonl");
    }
  } else {
    fs::remove(folder_ / "training.jsonl");
  }
}

RecipeTraining::~RecipeTraining() = default;

double RecipeTraining::train_until(std::int64_t epochs) {
  State& s = *state_;
  epochs = std::min(epochs, s.recipe.epochs);
  if (epochs <= epochs_done_) return s.best_value;
  const BuildOptions& options = s.data.options();
  TrainerOptions trainer_options;
  trainer_options.epochs = epochs;
  trainer_options.log_path = training_log().string();
  trainer_options.show_progress = options.show_progress;
  trainer_options.progress_stream = options.log;
  trainer_options.device = options.device;
  trainer_options.activations = options.activations;
  trainer_options.weight_average = s.average.get();
  Trainer trainer(s.model, *s.optimizer, s.loss, trainer_options);
  // The schedule is planned for the recipe's full length, so stopping at a rung and continuing later
  // follows the same curve as one uninterrupted run.
  const std::int64_t steps_per_epoch = s.train.batches_per_epoch();
  trainer.set_schedule(optim::WarmupCosineSchedule(
      s.recipe.learning_rate, s.recipe.epochs * steps_per_epoch,
      std::min(s.recipe.warmup_epochs, s.recipe.epochs - 1) * steps_per_epoch, 0.0f, 0.1f));
  trainer.on_epoch_end([&](const EpochMetrics& metrics) {
    const double value =
        selection_metric(s.metric, metrics.validation_confusion, s.card.labels, s.data.positive_labels());
    s.card.training.epochs = metrics.epoch;
    if (value > s.best_value) {
      s.best_value = value;
      best_epoch_ = metrics.epoch;
      best_validation_ = {{"balanced_accuracy", metrics.validation_balanced_accuracy},
                          {"accuracy", metrics.validation_accuracy},
                          {"loss", metrics.validation_loss},
                          {s.metric, value}};
      s.card.training.best_epoch = metrics.epoch;
      s.card.training.best_validation = best_validation_;
      nn::save_model(best_model(), s.model, s.card);
    }
    epochs_done_ = metrics.epoch;
    optim::TrainingProgress progress;
    progress.epoch = metrics.epoch;
    progress.step = s.optimizer->steps_taken();
    progress.values = {{"best_epoch", static_cast<double>(best_epoch_)}, {"best_value", s.best_value}};
    if (s.average) {
      // The model holds the averages here (TrainerOptions::weight_average): save them, then the trained
      // weights, which are what training resumes from.
      nn::save_model(average_model(), s.model, s.card);
      s.average->swap();
      nn::save_model(folder_ / "last.safetensors", s.model, s.card);
      s.average->swap();
      progress.values["average_updates"] = static_cast<double>(s.average->updates());
    } else {
      nn::save_model(folder_ / "last.safetensors", s.model, s.card);
    }
    optim::save_training_state(folder_ / "state.safetensors", *s.optimizer, progress, {});
  });
  trainer.fit(s.train, &s.validation, epochs_done_);
  return s.best_value;
}

// ---------------------------------------------------------------------------------------------------------
// finish_build and the quick build

namespace {

ConfusionMatrix confusion_of(const std::vector<float>& probabilities, const std::vector<std::int64_t>& truth,
                             std::int64_t classes) {
  ConfusionMatrix confusion(classes);
  for (std::size_t i = 0; i < truth.size(); ++i) {
    const float* row = probabilities.data() + static_cast<std::int64_t>(i) * classes;
    confusion.add(truth[i], std::max_element(row, row + classes) - row);
  }
  return confusion;
}

}  // namespace

double accuracy_and_balanced_mean(const std::vector<float>& probabilities,
                                  const std::vector<std::int64_t>& truth, std::int64_t classes) {
  const ConfusionMatrix confusion = confusion_of(probabilities, truth, classes);
  return (confusion.accuracy() + confusion.balanced_accuracy()) / 2.0;
}

double choose_adjustment_strength(const std::vector<float>& train_prior,
                                  const std::vector<float>& probabilities,
                                  const std::vector<std::int64_t>& truth) {
  const auto classes = static_cast<std::int64_t>(train_prior.size());
  double best_strength = 0.0, best_value = -1.0;
  // −1 to 1.5 in steps of 0.05: positive strengths move a network trained on the natural frequencies
  // towards balanced predictions, negative ones move a network trained on balanced batches back towards the
  // frequencies. Strengths are tried outwards from 0 (0, 0.05, −0.05, 0.1, ...) and only a strict gain
  // replaces the best, so the network is changed only as far as validation shows a gain.
  for (int step = 0; step <= 60; ++step) {
    const int magnitude = (step + 1) / 2;
    if (step % 2 == 0 && magnitude > 20) continue;  // negative side stops at −1
    const nn::LogitAdjustment adjustment{
        train_prior, 0.05 * (step % 2 == 1 ? magnitude : -magnitude), {}, {}};
    std::vector<float> adjusted = probabilities;
    adjust_probabilities(adjustment, adjusted);
    const double value = accuracy_and_balanced_mean(adjusted, truth, classes);
    if (value > best_value + 1e-12) {
      best_value = value;
      best_strength = adjustment.strength;
    }
  }
  return best_strength;
}

// The networks of model files, an ensemble's members taken one by one, each checked against the build's data:
// its labels, and the split it was built on when it records one.
std::vector<nn::LoadedResNet> networks_for(const BuildData& data, const std::vector<fs::path>& files) {
  std::vector<nn::LoadedResNet> networks;
  for (const fs::path& file : files) {
    nn::LoadedNetworks loaded = nn::load_networks(file);
    DSCOPE_CHECK(loaded.card.labels == data.dataset().labels, ValueError, "build: ", file.string(),
                 " is a model for the labels (", join_labels(loaded.card.labels), "), the data has (",
                 join_labels(data.dataset().labels), ")");
    for (nn::LoadedResNet& network : loaded.networks) {
      const std::string& digest = network.card.training.split_digest;
      DSCOPE_CHECK(
          digest.empty() || digest == data.split_digest(), ValueError, "build: ", file.string(),
          " was built on another split (", digest, ") than this build's (", data.split_digest(),
          "), so its training images may be among this split's validation or test images; build with "
          "--split and the split.csv it was built on");
      if (digest.empty())
        std::fprintf(data.options().log,
                     "warning: %s does not record the split it was built on; make sure it was this one (the "
                     "same seed or --split), or the held-out score is not held out\n",
                     file.string().c_str());
      networks.push_back(std::move(network));
    }
  }
  return networks;
}

// Writes one network as a plain model file, several as an ensemble whose members keep their own cards.
void save_classifier(const fs::path& path, const std::vector<nn::LoadedResNet>& networks,
                     nn::ModelCard card) {
  if (networks.size() == 1) return nn::save_model(path, *networks.front().model, std::move(card));
  std::vector<const nn::ResNet*> models;
  card.members.clear();
  for (const nn::LoadedResNet& network : networks) {
    models.push_back(network.model.get());
    card.members.push_back(network.card);
  }
  nn::save_ensemble(path, models, std::move(card));
}

namespace {

// Chooses the class factors of the minimum recalls asked (apps/lib/min_recall.h) on validation
// probabilities that already carry the rest of the adjustment, stores them in `adjustment`, applies them to
// `probabilities` (so the threshold chosen next sees them), and returns the sentences report.md gives them.
std::string choose_min_recall(const std::map<std::string, double>& min_recall,
                              const std::vector<std::string>& labels, const std::vector<std::int64_t>& truth,
                              nn::LogitAdjustment& adjustment, std::vector<float>& probabilities) {
  const auto classes = static_cast<std::int64_t>(labels.size());
  std::map<std::int64_t, double> targets;  // every label one of `labels`: checked by BuildData
  for (const auto& [label, recall] : min_recall)
    targets[std::find(labels.begin(), labels.end(), label) - labels.begin()] = recall;
  const ConfusionMatrix before = confusion_of(probabilities, truth, classes);
  adjustment.class_factor = choose_class_factors(probabilities, truth, classes, targets);
  adjustment.min_recall = min_recall;
  adjust_probabilities({std::vector<float>(labels.size(), 1.0f), 0.0, adjustment.class_factor, {}},
                       probabilities);
  const ConfusionMatrix after = confusion_of(probabilities, truth, classes);
  std::ostringstream notes;
  notes << std::fixed << std::setprecision(3);
  for (const auto& [index, recall] : targets)
    notes << " Predictions multiply the probability of " << labels[static_cast<std::size_t>(index)] << " by "
          << adjustment.class_factor[static_cast<std::size_t>(index)]
          << " (chosen on the validation split for a recall of at least " << recall << ": "
          << before.recall(index) << " without, " << after.recall(index) << " with it).";
  notes << " With the minimum recall, validation accuracy " << before.accuracy() << " → " << after.accuracy()
        << ", balanced accuracy " << before.balanced_accuracy() << " → " << after.balanced_accuracy() << ".";
  return notes.str();
}

}  // namespace

BuildResult finish_build(BuildData& data, const std::vector<fs::path>& trained_models,
                         const fs::path& training_log, const std::string& notes) {
  const BuildOptions& options = data.options();
  const std::vector<nn::LoadedResNet> networks = networks_for(data, trained_models);
  const bool ensemble = networks.size() > 1;
  nn::ModelCard card = networks.front().card;
  if (ensemble) card.training.split_digest = data.split_digest();
  std::int64_t largest_input = 0;
  for (const nn::LoadedResNet& network : networks)
    largest_input = std::max(largest_input, network.card.input.height);
  const std::vector<std::string>& labels = data.dataset().labels;
  const std::vector<std::string>& positives = data.positive_labels();
  const data::ImageCache& cache = data.cache(largest_input);
  const fs::path model_path = options.out / "model.safetensors";
  const data::Dataset& validation = data.part(data::Part::Validation);
  const std::vector<const data::Image*> validation_images = images_of(cache, validation);
  const std::vector<std::int64_t> truth = labels_of(validation);
  // The views, the logit adjustment for them, then the possible-cancer threshold on the adjusted
  // probabilities: all chosen on validation and stored in the model, so every later prediction uses the same
  // rule. Views and adjustment are chosen together by the mean of accuracy and balanced accuracy; 8 views
  // replace 1 only on a strict gain, since they cost 8 times the time.
  card.adjustment = {};
  const bool adjusted = !options.logit_adjustment || *options.logit_adjustment != 0.0;
  // A minimum recall's class factors live in the adjustment, so it keeps the prior even at strength 0.
  if (adjusted || !options.min_recall.empty()) {
    const std::vector<std::int64_t> counts = data.part(data::Part::Train).counts_per_label();
    const double total = static_cast<double>(std::accumulate(counts.begin(), counts.end(), std::int64_t{0}));
    for (std::int64_t count : counts)
      card.adjustment.train_prior.push_back(static_cast<float>(std::max<double>(count, 1.0) / total));
  }
  // The networks as they are first (the card's choices are redone below), so that one Classifier computes
  // the probabilities the choices are made on, exactly as later predictions will.
  save_classifier(model_path, networks, card);
  Classifier network(model_path);
  network.set_adjusted(false);  // the network's own probabilities, whatever the file's card says
  std::vector<float> probabilities;
  std::map<int, double> value_of_views;
  double best_value = -1.0;
  for (const int views : {1, 8}) {
    if (options.views && *options.views != views) continue;
    network.set_views(views);
    std::vector<float> candidate = network.probabilities(validation_images);
    double strength = 0.0;
    if (adjusted)
      strength = options.logit_adjustment
                     ? *options.logit_adjustment
                     : choose_adjustment_strength(card.adjustment.train_prior, candidate, truth);
    adjust_probabilities({card.adjustment.train_prior, strength, {}, {}}, candidate);
    const double value =
        accuracy_and_balanced_mean(candidate, truth, static_cast<std::int64_t>(labels.size()));
    value_of_views[views] = value;
    if (value > best_value + 1e-12) {
      best_value = value;
      probabilities = std::move(candidate);
      card.input.views = views;
      card.adjustment.strength = strength;
    }
  }
  std::ostringstream decision_notes;
  decision_notes << " Predictions average "
                 << (card.input.views == 1 ? "one view of each image"
                                           : "the 8 flips and quarter turns of each image");
  if (options.views)
    decision_notes << " (set by hand).";
  else
    decision_notes << " (chosen on the validation split: mean of accuracy and balanced accuracy "
                   << value_of_views[8] << " with 8 views, " << value_of_views[1] << " with one).";
  if (adjusted) {
    decision_notes << " Predictions divide each class's probability by its training share to the power "
                   << card.adjustment.strength
                   << (options.logit_adjustment ? " (set by hand)"
                                                : " (chosen on the validation split for the best mean of "
                                                  "accuracy and balanced accuracy)")
                   << ".";
  }
  if (!options.min_recall.empty())
    decision_notes << choose_min_recall(options.min_recall, labels, truth, card.adjustment, probabilities);
  card.decision = {};
  if (!positives.empty()) {
    const std::vector<double> score = positive_probability(labels, probabilities, positives);
    std::vector<bool> positive;
    for (const std::int64_t label : truth)
      positive.push_back(std::find(positives.begin(), positives.end(),
                                   labels[static_cast<std::size_t>(label)]) != positives.end());
    card.decision = {"possible_cancer", positives,
                     threshold_for_sensitivity(score, positive, options.target_sensitivity),
                     options.target_sensitivity};
  }
  save_classifier(model_path, networks, card);
  const fs::path log_copy = options.out / "training.jsonl";
  if (ensemble)
    fs::remove(log_copy);  // no one training made these networks; a member's log would mislead
  else if (fs::exists(training_log) && fs::absolute(training_log) != fs::absolute(log_copy))
    fs::copy_file(training_log, log_copy, fs::copy_options::overwrite_existing);

  // The held-out score, exactly as `dscope score` computes it: from the saved file.
  BuildResult result;
  result.model = model_path;
  result.epochs_trained = card.training.epochs;
  result.best_epoch = card.training.best_epoch;
  const auto balanced = card.training.best_validation.find("balanced_accuracy");
  result.best_validation_balanced_accuracy =
      balanced == card.training.best_validation.end() ? 0.0 : balanced->second;
  result.threshold = card.decision.threshold;
  result.logit_adjustment = card.adjustment.strength;
  result.views = card.input.views;
  for (const auto& [label, recall] : options.min_recall) {
    const auto index = std::find(labels.begin(), labels.end(), label) - labels.begin();
    result.min_recall_factors[label] = card.adjustment.class_factor[static_cast<std::size_t>(index)];
  }
  const bool has_test = !data.part(data::Part::Test).samples.empty();
  const data::Dataset& scored = data.part(has_test ? data::Part::Test : data::Part::Validation);
  result.scored_part = has_test ? "test" : "validation";
  const Classifier classifier(model_path);
  result.test = compute_scores(labels, classifier.probabilities(images_of(cache, scored)), labels_of(scored),
                               positives, result.threshold);
  ReportContext context;
  context.title = "dscope build: score on the held-out " + result.scored_part + " split";
  context.model = model_path.string();
  context.model_summary = classifier.describe();
  context.data = options.data.string() +
                 (options.metadata.empty() ? "" : " with " + options.metadata.string()) + " (" +
                 result.scored_part + " split of " + (options.out / "split.csv").string() + ")";
  context.training_log = log_copy;
  std::ostringstream text;
  text << notes;
  if (!positives.empty())
    text << " The possible-cancer threshold " << result.threshold
         << " was chosen on the validation split for a sensitivity of at least " << options.target_sensitivity
         << ".";
  text << decision_notes.str();
  context.notes = text.str();
  write_report(options.out, result.test, context);
  return result;
}

std::string training_setting(const BuildOptions& options) {
  if (options.device.is_cpu()) return "Trained on the CPU in fp32.";
  return detail::concat("Trained on ", options.device, " in ", options.precision,
                        options.activations == DType::BFloat16 ? " (mixed precision)." : ".");
}

BuildResult run_build(const BuildOptions& options, const Recipe& given_recipe) {
  const Clock::time_point start = Clock::now();
  Recipe recipe = given_recipe;
  recipe.validate();
  BuildData data(options, recipe.input_size);
  if (options.time_limit_seconds > 0.0) {
    data::ImageLoader probe_loader(
        data.cache(recipe.input_size), data.part(data::Part::Train),
        loader_options(recipe, data.normalization(recipe.input_size), options.seed, true));
    const double epoch_seconds = estimate_epoch_seconds(
        recipe, model_config(recipe, static_cast<std::int64_t>(data.dataset().labels.size()), options.seed),
        probe_loader, static_cast<std::int64_t>(data.part(data::Part::Validation).samples.size()),
        options.device, options.activations);
    const double left = options.time_limit_seconds * 0.9 - seconds_since(start);
    const auto fit = std::max<std::int64_t>(1, static_cast<std::int64_t>(left / epoch_seconds));
    if (fit < recipe.epochs) {
      std::fprintf(options.log,
                   "time limit: an epoch takes about %.0f s here, so %lld of %lld epochs fit in %s\n",
                   epoch_seconds, static_cast<long long>(fit), static_cast<long long>(recipe.epochs),
                   Progress::format_duration(options.time_limit_seconds).c_str());
      recipe.epochs = fit;
    }
  }
  std::fprintf(options.log, "recipe: %s\n", recipe.describe().c_str());
  const fs::path checkpoints = options.out / "checkpoints";
  fs::remove_all(checkpoints);  // a quick build always starts afresh
  BuildResult result;
  {
    RecipeTraining training(data, recipe, checkpoints);
    training.train_until(recipe.epochs);
    std::ostringstream notes;
    notes << "Built with `" << recipe.describe() << "`, seed " << options.seed << ": "
          << training.epochs_done() << " epochs, the weights of epoch " << training.best_epoch()
          << " (best validation balanced accuracy). Split: " << data.part(data::Part::Train).samples.size()
          << " train, " << data.part(data::Part::Validation).samples.size() << " validation, "
          << data.part(data::Part::Test).samples.size() << " test images, grouped by lesion. "
          << training_setting(options);
    result = finish_build(data, {training.best_model()}, training.training_log(), notes.str());
    result.epochs_trained = training.epochs_done();
  }
  fs::remove_all(checkpoints);
  result.seconds = seconds_since(start);
  return result;
}

BuildResult finish_from_weights(const BuildOptions& options, const std::vector<fs::path>& weights) {
  const Clock::time_point start = Clock::now();
  DSCOPE_CHECK(!weights.empty(), ValueError, "build: no model file to take the weights of");
  std::ostringstream notes;
  std::int64_t input_size = 0;
  for (std::size_t i = 0; i < weights.size(); ++i) {
    const nn::ModelCard card = nn::read_model_card(weights[i]);
    input_size = std::max(input_size, card.input.height);
    notes << (i == 0                    ? "The weights of `"
              : i + 1 == weights.size() ? " and `"
                                        : ", `")
          << weights[i].string() << "` ("
          << (card.is_ensemble() ? std::to_string(card.members.size()) + " networks"
                                 : "epoch " + std::to_string(card.training.best_epoch) + " of its training")
          << ")";
  }
  BuildData data(options, input_size);
  const std::string origin =
      options.split_file.empty() ? "seed " + std::to_string(options.seed) : options.split_file.string();
  notes << (weights.size() > 1 ? ", averaged as an ensemble" : "")
        << "; this build trained nothing and made only the choices made on validation. Split (" << origin
        << "): " << data.part(data::Part::Train).samples.size() << " train, "
        << data.part(data::Part::Validation).samples.size() << " validation, "
        << data.part(data::Part::Test).samples.size() << " test images, grouped by lesion.";
  BuildResult result =
      finish_build(data, weights, weights.front().parent_path() / "training.jsonl", notes.str());
  result.seconds = seconds_since(start);
  return result;
}

}  // namespace dscope::apps
