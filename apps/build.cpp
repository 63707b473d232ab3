// `dscope build`: a classifier from a folder of images, in one command. The quick mode trains one strong,
// fixed recipe (apps/lib/build_recipe.h) within a time limit; the standard mode searches for the best recipe
// (apps/lib/standard_build.h). Both write the model, the split, the training log and the held-out score
// into the output folder.
#include <cstdio>
#include <cstdlib>
#include <memory>

#include "apps/commands.h"
#include "apps/lib/build_recipe.h"
#include "apps/lib/min_recall.h"
#include "apps/lib/progress.h"
#include "apps/lib/standard_build.h"
#include "nn/checkpoint.h"
#include "tensor/device.h"
#include "tensor/error.h"

namespace dscope::apps {
namespace {

std::string environment_or(const char* name, const std::string& otherwise) {
  const char* value = std::getenv(name);
  return value != nullptr && *value != '\0' ? value : otherwise;
}

struct BuildCommand {
  BuildOptions options;
  Recipe recipe;
  // --precision defaults to what DSCOPE_CUDA_MATH says (kernels/cuda/settings.h), so that the variable
  // means the same to the app as to every other user of the kernels; fp32 without it.
  std::string mode = "quick", device = "cpu", precision = environment_or("DSCOPE_CUDA_MATH", "fp32");
  double time_limit_minutes = 15.0;
  bool quiet = false;
  // Set: no training, only finish_build on these weights (several: their ensemble).
  std::vector<std::filesystem::path> weights;
  std::vector<std::string> min_recall;  // LABEL=RECALL, parsed into options.min_recall
  bool seed_given = false, precision_given = false;
  // standard mode
  std::string budget;
  HalvingOptions halving;
  std::filesystem::path space_file;
};

// "2h", "90m", "45s", "1h30m" or a plain number of minutes → seconds.
double parse_budget(const std::string& text) {
  double seconds = 0.0, number = 0.0;
  bool has_number = false;
  std::size_t i = 0;
  while (i < text.size()) {
    std::size_t used = 0;
    try {
      number = std::stod(text.substr(i), &used);
    } catch (const std::exception&) {
      used = 0;
    }
    DSCOPE_CHECK(used > 0 && number >= 0, ValueError, "--budget '", text,
                 "' is not a duration like 2h, 90m or 1h30m");
    i += used;
    has_number = true;
    const char unit = i < text.size() ? text[i] : 'm';
    DSCOPE_CHECK(unit == 'h' || unit == 'm' || unit == 's', ValueError, "--budget '", text,
                 "': the unit must be h, m or s");
    seconds += number * (unit == 'h' ? 3600.0 : unit == 'm' ? 60.0 : 1.0);
    if (i < text.size()) ++i;
  }
  DSCOPE_CHECK(has_number && seconds > 0, ValueError, "--budget '", text, "' must be a positive duration");
  return seconds;
}

void print_scores(const BuildResult& result) {
  const Scores& s = result.test;
  std::printf("%s split (%lld images): accuracy %.3f, balanced accuracy %.3f, macro AUC %.3f\n",
              result.scored_part.c_str(), static_cast<long long>(s.n), s.accuracy, s.balanced_accuracy,
              s.auc_macro);
  if (!s.binary.positive_labels.empty())
    std::printf("possible cancer (threshold %.3f): sensitivity %.3f, specificity %.3f\n", s.binary.threshold,
                s.binary.sensitivity, s.binary.specificity);
}

void run_standard(BuildCommand& command) {
  StandardBuildOptions options;
  options.build = command.options;
  options.halving = command.halving;
  if (!command.budget.empty()) options.halving.budget_seconds = parse_budget(command.budget);
  if (!command.space_file.empty()) options.space = SearchSpace::from_file(command.space_file);
  const StandardBuildResult result = run_standard_build(options);
  std::printf("leaderboard: %s\n", (command.options.out / "leaderboard.md").string().c_str());
  if (result.final_model.model.empty()) throw DivergenceError("standard build: every trial failed; no model");
  if (result.final_model.test.n > 0) {
    const TrialRecord& best = result.search.trials[static_cast<std::size_t>(result.search.best)];
    std::printf("best: trial %lld, %s (validation %s %.3f)\n", static_cast<long long>(best.id),
                best.recipe.describe().c_str(), options.halving.metric.c_str(), best.metric);
    print_scores(result.final_model);
  }
  std::printf("model: %s\nreport: %s\n", result.final_model.model.string().c_str(),
              (command.options.out / "report.md").string().c_str());
}

void run(BuildCommand& command) {
  command.options.device = Device::parse(command.device);
  DSCOPE_CHECK(command.options.device.is_cpu() || cuda_is_available(), DeviceError, "build: --device ",
               command.device,
               ": no CUDA device is available (no GPU here, or dscope was built without CUDA); train with "
               "--device cpu");
  DSCOPE_CHECK(command.options.device.is_cuda() || !command.precision_given || command.precision == "fp32",
               ValueError, "build: --precision ", command.precision,
               " applies to --device cuda; the CPU computes in fp32");
  if (command.options.device.is_cuda()) {
    set_cuda_math(command.precision);
    command.options.precision = command.precision;
    // bf16 is mixed precision, as PyTorch's autocast: bfloat16 products and bfloat16 activations.
    if (command.precision == "bf16") command.options.activations = DType::BFloat16;
  }
  command.options.time_limit_seconds = command.time_limit_minutes * 60.0;
  command.options.show_progress = !command.quiet;
  for (const std::string& text : command.min_recall)
    command.options.min_recall.insert(parse_min_recall(text));
  BuildResult result;
  if (!command.weights.empty()) {
    // The split must be the one the weights were trained on: --split, or the files' own seed unless told
    // otherwise. Files of different seeds were trained on one split only if it was given by --split.
    if (!command.seed_given && command.options.split_file.empty()) {
      const std::uint64_t seed = nn::read_model_card(command.weights.front()).training.seed;
      for (const std::filesystem::path& file : command.weights)
        DSCOPE_CHECK(nn::read_model_card(file).training.seed == seed, ValueError,
                     "build: ", command.weights.front().string(), " and ", file.string(),
                     " were built with different seeds; give --split with the split.csv they were both "
                     "trained on");
      command.options.seed = seed;
    }
    result = finish_from_weights(command.options, command.weights);
    std::printf("built %s in %s from %s, trained before\n", result.model.string().c_str(),
                Progress::format_duration(result.seconds).c_str(),
                command.weights.size() == 1 ? "the weights of one model file"
                                            : "an ensemble of the model files' networks");
  } else {
    if (command.mode == "standard") return run_standard(command);
    result = run_build(command.options, command.recipe);
    std::printf("built %s in %s: %lld epochs, best at epoch %lld (validation balanced accuracy %.3f)\n",
                result.model.string().c_str(), Progress::format_duration(result.seconds).c_str(),
                static_cast<long long>(result.epochs_trained), static_cast<long long>(result.best_epoch),
                result.best_validation_balanced_accuracy);
  }
  std::printf("views: %lld%s\n", static_cast<long long>(result.views),
              command.options.views ? " (set by hand)" : " (chosen on the validation split)");
  std::printf("logit adjustment: strength %.2f%s\n", result.logit_adjustment,
              command.options.logit_adjustment ? " (set by hand)" : " (chosen on the validation split)");
  for (const auto& [label, factor] : result.min_recall_factors)
    std::printf("minimum recall %.3g on %s: its probability weighs %.3f (chosen on the validation split)\n",
                command.options.min_recall.at(label), label.c_str(), factor);
  print_scores(result);
  std::printf("report: %s\n", (command.options.out / "report.md").string().c_str());
}

}  // namespace

void add_build_command(CLI::App& program) {
  auto command = std::make_shared<BuildCommand>();
  CLI::App* build = program.add_subcommand(
      "build", "Train a classifier on label folders or HAM10000 images and score it on a held-out split");
  build
      ->add_option(
          "--data", command->options.data,
          "Folder of label folders (ROOT/<label>/*.jpg), or the HAM10000 images folder with --metadata")
      ->required();
  build
      ->add_option("--metadata", command->options.metadata,
                   "HAM10000_metadata.csv: labels from its dx column, splits grouped by lesion_id")
      ->check(CLI::ExistingFile);
  build->add_option("--out", command->options.out, "Output folder (model.safetensors, report.md, ...)")
      ->required();
  build
      ->add_option(
          "--mode", command->mode,
          "quick: one strong recipe within --time-limit; standard: a search that picks the best recipe")
      ->check(CLI::IsMember({"quick", "standard"}))
      ->capture_default_str();
  CLI::Option* seed =
      build
          ->add_option("--seed", command->options.seed,
                       "Seed of the split, the initialisation and the augmentation (with --weights: the "
                       "seed the weights were built with)")
          ->capture_default_str();
  build
      ->add_option("--device", command->device,
                   "Where to train: cpu, or cuda (a GPU; scoring stays on the CPU)")
      ->check(CLI::IsMember({"cpu", "cuda"}))
      ->capture_default_str();
  CLI::Option* precision =
      build
          ->add_option(
              "--precision", command->precision,
              "With --device cuda: fp32 (exact), tf32 (convolutions and matrix products on the tensor "
              "cores, operands rounded to TensorFloat-32, float accumulation) or bf16 (mixed "
              "precision: bfloat16 products, and activations and their gradients stored in bfloat16; "
              "weights, their gradients, optimizer state and all sums stay float). Default: "
              "DSCOPE_CUDA_MATH where it is set, else fp32")
          ->check(CLI::IsMember({"fp32", "tf32", "bf16"}))
          ->capture_default_str();
  build
      ->add_option("--time-limit", command->time_limit_minutes,
                   "Minutes the build may take; fewer epochs are trained when the full recipe would not fit "
                   "(0: no limit)")
      ->check(CLI::NonNegativeNumber)
      ->capture_default_str();
  build->add_option("--epochs", command->recipe.epochs, "Epochs of the recipe (at most; see --time-limit)")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  build->add_option("--input-size", command->recipe.input_size, "Side of the square crops the network sees")
      ->check(CLI::Range(16, 512))
      ->capture_default_str();
  build->add_option("--batch-size", command->recipe.batch_size, "Images per training step")
      ->check(CLI::Range(2, 4096))
      ->capture_default_str();
  build->add_option("--depth", command->recipe.depth, "ResNet depth: 8, 14, 18, 34 or 50")
      ->check(CLI::IsMember({8, 14, 18, 34, 50}))
      ->capture_default_str();
  build->add_option("--width", command->recipe.width_multiplier, "Width multiplier of every ResNet stage")
      ->check(CLI::Range(0.25, 8.0))
      ->capture_default_str();
  build->add_option("--learning-rate", command->recipe.learning_rate, "Peak learning rate (SGD, Nesterov)")
      ->check(CLI::Range(1e-5, 5.0))
      ->capture_default_str();
  build
      ->add_option(
          "--augment-strength", command->recipe.augment_strength,
          "0: no augmentation .. 1: crops of 35-100% of the area, flips, quarter turns, colour jitter 20%")
      ->check(CLI::Range(0.0, 1.0))
      ->capture_default_str();
  build->add_option("--loss", command->recipe.loss, "ce, weighted_ce (by --class-weight-power) or focal")
      ->check(CLI::IsMember({"ce", "weighted_ce", "focal"}))
      ->capture_default_str();
  build
      ->add_option("--label-smoothing", command->recipe.label_smoothing,
                   "Share of each target spread evenly over all labels")
      ->check(CLI::Range(0.0, 0.5))
      ->capture_default_str();
  build->add_flag(
      "--balanced-sampling,!--natural-sampling", command->recipe.balanced_sampling,
      "Draw every label equally often in training batches (the default), or as often as it occurs "
      "(--natural-sampling)");
  build
      ->add_option("--sampling-power", command->recipe.sampling_power,
                   "With balanced sampling, draw each training image in proportion to 1 / its label's "
                   "count^X: 1 every label equally often, 0.5 in proportion to the square root of its count")
      ->check(CLI::Range(0.0, 1.0))
      ->capture_default_str();
  build
      ->add_option("--weight-average", command->recipe.weight_average,
                   "Validate and keep an exponential moving average of the weights with this decay per step "
                   "(0.998: about the last 500 steps); 0: the weights of each epoch's last step")
      ->check(CLI::Range(0.0, 0.9999))
      ->capture_default_str();
  build
      ->add_option("--class-weight-power", command->recipe.class_weight_power,
                   "Loss weight of a class ~ 1/frequency^power: 0 none, 1 full inverse frequency")
      ->check(CLI::Range(0.0, 1.0))
      ->capture_default_str();
  build
      ->add_option("--target-sensitivity", command->options.target_sensitivity,
                   "Sensitivity the possible-cancer threshold is chosen for, on the validation split")
      ->check(CLI::Range(0.01, 1.0))
      ->capture_default_str();
  build
      ->add_option("--logit-adjustment", command->options.logit_adjustment,
                   "Divide each class's probability by its training share to this power (0: off; "
                   "default: chosen on the validation split)")
      ->check(CLI::Range(-1.0, 3.0));
  build
      ->add_option("--views", command->options.views,
                   "Views each prediction averages: 1, or 8 (the flips and quarter turns, 8x the time); "
                   "default: chosen on the validation split")
      ->check(CLI::IsMember({1, 8}));
  build->add_option("--min-recall", command->min_recall,
                    "LABEL=RECALL (e.g. mel=0.6; repeatable): raise LABEL's weight in the decision until it "
                    "reaches this recall on the validation split, at the price of other labels' recall");
  build
      ->add_option(
          "--weights", command->weights,
          "Train nothing: take the weights of this model file (built before on the same data and "
          "split) and redo only the choices made on validation and the held-out score; several files: "
          "an ensemble that averages their probabilities")
      ->check(CLI::ExistingFile);
  build
      ->add_option("--split", command->options.split_file,
                   "Use this split.csv (of an earlier build on the same data) instead of drawing the split "
                   "from the seed")
      ->check(CLI::ExistingFile);
  build->add_option("--positive-labels", command->options.positive_labels,
                    "Labels that count as possible cancer (default: akiec bcc mel, those the data has)");
  build->add_option("--cache", command->options.cache_file,
                    "Keep the decoded images in this file, so the next build does not decode them again");
  build->add_flag("--quiet", command->quiet, "No progress bars");
  CLI::Option_group* standard = build->add_option_group("standard mode", "The search of --mode standard");
  standard->add_option(
      "--budget", command->budget,
      "Wall-time budget of the search, e.g. 2h, 90m, 1h30m (default: none; the search runs all trials)");
  standard->add_option("--trials", command->halving.trials, "Configurations drawn for the first rung")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  standard
      ->add_option("--metric", command->halving.metric, "What the search and the best epoch are chosen by")
      ->check(CLI::IsMember({"balanced_accuracy", "macro_f1", "accuracy", "malignant_recall"}))
      ->capture_default_str();
  standard
      ->add_option(
          "--space", command->space_file,
          "JSON file overriding the search space (e.g. {\"depths\": [8], \"input_sizes\": [64, 96]})")
      ->check(CLI::ExistingFile);
  standard->add_option("--eta", command->halving.eta, "Only the best 1/eta of each rung continues")
      ->check(CLI::Range(2, 16))
      ->capture_default_str();
  standard->add_option("--rungs", command->halving.rungs, "Rungs of successive halving (1: random search)")
      ->check(CLI::Range(1, 8))
      ->capture_default_str();
  standard->add_option("--max-epochs", command->halving.max_epochs, "Epochs of the last rung")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  build->callback([command, seed, precision] {
    command->seed_given = seed->count() > 0;
    command->precision_given = precision->count() > 0;
    run(*command);
  });
}

}  // namespace dscope::apps
