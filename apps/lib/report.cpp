// The score report: report.json, report.md and the SVG plots (see report.h for the files and keys).
//
// report.md is written for a clinician-researcher reading it alone: plain words before numbers, counts next
// to rates ("of 200 possible cancers, 174 were flagged"), undefined values shown as "—" rather than as 0 or
// NaN. report.json carries the same numbers for programs, with NaN as null (JSON has no NaN).
// The training log is read leniently: the report is the last step of a long run, and one torn line (a run
// killed mid-write) must not cost the whole report, so bad lines are skipped and listed instead. A resumed
// run appends epochs it had already logged; the later line for an epoch wins, as it describes the weights
// the run went on with.
#include "apps/lib/report.h"

#include <chrono>
#include <cmath>
#include <cstdio>
#include <ctime>
#include <fstream>
#include <limits>
#include <map>
#include <sstream>

#include "apps/lib/svg_plot.h"
#include "nn/checkpoint.h"
#include "tensor/error.h"

namespace dscope::apps {
namespace {

using nlohmann::json;
namespace fs = std::filesystem;

constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();

json json_number(double value) {
  return std::isfinite(value) ? json(value) : json(nullptr);
}

json roc_json(const RocCurve& curve) {
  json fpr = json::array(), tpr = json::array();
  for (double value : curve.false_positive_rate)
    fpr.push_back(json_number(value));
  for (double value : curve.true_positive_rate)
    tpr.push_back(json_number(value));
  return json{{"fpr", std::move(fpr)}, {"tpr", std::move(tpr)}};
}

// "0.812", or "—" for an undefined value.
std::string fixed(double value, int decimals = 3) {
  if (!std::isfinite(value)) return "—";
  char text[48];
  std::snprintf(text, sizeof text, "%.*f", decimals, value);
  return text;
}

std::string percent(double value) {
  return std::isfinite(value) ? fixed(100.0 * value, 1) + "%" : "—";
}

// "1 image" / "3 images".
std::string count_of(std::int64_t count, const std::string& singular, const std::string& plural) {
  return std::to_string(count) + " " + (count == 1 ? singular : plural);
}

// A label as markdown text, in prose or a table cell: a '|' would end the cell and a '<' could start HTML.
std::string markdown_text(const std::string& text) {
  std::string escaped;
  for (char c : text)
    escaped += c == '|' ? std::string("\\|") : c == '<' ? std::string("&lt;") : std::string(1, c);
  return escaped;
}

// "a, b and c", each item escaped by markdown_text().
std::string spoken_list(const std::vector<std::string>& items, const char* conjunction) {
  std::string text;
  for (std::size_t i = 0; i < items.size(); ++i)
    text += (i == 0                  ? ""
             : i + 1 == items.size() ? std::string(" ") + conjunction + " "
                                     : ", ") +
            markdown_text(items[i]);
  return text;
}

std::string utc_now() {
  const std::time_t now = std::chrono::system_clock::to_time_t(std::chrono::system_clock::now());
  std::tm utc{};
  gmtime_r(&now, &utc);
  char text[32];
  std::strftime(text, sizeof text, "%Y-%m-%dT%H:%M:%SZ", &utc);
  return text;
}

void write_text(const fs::path& path, const std::string& content) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  DSCOPE_CHECK(out.good(), IoError, "write_report: cannot open ", path, " for writing");
  out << content;
  out.flush();
  DSCOPE_CHECK(out.good(), IoError, "write_report: writing ", path, " failed");
}

// ---- training log -----------------------------------------------------------------------------------------

struct EpochRow {
  double epoch = 0.0;
  double train_loss = kNaN, train_accuracy = kNaN;
  double validation_loss = kNaN, validation_accuracy = kNaN, validation_balanced_accuracy = kNaN;
};

struct TrainingLog {
  std::vector<EpochRow> epochs;              // by increasing epoch, one row each
  std::vector<std::size_t> malformed_lines;  // 1-based
  bool readable = false;                     // the file exists and could be opened
};

// A number, NaN when the key is absent or null; false when the value is present and not a number.
bool read_number(const json& line, const char* key, double& value) {
  const auto found = line.find(key);
  if (found == line.end() || found->is_null()) return true;
  if (!found->is_number()) return false;
  value = found->get<double>();
  return true;
}

TrainingLog read_training_log(const fs::path& path) {
  TrainingLog log;
  std::ifstream in(path);
  if (!in) return log;
  log.readable = true;
  std::map<double, EpochRow> by_epoch;
  std::string text;
  for (std::size_t number = 1; std::getline(in, text); ++number) {
    if (text.find_first_not_of(" \t\r") == std::string::npos) continue;
    const json line = json::parse(text, nullptr, /*allow_exceptions=*/false);
    EpochRow row;
    const bool ok = line.is_object() && line.contains("epoch") && line["epoch"].is_number() &&
                    read_number(line, "epoch", row.epoch) &&
                    read_number(line, "train_loss", row.train_loss) &&
                    read_number(line, "train_accuracy", row.train_accuracy) &&
                    read_number(line, "validation_loss", row.validation_loss) &&
                    read_number(line, "validation_accuracy", row.validation_accuracy) &&
                    read_number(line, "validation_balanced_accuracy", row.validation_balanced_accuracy);
    if (ok)
      by_epoch[row.epoch] = row;
    else
      log.malformed_lines.push_back(number);
  }
  for (const auto& [epoch, row] : by_epoch)
    log.epochs.push_back(row);
  return log;
}

// The series `field` of the log, or nothing when no epoch has a value for it (no validation ran).
void add_series(LineChart& chart, const TrainingLog& log, const std::string& name, double EpochRow::*field) {
  Series series;
  series.name = name;
  bool any = false;
  for (const EpochRow& row : log.epochs) {
    series.x.push_back(row.epoch);
    series.y.push_back(row.*field);
    any = any || std::isfinite(row.*field);
  }
  if (any) chart.series.push_back(std::move(series));
}

std::string training_curves_svg(const TrainingLog& log) {
  LineChart loss, metrics;
  loss.title = "loss per epoch";
  loss.y_title = "loss";
  add_series(loss, log, "train", &EpochRow::train_loss);
  add_series(loss, log, "validation", &EpochRow::validation_loss);
  metrics.title = "accuracy per epoch";
  metrics.y_title = "accuracy";
  metrics.y_range = AxisRange{0.0, 1.0};
  add_series(metrics, log, "train accuracy", &EpochRow::train_accuracy);
  add_series(metrics, log, "validation accuracy", &EpochRow::validation_accuracy);
  add_series(metrics, log, "validation balanced accuracy", &EpochRow::validation_balanced_accuracy);
  for (LineChart* chart : {&loss, &metrics}) {
    chart->x_title = "epoch";
    chart->integer_x_ticks = true;
    chart->markers = log.epochs.size() <= 30;  // beyond that the dots merge into the line
  }
  return line_charts_svg({loss, metrics});
}

// ---- plots of the scores ----------------------------------------------------------------------------------

std::string roc_svg(const Scores& scores) {
  LineChart chart;
  chart.title = "ROC curves (one class against the rest)";
  chart.x_title = "false-positive rate (1 − specificity)";
  chart.y_title = "true-positive rate (sensitivity)";
  chart.x_range = AxisRange{0.0, 1.0};
  chart.y_range = AxisRange{0.0, 1.0};
  chart.plot_width = chart.plot_height = 340.0;
  chart.diagonal = true;
  for (std::size_t k = 0; k < scores.labels.size() && k < scores.roc.size(); ++k) {
    Series series;
    series.name = scores.labels[k] + " (AUC " + fixed(scores.per_class[k].auc) + ")";
    series.x = scores.roc[k].false_positive_rate;
    series.y = scores.roc[k].true_positive_rate;
    series.colour = palette_colour(k);  // the same colour as the class has in the legend order
    if (!series.x.empty()) chart.series.push_back(std::move(series));
  }
  if (!scores.binary_roc.false_positive_rate.empty()) {
    Series cancer;
    cancer.name = "possible cancer (AUC " + fixed(scores.binary.auc) + ")";
    cancer.x = scores.binary_roc.false_positive_rate;
    cancer.y = scores.binary_roc.true_positive_rate;
    cancer.colour = "#000000";
    chart.series.push_back(std::move(cancer));
    // The operating point of the chosen threshold, drawn as a single dot on the black curve.
    Series point;
    point.name = "threshold " + fixed(scores.binary.threshold);
    point.x = {1.0 - scores.binary.specificity};
    point.y = {scores.binary.sensitivity};
    point.colour = "#000000";
    chart.series.push_back(std::move(point));
  }
  return line_chart_svg(chart);
}

// ---- report.md --------------------------------------------------------------------------------------------

void write_binary_section(std::ostringstream& md, const Scores& scores) {
  const BinaryScores& b = scores.binary;
  if (b.positive_labels.empty()) {
    md << "## Possible cancer\n\nNo positive labels were given, so no possible-cancer decision was "
          "scored.\n\n";
    return;
  }
  md << "## Possible cancer (" << spoken_list(b.positive_labels, "or") << ")\n\n"
     << "An image is flagged as **possible cancer** when the summed probability of "
     << spoken_list(b.positive_labels, "and") << " is at least " << fixed(b.threshold) << ".\n\n";
  if (b.positives > 0) {
    const std::int64_t missed = b.positives - b.true_positives;
    md << "- **Sensitivity " << fixed(b.sensitivity) << " (" << percent(b.sensitivity) << "):** of "
       << count_of(b.positives, "possible cancer", "possible cancers") << ", " << b.true_positives
       << (b.true_positives == 1 ? " was" : " were") << " flagged and " << missed
       << (missed == 1 ? " was" : " were") << " missed.\n";
  } else {
    md << "- **Sensitivity —:** none of these images is a possible cancer, so sensitivity cannot be "
          "measured.\n";
  }
  if (b.negatives > 0) {
    const std::int64_t cleared = b.negatives - b.false_positives;
    md << "- **Specificity " << fixed(b.specificity) << " (" << percent(b.specificity) << "):** of "
       << count_of(b.negatives, "other lesion", "other lesions") << ", " << cleared
       << (cleared == 1 ? " was" : " were") << " not flagged and " << b.false_positives
       << (b.false_positives == 1 ? " was a false alarm" : " were false alarms") << ".\n";
  } else {
    md << "- **Specificity —:** every image is a possible cancer, so specificity cannot be measured.\n";
  }
  md << "- **AUC " << fixed(b.auc) << "** for the summed probability over all thresholds.\n\n"
     << "Sensitivity (recall on the possible cancers) matters most here: a missed cancer can delay "
        "treatment, "
        "while a false alarm costs a closer look or a biopsy. Lowering the threshold flags more cancers at "
        "the price of more false alarms; the black curve in the ROC plot below shows that whole trade-off, "
        "with a dot at the threshold used.\n\n";
}

void write_training_section(std::ostringstream& md, const fs::path& log_path, const TrainingLog& log,
                            bool wrote_curves) {
  md << "## Training\n\n";
  if (!log.readable) {
    if (fs::exists(log_path))
      md << "The training log `" << log_path.string()
         << "` could not be read, so there are no training curves.\n\n";
    else
      md << "There is no training log next to the model (`" << log_path.string()
         << "`; an ensemble has none), so there are no training curves.\n\n";
    return;
  }
  if (wrote_curves)
    md << count_of(static_cast<std::int64_t>(log.epochs.size()), "epoch", "epochs") << " from `"
       << log_path.string() << "`.\n\n![training curves](training_curves.svg)\n\n";
  else
    md << "The training log `" << log_path.string()
       << "` holds no readable epochs, so there are no curves.\n\n";
  if (!log.malformed_lines.empty()) {
    md << count_of(static_cast<std::int64_t>(log.malformed_lines.size()), "malformed line", "malformed lines")
       << " of the training log " << (log.malformed_lines.size() == 1 ? "was" : "were") << " skipped (line"
       << (log.malformed_lines.size() == 1 ? " " : "s ");
    constexpr std::size_t kListed = 10;
    for (std::size_t i = 0; i < log.malformed_lines.size() && i < kListed; ++i)
      md << (i ? ", " : "") << log.malformed_lines[i];
    if (log.malformed_lines.size() > kListed) md << ", …";
    md << ").\n\n";
  }
}

std::string report_markdown(const Scores& scores, const ReportContext& context, const std::string& date,
                            const TrainingLog* log, bool wrote_curves) {
  std::ostringstream md;
  md << "# " << context.title << "\n\n"
     << "- **Model:** " << (context.model.empty() ? "not given" : "`" + context.model + "`")
     << (context.model_summary.empty() ? "" : ": " + context.model_summary) << "\n"
     << "- **Data:** " << (context.data.empty() ? "not given" : context.data) << "\n"
     << "- **Images:** " << scores.n << ", in "
     << count_of(static_cast<std::int64_t>(scores.labels.size()), "class", "classes") << " ("
     << spoken_list(scores.labels, "and") << ")\n"
     << "- **Scored:** " << date << " by dscope " << nn::dscope_version() << "\n\n";

  md << "## Summary\n\n"
     << "| metric | value |\n|---|---:|\n"
     << "| accuracy | " << fixed(scores.accuracy) << " |\n"
     << "| balanced accuracy (mean recall over classes) | " << fixed(scores.balanced_accuracy) << " |\n"
     << "| macro F1 | " << fixed(scores.macro_f1) << " |\n"
     << "| weighted F1 | " << fixed(scores.weighted_f1) << " |\n"
     << "| macro AUC (one class against the rest) | " << fixed(scores.auc_macro) << " |\n\n"
     << "Accuracy counts every image alike, so a common class dominates it; balanced accuracy and the macro "
        "means give every class the same weight.\n\n";

  write_binary_section(md, scores);

  md << "## Per class\n\n| label | support | precision | recall | F1 | AUC "
        "|\n|---|---:|---:|---:|---:|---:|\n";
  for (std::size_t k = 0; k < scores.labels.size() && k < scores.per_class.size(); ++k) {
    const ClassScores& c = scores.per_class[k];
    md << "| " << markdown_text(scores.labels[k]) << " | " << c.support << " | " << fixed(c.precision)
       << " | " << fixed(c.recall) << " | " << fixed(c.f1) << " | " << fixed(c.auc) << " |\n";
  }
  md << "\nSupport is the number of images of the class. — marks a value that is undefined because the class "
        "has no images here (or, for AUC, because every image is of that class); such values are left out "
        "of the means. A class that is never predicted has precision 0.\n\n";

  md << "## Confusion matrix\n\nRows are the true labels, columns the predicted ones; the diagonal (bold) "
        "holds the correct predictions.\n\n| true \\ predicted |";
  for (const std::string& label : scores.labels)
    md << ' ' << markdown_text(label) << " |";
  md << " total |\n|---|";
  for (std::size_t k = 0; k <= scores.labels.size(); ++k)
    md << "---:|";
  md << '\n';
  for (std::size_t row = 0; row < scores.confusion.size() && row < scores.labels.size(); ++row) {
    std::int64_t total = 0;
    md << "| " << markdown_text(scores.labels[row]) << " |";
    for (std::size_t column = 0; column < scores.confusion[row].size(); ++column) {
      const std::int64_t count = scores.confusion[row][column];
      total += count;
      md << ' ' << (row == column ? "**" + std::to_string(count) + "**" : std::to_string(count)) << " |";
    }
    md << ' ' << total << " |\n";
  }
  md << "\n![confusion matrix](confusion_matrix.svg)\n\n";

  md << "## ROC curves\n\nEach curve shows, over all thresholds, how many images of a class are found (up) "
        "against how many others are wrongly taken for it (right); the dashed diagonal is chance.\n\n"
        "![ROC curves](roc.svg)\n\n";

  if (log != nullptr) write_training_section(md, context.training_log, *log, wrote_curves);
  if (!context.notes.empty()) md << "## Notes\n\n" << context.notes << "\n";
  return md.str();
}

}  // namespace

