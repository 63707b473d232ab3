// The Trainer on a synthetic task the test generates: coloured shapes (disk, square, ring, cross) at
// random positions, sizes and colours on a contrasting background with pixel noise. A ResNet-8 must learn it
// to ≥ 95% validation accuracy in a few epochs; the run must be reproducible from its seed; early
// stopping, the best-epoch callback and the JSON-lines log must behave as documented.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "apps/lib/progress.h"
#include "apps/lib/trainer.h"
#include "nn/resnet.h"
#include "optim/sgd.h"
#include "tensor/ops/arithmetic.h"
#include "tensor/ops/cross_entropy.h"

namespace dscope::apps {
namespace {

using data::TensorBatchSource;

constexpr std::int64_t kShapes = 4, kSide = 16;

// Draws `count` images of the four shape classes, balanced, shuffled by the generator.
Batch make_shapes(std::int64_t count, std::uint64_t seed) {
  Generator generator(seed);
  std::vector<float> pixels(static_cast<std::size_t>(count * 3 * kSide * kSide));
  std::vector<std::int64_t> labels(static_cast<std::size_t>(count));
  for (std::int64_t n = 0; n < count; ++n) {
    const std::int64_t label = n % kShapes;
    labels[static_cast<std::size_t>(n)] = label;
    const float radius = 3.0f + 2.5f * generator.uniform();
    const float cy = radius + generator.uniform() * (kSide - 2 * radius),
                cx = radius + generator.uniform() * (kSide - 2 * radius);
    float colour[3], background[3];
    for (int c = 0; c < 3; ++c) {
      // Shape and background differ by at least 0.8 in every channel, so every shape is visible.
      colour[c] = generator.uniform() * 2.0f - 1.0f;
      const float gap = 0.8f + 0.4f * generator.uniform();
      background[c] = colour[c] > 0.0f ? colour[c] - gap : colour[c] + gap;
    }
    for (std::int64_t y = 0; y < kSide; ++y)
      for (std::int64_t x = 0; x < kSide; ++x) {
        const float dy = static_cast<float>(y) + 0.5f - cy, dx = static_cast<float>(x) + 0.5f - cx;
        const float distance = std::sqrt(dx * dx + dy * dy);
        bool inside = false;
        if (label == 0) inside = distance <= radius;
        if (label == 1) inside = std::abs(dx) <= radius * 0.8f && std::abs(dy) <= radius * 0.8f;
        if (label == 2) inside = distance <= radius && distance >= radius * 0.55f;
        if (label == 3)
          inside = (std::abs(dx) <= 1.0f || std::abs(dy) <= 1.0f) && std::abs(dx) <= radius &&
                   std::abs(dy) <= radius;
        for (int c = 0; c < 3; ++c)
          pixels[static_cast<std::size_t>(((n * 3 + c) * kSide + y) * kSide + x)] =
              (inside ? colour[c] : background[c]) + 0.1f * generator.normal();
      }
  }
  return {Tensor::from_vector(pixels, {count, 3, kSide, kSide}), Tensor::from_int64(labels, {count})};
}

std::unique_ptr<nn::ResNet> make_model(std::uint64_t seed) {
  nn::ResNetConfig config = nn::resnet_config(8, kShapes);
  config.seed = seed;
  return std::make_unique<nn::ResNet>(config);
}

LossFunction plain_cross_entropy() {
  return [](const Tensor& logits, const Tensor& labels) { return cross_entropy(logits, labels); };
}

TrainerOptions quiet(std::int64_t epochs) {
  TrainerOptions options;
  options.epochs = epochs;
  options.show_progress = false;
  return options;
}

TEST(Trainer, ResNet8LearnsSyntheticShapes) {
  const Batch train = make_shapes(1600, 1), validation = make_shapes(400, 2);
  TensorBatchSource train_source(train.images, train.labels, 32, true, 3);
  TensorBatchSource validation_source(validation.images, validation.labels, 200, false);
  auto model = make_model(4);
  optim::Sgd sgd(model->parameters(), 0.05f, 5e-4f, {0.9f, true});
  TrainerOptions options = quiet(8);
  options.selection = SelectionMetric::Accuracy;
  Trainer trainer(*model, sgd, plain_cross_entropy(), options);
  const std::int64_t steps = options.epochs * train_source.batches_per_epoch();
  trainer.set_schedule([steps](std::int64_t step) {
    return 0.05f * 0.5f *
           (1.0f + std::cos(3.14159265f * static_cast<float>(step) / static_cast<float>(steps)));
  });
  const TrainingSummary summary = trainer.fit(train_source, &validation_source);
  ASSERT_FALSE(summary.history.empty());
  EXPECT_GE(summary.best_value, 0.95)
      << "best validation accuracy after " << summary.history.size() << " epochs";
  EXPECT_LT(summary.history.back().train_loss, summary.history.front().train_loss);
}

TEST(Trainer, SameSeedSameLosses) {
  const Batch data = make_shapes(96, 5);
  std::vector<double> losses[2];
  for (auto& run : losses) {
    TensorBatchSource source(data.images, data.labels, 32, true, 6);
    auto model = make_model(7);
    optim::Sgd sgd(model->parameters(), 0.05f, 0.0f, {0.9f, false});
    Trainer trainer(*model, sgd, plain_cross_entropy(), quiet(2));
    for (const EpochMetrics& epoch : trainer.fit(source, nullptr).history)
      run.push_back(epoch.train_loss);
  }
  EXPECT_EQ(losses[0], losses[1]);
}

TEST(Trainer, StopsEarlyOnAPlateauAndReportsTheBestEpoch) {
  const Batch data = make_shapes(32, 8);
  TensorBatchSource source(data.images, data.labels, 32, false);
  auto model = make_model(9);
  optim::Sgd frozen(model->parameters(), 0.0f, 0.0f, {0.0f, false});  // lr 0: nothing can improve
  TrainerOptions options = quiet(8);
  options.selection = SelectionMetric::Loss;
  options.early_stopping_patience = 2;
  Trainer trainer(*model, frozen, plain_cross_entropy(), options);
  std::vector<std::int64_t> best_epochs;
  trainer.on_best([&](const EpochMetrics& metrics) { best_epochs.push_back(metrics.epoch); });
  // Selected on the training loss (no validation source): with nothing learning, every epoch's loss is the
  // same.
  const TrainingSummary summary = trainer.fit(source, nullptr);
  EXPECT_TRUE(summary.stopped_early);
  EXPECT_EQ(summary.history.size(), 3u);  // epoch 1 is the best, 2 and 3 do not improve on it
  EXPECT_EQ(summary.best_epoch, 1);
  EXPECT_EQ(best_epochs, (std::vector<std::int64_t>{1}));
}

TEST(Trainer, WritesOneJsonLinePerEpoch) {
  const Batch data = make_shapes(32, 10);
  TensorBatchSource source(data.images, data.labels, 16, true, 11);
  auto model = make_model(12);
  optim::Sgd sgd(model->parameters(), 0.01f, 0.0f, {0.9f, false});
  const std::filesystem::path log = std::filesystem::temp_directory_path() / "dscope_trainer_test.jsonl";
  std::filesystem::remove(log);
  TrainerOptions options = quiet(3);
  options.log_path = log.string();
  Trainer trainer(*model, sgd, plain_cross_entropy(), options);
  trainer.fit(source, &source);
  std::ifstream in(log);
  std::string line;
  std::int64_t epoch = 0;
  while (std::getline(in, line)) {
    const nlohmann::json record = nlohmann::json::parse(line);
    EXPECT_EQ(record.at("epoch").get<std::int64_t>(), ++epoch);
    EXPECT_TRUE(record.at("train_loss").is_number());
    EXPECT_TRUE(record.at("validation_balanced_accuracy").is_number());
  }
  EXPECT_EQ(epoch, 3);
  std::filesystem::remove(log);
}

TEST(Trainer, DivergenceIsReportedWithWhereItHappened) {
  const Batch data = make_shapes(32, 13);
  TensorBatchSource source(data.images, data.labels, 16, false);
  auto model = make_model(14);
  optim::Sgd sgd(model->parameters(), 0.01f, 0.0f, {0.0f, false});
  const LossFunction not_a_number = [](const Tensor& logits, const Tensor& labels) {
    return cross_entropy(logits, labels) * std::nanf("");
  };
  Trainer trainer(*model, sgd, not_a_number, quiet(3));
  try {
    trainer.fit(source, nullptr);
    FAIL() << "expected DivergenceError";
  } catch (const DivergenceError& error) {
    EXPECT_NE(std::string(error.what()).find("epoch"), std::string::npos) << error.what();
  }
}

TEST(ConfusionMatrix, AccuracyAndBalancedAccuracy) {
  ConfusionMatrix confusion(3);
  for (int i = 0; i < 8; ++i)
    confusion.add(0, 0);  // a majority class, always right
  confusion.add(1, 0);
  confusion.add(1, 1);
  confusion.add(2, 0);
  confusion.add(2, 0);
  EXPECT_NEAR(confusion.accuracy(), 9.0 / 12.0, 1e-12);
  EXPECT_NEAR(confusion.balanced_accuracy(), (1.0 + 0.5 + 0.0) / 3.0, 1e-12);
  // F1: class 0 has 8 right of 8 true and 11 predicted, class 1 1 of 2 and 1, class 2 none.
  EXPECT_NEAR(confusion.macro_f1(), (16.0 / 19.0 + 2.0 / 3.0 + 0.0) / 3.0, 1e-12);
  // Classes 1 and 2 as a group: of their 4 examples, only one was predicted inside the group.
  EXPECT_NEAR(confusion.group_recall({false, true, true}), 0.25, 1e-12);
  EXPECT_THROW(confusion.group_recall({true}), ValueError);
  EXPECT_TRUE(std::isnan(ConfusionMatrix(2).recall(1)));
  EXPECT_THROW(confusion.add(3, 0), ValueError);
}

TEST(Progress, FormatsDurations) {
  EXPECT_EQ(Progress::format_duration(5), "0:05");
  EXPECT_EQ(Progress::format_duration(125), "2:05");
  EXPECT_EQ(Progress::format_duration(3725), "1:02:05");
}

}  // namespace
}  // namespace dscope::apps
