#include "nn/checkpoint.h"

#include <algorithm>
#include <cmath>
#include <set>

#include "nn/json_reader.h"
#include "nn/safetensors.h"

namespace dscope::nn {
namespace {

using Json = nlohmann::json;

constexpr const char* kCardKey = "dscope";
constexpr const char* kCardFormat = "dscope-model";
constexpr std::int64_t kCardFormatVersion = 1;

// Bounds on the architecture a card may ask for. A corrupt or hostile card must not make load_resnet
// allocate terabytes; these are far above any ResNet anyone trains here.
constexpr std::int64_t kMaxWidth = 1 << 16;
constexpr std::int64_t kMaxBlocksPerStage = 1024;
constexpr std::int64_t kMaxClasses = 1 << 24;
constexpr float kMaxWidthMultiplier = 64.0f;

bool all_finite(const std::vector<float>& values) {
  for (float value : values)
    if (!std::isfinite(value)) return false;
  return true;
}

std::string join(const std::vector<std::string>& labels) {
  std::string out = "[";
  for (std::size_t i = 0; i < labels.size(); ++i)
    out += (i ? ", " : "") + labels[i];
  return out + "]";
}

// Checks that the card's values fit together; returns what is wrong, or an empty string.
std::string card_problem(const ModelCard& card) {
  const ResNetConfig& architecture = card.architecture;
  if (architecture.blocks_per_stage.empty() ||
      architecture.blocks_per_stage.size() != architecture.stage_widths.size())
    return detail::concat("architecture has ", architecture.blocks_per_stage.size(), " stage depths for ",
                          architecture.stage_widths.size(), " stage widths");
  for (std::int64_t blocks : architecture.blocks_per_stage)
    if (blocks < 1 || blocks > kMaxBlocksPerStage)
      return detail::concat("architecture.blocks_per_stage holds ", blocks, ", outside [1, ",
                            kMaxBlocksPerStage, "]");
  for (std::int64_t width : architecture.stage_widths)
    if (width < 1 || width > kMaxWidth)
      return detail::concat("architecture.stage_widths holds ", width, ", outside [1, ", kMaxWidth, "]");
  if (!(architecture.width_multiplier > 0.0f && architecture.width_multiplier <= kMaxWidthMultiplier))
    return detail::concat("architecture.width_multiplier ", architecture.width_multiplier, " is outside (0, ",
                          kMaxWidthMultiplier, "]");
  if (architecture.input_channels < 1 || architecture.input_channels > kMaxWidth)
    return detail::concat("architecture.input_channels ", architecture.input_channels, " is outside [1, ",
                          kMaxWidth, "]");
  if (architecture.classes < 1 || architecture.classes > kMaxClasses)
    return detail::concat("architecture.classes ", architecture.classes, " is outside [1, ", kMaxClasses,
                          "]");

  if (!card.labels.empty() && static_cast<std::int64_t>(card.labels.size()) != architecture.classes)
    return detail::concat(card.labels.size(), " labels for a model of ", architecture.classes, " classes");
  std::set<std::string> distinct;
  for (const std::string& label : card.labels)
    if (label.empty() || !distinct.insert(label).second)
      return detail::concat("label '", label, "' is empty or appears twice");

  const InputSpec& input = card.input;
  if (input.height < 0 || input.width < 0)
    return detail::concat("input size ", input.height, "x", input.width, " is negative");
  const auto channels = static_cast<std::size_t>(architecture.input_channels);
  if (input.mean.size() != input.stddev.size() || (!input.mean.empty() && input.mean.size() != channels))
    return detail::concat("input normalisation has ", input.mean.size(), " means and ", input.stddev.size(),
                          " standard deviations for ", channels, " input channels");
  if (!all_finite(input.mean) || !all_finite(input.stddev))
    return "input normalisation holds a value that is not finite";
  for (float stddev : input.stddev)
    if (!(stddev > 0.0f)) return detail::concat("input standard deviation ", stddev, " is not positive");
  if (input.crop != "centre_square" && input.crop != "resize")
    return detail::concat("input crop '", input.crop, "' is neither 'centre_square' nor 'resize'");
  if (input.views != 1 && input.views != 8)
    return detail::concat("input views ", input.views, " is neither 1 nor 8");
  const BinaryDecision& decision = card.decision;
  if (!decision.positive_labels.empty()) {
    if (!(decision.threshold >= 0.0 && decision.threshold <= 1.0))
      return detail::concat("decision threshold ", decision.threshold, " is outside [0, 1]");
    if (!(decision.target_sensitivity >= 0.0 && decision.target_sensitivity <= 1.0))
      return detail::concat("decision target sensitivity ", decision.target_sensitivity,
                            " is outside [0, 1]");
    for (const std::string& label : decision.positive_labels)
      if (std::find(card.labels.begin(), card.labels.end(), label) == card.labels.end())
        return detail::concat("decision positive label '", label, "' is not one of the model's labels");
  }

  const LogitAdjustment& adjustment = card.adjustment;
  if (!adjustment.train_prior.empty()) {
    if (adjustment.train_prior.size() != card.labels.size())
      return detail::concat("logit adjustment has ", adjustment.train_prior.size(), " class priors for ",
                            card.labels.size(), " labels");
    for (float prior : adjustment.train_prior)
      if (!(prior > 0.0f && prior <= 1.0f))
        return detail::concat("logit adjustment prior ", prior, " is outside (0, 1]");
    if (!(std::abs(adjustment.strength) <= 10.0))
      return detail::concat("logit adjustment strength ", adjustment.strength, " is outside [-10, 10]");
  }
  if (!adjustment.class_factor.empty()) {
    if (adjustment.train_prior.empty()) return "logit adjustment has class factors but no class priors";
    if (adjustment.class_factor.size() != card.labels.size())
      return detail::concat("logit adjustment has ", adjustment.class_factor.size(), " class factors for ",
                            card.labels.size(), " labels");
    for (float factor : adjustment.class_factor)
      if (!(factor > 0.0f && factor <= 1e6f))
        return detail::concat("logit adjustment class factor ", factor, " is outside (0, 1e6]");
    for (const auto& [label, recall] : adjustment.min_recall) {
      if (std::find(card.labels.begin(), card.labels.end(), label) == card.labels.end())
        return detail::concat("logit adjustment minimum recall for '", label,
                              "', which is not one of the model's labels");
      if (!(recall > 0.0 && recall <= 1.0))
        return detail::concat("logit adjustment minimum recall ", recall, " for '", label,
                              "' is outside (0, 1]");
    }
  }

  if (card.training.epochs < 0 || card.training.best_epoch < 0)
    return detail::concat("training epochs ", card.training.epochs, " / best epoch ",
                          card.training.best_epoch, " are negative");
  for (const auto& [metric, value] : card.training.best_validation)
    if (!std::isfinite(value)) return detail::concat("training.best_validation.", metric, " is not finite");

  if (card.members.size() == 1) return "an ensemble of one member; a single network has no members";
  for (std::size_t i = 0; i < card.members.size(); ++i) {
    const ModelCard& member = card.members[i];
    if (member.is_ensemble()) return detail::concat("member ", i, " has members of its own");
    if (member.labels != card.labels)
      return detail::concat("member ", i, " is a model for labels ", join(member.labels),
                            ", the ensemble's are ", join(card.labels));
  }
  return "";
}

void check_labels(const char* operation, const ModelCard& card, const std::vector<std::string>& expected,
                  const std::filesystem::path& path) {
  if (expected.empty() || card.labels == expected) return;
  std::string difference;
  if (card.labels.size() != expected.size()) {
    difference = detail::concat(card.labels.size(), " labels instead of ", expected.size());
  } else {
    std::size_t index = 0;
    while (card.labels[index] == expected[index])
      ++index;
    difference =
        detail::concat("class ", index, " is '", card.labels[index], "', expected '", expected[index], "'");
  }
  throw ValueError(detail::concat(operation, ": '", path.string(), "' is a model for labels ",
                                  join(card.labels), " but labels ", join(expected), " were expected (",
                                  difference, ")"));
}

ModelCard card_from_metadata(const char* operation, const Metadata& metadata,
                             const std::filesystem::path& path) {
  const auto found = metadata.find(kCardKey);
  if (found == metadata.end())
    throw DataError(
        detail::concat(operation, ": '", path.string(), "' has no \"", kCardKey,
                       "\" metadata, so it holds tensors but no model card (not saved by dscope?)"));
  return ModelCard::from_json(found->second, path.string());
}

// The names an ensemble's member stores its tensors under: "member0.", "member1.", ...
std::string member_prefix(std::size_t member) {
  return detail::concat("member", member, ".");
}

// Copies the file's tensors into the model, naming the file in any error.
void load_tensors(const char* operation, const TensorMap& tensors, Module& model,
                  const std::filesystem::path& path) {
  try {
    model.load_state_dict(tensors);
  } catch (const ShapeError& error) {
    throw ShapeError(detail::concat(operation, ": '", path.string(), "': ", error.what()));
  }
}

// The ResNet `card` describes, with `tensors` loaded, in evaluation mode; a ShapeError is prefixed by `where`
// (the operation and the file).
LoadedResNet network_from(const ModelCard& card, const TensorMap& tensors, const std::string& where) {
  LoadedResNet network{std::make_shared<ResNet>(card.architecture), card};
  try {
    network.model->load_state_dict(tensors);
  } catch (const ShapeError& error) {
    throw ShapeError(detail::concat(where, ": ", error.what()));
  }
  network.model->eval();
  return network;
}

}  // namespace

std::string dscope_version() {
  return DSCOPE_VERSION_STRING;
}

std::string ModelCard::to_json() const {
  const ResNetConfig& a = architecture;
  const Json document = {{"format", kCardFormat},
                         {"format_version", kCardFormatVersion},
                         {"dscope_version", this->dscope_version},
                         {"architecture",
                          {{"name", "resnet"},
                           {"block", a.block == BlockKind::Basic ? "basic" : "bottleneck"},
                           {"stem", a.stem == StemKind::Small ? "small" : "imagenet"},
                           {"blocks_per_stage", a.blocks_per_stage},
                           {"stage_widths", a.stage_widths},
                           {"width_multiplier", static_cast<double>(a.width_multiplier)},
                           {"input_channels", a.input_channels},
                           {"classes", a.classes},
                           {"zero_init_residual", a.zero_init_residual},
                           {"seed", a.seed}}},
                         {"labels", labels},
                         {"input",
                          {{"height", input.height},
                           {"width", input.width},
                           {"mean", input.mean},
                           {"stddev", input.stddev},
                           {"crop", input.crop},
                           {"views", input.views}}},
                         {"training",
                          {{"epochs", training.epochs},
                           {"best_epoch", training.best_epoch},
                           {"best_validation", training.best_validation},
                           {"seed", training.seed}}}};
  Json written = document;
  if (!training.split_digest.empty()) written["training"]["split_digest"] = training.split_digest;
  if (is_ensemble()) {
    written["members"] = Json::array();
    for (const ModelCard& member : members)
      written["members"].push_back(Json::parse(member.to_json()));
  }
  if (!decision.positive_labels.empty())
    written["decision"] = {{"name", decision.name},
                           {"positive_labels", decision.positive_labels},
                           {"threshold", decision.threshold},
                           {"target_sensitivity", decision.target_sensitivity}};
  if (!adjustment.train_prior.empty()) {
    written["logit_adjustment"] = {{"train_prior", adjustment.train_prior},
                                   {"strength", adjustment.strength}};
    if (!adjustment.class_factor.empty()) {
      written["logit_adjustment"]["class_factor"] = adjustment.class_factor;
      written["logit_adjustment"]["min_recall"] = adjustment.min_recall;
    }
  }
  return written.dump();
}

ModelCard ModelCard::from_json(const std::string& text, const std::string& source) {
  const std::string context = "model card of '" + source + "'";
  const Json document = JsonReader::parse_object(text, context);
  const JsonReader read(document, context);
  if (read.string("format") != kCardFormat)
    read.fail("format is '", read.string("format"), "', expected '", kCardFormat, "'");
  const std::int64_t version = read.integer("format_version");
  if (version != kCardFormatVersion)
    read.fail("format_version ", version, " is not ", kCardFormatVersion, ", the only one this dscope (",
              nn::dscope_version(), ") reads");

  ModelCard card;
  card.dscope_version = read.string("dscope_version");
  if (read.string("architecture.name") != "resnet")
    read.fail("architecture.name '", read.string("architecture.name"), "' is not 'resnet'");
  ResNetConfig& a = card.architecture;
  const std::string block = read.string("architecture.block");
  if (block != "basic" && block != "bottleneck")
    read.fail("architecture.block '", block, "' is neither 'basic' nor 'bottleneck'");
  a.block = block == "basic" ? BlockKind::Basic : BlockKind::Bottleneck;
  const std::string stem = read.string("architecture.stem");
  if (stem != "small" && stem != "imagenet")
    read.fail("architecture.stem '", stem, "' is neither 'small' nor 'imagenet'");
  a.stem = stem == "small" ? StemKind::Small : StemKind::ImageNet;
  a.blocks_per_stage = read.integers("architecture.blocks_per_stage");
  a.stage_widths = read.integers("architecture.stage_widths");
  a.width_multiplier = read.float32("architecture.width_multiplier");
  a.input_channels = read.integer("architecture.input_channels");
  a.classes = read.integer("architecture.classes");
  a.zero_init_residual = read.boolean("architecture.zero_init_residual");
  a.seed = read.unsigned_integer("architecture.seed");

  card.labels = read.strings("labels");
  card.input.height = read.integer("input.height");
  card.input.width = read.integer("input.width");
  card.input.mean = read.floats("input.mean");
  card.input.stddev = read.floats("input.stddev");
  // Fields added after format version 1 was first written are optional, so older files still load.
  if (document.at("input").contains("crop")) card.input.crop = read.string("input.crop");
  if (document.at("input").contains("views")) card.input.views = read.integer("input.views");
  if (document.contains("decision")) {
    card.decision.name = read.string("decision.name");
    card.decision.positive_labels = read.strings("decision.positive_labels");
    card.decision.threshold = read.number("decision.threshold");
    card.decision.target_sensitivity = read.number("decision.target_sensitivity");
  }
  if (document.contains("logit_adjustment")) {
    card.adjustment.train_prior = read.floats("logit_adjustment.train_prior");
    card.adjustment.strength = read.number("logit_adjustment.strength");
    if (document.at("logit_adjustment").contains("class_factor")) {
      card.adjustment.class_factor = read.floats("logit_adjustment.class_factor");
      card.adjustment.min_recall = read.numbers_by_name("logit_adjustment.min_recall");
    }
  }
  card.training.epochs = read.integer("training.epochs");
  card.training.best_epoch = read.integer("training.best_epoch");
  card.training.best_validation = read.numbers_by_name("training.best_validation");
  card.training.seed = read.unsigned_integer("training.seed");
  if (document.at("training").contains("split_digest"))
    card.training.split_digest = read.string("training.split_digest");
  if (document.contains("members")) {
    const Json& members = document.at("members");
    if (!members.is_array()) read.fail("members is not a list");
    for (std::size_t i = 0; i < members.size(); ++i) {
      if (!members[i].is_object()) read.fail("members[", i, "] is not an object");
      card.members.push_back(from_json(members[i].dump(), detail::concat(source, "', member '", i)));
    }
  }

  const std::string problem = card_problem(card);
  if (!problem.empty()) read.fail(problem);
  return card;
}

void save_model(const std::filesystem::path& path, const ResNet& model, ModelCard card) {
  card.architecture = model.config();
  card.dscope_version = dscope_version();
  const std::string problem = card_problem(card);
  DSCOPE_CHECK(problem.empty(), ValueError, "save_model: '", path.string(), "': ", problem);
  write_safetensors(path, model.state_dict(),
                    {{kCardKey, card.to_json()}, {"format", "pt"}, {"dscope_version", card.dscope_version}});
}

void save_ensemble(const std::filesystem::path& path, const std::vector<const ResNet*>& networks,
                   ModelCard card) {
  DSCOPE_CHECK(networks.size() >= 2 && networks.size() == card.members.size(), ValueError, "save_ensemble: '",
               path.string(), "': ", networks.size(), " networks and ", card.members.size(),
               " member cards; an ensemble needs at least two of each, as many cards as networks");
  TensorMap tensors;
  for (std::size_t i = 0; i < networks.size(); ++i) {
    ModelCard& member = card.members[i];
    member.architecture = networks[i]->config();
    member.dscope_version = dscope_version();
    member.decision = {};
    member.adjustment = {};
    for (const auto& [name, tensor] : networks[i]->state_dict())
      tensors.emplace(member_prefix(i) + name, tensor);
  }
  const ModelCard& first = card.members.front();
  card.architecture = first.architecture;
  card.input.height = first.input.height;
  card.input.width = first.input.width;
  card.input.mean = first.input.mean;
  card.input.stddev = first.input.stddev;
  card.input.crop = first.input.crop;
  card.dscope_version = dscope_version();
  const std::string problem = card_problem(card);
  DSCOPE_CHECK(problem.empty(), ValueError, "save_ensemble: '", path.string(), "': ", problem);
  write_safetensors(path, tensors,
                    {{kCardKey, card.to_json()}, {"format", "pt"}, {"dscope_version", card.dscope_version}});
}

ModelCard read_model_card(const std::filesystem::path& path) {
  return card_from_metadata("read_model_card", read_safetensors_header(path).metadata, path);
}

ModelCard load_model(const std::filesystem::path& path, Module& model,
                     const std::vector<std::string>& expected_labels) {
  SafetensorsContents contents = read_safetensors(path);
  ModelCard card = card_from_metadata("load_model", contents.metadata, path);
  check_labels("load_model", card, expected_labels, path);
  load_tensors("load_model", contents.tensors, model, path);
  return card;
}

LoadedResNet load_resnet(const std::filesystem::path& path, const std::vector<std::string>& expected_labels) {
  const SafetensorsContents contents = read_safetensors(path);
  const ModelCard card = card_from_metadata("load_resnet", contents.metadata, path);
  check_labels("load_resnet", card, expected_labels, path);
  DSCOPE_CHECK(!card.is_ensemble(), DataError, "load_resnet: '", path.string(), "' is an ensemble of ",
               card.members.size(), " networks, not one ResNet (load it with load_networks)");
  return network_from(card, contents.tensors, "load_resnet: '" + path.string() + "'");
}

LoadedNetworks load_networks(const std::filesystem::path& path,
                             const std::vector<std::string>& expected_labels) {
  SafetensorsContents contents = read_safetensors(path);
  LoadedNetworks loaded;
  loaded.card = card_from_metadata("load_networks", contents.metadata, path);
  check_labels("load_networks", loaded.card, expected_labels, path);
  if (!loaded.card.is_ensemble()) {
    loaded.networks.push_back(
        network_from(loaded.card, contents.tensors, "load_networks: '" + path.string() + "'"));
    return loaded;
  }
  // Every tensor must belong to a member, so that a file with a stray or misnamed tensor is refused as a
  // single network's would be.
  std::vector<TensorMap> member_tensors(loaded.card.members.size());
  std::vector<std::string> strays;
  for (auto& [name, tensor] : contents.tensors) {
    bool placed = false;
    for (std::size_t i = 0; i < member_tensors.size() && !placed; ++i) {
      const std::string prefix = member_prefix(i);
      if (name.compare(0, prefix.size(), prefix) == 0) {
        member_tensors[i].emplace(name.substr(prefix.size()), tensor);
        placed = true;
      }
    }
    if (!placed) strays.push_back(name);
  }
  DSCOPE_CHECK(strays.empty(), ShapeError, "load_networks: '", path.string(),
               "': tensors of no member: ", join(strays));
  for (std::size_t i = 0; i < member_tensors.size(); ++i)
    loaded.networks.push_back(
        network_from(loaded.card.members[i], member_tensors[i],
                     detail::concat("load_networks: '", path.string(), "', member ", i)));
  return loaded;
}

}  // namespace dscope::nn
