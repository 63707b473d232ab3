// Classifier: a dscope model file turned into class probabilities for images, the way the model was
// trained to see them.
//
// The model card says everything: labels, input size, normalisation, crop convention and the binary
// "possible cancer" rule. Images go through the same two stages as in training: first the image cache's
// resize (shorter side to 9/8 of the input size; see data/image_cache.h), then the evaluation view (the
// centred square, area-resized to the input size). So `dscope score` on a build's test split gives the
// same numbers the build reported, image for image.
//
// Test-time augmentation (8 views) averages the probabilities over the eight symmetries of the square (four
// quarter turns, each also mirrored): the same label-preserving transforms training used, so the average is
// a less noisy estimate than one view, at eight times the cost. The card says which the builder chose on
// validation data; set_views replaces that.
//
// An ensemble file (nn/checkpoint.h) averages its networks' probabilities the same way, each network
// seeing the image at its own input size and normalisation; views and logit adjustment apply to the
// average. Networks of different input sizes share one decoded image at the largest cache side, so a
// smaller network's view is resized from that rather than from the original (a slight blur its own build
// did not see; the ensemble's choices and score are made on exactly what it computes here).
#pragma once

#include <cstdint>
#include <filesystem>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "data/image.h"
#include "data/image_transforms.h"
#include "nn/checkpoint.h"

namespace dscope::apps {

// Applies a model card's logit adjustment (nn/checkpoint.h) to rows of class probabilities in place:
// p'_c ∝ class_factor_c · p_c / prior_c^strength, each row renormalised. Nothing happens when the
// adjustment is absent.
void adjust_probabilities(const nn::LogitAdjustment& adjustment, std::vector<float>& probabilities);

class Classifier {
 public:
  // Loads the model file. Throws IoError / DataError for a missing or broken file (naming it), and
  // DataError when the card lacks what prediction needs (labels, an input size).
  explicit Classifier(const std::filesystem::path& model_file);

  const nn::ModelCard& card() const { return card_; }
  const std::vector<std::string>& labels() const { return card_.labels; }
  // Networks averaged: 1, or an ensemble's members.
  std::size_t network_count() const { return networks_.size(); }
  // One line for reports: "ResNet-8 (widths 24/48/96) on 64×64 inputs, 8 views", or for an ensemble
  // "ensemble of 2: ResNet-8 (...) on 64×64 inputs + ResNet-8 (...) on 80×80 inputs, 8 views".
  std::string describe() const;
  // The shorter side a decoded image is brought to first (an ImageCache built at this side holds images
  // ready for probabilities()): what the largest network input needs.
  std::int64_t cache_side() const;
  // 1 or 8 views per image (the card's by default); ValueError otherwise.
  void set_views(int views);
  int views() const { return views_; }
  void set_adjusted(bool adjusted) { adjusted_ = adjusted; }
  // Replaces the card's logit adjustment strength (for a what-if score; 0 turns the division by the prior
  // off, while the class factors of a minimum recall stay). A model that stores no training prior (built
  // before the adjustment existed) accepts only 0. Throws ValueError.
  void set_adjustment_strength(double strength);

  // Class probabilities, images.size() × labels().size() row-major, computed in batches in evaluation mode,
  // after the card's logit adjustment (set_adjusted(false) gives the network's own).
  // `progress` (optional) is called with the number of images done after each batch.
  std::vector<float> probabilities(const std::vector<const data::Image*>& cached,
                                   std::int64_t batch_size = 64,
                                   const std::function<void(std::int64_t)>& progress = {}) const;

  bool has_decision() const { return !card_.decision.positive_labels.empty(); }
  // The summed probability of the decision's positive labels, for one row of probabilities().
  double positive_probability(const float* row) const;

 private:
  // One network with what its input needs.
  struct Network {
    std::shared_ptr<nn::ResNet> model;
    std::int64_t input_size = 0;
    data::Normalization normalization;
    std::string crop;
  };
  // The image as `network` sees it (CHW floats, normalised) from an image already at cache_side(), in view
  // `view` of the square's eight symmetries (0: as it is).
  static void preprocess(const Network& network, const data::Image& cached, float* out, int view);

  nn::ModelCard card_;
  std::vector<Network> networks_;
  std::vector<std::size_t> positive_indices_;
  int views_;
  bool adjusted_ = true;
};

}  // namespace dscope::apps
