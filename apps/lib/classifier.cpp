#include "apps/lib/classifier.h"

#include <algorithm>
#include <cmath>
#include <sstream>

#include "data/augment.h"
#include "data/image_cache.h"
#include "tensor/autograd/grad_mode.h"
#include "tensor/ops/log_softmax.h"

namespace dscope::apps {

Classifier::Classifier(const std::filesystem::path& model_file) {
  nn::LoadedNetworks loaded = nn::load_networks(model_file);
  card_ = std::move(loaded.card);
  views_ = static_cast<int>(card_.input.views);
  const std::string name = model_file.string();
  DSCOPE_CHECK(
      !card_.labels.empty(), DataError, name,
      ": the model has no label names, so it is not a dscope classifier (was it saved by `dscope build`?)");
  for (const nn::LoadedResNet& network : loaded.networks) {
    const nn::ModelCard& card = network.card;
    const std::string which =
        card_.is_ensemble() ? name + " (network " + std::to_string(networks_.size()) + ")" : name;
    DSCOPE_CHECK(card.input.height > 0 && card.input.height == card.input.width, DataError, which,
                 ": the model's input size ", card.input.height, "x", card.input.width,
                 " is not a square the workbench can feed");
    DSCOPE_CHECK(card.architecture.input_channels == 3, DataError, which, ": the model expects ",
                 card.architecture.input_channels, " input channels; images are RGB (3)");
    Network entry{network.model, card.input.height, {{0, 0, 0}, {1, 1, 1}}, card.input.crop};
    if (card.input.mean.size() == 3) {
      std::copy(card.input.mean.begin(), card.input.mean.end(), entry.normalization.mean.begin());
      std::copy(card.input.stddev.begin(), card.input.stddev.end(), entry.normalization.std.begin());
    }
    networks_.push_back(std::move(entry));
  }
  for (const std::string& label : card_.decision.positive_labels)
    positive_indices_.push_back(static_cast<std::size_t>(
        std::find(card_.labels.begin(), card_.labels.end(), label) - card_.labels.begin()));
}

std::int64_t Classifier::cache_side() const {
  std::int64_t largest = 0;
  for (const Network& network : networks_)
    largest = std::max(largest, network.input_size);
  return data::cache_side_for_input(largest);
}

std::string Classifier::describe() const {
  std::ostringstream text;
  if (networks_.size() > 1) text << "ensemble of " << networks_.size() << ": ";
  for (std::size_t i = 0; i < networks_.size(); ++i) {
    const nn::ResNetConfig& architecture = networks_[i].model->config();
    std::int64_t blocks = 0;
    for (const std::int64_t stage : architecture.blocks_per_stage)
      blocks += stage;
    const std::int64_t layers_per_block = architecture.block == nn::BlockKind::Basic ? 2 : 3;
    text << (i ? " + " : "") << "ResNet-" << blocks * layers_per_block + 2 << " (widths ";
    for (std::size_t stage = 0; stage < architecture.stage_widths.size(); ++stage)
      text << (stage ? "/" : "")
           << nn::scaled_width(architecture.stage_widths[stage], architecture.width_multiplier);
    text << ") on " << networks_[i].input_size << "×" << networks_[i].input_size << " inputs";
  }
  text << ", " << views_ << (views_ == 1 ? " view" : " views");
  return text.str();
}

void Classifier::set_views(int views) {
  DSCOPE_CHECK(views == 1 || views == 8, ValueError, "classifier: ", views,
               " views per image; 1 or 8 are possible");
  views_ = views;
}

void Classifier::preprocess(const Network& network, const data::Image& cached, float* out, int view) {
  const std::int64_t side = network.input_size;
  data::Image image =
      network.crop == "resize" ? data::resize(cached, side, side) : data::evaluation_view(cached, side);
  if (view % 4 != 0) image = data::rotate90(image, view % 4);
  if (view >= 4) image = data::flip_horizontal(image);
  data::to_chw(image, network.normalization, out);
}

void Classifier::set_adjustment_strength(double strength) {
  DSCOPE_CHECK(std::isfinite(strength), ValueError, "logit adjustment strength must be finite, got ",
               strength);
  DSCOPE_CHECK(strength == 0.0 || !card_.adjustment.train_prior.empty(), ValueError,
               "logit adjustment strength ", strength,
               ": this model stores no training prior (it was built before the adjustment existed); only 0 "
               "can be set");
  card_.adjustment.strength = strength;
}

std::vector<float> Classifier::probabilities(const std::vector<const data::Image*>& cached,
                                             std::int64_t batch_size,
                                             const std::function<void(std::int64_t)>& progress) const {
  const std::int64_t total = static_cast<std::int64_t>(cached.size()),
                     classes = static_cast<std::int64_t>(labels().size());
  const auto predictions = static_cast<float>(views_ * static_cast<int>(networks_.size()));
  std::vector<float> result(static_cast<std::size_t>(total * classes), 0.0f);
  NoGradGuard no_grad;
  for (std::int64_t first = 0; first < total; first += batch_size) {
    const std::int64_t count = std::min(batch_size, total - first);
    float* rows = result.data() + first * classes;
    for (const Network& network : networks_) {
      const std::int64_t side = network.input_size, plane = 3 * side * side;
      Tensor batch = Tensor::empty({count, 3, side, side});
      float* pixels = batch.data<float>();
      for (int view = 0; view < views_; ++view) {
        for (std::int64_t i = 0; i < count; ++i)
          preprocess(network, *cached[static_cast<std::size_t>(first + i)], pixels + i * plane, view);
        const Tensor probabilities = softmax(network.model->forward(batch), 1).contiguous();
        const float* values = probabilities.data<float>();
        for (std::int64_t k = 0; k < count * classes; ++k)
          rows[k] += values[k] / predictions;
      }
    }
    if (progress) progress(first + count);
  }
  if (adjusted_) adjust_probabilities(card_.adjustment, result);
  return result;
}

void adjust_probabilities(const nn::LogitAdjustment& adjustment, std::vector<float>& probabilities) {
  const std::size_t classes = adjustment.train_prior.size();
  if (classes == 0 || (adjustment.strength == 0.0 && adjustment.class_factor.empty())) return;
  std::vector<double> factor(classes);
  for (std::size_t c = 0; c < classes; ++c) {
    factor[c] = std::pow(static_cast<double>(adjustment.train_prior[c]), -adjustment.strength);
    if (!adjustment.class_factor.empty()) factor[c] *= static_cast<double>(adjustment.class_factor[c]);
  }
  for (std::size_t row = 0; row + classes <= probabilities.size(); row += classes) {
    double total = 0.0;
    for (std::size_t c = 0; c < classes; ++c)
      total += static_cast<double>(probabilities[row + c]) * factor[c];
    if (!(total > 0.0)) continue;  // an all-zero row stays as it is
    for (std::size_t c = 0; c < classes; ++c)
      probabilities[row + c] =
          static_cast<float>(static_cast<double>(probabilities[row + c]) * factor[c] / total);
  }
}

double Classifier::positive_probability(const float* row) const {
  double sum = 0.0;
  for (const std::size_t index : positive_indices_)
    sum += static_cast<double>(row[index]);
  return sum;
}

}  // namespace dscope::apps
