#include "apps/lib/trainer.h"

#include <cmath>
#include <fstream>
#include <limits>
#include <nlohmann/json.hpp>

#include "apps/lib/progress.h"
#include "tensor/autocast.h"
#include "tensor/autograd/grad_mode.h"

namespace dscope::apps {

const char* metric_name(SelectionMetric metric) {
  switch (metric) {
    case SelectionMetric::Accuracy:
      return "accuracy";
    case SelectionMetric::BalancedAccuracy:
      return "balanced_accuracy";
    case SelectionMetric::Loss:
      return "loss";
  }
  return "unknown";
}

SelectionMetric parse_metric(const std::string& name) {
  for (SelectionMetric metric :
       {SelectionMetric::Accuracy, SelectionMetric::BalancedAccuracy, SelectionMetric::Loss})
    if (name == metric_name(metric)) return metric;
  throw ValueError("metric: '" + name + "' is not one of accuracy, balanced_accuracy, loss");
}

Trainer::Trainer(nn::Module& model, optim::Optimizer& optimizer, LossFunction loss, TrainerOptions options)
    : model_(model), optimizer_(optimizer), loss_(std::move(loss)), options_(std::move(options)) {
  DSCOPE_CHECK(options_.epochs > 0 && options_.early_stopping_patience >= 0, ValueError,
               "Trainer: epochs must be positive and patience non-negative (epochs ", options_.epochs,
               ", patience ", options_.early_stopping_patience, ")");
}

Evaluation Trainer::evaluate(BatchSource& source) {
  model_.eval();
  NoGradGuard no_grad;
  source.start_epoch(0);
  Evaluation result;
  double loss_sum = 0.0;
  std::int64_t images = 0;
  for (std::int64_t index = 0; index < source.batches_per_epoch(); ++index) {
    const Batch batch = source.batch(index);
    const Tensor labels = batch.labels.to(options_.device);
    const Tensor logits = model_.forward(batch.images.to(options_.device));
    if (index == 0) result.confusion = ConfusionMatrix(logits.size(1));
    const std::int64_t count = batch.labels.size(0);
    loss_sum += static_cast<double>(loss_(logits, labels).item<float>()) * static_cast<double>(count);
    images += count;
    result.confusion.add(logits.to(Device::cpu()), batch.labels);
  }
  result.loss = images > 0 ? loss_sum / static_cast<double>(images) : 0.0;
  model_.train();
  return result;
}

EpochMetrics Trainer::train_epoch(BatchSource& train, std::int64_t epoch) {
  model_.train();
  train.start_epoch(epoch);
  const std::int64_t batches = train.batches_per_epoch();
  Progress progress(detail::concat("epoch ", epoch, "/", options_.epochs), batches, options_.progress_stream);
  EpochMetrics metrics;
  metrics.epoch = epoch;
  double loss_sum = 0.0;
  std::int64_t images = 0, correct = 0;
  for (std::int64_t index = 0; index < batches; ++index) {
    if (schedule_) optimizer_.set_learning_rate(schedule_((epoch - 1) * batches + index));
    if (index == 0) metrics.learning_rate = optimizer_.groups().front().learning_rate;
    const Batch batch = train.batch(index);
    optimizer_.zero_grad();
    const AutocastGuard autocast(options_.activations);
    const Tensor logits = model_.forward(batch.images.to(options_.device));
    const Tensor loss = loss_(logits, batch.labels.to(options_.device));
    const float value = loss.item<float>();
    if (!std::isfinite(value))
      throw DivergenceError(detail::concat("training diverged: loss ", value, " at epoch ", epoch, ", batch ",
                                           index + 1, " of ", batches, " (learning rate ",
                                           optimizer_.groups().front().learning_rate, ")"));
    loss.backward();
    optimizer_.step();
    if (options_.weight_average != nullptr) options_.weight_average->update();

    ConfusionMatrix batch_confusion(logits.size(1));
    batch_confusion.add(logits.detach().to(Device::cpu()), batch.labels);
    const std::int64_t count = batch.labels.size(0);
    correct +=
        static_cast<std::int64_t>(std::llround(batch_confusion.accuracy() * static_cast<double>(count)));
    loss_sum += static_cast<double>(value) * static_cast<double>(count);
    images += count;
    if (options_.show_progress) {
      char detail[48];
      std::snprintf(detail, sizeof detail, "loss %.4f", loss_sum / static_cast<double>(images));
      progress.update(index + 1, images, detail);
    }
  }
  metrics.seconds = progress.elapsed_seconds();
  metrics.train_loss = loss_sum / static_cast<double>(images);
  metrics.train_accuracy = static_cast<double>(correct) / static_cast<double>(images);
  metrics.images_per_second = metrics.seconds > 0 ? static_cast<double>(images) / metrics.seconds : 0.0;
  if (options_.show_progress) {
    char detail[64];
    std::snprintf(detail, sizeof detail, "loss %.4f  accuracy %.3f", metrics.train_loss,
                  metrics.train_accuracy);
    progress.finish(detail);
  }
  return metrics;
}

void Trainer::log(const EpochMetrics& m) {
  if (options_.log_path.empty()) return;
  nlohmann::json line = {{"epoch", m.epoch},
                         {"learning_rate", m.learning_rate},
                         {"train_loss", m.train_loss},
                         {"train_accuracy", m.train_accuracy},
                         {"seconds", m.seconds},
                         {"images_per_second", m.images_per_second},
                         {"selection_metric", metric_name(options_.selection)},
                         {"selection_value", m.selection_value}};
  if (m.has_validation) {
    line["validation_loss"] = m.validation_loss;
    line["validation_accuracy"] = m.validation_accuracy;
    line["validation_balanced_accuracy"] = m.validation_balanced_accuracy;
  }
  std::ofstream out(options_.log_path, std::ios::app);
  DSCOPE_CHECK(out.good(), IoError, "trainer: cannot append to the log ", options_.log_path);
  out << line.dump() << '\n';
  DSCOPE_CHECK(out.good(), IoError, "trainer: writing the log ", options_.log_path, " failed");
}

namespace {
// Holds the averaged weights in the model for one scope, and puts the trained ones back even when a
// callback throws (the optimizer must never step on the averages).
class AveragedWeights {
 public:
  explicit AveragedWeights(optim::WeightAverage* average) : average_(average) {
    if (average_ != nullptr) average_->swap();
  }
  ~AveragedWeights() {
    if (average_ != nullptr) average_->swap();
  }
  AveragedWeights(const AveragedWeights&) = delete;
  AveragedWeights& operator=(const AveragedWeights&) = delete;

