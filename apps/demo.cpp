// `dscope demo`: the engine end to end on generated data, with nothing but tensors, ops and autograd.
//
// Three classes of 3×16×16 images (horizontal stripes, vertical stripes, a bright centre blob), each
// with random phase, colour and noise, are learnt by a tiny convnet:
//   conv3×3(3→8) → batch norm → relu → max pool 2 → conv3×3(8→16) → relu → global average pool → linear(16→3)
// trained with cross-entropy and plain SGD with momentum written out here (the optimizer library comes
// with the nn/optim layer). The loss printed every few steps should fall from about ln 3 ≈ 1.10.
#include <chrono>
#include <cmath>
#include <cstdio>

#include "apps/commands.h"
#include "tensor/ops/all.h"

namespace dscope::apps {
namespace {

constexpr std::int64_t kClasses = 3, kSide = 16;

struct Batch {
  Tensor images;  // [N, 3, 16, 16]
  Tensor labels;  // [N] int64
};

Batch generate_batch(std::int64_t size, Generator& generator) {
  std::vector<float> pixels(static_cast<std::size_t>(size * 3 * kSide * kSide));
  std::vector<std::int64_t> labels(static_cast<std::size_t>(size));
  for (std::int64_t n = 0; n < size; ++n) {
    const auto label = static_cast<std::int64_t>(generator.below(kClasses));
    labels[static_cast<std::size_t>(n)] = label;
    const float phase = generator.uniform() * 6.2832f, period = 3.0f + 3.0f * generator.uniform();
    for (std::int64_t c = 0; c < 3; ++c) {
      const float tint = 0.5f + generator.uniform();
      for (std::int64_t y = 0; y < kSide; ++y)
        for (std::int64_t x = 0; x < kSide; ++x) {
          float value = 0.0f;
          if (label == 0) value = std::sin(6.2832f * static_cast<float>(y) / period + phase);
          if (label == 1) value = std::sin(6.2832f * static_cast<float>(x) / period + phase);
          if (label == 2) {
            const float dy = static_cast<float>(y) - 7.5f, dx = static_cast<float>(x) - 7.5f;
            value = 2.0f * std::exp(-(dx * dx + dy * dy) / (2.0f * period * period)) - 0.5f;
          }
          pixels[static_cast<std::size_t>(((n * 3 + c) * kSide + y) * kSide + x)] =
              tint * value + 0.3f * generator.normal();
        }
    }
  }
  return {Tensor::from_vector(pixels, {size, 3, kSide, kSide}), Tensor::from_int64(labels, {size})};
}

struct TinyConvNet {
  Tensor conv1_weight, bn_weight, bn_bias, bn_running_mean, bn_running_var, conv2_weight, conv2_bias,
      fc_weight, fc_bias;

  explicit TinyConvNet(Generator& generator) {
    // He initialisation: standard deviation sqrt(2 / fan_in) keeps activations' scale through relu layers.
    conv1_weight = Tensor::randn({8, 3, 3, 3}, generator, 0.0f, std::sqrt(2.0f / 27.0f));
    bn_weight = Tensor::ones({8});
    bn_bias = Tensor::zeros({8});
    bn_running_mean = Tensor::zeros({8});
    bn_running_var = Tensor::ones({8});
    conv2_weight = Tensor::randn({16, 8, 3, 3}, generator, 0.0f, std::sqrt(2.0f / 72.0f));
    conv2_bias = Tensor::zeros({16});
    fc_weight = Tensor::randn({kClasses, 16}, generator, 0.0f, std::sqrt(1.0f / 16.0f));
    fc_bias = Tensor::zeros({kClasses});
    for (Tensor* parameter : parameters())
      parameter->set_requires_grad(true);
  }

  std::vector<Tensor*> parameters() {
    return {&conv1_weight, &bn_weight, &bn_bias, &conv2_weight, &conv2_bias, &fc_weight, &fc_bias};
  }

