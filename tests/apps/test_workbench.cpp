// The workbench end to end, through the dscope program itself: build on a tiny dataset the test creates,
// score the model on label folders (a subset of its labels, in another order), predict a batch that
// includes unreadable files. Each step checks the files it promises and that their numbers agree.
#include <gtest/gtest.h>

#include <cstdlib>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "data/csv.h"
#include "nn/checkpoint.h"
#include "nn/safetensors.h"
#include "tests/apps/synthetic_folders.h"
#include "tests/data/temp_folder.h"

namespace dscope::apps {
namespace {

namespace fs = std::filesystem;

struct ProgramRun {
  int exit_code = 0;
  std::string out, err;
};

// Runs `dscope ARGS`, capturing its output streams in files of the folder.
ProgramRun run_dscope(const testing::TempFolder& folder, const std::string& arguments) {
  const fs::path out = folder / "stdout.txt", err = folder / "stderr.txt";
  const std::string command =
      std::string(DSCOPE_PROGRAM) + " " + arguments + " >" + out.string() + " 2>" + err.string();
  const int status = std::system(command.c_str());
  ProgramRun run;
  run.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  std::ostringstream out_text, err_text;
  out_text << std::ifstream(out).rdbuf();
  err_text << std::ifstream(err).rdbuf();
  run.out = out_text.str();
  run.err = err_text.str();
  return run;
}

nlohmann::json read_json(const fs::path& file) {
  std::ifstream in(file);
  return nlohmann::json::parse(in);
}

TEST(Workbench, BuildScorePredict) {
  testing::TempFolder folder;
  testing::write_colour_folders(folder, "train", 20);
  folder.write_text("train/mel/broken.jpg", "not a JPEG at all");

  // build
  const ProgramRun build = run_dscope(
      folder, "build --data " + (folder / "train").string() + " --out " + (folder / "model").string() +
                  " --epochs 4 --input-size 16 --batch-size 8 --time-limit 0 --seed 3 --quiet");
  ASSERT_EQ(build.exit_code, 0) << build.out << build.err;
  for (const char* name : {"model.safetensors", "split.csv", "training.jsonl", "report.json", "report.md",
                           "confusion_matrix.svg", "roc.svg", "import_problems.csv"})
    EXPECT_TRUE(fs::exists(folder / "model" / name)) << name;
  std::ostringstream problems;
  problems << std::ifstream(folder / "model/import_problems.csv").rdbuf();
  EXPECT_NE(problems.str().find("broken.jpg"), std::string::npos) << problems.str();
  const nn::LoadedResNet loaded = nn::load_resnet(folder / "model/model.safetensors");
  EXPECT_EQ(loaded.card.labels, (std::vector<std::string>{"akiec", "mel", "nv"}));
  EXPECT_EQ(loaded.card.input.height, 16);
  EXPECT_EQ(loaded.card.decision.positive_labels, (std::vector<std::string>{"akiec", "mel"}));
  EXPECT_GE(loaded.card.decision.threshold, 0.0);
  EXPECT_LE(loaded.card.decision.threshold, 1.0);
  const data::CsvTable split = data::read_csv(folder / "model/split.csv");
  EXPECT_EQ(split.records.size(), 60u);  // the broken file is not in the split

  // score: two of the three labels, so the folders are not in the model's order of three
  testing::write_colour_folders(folder, "new", 4);
  fs::remove_all(folder / "new/akiec");
  const ProgramRun score = run_dscope(
      folder, "score --model " + (folder / "model/model.safetensors").string() + " --data " +
                  (folder / "new").string() + " --out " + (folder / "score").string() + " --quiet");
  ASSERT_EQ(score.exit_code, 0) << score.out << score.err;
  const nlohmann::json report = read_json(folder / "score/report.json");
  for (const char* key : {"labels", "n", "accuracy", "balanced_accuracy", "macro_f1", "weighted_f1",
                          "auc_macro", "per_class", "confusion_matrix", "binary"})
    EXPECT_TRUE(report.contains(key)) << key;
  EXPECT_EQ(report["labels"], nlohmann::json({"akiec", "mel", "nv"}));
  EXPECT_EQ(report["n"], 8);
  std::int64_t total = 0;
  for (std::size_t truth = 0; truth < 3; ++truth) {
    std::int64_t support = 0;
    for (std::size_t predicted = 0; predicted < 3; ++predicted)
      support += report["confusion_matrix"][truth][predicted].get<std::int64_t>();
    total += support;
    const std::string label = report["labels"][truth];
    EXPECT_EQ(report["per_class"][label]["support"].get<std::int64_t>(), support) << label;
    if (support > 0) {
      EXPECT_NEAR(report["per_class"][label]["recall"].get<double>(),
                  static_cast<double>(report["confusion_matrix"][truth][truth].get<std::int64_t>()) / support,
                  1e-12);
    }
  }
  EXPECT_EQ(total, 8);
  EXPECT_TRUE(report["per_class"]["akiec"]["recall"].is_null());  // no akiec images in this set
  // A folder that is not one of the model's labels is refused, by name.
  fs::create_directories(folder / "new/bkl");
  fs::copy_file(folder / "new/nv/0.png", folder / "new/bkl/0.png");
  const ProgramRun unknown = run_dscope(
      folder, "score --model " + (folder / "model/model.safetensors").string() + " --data " +
                  (folder / "new").string() + " --out " + (folder / "score2").string() + " --quiet");
  EXPECT_NE(unknown.exit_code, 0);
  EXPECT_NE(unknown.err.find("bkl"), std::string::npos) << unknown.err;

  // predict: a batch with an unreadable file and a folder, then one image on the terminal
  folder.write_text("inputs/notes.txt", "not an image");
  fs::copy_file(folder / "new/mel/1.jpg", folder / "inputs/lesion.jpg");
  const ProgramRun batch = run_dscope(
      folder, "predict --model " + (folder / "model/model.safetensors").string() + " --out " +
                  (folder / "predictions.csv").string() + " " + (folder / "new/nv/0.png").string() + " " +
                  (folder / "inputs").string() + " " + (folder / "missing.png").string());
  ASSERT_EQ(batch.exit_code, 0) << batch.out << batch.err;
  const data::CsvTable predictions = data::read_csv(folder / "predictions.csv");
  EXPECT_EQ(predictions.header, (std::vector<std::string>{"path", "predicted", "akiec", "mel", "nv",
                                                          "possible_cancer", "error"}));
  ASSERT_EQ(predictions.records.size(), 4u);  // nv/0.png, inputs/lesion.jpg, inputs/notes.txt, missing.png
  std::int64_t errors = 0;
  for (const data::CsvRecord& row : predictions.records) {
    if (row.fields[6].empty()) {
      double sum = std::stod(row.fields[2]) + std::stod(row.fields[3]) + std::stod(row.fields[4]);
      EXPECT_NEAR(sum, 1.0, 1e-4) << row.fields[0];
      EXPECT_TRUE(row.fields[5] == "yes" || row.fields[5] == "no");
    } else {
      ++errors;
      EXPECT_TRUE(row.fields[1].empty());
    }
  }
  EXPECT_EQ(errors, 2);
  const ProgramRun single =
      run_dscope(folder, "predict --model " + (folder / "model/model.safetensors").string() + " " +
                             (folder / "new/nv/0.png").string());
  ASSERT_EQ(single.exit_code, 0) << single.err;
  EXPECT_NE(single.out.find("%"), std::string::npos) << single.out;
  EXPECT_NE(single.out.find("threshold"), std::string::npos) << single.out;
}

std::string file_text(const fs::path& file) {
  std::ostringstream text;
  text << std::ifstream(file).rdbuf();
  return text.str();
}

TEST(Workbench, BuildFromWeightsRedoesOnlyTheValidationChoices) {
  testing::TempFolder folder;
  testing::write_colour_folders(folder, "train", 12);
  const ProgramRun build = run_dscope(
      folder, "build --data " + (folder / "train").string() + " --out " + (folder / "model").string() +
                  " --epochs 2 --input-size 16 --batch-size 8 --time-limit 0 --seed 5 --views 1 --quiet");
  ASSERT_EQ(build.exit_code, 0) << build.out << build.err;
  EXPECT_EQ(nn::read_model_card(folder / "model/model.safetensors").input.views, 1);

  // No --seed: the file's own (5), so the split is the one the weights were trained on.
  const ProgramRun again = run_dscope(folder, "build --data " + (folder / "train").string() + " --weights " +
                                                  (folder / "model/model.safetensors").string() + " --out " +
                                                  (folder / "again").string() + " --views 8 --quiet");
  ASSERT_EQ(again.exit_code, 0) << again.out << again.err;
  EXPECT_NE(again.out.find("trained before"), std::string::npos) << again.out;
  EXPECT_EQ(file_text(folder / "again/split.csv"), file_text(folder / "model/split.csv"));
  const nn::ModelCard before = nn::read_model_card(folder / "model/model.safetensors");
  const nn::ModelCard after = nn::read_model_card(folder / "again/model.safetensors");
  EXPECT_EQ(after.input.views, 8);
  EXPECT_EQ(after.training.best_epoch, before.training.best_epoch);
  EXPECT_EQ(after.input.mean, before.input.mean);
  const nn::TensorMap weights_before = nn::read_safetensors(folder / "model/model.safetensors").tensors;
  const nn::TensorMap weights_after = nn::read_safetensors(folder / "again/model.safetensors").tensors;
  ASSERT_EQ(weights_after.size(), weights_before.size());
  for (const auto& [name, tensor] : weights_before) {
    const Tensor& other = weights_after.at(name);
    ASSERT_EQ(other.numel(), tensor.numel()) << name;
    if (tensor.dtype() != DType::Float32) continue;
    for (std::int64_t i = 0; i < tensor.numel(); ++i)
      ASSERT_EQ(other.data<float>()[i], tensor.data<float>()[i]) << name << " [" << i << "]";
  }
  EXPECT_TRUE(read_json(folder / "again/report.json").contains("accuracy"));

  // A minimum recall on mel: chosen on the validation split, stored in the model, and met when that split is
  // scored from the saved file.
  const std::string from_weights = "build --data " + (folder / "train").string() + " --weights " +
                                   (folder / "model/model.safetensors").string() + " --quiet";
  const ProgramRun recall =
      run_dscope(folder, from_weights + " --out " + (folder / "recall").string() + " --min-recall mel=1");
  ASSERT_EQ(recall.exit_code, 0) << recall.out << recall.err;
  EXPECT_NE(recall.out.find("minimum recall 1 on mel"), std::string::npos) << recall.out;
  const nn::ModelCard boosted = nn::read_model_card(folder / "recall/model.safetensors");
  EXPECT_EQ(boosted.adjustment.min_recall, (std::map<std::string, double>{{"mel", 1.0}}));
  ASSERT_EQ(boosted.adjustment.class_factor.size(), 3u);
  EXPECT_GE(boosted.adjustment.class_factor[1], 1.0f);
  EXPECT_EQ(boosted.adjustment.class_factor[0], 1.0f);
  const ProgramRun validation = run_dscope(
      folder, "score --model " + (folder / "recall/model.safetensors").string() + " --data " +
                  (folder / "train").string() + " --split " + (folder / "recall/split.csv").string() +
                  " --part validation --quiet --out " + (folder / "recall_score").string());
  ASSERT_EQ(validation.exit_code, 0) << validation.out << validation.err;
  EXPECT_EQ(read_json(folder / "recall_score/report.json")["per_class"]["mel"]["recall"], 1.0);
  EXPECT_NE(file_text(folder / "recall/report.md").find("for a recall of at least 1"), std::string::npos);
  const ProgramRun unknown =
      run_dscope(folder, from_weights + " --out " + (folder / "unknown").string() + " --min-recall bcc=0.5");
  EXPECT_NE(unknown.exit_code, 0);
  EXPECT_NE(unknown.err.find("'bcc' is not one of the labels (akiec, mel, nv)"), std::string::npos)
      << unknown.err;
  // Refused before any training too, not after it.
  const ProgramRun untrained = run_dscope(
      folder, "build --data " + (folder / "train").string() + " --out " + (folder / "untrained").string() +
                  " --epochs 2 --input-size 16 --batch-size 8 --time-limit 0 --quiet --min-recall bcc=0.5");
  EXPECT_NE(untrained.exit_code, 0);
  EXPECT_NE(untrained.err.find("'bcc' is not one of the labels"), std::string::npos) << untrained.err;
  EXPECT_FALSE(fs::exists(folder / "untrained/checkpoints"));  // where training writes as it goes
  const ProgramRun malformed =
      run_dscope(folder, from_weights + " --out " + (folder / "malformed").string() + " --min-recall mel");
  EXPECT_NE(malformed.exit_code, 0);
  EXPECT_NE(malformed.err.find("is not LABEL=RECALL"), std::string::npos) << malformed.err;

  // Weights for other labels than the data's: refused, naming both.
  fs::remove_all(folder / "train/nv");
  const ProgramRun other = run_dscope(folder, "build --data " + (folder / "train").string() + " --weights " +
                                                  (folder / "model/model.safetensors").string() + " --out " +
                                                  (folder / "other").string() + " --quiet");
  EXPECT_NE(other.exit_code, 0);
  EXPECT_NE(other.err.find("akiec, mel, nv"), std::string::npos) << other.err;
}

TEST(Workbench, AnEnsembleOfBuildsOnOneSplit) {
  testing::TempFolder folder;
  testing::write_colour_folders(folder, "train", 12);
  const std::string data = " --data " + (folder / "train").string();
  const std::string recipe = " --epochs 1 --batch-size 8 --time-limit 0 --views 1 --quiet";
  const ProgramRun first =
      run_dscope(folder, "build" + data + " --out " + (folder / "a").string() + " --input-size 16" + recipe);
  ASSERT_EQ(first.exit_code, 0) << first.out << first.err;
  // Another seed on the first build's split: the same split.csv, and the same split recorded in the model.
  const ProgramRun second =
      run_dscope(folder, "build" + data + " --out " + (folder / "b").string() + " --seed 6 --split " +
                             (folder / "a/split.csv").string() + " --input-size 20" + recipe);
  ASSERT_EQ(second.exit_code, 0) << second.out << second.err;
  EXPECT_EQ(file_text(folder / "b/split.csv"), file_text(folder / "a/split.csv"));
  const nn::ModelCard a = nn::read_model_card(folder / "a/model.safetensors");
  const nn::ModelCard b = nn::read_model_card(folder / "b/model.safetensors");
  EXPECT_EQ(a.training.split_digest.size(), 16u);
  EXPECT_EQ(b.training.split_digest, a.training.split_digest);

  const std::string weights = " --weights " + (folder / "a/model.safetensors").string() + " " +
                              (folder / "b/model.safetensors").string();
  // Seeds 0 and 6 without --split: which split they share cannot be known, so the build refuses.
  const ProgramRun unsure =
      run_dscope(folder, "build" + data + weights + " --out " + (folder / "e").string());
  EXPECT_NE(unsure.exit_code, 0);
  EXPECT_NE(unsure.err.find("--split"), std::string::npos) << unsure.err;

  // Into a folder holding a build's files: its training log and curves are not the ensemble's and must go.
  fs::create_directories(folder / "e");
  fs::copy_file(folder / "a/training_curves.svg", folder / "e/training_curves.svg");
  fs::copy_file(folder / "a/training.jsonl", folder / "e/training.jsonl");
  const ProgramRun ensemble =
      run_dscope(folder, "build" + data + weights + " --split " + (folder / "a/split.csv").string() +
                             " --out " + (folder / "e").string() + " --quiet");
  ASSERT_EQ(ensemble.exit_code, 0) << ensemble.out << ensemble.err;
  const nn::ModelCard card = nn::read_model_card(folder / "e/model.safetensors");
  ASSERT_EQ(card.members.size(), 2u);
  EXPECT_EQ(card.members[1].input.height, 20);
  EXPECT_EQ(card.training.split_digest, a.training.split_digest);
  EXPECT_TRUE(read_json(folder / "e/report.json").contains("balanced_accuracy"));
  EXPECT_FALSE(fs::exists(folder / "e/training.jsonl"));
  EXPECT_FALSE(fs::exists(folder / "e/training_curves.svg"));
  const ProgramRun score = run_dscope(folder, "score --model " + (folder / "e/model.safetensors").string() +
                                                  data + " --out " + (folder / "e_score").string());
  ASSERT_EQ(score.exit_code, 0) << score.err;
  EXPECT_EQ(read_json(folder / "e_score/report.json").at("n"), 36);
  const ProgramRun predict =
      run_dscope(folder, "predict --model " + (folder / "e/model.safetensors").string() + " " +
                             (folder / "train/nv/0.png").string());
  ASSERT_EQ(predict.exit_code, 0) << predict.err;
  EXPECT_NE(predict.out.find("%"), std::string::npos) << predict.out;

  // A build on another split: its training images may be the ensemble's validation or test images.
  const ProgramRun third = run_dscope(
      folder, "build" + data + " --out " + (folder / "c").string() + " --seed 7 --input-size 16" + recipe);
  ASSERT_EQ(third.exit_code, 0) << third.out << third.err;
  const ProgramRun leaky = run_dscope(
      folder, "build" + data + weights + " " + (folder / "c/model.safetensors").string() + " --split " +
                  (folder / "a/split.csv").string() + " --out " + (folder / "f").string() + " --quiet");
  EXPECT_NE(leaky.exit_code, 0);
  EXPECT_NE(leaky.err.find("another split"), std::string::npos) << leaky.err;
  EXPECT_NE(leaky.err.find("c/model.safetensors"), std::string::npos) << leaky.err;
}

TEST(Workbench, ClearErrorsForMissingModelsEmptyFoldersAndNonModels) {
  testing::TempFolder folder;
  const ProgramRun missing =
      run_dscope(folder, "predict --model " + (folder / "absent.safetensors").string() + " x.png");
  EXPECT_NE(missing.exit_code, 0);
  EXPECT_NE(missing.err.find("absent.safetensors"), std::string::npos) << missing.err;
  folder.write_text("fake.safetensors", "this is not a model");
  const ProgramRun fake =
      run_dscope(folder, "predict --model " + (folder / "fake.safetensors").string() + " x.png");
  EXPECT_NE(fake.exit_code, 0);
  EXPECT_NE(fake.err.find("fake.safetensors"), std::string::npos) << fake.err;
  fs::create_directories(folder / "empty/a");
  fs::create_directories(folder / "empty/b");
  const ProgramRun empty = run_dscope(folder, "build --data " + (folder / "empty").string() + " --out " +
                                                  (folder / "out").string() + " --quiet");
  EXPECT_NE(empty.exit_code, 0);
  EXPECT_NE(empty.err.find("holds no images"), std::string::npos) << empty.err;
  // Reduced precision is a GPU setting: asked of a CPU build, it is refused rather than ignored.
  const ProgramRun precision =
      run_dscope(folder, "build --data " + (folder / "empty").string() + " --out " +
                             (folder / "out").string() + " --precision bf16 --quiet");
  EXPECT_NE(precision.exit_code, 0);
  EXPECT_NE(precision.err.find("--precision bf16 applies to --device cuda"), std::string::npos)
      << precision.err;
}

}  // namespace
}  // namespace dscope::apps