 private:
  optim::WeightAverage* average_;
};
}  // namespace

TrainingSummary Trainer::fit(BatchSource& train, BatchSource* validation, std::int64_t first_epoch) {
  TrainingSummary summary;
  const bool minimise = options_.selection == SelectionMetric::Loss;
  summary.best_value =
      minimise ? std::numeric_limits<double>::infinity() : -std::numeric_limits<double>::infinity();
  std::int64_t epochs_without_improvement = 0;
  for (std::int64_t epoch = first_epoch + 1; epoch <= options_.epochs; ++epoch) {
    EpochMetrics metrics = train_epoch(train, epoch);
    const AveragedWeights averaged(options_.weight_average);
    double accuracy = metrics.train_accuracy, balanced = metrics.train_accuracy, loss = metrics.train_loss;
    if (validation != nullptr) {
      const Evaluation evaluation = evaluate(*validation);
      metrics.has_validation = true;
      metrics.validation_loss = loss = evaluation.loss;
      metrics.validation_accuracy = accuracy = evaluation.confusion.accuracy();
      metrics.validation_balanced_accuracy = balanced = evaluation.confusion.balanced_accuracy();
      metrics.validation_confusion = evaluation.confusion;
    }
    metrics.selection_value = options_.selection == SelectionMetric::Loss       ? loss
                              : options_.selection == SelectionMetric::Accuracy ? accuracy
                                                                                : balanced;
    log(metrics);
    summary.history.push_back(metrics);
    const bool improved = minimise ? metrics.selection_value < summary.best_value
                                   : metrics.selection_value > summary.best_value;
    if (improved) {
      summary.best_value = metrics.selection_value;
      summary.best_epoch = epoch;
      epochs_without_improvement = 0;
      if (on_best_) on_best_(metrics);
    } else {
      ++epochs_without_improvement;
    }
    if (options_.show_progress && metrics.has_validation)
      std::fprintf(options_.progress_stream,
                   "  validation: loss %.4f  accuracy %.3f  balanced accuracy %.3f%s\n",
                   metrics.validation_loss, metrics.validation_accuracy, metrics.validation_balanced_accuracy,
                   improved ? "  (best so far)" : "");
    if (on_epoch_end_) on_epoch_end_(metrics);
    if (options_.early_stopping_patience > 0 &&
        epochs_without_improvement >= options_.early_stopping_patience) {
      summary.stopped_early = epoch < options_.epochs;
      break;
    }
  }
  return summary;
}

}  // namespace dscope::apps
