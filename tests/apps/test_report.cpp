// The score report written into a temporary folder: report.json holds every documented key with values
// that agree with each other (NaN as null), report.md states the headline numbers and links the plots, the
// SVGs are well-formed enough to open and name the labels; a torn training log still gives its curves, and
// a folder that cannot be created is an IoError naming it.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <random>
#include <sstream>
#include <string>

#include "apps/lib/report.h"
#include "apps/lib/svg_plot.h"
#include "tensor/error.h"
#include "tests/support/expect_error.h"

namespace dscope::apps {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

// A fresh folder under the system's temporary directory, removed with everything in it at the end.
class TemporaryFolder {
 public:
  TemporaryFolder() {
    std::random_device random;
    path_ = fs::temp_directory_path() /
            ("dscope_test_report_" + std::to_string(random()) + "_" + std::to_string(random()));
    fs::create_directories(path_);
  }
  ~TemporaryFolder() {
    std::error_code ignored;
    fs::remove_all(path_, ignored);
  }
  const fs::path& path() const { return path_; }

 private:
  fs::path path_;
};

std::string read_file(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream text;
  text << in.rdbuf();
  return text.str();
}

std::string fixed3(double value) {
  char text[32];
  std::snprintf(text, sizeof text, "%.3f", value);
  return text;
}

// Four labels, the last ("df") without images so that its recall, F1 and AUC are NaN.
Scores example_scores() {
  const std::vector<std::string> labels = {"akiec", "mel", "nv", "df"};
  const std::vector<float> probabilities = {
      0.70f, 0.10f, 0.15f, 0.05f,  // akiec, right
      0.20f, 0.50f, 0.25f, 0.05f,  // akiec, taken for mel
      0.10f, 0.60f, 0.25f, 0.05f,  // mel, right
      0.05f, 0.30f, 0.60f, 0.05f,  // mel, missed
      0.05f, 0.10f, 0.80f, 0.05f,  // nv, right
      0.10f, 0.15f, 0.70f, 0.05f,  // nv, right
      0.05f, 0.55f, 0.35f, 0.05f,  // nv, taken for mel
      0.02f, 0.03f, 0.90f, 0.05f,  // nv, right
  };
  const std::vector<std::int64_t> truth = {0, 0, 1, 1, 2, 2, 2, 2};
  return compute_scores(labels, probabilities, truth, {"akiec", "mel"}, 0.5);
}

TEST(Report, WritesConsistentJsonMarkdownAndPlots) {
  TemporaryFolder temporary;
  const fs::path folder = temporary.path() / "report";  // does not exist yet: write_report creates it
  const Scores scores = example_scores();
  ReportContext context;
  context.model = "models/resnet18.safetensors";
  context.data = "HAM10000 test split";
  context.notes = "Trained with *class weights*.";
  const std::vector<fs::path> written = write_report(folder, scores, context);
  for (const char* name : {"report.json", "report.md", "confusion_matrix.svg", "roc.svg"}) {
    EXPECT_TRUE(fs::exists(folder / name)) << name;
    EXPECT_NE(std::find(written.begin(), written.end(), folder / name), written.end()) << name;
  }
  EXPECT_FALSE(fs::exists(folder / "training_curves.svg"));  // no log given

  const json report = json::parse(read_file(folder / "report.json"));
  for (const char* key : {"labels", "n", "accuracy", "balanced_accuracy", "macro_f1", "weighted_f1",
                          "auc_macro", "per_class", "confusion_matrix", "binary", "roc", "context"})
    EXPECT_TRUE(report.contains(key)) << key;
  for (const char* key :
       {"positive_labels", "threshold", "sensitivity", "specificity", "positives", "negatives", "auc"})
    EXPECT_TRUE(report["binary"].contains(key)) << key;
  for (const char* key : {"model", "data", "date", "dscope_version"})
    EXPECT_TRUE(report["context"].contains(key)) << key;
  EXPECT_EQ(report["context"]["model"], context.model);
  EXPECT_EQ(report["labels"], json(scores.labels));
  EXPECT_EQ(report["n"], 8);
  EXPECT_DOUBLE_EQ(report["accuracy"].get<double>(), scores.accuracy);
  EXPECT_DOUBLE_EQ(report["accuracy"].get<double>(), 5.0 / 8.0);

  // The matrix sums to n, and each class's recall read off the matrix is the one reported.
  const auto confusion = report["confusion_matrix"].get<std::vector<std::vector<std::int64_t>>>();
  std::int64_t total = 0;
  for (const auto& row : confusion)
    for (std::int64_t count : row)
      total += count;
  EXPECT_EQ(total, 8);
  for (std::size_t k = 0; k < scores.labels.size(); ++k) {
    const json& entry = report["per_class"][scores.labels[k]];
    for (const char* key : {"precision", "recall", "f1", "support", "auc"})
      EXPECT_TRUE(entry.contains(key)) << scores.labels[k] << " " << key;
    std::int64_t support = 0;
    for (std::int64_t count : confusion[k])
      support += count;
    EXPECT_EQ(entry["support"], support);
    if (support > 0) {
      EXPECT_DOUBLE_EQ(entry["recall"].get<double>(), static_cast<double>(confusion[k][k]) / support);
    }
    EXPECT_TRUE(report["roc"].contains(scores.labels[k]));
  }
  EXPECT_TRUE(report["per_class"]["df"]["recall"].is_null());
  EXPECT_TRUE(report["per_class"]["df"]["f1"].is_null());
  EXPECT_TRUE(report["per_class"]["df"]["auc"].is_null());
  EXPECT_EQ(report["per_class"]["df"]["precision"], 0.0);
  EXPECT_EQ(report["roc"]["mel"]["fpr"].size(), report["roc"]["mel"]["tpr"].size());
  EXPECT_EQ(report["binary"]["positives"], 4);
  EXPECT_EQ(report["binary"]["negatives"], 4);
  EXPECT_DOUBLE_EQ(report["binary"]["sensitivity"].get<double>(), scores.binary.sensitivity);

  const std::string md = read_file(folder / "report.md");
  for (const std::string& fragment :
       {std::string("# dscope score"), context.model, context.data, fixed3(scores.accuracy),
        fixed3(scores.balanced_accuracy), fixed3(scores.macro_f1), fixed3(scores.weighted_f1),
        fixed3(scores.auc_macro), fixed3(scores.binary.sensitivity), fixed3(scores.binary.specificity),
        std::string("of 4 possible cancers, 3 were flagged"), std::string("false alarm"),
        std::string("| df | 0 | 0.000 | — | — | — |"),
        std::string("![confusion matrix](confusion_matrix.svg)"), std::string("![ROC curves](roc.svg)"),
        std::string("Trained with *class weights*.")})
    EXPECT_NE(md.find(fragment), std::string::npos) << fragment << "\n---\n" << md;
  EXPECT_EQ(md.find("training_curves.svg"), std::string::npos);

  for (const char* name : {"confusion_matrix.svg", "roc.svg"}) {
    const std::string svg = read_file(folder / name);
    EXPECT_EQ(svg.rfind("<svg", 0), 0u) << name;
    EXPECT_NE(svg.find("</svg>"), std::string::npos) << name;
    for (const std::string& label : scores.labels)
      if (std::string(name) == "confusion_matrix.svg" || label != "df") {  // df has no ROC curve
        EXPECT_NE(svg.find(label), std::string::npos) << name << " lacks " << label;
      }
  }
  const std::string confusion_svg = read_file(folder / "confusion_matrix.svg");
  for (const char* text : {">true<", ">predicted<", "50.0%"})
    EXPECT_NE(confusion_svg.find(text), std::string::npos) << text;
  EXPECT_NE(read_file(folder / "roc.svg").find("mel (AUC " + fixed3(scores.per_class[1].auc) + ")"),
            std::string::npos);
}

TEST(Report, TrainingLogWithAMalformedLineStillGivesCurves) {
  TemporaryFolder temporary;
  const fs::path log_path = temporary.path() / "training.jsonl";
  {
    std::ofstream log(log_path);
    log << R"({"epoch":1,"learning_rate":0.1,"train_loss":1.2,"train_accuracy":0.5,"seconds":3,)"
        << R"("images_per_second":100,"selection_metric":"loss","selection_value":1.1,"validation_loss":1.1,)"
        << R"("validation_accuracy":0.55,"validation_balanced_accuracy":0.4})" << '\n'
        << R"({"epoch":2,"learning_rate":0.1,"train_loss":0.9,"train_acc)" << '\n'  // torn by a killed run
        << R"({"epoch":3,"learning_rate":0.05,"train_loss":0.7,"train_accuracy":0.7,"seconds":3,)"
        << R"("images_per_second":100,"selection_metric":"loss","selection_value":0.8,"validation_loss":0.8,)"
        << R"("validation_accuracy":0.66,"validation_balanced_accuracy":0.5})" << '\n';
  }
  ReportContext context;
  context.training_log = log_path;
  const fs::path folder = temporary.path() / "out";
  const std::vector<fs::path> written = write_report(folder, example_scores(), context);
  EXPECT_NE(std::find(written.begin(), written.end(), folder / "training_curves.svg"), written.end());
  const std::string svg = read_file(folder / "training_curves.svg");
  EXPECT_EQ(svg.rfind("<svg", 0), 0u);
  for (const char* text : {"validation balanced accuracy", "epoch", "loss"})
    EXPECT_NE(svg.find(text), std::string::npos) << text;
  const std::string md = read_file(folder / "report.md");
  EXPECT_NE(md.find("![training curves](training_curves.svg)"), std::string::npos) << md;
  EXPECT_NE(md.find("1 malformed line"), std::string::npos) << md;
  EXPECT_NE(md.find("line 2"), std::string::npos) << md;
}