json scores_to_json(const Scores& scores) {
  json document;
  document["labels"] = scores.labels;
  document["n"] = scores.n;
  document["accuracy"] = json_number(scores.accuracy);
  document["balanced_accuracy"] = json_number(scores.balanced_accuracy);
  document["macro_f1"] = json_number(scores.macro_f1);
  document["weighted_f1"] = json_number(scores.weighted_f1);
  document["auc_macro"] = json_number(scores.auc_macro);
  json per_class = json::object(), roc = json::object();
  for (std::size_t k = 0; k < scores.labels.size(); ++k) {
    if (k < scores.per_class.size()) {
      const ClassScores& c = scores.per_class[k];
      per_class[scores.labels[k]] = {{"precision", json_number(c.precision)},
                                     {"recall", json_number(c.recall)},
                                     {"f1", json_number(c.f1)},
                                     {"support", c.support},
                                     {"auc", json_number(c.auc)}};
    }
    if (k < scores.roc.size()) roc[scores.labels[k]] = roc_json(scores.roc[k]);
  }
  document["per_class"] = std::move(per_class);
  document["confusion_matrix"] = scores.confusion;
  const BinaryScores& b = scores.binary;
  document["binary"] = {{"positive_labels", b.positive_labels},
                        {"threshold", json_number(b.threshold)},
                        {"sensitivity", json_number(b.sensitivity)},
                        {"specificity", json_number(b.specificity)},
                        {"positives", b.positives},
                        {"negatives", b.negatives},
                        {"true_positives", b.true_positives},
                        {"false_positives", b.false_positives},
                        {"auc", json_number(b.auc)},
                        {"roc", roc_json(scores.binary_roc)}};
  document["roc"] = std::move(roc);
  return document;
}

