// `dscope build`: a classifier from a folder of images, in one command. The quick mode trains one strong,
// fixed recipe (apps/lib/build_recipe.h) within a time limit and writes the model, the split, the training
// log and the held-out score into the output folder.
#include <cstdio>
#include <memory>

#include "apps/commands.h"
#include "apps/lib/build_recipe.h"
#include "apps/lib/progress.h"
#include "tensor/error.h"

namespace dscope::apps {
namespace {

struct BuildCommand {
  BuildOptions options;
  Recipe recipe;
  std::string mode = "quick", device = "cpu";
  double time_limit_minutes = 15.0;
  bool quiet = false;
};

void run(BuildCommand& command) {
  DSCOPE_CHECK(
      command.device == "cpu", DeviceError,
      "build: --device cuda is not available yet: this dscope has no CUDA kernels (train with --device cpu)");
  command.options.time_limit_seconds = command.time_limit_minutes * 60.0;
  command.options.show_progress = !command.quiet;
  const BuildResult result = run_build(command.options, command.recipe);
  const Scores& s = result.test;
  std::printf("built %s in %s: %lld epochs, best at epoch %lld (validation balanced accuracy %.3f)\n",
              result.model.string().c_str(), Progress::format_duration(result.seconds).c_str(),
              static_cast<long long>(result.epochs_trained), static_cast<long long>(result.best_epoch),
              result.best_validation_balanced_accuracy);
  std::printf("%s split (%lld images): accuracy %.3f, balanced accuracy %.3f, macro AUC %.3f\n",
              result.scored_part.c_str(), static_cast<long long>(s.n), s.accuracy, s.balanced_accuracy,
              s.auc_macro);
  if (!s.binary.positive_labels.empty())
    std::printf("possible cancer (threshold %.3f): sensitivity %.3f, specificity %.3f\n", s.binary.threshold,
                s.binary.sensitivity, s.binary.specificity);
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
  build->add_option("--mode", command->mode, "quick: one strong recipe within --time-limit")
      ->check(CLI::IsMember({"quick"}))
      ->capture_default_str();
  build
      ->add_option("--seed", command->options.seed,
                   "Seed of the split, the initialisation and the augmentation")
      ->capture_default_str();
  build->add_option("--device", command->device, "cpu or cuda")
      ->check(CLI::IsMember({"cpu", "cuda"}))
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
  build
      ->add_option("--target-sensitivity", command->options.target_sensitivity,
                   "Sensitivity the possible-cancer threshold is chosen for, on the validation split")
      ->check(CLI::Range(0.01, 1.0))
      ->capture_default_str();
  build->add_option("--positive-labels", command->options.positive_labels,
                    "Labels that count as possible cancer (default: akiec bcc mel, those the data has)");
  build->add_option("--cache", command->options.cache_file,
                    "Keep the decoded images in this file, so the next build does not decode them again");
  build->add_flag("--quiet", command->quiet, "No progress bars");
  build->callback([command] { run(*command); });
}

}  // namespace dscope::apps