  Tensor forward(const Tensor& images, bool training) {
    Conv2dOptions same;
    same.padding_h = same.padding_w = 1;
    Tensor x = conv2d(images, conv1_weight, Tensor(), same);
    x = relu(batch_norm2d(x, bn_weight, bn_bias, bn_running_mean, bn_running_var, training));
    x = max_pool2d(x, Pool2dOptions{});
    x = relu(conv2d(x, conv2_weight, conv2_bias, same));
    return linear(global_avg_pool2d(x), fc_weight, fc_bias);
  }
};

struct DemoOptions {
  int steps = 150;
  std::int64_t batch_size = 32;
  float learning_rate = 0.05f;
  std::uint64_t seed = 0;
};

void run_demo(const DemoOptions& options) {
  Generator generator(options.seed);
  TinyConvNet model(generator);
  std::vector<Tensor> velocity;
  for (Tensor* parameter : model.parameters())
    velocity.push_back(Tensor::zeros(parameter->shape()));
  std::printf("dscope demo: tiny convnet, 3 generated classes, %d steps of batch %lld, seed %llu\n",
              options.steps, static_cast<long long>(options.batch_size),
              static_cast<unsigned long long>(options.seed));

  const auto start = std::chrono::steady_clock::now();
  double first_loss = 0.0, recent_loss = 0.0;
  const int report_every = std::max(1, options.steps / 15);
  for (int step = 1; step <= options.steps; ++step) {
    const Batch batch = generate_batch(options.batch_size, generator);
    for (Tensor* parameter : model.parameters())
      parameter->set_grad(Tensor());
    const Tensor loss = cross_entropy(model.forward(batch.images, true), batch.labels);
    loss.backward();
    {
      // SGD with momentum 0.9: v ← 0.9·v + g, p ← p − lr·v, written into the existing buffers.
      NoGradGuard no_grad;
      const std::vector<Tensor*> parameters = model.parameters();
      for (std::size_t i = 0; i < parameters.size(); ++i) {
        copy_elements(velocity[i] * 0.9f + parameters[i]->grad(), velocity[i]);
        copy_elements(*parameters[i] - velocity[i] * options.learning_rate, *parameters[i]);
      }
    }
    const double value = loss.item<float>();
    if (step == 1) first_loss = value;
    recent_loss = step == 1 ? value : 0.9 * recent_loss + 0.1 * value;
    if (step % report_every == 0 || step == 1 || step == options.steps) {
      const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
      std::printf("step %4d/%d  loss %.4f  (smoothed %.4f)  %.0f images/s\n", step, options.steps, value,
                  recent_loss, static_cast<double>(step * options.batch_size) / seconds);
      std::fflush(stdout);
    }
  }

  NoGradGuard no_grad;
  const Batch test = generate_batch(512, generator);
  const std::vector<float> logits = model.forward(test.images, false).to_vector<float>();
  const std::vector<std::int64_t> labels = test.labels.to_vector<std::int64_t>();
  std::int64_t correct = 0;
  for (std::size_t n = 0; n < labels.size(); ++n) {
    std::int64_t best = 0;
    for (std::int64_t k = 1; k < kClasses; ++k)
      if (logits[n * kClasses + static_cast<std::size_t>(k)] >
          logits[n * kClasses + static_cast<std::size_t>(best)])
        best = k;
    correct += best == labels[n] ? 1 : 0;
  }
  std::printf("loss %.4f -> %.4f (smoothed); accuracy on 512 new images: %.1f%% (chance: 33.3%%)\n",
              first_loss, recent_loss,
              100.0 * static_cast<double>(correct) / static_cast<double>(labels.size()));
}

}  // namespace

void add_demo_command(CLI::App& program) {
  auto options = std::make_shared<DemoOptions>();
  CLI::App* command =
      program.add_subcommand("demo", "Train a tiny convnet on generated images and print the loss");
  command->add_option("--steps", options->steps, "Training steps")
      ->capture_default_str()
      ->check(CLI::PositiveNumber);
  command->add_option("--batch-size", options->batch_size, "Images per step")
      ->capture_default_str()
      ->check(CLI::PositiveNumber);
  command->add_option("--lr", options->learning_rate, "SGD learning rate")->capture_default_str();
  command->add_option("--seed", options->seed, "Seed for data and initialisation")->capture_default_str();
  command->callback([options] { run_demo(*options); });
}

}  // namespace dscope::apps