TEST(Report, AMissingTrainingLogIsSaidToBeMissing) {
  TemporaryFolder temporary;
  ReportContext context;
  context.training_log = temporary.path() / "training.jsonl";  // absent, as beside an ensemble
  write_report(temporary.path() / "out", example_scores(), context);
  const std::string md = read_file(temporary.path() / "out/report.md");
  EXPECT_NE(md.find("There is no training log next to the model"), std::string::npos) << md;
  EXPECT_EQ(md.find("could not be read"), std::string::npos) << md;
}

TEST(Report, UnwritableFolderIsAnIoError) {
  TemporaryFolder temporary;
  const fs::path file = temporary.path() / "a_file";
  std::ofstream(file) << "not a folder";
  const fs::path folder = file / "report";
  dscope::testing::expect_error<IoError>([&] { write_report(folder, example_scores(), ReportContext{}); },
                                         {"write_report", folder.string()});
}

TEST(Report, NaNIsWrittenAsNull) {
  Scores scores = example_scores();
  scores.binary.sensitivity = std::nan("");
  const json document = scores_to_json(scores);
  EXPECT_TRUE(document["binary"]["sensitivity"].is_null());
  EXPECT_EQ(document.dump().find("NaN"), std::string::npos);
}

TEST(SvgPlot, EscapesTextAndChecksSeries) {
  EXPECT_EQ(escape_xml(R"(a<b & "c" 'd'>)"), "a&lt;b &amp; &quot;c&quot; &apos;d&apos;&gt;");
  LineChart chart;
  chart.title = "loss <per> epoch";
  Series series;
  series.name = "train & test";
  series.x = {1, 2, 3};
  series.y = {1.0, std::nan(""), 0.5};  // the gap leaves two isolated points, drawn as dots
  chart.series.push_back(series);
  const std::string svg = line_chart_svg(chart);
  EXPECT_NE(svg.find("loss &lt;per&gt; epoch"), std::string::npos);
  EXPECT_NE(svg.find("train &amp; test"), std::string::npos);
  EXPECT_NE(svg.find("<circle"), std::string::npos);
  EXPECT_EQ(svg.find("nan"), std::string::npos);
  chart.series[0].y.pop_back();
  dscope::testing::expect_error<ValueError>([&] { line_chart_svg(chart); }, {"train & test", "3 x", "2 y"});
  dscope::testing::expect_error<ValueError>(
      [&] {
        confusion_matrix_svg(ConfusionMatrixChart{"", {"a", "b"}, {{1, 2}}});
      },
      {"1 rows", "2 labels"});
  EXPECT_EQ(palette_colour(0), "#1f77b4");
  EXPECT_EQ(palette_colour(10), palette_colour(0));
}

}  // namespace
}  // namespace dscope::apps
