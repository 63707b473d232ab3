// Trainer: runs epochs of training over a BatchSource, evaluates on a validation source after each
// epoch, reports the best epoch by a chosen metric (a callback saves its checkpoint), stops early on a
// plateau, logs one JSON line per epoch, and shows a progress bar with throughput and ETA.
//
// Reproducible: with the same model seed, the same sources (their shuffles are seeded) and the same
// number of threads, two runs produce the same losses bit for bit (our kernels reduce in a fixed order).
#pragma once

#include <cstdio>
#include <functional>
#include <string>
#include <vector>

#include "apps/lib/metrics.h"
#include "data/batch_source.h"
#include "nn/module.h"
#include "optim/optimizer.h"
#include "optim/weight_average.h"

namespace dscope::apps {

using data::Batch;
using data::BatchSource;

// A loss that is not finite: the run diverged (too high a learning rate, say). Carries where it happened.
class DivergenceError : public Error {
 public:
  using Error::Error;
};

enum class SelectionMetric { Accuracy, BalancedAccuracy, Loss };  // Loss is minimised, the others maximised
const char* metric_name(SelectionMetric metric);
// Parses "accuracy", "balanced_accuracy" or "loss"; throws ValueError otherwise.
SelectionMetric parse_metric(const std::string& name);

struct Evaluation {
  double loss = 0.0;  // mean over images
  ConfusionMatrix confusion{1};
};

struct EpochMetrics {
  std::int64_t epoch = 0;  // 1-based
  double learning_rate = 0.0;
  double train_loss = 0.0, train_accuracy = 0.0;
  bool has_validation = false;
  double validation_loss = 0.0, validation_accuracy = 0.0, validation_balanced_accuracy = 0.0;
  ConfusionMatrix validation_confusion{1};  // for other metrics (macro F1, recall of a group of labels)
  double seconds = 0.0, images_per_second = 0.0;
  // The value of the selection metric this epoch (on validation when there is one).
  double selection_value = 0.0;
};

struct TrainerOptions {
  std::int64_t epochs = 10;
  SelectionMetric selection = SelectionMetric::BalancedAccuracy;
  // Stop after this many epochs without improvement of the selection metric; 0 never stops early.
  std::int64_t early_stopping_patience = 0;
  std::string log_path;  // JSON lines, one per epoch; empty writes none
  bool show_progress = true;
  std::FILE* progress_stream = stderr;
  // Where the model lives (Module::to before the optimizer is made); each batch is moved there, and logits
  // come back to the CPU only for the metrics.
  Device device = Device::cpu();
  // The dtype the training steps store activations in: bfloat16 runs each step's forward and backward under
  // AutocastGuard (mixed precision, tensor/autocast.h). Evaluation runs in float32 either way.
  DType activations = DType::Float32;
  // When set (made after the model was placed on `device`), it is updated after every optimizer step, and
  // the model is validated with the averaged weights: they are swapped in from validation until after the
  // on_best and on_epoch_end callbacks, which therefore see (and save) the averaged model.
  optim::WeightAverage* weight_average = nullptr;
};

struct TrainingSummary {
  std::vector<EpochMetrics> history;
  std::int64_t best_epoch = 0;
  double best_value = 0.0;
  bool stopped_early = false;
};

using LossFunction = std::function<Tensor(const Tensor& logits, const Tensor& labels)>;
// The learning rate for a global step (0-based, counted over all epochs); an empty one keeps the optimizer's.
using LearningRateSchedule = std::function<float(std::int64_t step)>;

class Trainer {
 public:
  Trainer(nn::Module& model, optim::Optimizer& optimizer, LossFunction loss, TrainerOptions options);

  void set_schedule(LearningRateSchedule schedule) { schedule_ = std::move(schedule); }
  // Called after every epoch that improves the selection metric (e.g. to save the model).
  void on_best(std::function<void(const EpochMetrics&)> callback) { on_best_ = std::move(callback); }
  // Called after every epoch (e.g. to save training state for resuming).
  void on_epoch_end(std::function<void(const EpochMetrics&)> callback) {
    on_epoch_end_ = std::move(callback);
  }

  // Trains epochs first_epoch+1 .. options.epochs (first_epoch > 0 resumes a run that completed that many).
  // Throws DivergenceError on a non-finite loss.
  TrainingSummary fit(BatchSource& train, BatchSource* validation, std::int64_t first_epoch = 0);
  // Mean loss and confusion matrix in evaluation mode, without recording a graph.
  Evaluation evaluate(BatchSource& source);

 private:
  EpochMetrics train_epoch(BatchSource& train, std::int64_t epoch);
  void log(const EpochMetrics& metrics);

  nn::Module& model_;
  optim::Optimizer& optimizer_;
  LossFunction loss_;
  TrainerOptions options_;
  LearningRateSchedule schedule_;
  std::function<void(const EpochMetrics&)> on_best_, on_epoch_end_;
};

}  // namespace dscope::apps
