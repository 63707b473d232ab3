// The score report: report.json (machine-readable), report.md (reads well on its own) and SVG plots, all
// written into one folder by `dscope score` and at the end of `dscope build`.
//
// report.json's top-level keys: labels, n, accuracy, balanced_accuracy, macro_f1, weighted_f1, auc_macro,
// per_class (label → precision, recall, f1, support, auc), confusion_matrix (rows true, columns predicted),
// binary (positive_labels, threshold, sensitivity, specificity, positives, negatives, true_positives,
// false_positives, auc, roc {fpr, tpr}), roc (label → {fpr, tpr}), and context (title, model, data (which
// names the split), date, dscope_version, training_log, notes). NaN values are written as null.
// Plots: confusion_matrix.svg (counts and row-normalised colour), roc.svg (one curve per class plus the
// possible-cancer curve), and, when a training log is given, training_curves.svg (loss and validation
// metrics per epoch).
#pragma once

#include <filesystem>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "apps/lib/scores.h"

namespace dscope::apps {

struct ReportContext {
  std::string title = "dscope score";  // first heading of report.md
  std::string model;                   // model file
  std::string model_summary;           // what the file holds (Classifier::describe); may be empty
  std::string data;                    // what was scored (folder, CSV, split)
  std::string notes;  // extra markdown paragraph (e.g. the build's configuration); may be empty
  std::filesystem::path training_log;  // training.jsonl for the curves; empty or missing: no curves
};

nlohmann::json scores_to_json(const Scores& scores);

// Writes report.json, report.md and the SVG plots into `folder` (created if needed). Returns the paths
// written. Throws IoError when a file cannot be written; a malformed training log line is skipped and
// mentioned in report.md, never fatal.
std::vector<std::filesystem::path> write_report(const std::filesystem::path& folder, const Scores& scores,
                                                const ReportContext& context);

}  // namespace dscope::apps
