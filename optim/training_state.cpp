#include "optim/training_state.h"

#include <algorithm>
#include <cmath>
#include <string_view>

#include "nn/checkpoint.h"
#include "nn/json_reader.h"
#include "nn/safetensors.h"

namespace dscope::optim {
namespace {

using Json = nlohmann::json;

constexpr const char* kStateKey = "dscope_training_state";
constexpr const char* kFormat = "dscope-training-state";
constexpr std::int64_t kFormatVersion = 1;
constexpr std::string_view kOptimizerPrefix = "optimizer.";

Json generator_to_json(const Generator& generator) {
  const Generator::State state = generator.state();
  return {{"words", state.words},
          {"seed", state.seed},
          {"spare_normal", static_cast<double>(state.spare_normal)},
          {"has_spare_normal", state.has_spare_normal}};
}

Generator::State generator_from_json(const nn::JsonReader& read, const std::string& name) {
  const std::string prefix = "generators." + name + ".";
  Generator::State state;
  const std::vector<std::uint64_t> words = read.unsigned_integers(prefix + "words");
  if (words.size() != state.words.size())
    read.fail("'", prefix, "words' holds ", words.size(), " words, expected ", state.words.size());
  if (words == std::vector<std::uint64_t>(words.size(), 0))
    read.fail("'", prefix, "words' are all zero, a state xoshiro256** never reaches");
  std::copy(words.begin(), words.end(), state.words.begin());
  state.seed = read.unsigned_integer(prefix + "seed");
  state.spare_normal = read.float32(prefix + "spare_normal");
  state.has_spare_normal = read.boolean(prefix + "has_spare_normal");
  return state;
}

// The names in `requested` that `saved` lacks, and those it has that were not requested.
std::string generator_mismatch(const NamedGenerators& requested, const Json& saved) {
  std::string problems;
  for (const auto& [name, generator] : requested)
    if (saved.find(name) == saved.end()) problems += " missing '" + name + "';";
  for (const auto& [name, value] : saved.items())
    if (requested.find(name) == requested.end()) problems += " unexpected '" + name + "';";
  return problems;
}

}  // namespace

void save_training_state(const std::filesystem::path& path, const Optimizer& optimizer,
                         const TrainingProgress& progress, const NamedGenerators& generators) {
  const std::string where = "save_training_state: '" + path.string() + "': ";
  DSCOPE_CHECK(progress.epoch >= 0 && progress.step >= 0, ValueError, where, "epoch ", progress.epoch,
               " and step ", progress.step, " must not be negative");
  for (const auto& [name, value] : progress.values)
    DSCOPE_CHECK(std::isfinite(value), ValueError, where, "value '", name, "' is ", value, ", not finite");
  Json generator_states = Json::object();
  for (const auto& [name, generator] : generators) {
    DSCOPE_CHECK(generator != nullptr && !name.empty() && name.find('.') == std::string::npos, ValueError,
                 where, "generator '", name, "' is null, or its name is empty or contains '.'");
    generator_states[name] = generator_to_json(*generator);
  }
  const Json document = {{"format", kFormat},         {"format_version", kFormatVersion},
                         {"epoch", progress.epoch},   {"step", progress.step},
                         {"values", progress.values}, {"generators", generator_states}};

  nn::TensorMap tensors;
  for (const auto& [name, tensor] : optimizer.state_dict())
    tensors.emplace(std::string(kOptimizerPrefix) + name, tensor);
  nn::write_safetensors(path, tensors,
                        {{kStateKey, document.dump()}, {"dscope_version", nn::dscope_version()}});
}

TrainingProgress load_training_state(const std::filesystem::path& path, Optimizer& optimizer,
                                     const NamedGenerators& generators) {
  const nn::SafetensorsContents contents = nn::read_safetensors(path);
  const std::string context = "training state '" + path.string() + "'";
  const auto found = contents.metadata.find(kStateKey);
  DSCOPE_CHECK(found != contents.metadata.end(), DataError, context, ": no \"", kStateKey,
               "\" metadata (is it a model file rather than a training state?)");
  const Json document = nn::JsonReader::parse_object(found->second, context);
  const nn::JsonReader read(document, context);
  if (read.string("format") != kFormat)
    read.fail("format is '", read.string("format"), "', expected '", kFormat, "'");
  if (read.integer("format_version") != kFormatVersion)
    read.fail("format_version ", read.integer("format_version"), " is not ", kFormatVersion,
              ", the only one this dscope (", nn::dscope_version(), ") reads");

  // Everything is parsed and checked before anything is restored, so a bad file changes nothing it can avoid.
  TrainingProgress progress;
  progress.epoch = read.integer("epoch");
  progress.step = read.integer("step");
  if (progress.epoch < 0 || progress.step < 0)
    read.fail("epoch ", progress.epoch, " and step ", progress.step, " must not be negative");
  progress.values = read.numbers_by_name("values");

  const Json& saved_generators = read.field("generators");
  if (!saved_generators.is_object()) read.fail("'generators' must be an object");
  const std::string mismatch = generator_mismatch(generators, saved_generators);
  DSCOPE_CHECK(mismatch.empty(), ValueError, "load_training_state: '", path.string(),
               "': the saved generators do not match the ones to restore:", mismatch);
  std::vector<std::pair<Generator*, Generator::State>> generator_states;
  for (const auto& [name, generator] : generators) {
    DSCOPE_CHECK(generator != nullptr && name.find('.') == std::string::npos, ValueError,
                 "load_training_state: generator '", name, "' is null, or its name contains '.'");
    generator_states.emplace_back(generator, generator_from_json(read, name));
  }

  std::map<std::string, Tensor> optimizer_state;
  for (const auto& [name, tensor] : contents.tensors) {
    if (!name.starts_with(kOptimizerPrefix))
      read.fail("tensor '", name, "' does not start with '", kOptimizerPrefix, "'");
    optimizer_state.emplace(name.substr(kOptimizerPrefix.size()), tensor);
  }
  try {
    optimizer.load_state_dict(optimizer_state);
  } catch (const ShapeError& error) {
    throw ShapeError(detail::concat("load_training_state: '", path.string(), "': ", error.what()));
  } catch (const ValueError& error) {
    throw ValueError(detail::concat("load_training_state: '", path.string(), "': ", error.what()));
  }
  for (const auto& [generator, state] : generator_states)
    generator->set_state(state);
  return progress;
}

}  // namespace dscope::optim
