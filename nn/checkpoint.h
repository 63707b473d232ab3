// Self-describing model files: a safetensors file holding a ResNet's state dict (torchvision names, so it
// loads into a PyTorch model too) whose header metadata carries everything needed to use the model without
// the program that trained it: the architecture and its hyper-parameters, the label names in class order,
// the input size and normalisation, and a summary of the training.
//
// safetensors metadata values must be strings, so the model card is one JSON document stored under the key
// "dscope"; two flat keys sit beside it for tools that do not parse it: "format" = "pt" (the Hugging Face
// convention for "a PyTorch state dict") and "dscope_version". The document carries its own format version,
// checked on load, so a later layout can still read (or clearly refuse) an older file.
//
// An ensemble is one file too: several networks whose class probabilities a classifier averages. Their
// tensors are stored under "member<i>." (member0.conv1.weight, ...), and the card's `members` holds each
// network's own card (architecture, input, training); the top-level card's architecture, input size and
// normalisation repeat member 0's, while its labels, views, decision and logit adjustment are the
// ensemble's, applied to the averaged probabilities.
//
// Loading checks the file twice over: the safetensors reader validates the bytes (see nn/safetensors.h), and
// the model checks every name, shape and dtype against its own state dict, listing each mismatch.
#pragma once

#include <cstdint>
#include <filesystem>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "nn/resnet.h"

namespace dscope::nn {

// The version of dscope itself, recorded in every file it writes (e.g. "0.1.0").
std::string dscope_version();

// What a model expects of its input images.
struct InputSpec {
  std::int64_t height = 0;  // images are resized to height × width before the model sees them
  std::int64_t width = 0;
  // Per channel, applied as (x − mean[c]) / stddev[c] to pixel values x in [0, 1]; empty means none.
  std::vector<float> mean;
  std::vector<float> stddev;
  // How an image of another shape is brought to height × width: "centre_square" takes the centred square
  // whose side is the image's shorter side and area-resizes it (the evaluation view of data/augment.h);
  // "resize" stretches the whole image. The only two values accepted.
  std::string crop = "centre_square";
  // Views a prediction averages the probabilities over: 1, the image as it is, or 8, the eight symmetries of
  // the square (quarter turns, each also mirrored; test-time augmentation). The builder chooses on validation
  // data. The only two values accepted.
  std::int64_t views = 1;
};

// A yes/no decision on top of the classes, e.g. "possible cancer": raised when the summed probability of
// `positive_labels` reaches `threshold`. The builder chooses the threshold on validation data for a target
// sensitivity and stores it here, so every later prediction uses the same rule. Absent when
// positive_labels is empty.
struct BinaryDecision {
  std::string name;                          // e.g. "possible_cancer"
  std::vector<std::string> positive_labels;  // each one of the card's labels
  double threshold = 0.5;                    // in [0, 1]
  double target_sensitivity = 0.0;           // what the threshold was chosen for (0: chosen by hand)
};

// Logit adjustment (Menon et al., "Long-tail learning via logit adjustment", 2021): a network trained on
// imbalanced data favours the frequent classes. Prediction divides each class's probability by its share of
// the training images raised to `strength` and renormalises, p'_c ∝ p_c / prior_c^strength: 0 leaves the
// model as trained, 1 makes every class a priori equally likely. The builder chooses the strength on
// validation data. Absent when train_prior is empty.
//
// A minimum recall asked for a class (dscope build --min-recall mel=0.6) adds one more factor per class:
// p'_c ∝ class_factor_c · p_c / prior_c^strength. The builder sets each asked class's factor to the smallest
// value ≥ 1 with which that class reaches the asked recall on validation data, the others stay 1: an
// operating point that trades other classes' recall for this one's, as the possible-cancer threshold does
// for the yes/no decision.
struct LogitAdjustment {
  std::vector<float> train_prior;  // per label, each in (0, 1]
  double strength = 0.0;
  std::vector<float> class_factor;           // per label, each in (0, 1e6]; empty: every factor 1
  std::map<std::string, double> min_recall;  // label → the validation recall its factor was chosen for
};

struct TrainingSummary {
  std::int64_t epochs = 0;                        // epochs trained
  std::int64_t best_epoch = 0;                    // the epoch whose weights the file holds
  std::map<std::string, double> best_validation;  // metric name → value at best_epoch
  std::uint64_t seed = 0;
  // Fingerprint of the train / validation / test split the model was built on (apps/lib/build_recipe.h
  // split_digest); empty when unknown (files written before it existed). Lets a later build check that
  // weights it is given were not trained on its validation or test images.
  std::string split_digest;
};

struct ModelCard {
  ResNetConfig architecture;
  std::vector<std::string> labels;  // class index → name; empty, or one per class
  InputSpec input;
  TrainingSummary training;
  BinaryDecision decision;
  LogitAdjustment adjustment;
  std::string dscope_version;  // of the program that wrote the file; save_model fills it in
  // An ensemble's networks, each with its own card (labels equal to these, no members of their own); empty
  // for a single network. At least two when present.
  std::vector<ModelCard> members;

  bool is_ensemble() const { return !members.empty(); }

  // The JSON document stored in the file.
  std::string to_json() const;
  // Parses and validates a document; throws DataError naming `source` (the file) and the offending field.
  static ModelCard from_json(const std::string& text, const std::string& source);
};

// Writes the model's parameters and buffers with `card` as metadata. The card's architecture is taken from
// the model, and its labels must be empty or one per class (ValueError otherwise).
void save_model(const std::filesystem::path& path, const ResNet& model, ModelCard card);

// Writes an ensemble: every network's parameters and buffers under "member<i>.", and `card` with one member
// card per network (given in card.members, whose architectures are taken from the networks). The top-level
// architecture, input size and normalisation are set to member 0's. ValueError unless there are
// at least two networks, as many member cards, and every member has the card's labels.
void save_ensemble(const std::filesystem::path& path, const std::vector<const ResNet*>& networks,
                   ModelCard card);

// The card of a model file, from its header alone.
ModelCard read_model_card(const std::filesystem::path& path);

// Loads a model file's tensors into `model` (any module with the same state-dict names, shapes and dtypes)
// and returns its card. If `expected_labels` is not empty, the file's labels must equal it, in order.
// Throws IoError / DataError for an unreadable file, ValueError for other labels, ShapeError listing every
// missing, unexpected or mis-shaped tensor; all name the file.
ModelCard load_model(const std::filesystem::path& path, Module& model,
                     const std::vector<std::string>& expected_labels = {});

// Rebuilds the ResNet a file describes and loads its weights: the file is all a prediction needs.
// The model is returned in evaluation mode. Errors as load_model.
struct LoadedResNet {
  std::shared_ptr<ResNet> model;
  ModelCard card;
};
// An ensemble's file is refused (DataError saying so and pointing to load_networks).
LoadedResNet load_resnet(const std::filesystem::path& path,
                         const std::vector<std::string>& expected_labels = {});

// Any model file as the networks a classifier averages: one for a single network, each member of an
// ensemble (with its member card) otherwise; `card` is the file's own card. Errors as load_model.
struct LoadedNetworks {
  ModelCard card;
  std::vector<LoadedResNet> networks;
};
LoadedNetworks load_networks(const std::filesystem::path& path,
                             const std::vector<std::string>& expected_labels = {});

}  // namespace dscope::nn