std::vector<fs::path> write_report(const fs::path& folder, const Scores& scores,
                                   const ReportContext& context) {
  std::error_code error;
  fs::create_directories(folder, error);
  DSCOPE_CHECK(!error, IoError, "write_report: cannot create the folder ", folder, ": ", error.message());
  std::vector<fs::path> written;
  const auto write = [&](const char* name, const std::string& content) {
    written.push_back(folder / name);
    write_text(written.back(), content);
  };

  const std::string date = utc_now();
  json document = scores_to_json(scores);
  document["context"] = {{"title", context.title},
                         {"model", context.model},
                         {"model_summary", context.model_summary},
                         {"data", context.data},
                         {"date", date},
                         {"dscope_version", nn::dscope_version()},
                         {"training_log", context.training_log.string()},
                         {"notes", context.notes}};
  write("report.json", document.dump(2) + "\n");
  write("confusion_matrix.svg",
        confusion_matrix_svg(ConfusionMatrixChart{"confusion matrix (n = " + std::to_string(scores.n) + ")",
                                                  scores.labels, scores.confusion}));
  write("roc.svg", roc_svg(scores));

  TrainingLog log;
  bool wrote_curves = false;
  if (!context.training_log.empty()) {
    log = read_training_log(context.training_log);
    if (!log.epochs.empty()) {
      write("training_curves.svg", training_curves_svg(log));
      wrote_curves = true;
    }
  }
  // A plot left by an earlier report in this folder would be of another model (e.g. one member of the
  // ensemble that now replaces it).
  if (!wrote_curves) fs::remove(folder / "training_curves.svg");
  write("report.md",
        report_markdown(scores, context, date, context.training_log.empty() ? nullptr : &log, wrote_curves));
  return written;
}

}  // namespace dscope::apps
