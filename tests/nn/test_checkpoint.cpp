// Checkpoints: the safetensors reader and writer (exact byte layout, every dtype and odd shape, and a clear
// error naming the file for every kind of corruption, never a crash), model files (save → load gives the
// same outputs bit for bit, the model card round-trips, every missing or mis-shaped tensor is listed, a
// model for other labels is refused) and training state (an interrupted run resumes exactly).
//
// Set DSCOPE_CHECKPOINT_EXPORT=<folder> to keep a model file and its expected outputs there, for the
// independent reader tests/fixtures/check_safetensors.py.
#include <gtest/gtest.h>
#include <unistd.h>

#include <cmath>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <limits>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "nn/checkpoint.h"
#include "nn/safetensors.h"
#include "optim/adam.h"
#include "optim/sgd.h"
#include "optim/training_state.h"
#include "tensor/ops/all.h"

namespace dscope {
namespace {

namespace fs = std::filesystem;
using Json = nlohmann::json;

// Each test gets its own empty folder (per process, so parallel ctest runs do not collide).
class CheckpointTest : public ::testing::Test {
 protected:
  void SetUp() override {
    const auto* test = ::testing::UnitTest::GetInstance()->current_test_info();
    folder_ = fs::path(::testing::TempDir()) /
              ("dscope_" + std::string(test->name()) + "_" + std::to_string(static_cast<long>(::getpid())));
    fs::remove_all(folder_);
    fs::create_directories(folder_);
  }
  void TearDown() override { fs::remove_all(folder_); }
  fs::path file(const std::string& name) const { return folder_ / name; }
  const fs::path& folder() const { return folder_; }

 private:
  fs::path folder_;
};

std::string read_bytes(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

void write_bytes(const fs::path& path, const std::string& bytes) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
}

std::string length_prefix(std::uint64_t length) {
  std::string bytes(8, '\0');
  for (std::size_t i = 0; i < 8; ++i)
    bytes[i] = static_cast<char>((length >> (8 * i)) & 0xff);
  return bytes;
}

// A safetensors file from a header text and raw data bytes, with nothing checked: for corrupt cases.
void write_raw(const fs::path& path, const std::string& header, const std::string& data) {
  write_bytes(path, length_prefix(header.size()) + header + data);
}

// Runs `action`, expecting an exception of type E whose message contains every one of `parts`.
template <typename E>
::testing::AssertionResult throws_with(const std::function<void()>& action,
                                       const std::vector<std::string>& parts) {
  try {
    action();
  } catch (const E& error) {
    const std::string message = error.what();
    for (const std::string& part : parts)
      if (message.find(part) == std::string::npos)
        return ::testing::AssertionFailure() << "message lacks \"" << part << "\": " << message;
    return ::testing::AssertionSuccess();
  } catch (const std::exception& error) {
    return ::testing::AssertionFailure() << "threw the wrong type: " << error.what();
  }
  return ::testing::AssertionFailure() << "did not throw";
}

// Two handles hold the same bytes: shape, dtype and every element bit for bit (so -0.0 and NaN count).
::testing::AssertionResult bitwise_equal(const Tensor& actual, const Tensor& expected,
                                         const std::string& name) {
  if (actual.shape() != expected.shape() || actual.dtype() != expected.dtype())
    return ::testing::AssertionFailure()
           << name << ": " << dtype_name(actual.dtype()) << " " << actual.shape() << " vs "
           << dtype_name(expected.dtype()) << " " << expected.shape();
  const Tensor a = dense_copy(actual), b = dense_copy(expected);
  const std::size_t bytes = static_cast<std::size_t>(a.numel()) * element_size(a.dtype());
  if (std::memcmp(a.raw_data(), b.raw_data(), bytes) != 0)
    return ::testing::AssertionFailure() << name << ": the bytes differ";
  return ::testing::AssertionSuccess();
}

std::shared_ptr<nn::ResNet> small_resnet(std::uint64_t seed) {
  nn::ResNetConfig config = nn::resnet_config(8, 3, nn::StemKind::Small, 0.25f);
  config.seed = seed;
  return std::make_shared<nn::ResNet>(config);
}

// Two training-mode forwards, so the batch-norm statistics (and the int64 batch counters) are not the
// defaults and a round trip that dropped buffers would be caught.
void update_batch_norm_statistics(nn::ResNet& model) {
  Generator generator(5);
  NoGradGuard no_grad;
  model.train();
  for (int i = 0; i < 2; ++i)
    model(Tensor::randn({4, 3, 8, 8}, generator, 0.5f, 2.0f));
}

nn::ModelCard example_card() {
  nn::ModelCard card;
  card.labels = {"akiec", "bcc", "bkl"};
  card.input.height = 8;
  card.input.width = 8;
  card.input.mean = {0.763f, 0.546f, 0.570f};
  card.input.stddev = {0.141f, 0.153f, 0.170f};
  card.input.views = 8;
  card.training.epochs = 12;
  card.training.best_epoch = 9;
  card.training.best_validation = {{"accuracy", 0.1}, {"balanced_accuracy", 1.0 / 3.0}};
  card.training.seed = std::numeric_limits<std::uint64_t>::max();
  card.decision = {"possible_cancer", {"akiec", "bcc"}, 0.3125, 0.9};
  card.adjustment = {{0.25f, 0.125f, 0.625f}, 0.75, {1.0f, 1.5f, 1.0f}, {{"bcc", 0.6}}};
  return card;
}

// ---------------------------------------------------------------------------------------------------------
// The safetensors format

TEST_F(CheckpointTest, WriterProducesTheSpecifiedBytes) {
  const fs::path path = file("layout.safetensors");
  nn::write_safetensors(
      path, {{"b", Tensor::from_int64({-1, 2}, {2})}, {"a", Tensor::from_vector({1.0f, -2.0f}, {1, 2})}},
      {{"note", "x"}});
  // Keys sorted, tensors in name order, the header padded with spaces to a multiple of 8.
  std::string header =
      R"({"__metadata__":{"note":"x"},"a":{"data_offsets":[0,8],"dtype":"F32","shape":[1,2]},)"
      R"("b":{"data_offsets":[8,24],"dtype":"I64","shape":[2]}})";
  header.append((8 - header.size() % 8) % 8, ' ');
  std::string data;
  const float floats[2] = {1.0f, -2.0f};
  const std::int64_t integers[2] = {-1, 2};
  data.append(reinterpret_cast<const char*>(floats), sizeof(floats));
  data.append(reinterpret_cast<const char*>(integers), sizeof(integers));
  EXPECT_EQ(read_bytes(path), length_prefix(header.size()) + header + data);
  EXPECT_FALSE(fs::exists(path.string() + ".partial"));
}

TEST_F(CheckpointTest, RoundTripsEveryDtypeAndAwkwardShapes) {
  Generator generator(3);
  const Tensor matrix = Tensor::randn({3, 5}, generator);
  const nn::TensorMap tensors = {
      {"matrix", matrix},
      {"transposed_view", matrix.transpose(0, 1)},  // not contiguous: written densely
      {"scalar", Tensor::scalar(-0.0f)},
      {"empty", Tensor::zeros({0, 4})},
      {"labels", Tensor::from_int64({std::numeric_limits<std::int64_t>::min(), 0, 7}, {3})},
      {"special", Tensor::from_vector({std::numeric_limits<float>::infinity(), std::nanf(""),
                                       std::numeric_limits<float>::denorm_min()},
                                      {3})},
  };
  const nn::Metadata metadata = {{"unicode", "Läsion – ≥ 5 mm"}, {"empty", ""}, {"json", R"({"a": [1, 2]})"}};
  const fs::path path = file("all.safetensors");
  nn::write_safetensors(path, tensors, metadata);

  const nn::SafetensorsContents contents = nn::read_safetensors(path);
  EXPECT_EQ(contents.metadata, metadata);
  ASSERT_EQ(contents.tensors.size(), tensors.size());
  for (const auto& [name, tensor] : tensors) {
    ASSERT_TRUE(contents.tensors.count(name)) << name;
    EXPECT_TRUE(bitwise_equal(contents.tensors.at(name), tensor, name));
  }
  const nn::SafetensorsHeader header = nn::read_safetensors_header(path);
  EXPECT_EQ(header.data_start % 8, 0u);
  EXPECT_EQ(header.entries.at("labels").dtype, DType::Int64);
  EXPECT_EQ(header.entries.at("scalar").shape, Shape{});
}

TEST_F(CheckpointTest, RefusesTensorsItCannotStore) {
  EXPECT_TRUE(throws_with<ValueError>(
      [&] {
        nn::write_safetensors(file("x.safetensors"), {{"__metadata__", Tensor::zeros({1})}});
      },
      {"x.safetensors", "__metadata__"}));
  EXPECT_TRUE(throws_with<ValueError>(
      [&] {
        nn::write_safetensors(file("x.safetensors"), {{"a", Tensor()}});
      },
      {"x.safetensors", "'a' is undefined"}));
  EXPECT_TRUE(throws_with<IoError>(
      [&] {
        nn::write_safetensors(file("no_such_folder") / "x.safetensors", {{"a", Tensor::zeros({1})}});
      },
      {"no_such_folder"}));
}

// ---------------------------------------------------------------------------------------------------------
// Corrupt files: each is a DataError (IoError when it cannot be opened) naming the file.

class CorruptFileTest : public CheckpointTest {
 protected:
  ::testing::AssertionResult rejects(const std::string& header, const std::string& data,
                                     const std::vector<std::string>& parts) {
    const fs::path path = file("corrupt.safetensors");
    write_raw(path, header, data);
    std::vector<std::string> expected = parts;
    expected.push_back(path.string());
    return throws_with<DataError>([&] { nn::read_safetensors(path); }, expected);
  }
};

TEST_F(CorruptFileTest, MissingFileIsAnIoError) {
  EXPECT_TRUE(throws_with<IoError>([&] { nn::read_safetensors(file("absent.safetensors")); },
                                   {"absent.safetensors", "No such file"}));
  EXPECT_TRUE(
      throws_with<IoError>([&] { nn::load_resnet(file("absent.safetensors")); }, {"absent.safetensors"}));
  fs::create_directories(file("folder.safetensors"));
  EXPECT_TRUE(throws_with<IoError>([&] { nn::read_safetensors(file("folder.safetensors")); },
                                   {"folder.safetensors", "not a regular file"}));
}

TEST_F(CorruptFileTest, TruncatedAtEveryByteIsAClearError) {
  const fs::path good = file("good.safetensors");
  nn::write_safetensors(
      good, {{"a", Tensor::from_vector({1, 2, 3}, {3})}, {"b", Tensor::from_int64({4}, {1})}}, {{"k", "v"}});
  const std::string bytes = read_bytes(good);
  const std::uint64_t header_end = nn::read_safetensors_header(good).data_start;
  const fs::path cut = file("cut.safetensors");
  for (std::size_t length = 0; length < bytes.size(); ++length) {
    write_bytes(cut, bytes.substr(0, length));
    std::string expected = "run past the end of the data section";  // inside the data
    if (length < 8) {
      expected = "fewer than the 8-byte header length";
    } else if (length < header_end) {
      expected = "runs past the end of the file";
    }
    EXPECT_TRUE(throws_with<DataError>([&] { nn::read_safetensors(cut); }, {"cut.safetensors", expected}))
        << "cut at " << length << " of " << bytes.size() << " bytes";
  }
}

TEST_F(CorruptFileTest, TruncatedModelFileIsAClearError) {
  const fs::path good = file("model.safetensors");
  nn::save_model(good, *small_resnet(1), example_card());
  const std::string bytes = read_bytes(good);
  const fs::path cut = file("cut.safetensors");
  for (std::size_t length : {std::size_t{0}, std::size_t{5}, std::size_t{8}, std::size_t{100},
                             bytes.size() / 2, bytes.size() - 1}) {
    write_bytes(cut, bytes.substr(0, length));
    EXPECT_TRUE(throws_with<DataError>([&] { nn::load_resnet(cut); }, {"cut.safetensors"}))
        << "cut at " << length;
  }
}

TEST_F(CorruptFileTest, HeaderLengthBeyondTheFile) {
  const fs::path path = file("long.safetensors");
  for (std::uint64_t length :
       {std::uint64_t{64}, std::uint64_t{1} << 40, std::numeric_limits<std::uint64_t>::max()}) {
    write_bytes(path, length_prefix(length) + "{}");
    EXPECT_TRUE(throws_with<DataError>([&] { nn::read_safetensors(path); },
                                       {"long.safetensors", "header length " + std::to_string(length),
                                        "runs past the end of the file (10 bytes"}));
  }
}

TEST_F(CorruptFileTest, HeaderThatIsNotJson) {
  EXPECT_TRUE(rejects("{not json", "", {"the header is not valid JSON"}));
  EXPECT_TRUE(rejects("", "", {"the header is not valid JSON"}));
  EXPECT_TRUE(rejects(std::string("{\"a\xff\": 1}"), "", {"the header is not valid JSON"}));  // not UTF-8
  // Deep nesting must be an error, not a stack overflow.
  EXPECT_TRUE(rejects(std::string(100000, '['), "", {"the header is not valid JSON"}));
}

TEST_F(CorruptFileTest, HeaderThatIsNotAnObject) {
  EXPECT_TRUE(rejects("[1, 2, 3]", "", {"the header is a JSON array, expected an object"}));
  EXPECT_TRUE(rejects("42", "", {"the header is a JSON number, expected an object"}));
  EXPECT_TRUE(rejects(R"({"a": [0, 4]})", "", {"tensor 'a' is described by a JSON array"}));
}

TEST_F(CorruptFileTest, OffsetsPastTheEnd) {
  EXPECT_TRUE(rejects(R"({"a": {"dtype": "F32", "shape": [4], "data_offsets": [0, 16]}})",
                      std::string(8, '\0'),
                      {"tensor 'a'", "[0, 16] run past the end of the data section (8 bytes"}));
  EXPECT_TRUE(rejects(R"({"a": {"dtype": "F32", "shape": [0], "data_offsets": [99, 99]}})", "",
                      {"tensor 'a'", "run past the end"}));
}

TEST_F(CorruptFileTest, OverlappingGappedOrIncompleteOffsets) {
  const std::string overlap =
      R"({"a": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]},
          "b": {"dtype": "F32", "shape": [2], "data_offsets": [4, 12]}})";
  EXPECT_TRUE(
      rejects(overlap, std::string(12, '\0'), {"tensor 'b'", "overlap tensor 'a', which ends at byte 8"}));
  const std::string same_bytes =
      R"({"a": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]},
          "b": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]}})";
  EXPECT_TRUE(rejects(same_bytes, std::string(8, '\0'), {"overlap"}));
  const std::string gap =
      R"({"a": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]},
          "b": {"dtype": "F32", "shape": [2], "data_offsets": [12, 20]}})";
  EXPECT_TRUE(rejects(gap, std::string(20, '\0'), {"bytes [8, 12)", "belong to no tensor"}));
  EXPECT_TRUE(rejects(R"({"a": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]}})",
                      std::string(9, '\0'), {"the data section has 9 bytes but the tensors cover only 8"}));
  EXPECT_TRUE(rejects(R"({"a": {"dtype": "F32", "shape": [2], "data_offsets": [8, 0]}})",
                      std::string(8, '\0'), {"end before they begin"}));
}

TEST_F(CorruptFileTest, OffsetsThatDoNotMatchShapeAndDtype) {
  EXPECT_TRUE(rejects(R"({"a": {"dtype": "F32", "shape": [3], "data_offsets": [0, 8]}})",
                      std::string(8, '\0'),
                      {"tensor 'a'", "shape [3] of F32 needs 12 bytes but data_offsets [0, 8] span 8"}));
  EXPECT_TRUE(rejects(R"({"a": {"dtype": "I64", "shape": [2], "data_offsets": [0, 8]}})",
                      std::string(8, '\0'), {"of I64 needs 16 bytes"}));
  // A shape whose byte count overflows 64 bits must not wrap around to a small, matching number.
  EXPECT_TRUE(rejects(R"({"a": {"dtype": "F32", "shape": [4611686018427387904, 4], "data_offsets": [0, 0]}})",
                      "", {"needs more than 2^64 bytes"}));
}

TEST_F(CorruptFileTest, UnknownDtypeAndMalformedFields) {
  EXPECT_TRUE(rejects(R"({"a": {"dtype": "F64", "shape": [1], "data_offsets": [0, 8]}})",
                      std::string(8, '\0'),
                      {"tensor 'a' has dtype \"F64\"", "dscope reads \"F32\" and \"I64\""}));
  EXPECT_TRUE(rejects(R"({"a": {"shape": [1], "data_offsets": [0, 4]}})", std::string(4, '\0'),
                      {"tensor 'a' has no \"dtype\" field"}));
  EXPECT_TRUE(rejects(R"({"a": {"dtype": "F32", "shape": [-1], "data_offsets": [0, 4]}})",
                      std::string(4, '\0'), {"every shape extent must be a non-negative integer, got -1"}));
  EXPECT_TRUE(rejects(R"({"a": {"dtype": "F32", "shape": [1.5], "data_offsets": [0, 4]}})",
                      std::string(4, '\0'), {"non-negative integer, got 1.5"}));
  EXPECT_TRUE(rejects(R"({"a": {"dtype": "F32", "shape": 1, "data_offsets": [0, 4]}})", std::string(4, '\0'),
                      {"shape must be an array"}));
  EXPECT_TRUE(rejects(R"({"a": {"dtype": "F32", "shape": [1], "data_offsets": [0, 4, 8]}})",
                      std::string(4, '\0'), {"data_offsets must be [begin, end]"}));
  EXPECT_TRUE(rejects(R"({"__metadata__": {"k": 3}})", "", {"__metadata__ value of 'k' must be a string"}));
  EXPECT_TRUE(rejects(R"({"__metadata__": [1]})", "", {"__metadata__ is a JSON array"}));
}

// Every single-byte change of a small file's header either still parses or is a DataError: never a crash,
// never another exception (the sanitizer build checks that no read goes out of bounds).
TEST_F(CorruptFileTest, EveryHeaderByteChangedIsHandled) {
  const fs::path good = file("good.safetensors");
  nn::write_safetensors(good, {{"a", Tensor::from_vector({1, 2}, {2})}, {"b", Tensor::from_int64({3}, {1})}});
  const std::string bytes = read_bytes(good);
  const std::size_t header_end = nn::read_safetensors_header(good).data_start;
  const fs::path changed = file("changed.safetensors");
  int rejected = 0;
  for (std::size_t position = 0; position < header_end; ++position) {
    for (char replacement : {'0', '9', '"', '}', ',', '-', '\xff', '\0'}) {
      std::string mutated = bytes;
      if (mutated[position] == replacement) continue;
      mutated[position] = replacement;
      write_bytes(changed, mutated);
      try {
        nn::read_safetensors(changed);
      } catch (const DataError& error) {
        ++rejected;
        EXPECT_NE(std::string(error.what()).find("changed.safetensors"), std::string::npos) << error.what();
      } catch (const std::exception& error) {
        ADD_FAILURE() << "byte " << position << " set to " << static_cast<int>(replacement) << ": "
                      << error.what();
      }
    }
  }
  EXPECT_GT(rejected, 0);
}

// ---------------------------------------------------------------------------------------------------------
// Model files

TEST_F(CheckpointTest, SaveThenLoadGivesIdenticalOutputsBitForBit) {
  const auto original = small_resnet(1);
  update_batch_norm_statistics(*original);
  original->eval();
  Generator generator(9);
  const Tensor images = Tensor::randn({2, 3, 8, 8}, generator);
  NoGradGuard no_grad;
  const Tensor expected = (*original)(images);

  const fs::path path = file("model.safetensors");
  nn::save_model(path, *original, example_card());

  // Into a model built with other weights: every parameter and buffer is overwritten.
  const auto other = small_resnet(2);
  nn::load_model(path, *other, {"akiec", "bcc", "bkl"});
  for (const auto& [name, tensor] : original->state_dict())
    EXPECT_TRUE(bitwise_equal(other->state_dict().at(name), tensor, name));
  other->eval();
  EXPECT_TRUE(bitwise_equal((*other)(images), expected, "logits after load_model"));

  // From the file alone.
  const nn::LoadedResNet loaded = nn::load_resnet(path);
  EXPECT_FALSE(loaded.model->is_training());
  EXPECT_TRUE(bitwise_equal((*loaded.model)(images), expected, "logits after load_resnet"));

  if (const char* folder = std::getenv("DSCOPE_CHECKPOINT_EXPORT")) {
    nn::save_model(fs::path(folder) / "model.safetensors", *original, example_card());
    nn::write_safetensors(fs::path(folder) / "expected.safetensors",
                          {{"images", images}, {"logits", expected}});
  }
}

TEST_F(CheckpointTest, ModelCardRoundTrips) {
  const fs::path path = file("model.safetensors");
  const nn::ModelCard card = example_card();
  nn::ResNetConfig config = nn::resnet_config(18, 3, nn::StemKind::ImageNet, 0.125f);
  config.zero_init_residual = true;
  config.seed = 1234567890123456789ULL;
  nn::save_model(path, nn::ResNet(config), card);

  const nn::ModelCard read = nn::read_model_card(path);
  EXPECT_EQ(read.labels, card.labels);
  EXPECT_EQ(read.input.height, 8);
  EXPECT_EQ(read.input.width, 8);
  EXPECT_EQ(read.input.mean, card.input.mean);
  EXPECT_EQ(read.input.stddev, card.input.stddev);
  EXPECT_EQ(read.training.epochs, card.training.epochs);
  EXPECT_EQ(read.training.best_epoch, card.training.best_epoch);
  EXPECT_EQ(read.training.best_validation, card.training.best_validation);  // doubles exactly
  EXPECT_EQ(read.training.seed, card.training.seed);
  EXPECT_EQ(read.input.crop, "centre_square");
  EXPECT_EQ(read.input.views, 8);
  EXPECT_EQ(read.decision.name, "possible_cancer");
  EXPECT_EQ(read.decision.positive_labels, card.decision.positive_labels);
  EXPECT_EQ(read.decision.threshold, 0.3125);
  EXPECT_EQ(read.decision.target_sensitivity, 0.9);
  EXPECT_EQ(read.adjustment.train_prior, card.adjustment.train_prior);
  EXPECT_EQ(read.adjustment.strength, 0.75);
  EXPECT_EQ(read.adjustment.class_factor, card.adjustment.class_factor);
  EXPECT_EQ(read.adjustment.min_recall, card.adjustment.min_recall);
  EXPECT_EQ(read.dscope_version, nn::dscope_version());
  const nn::ResNetConfig& architecture = read.architecture;
  EXPECT_EQ(architecture.block, config.block);
  EXPECT_EQ(architecture.blocks_per_stage, config.blocks_per_stage);
  EXPECT_EQ(architecture.stage_widths, config.stage_widths);
  EXPECT_EQ(architecture.width_multiplier, config.width_multiplier);
  EXPECT_EQ(architecture.stem, config.stem);
  EXPECT_EQ(architecture.input_channels, config.input_channels);
  EXPECT_EQ(architecture.classes, config.classes);
  EXPECT_EQ(architecture.zero_init_residual, config.zero_init_residual);
  EXPECT_EQ(architecture.seed, config.seed);

  // The flat keys beside the card, for tools that do not parse it.
  const nn::Metadata metadata = nn::read_safetensors_header(path).metadata;
  EXPECT_EQ(metadata.at("format"), "pt");
  EXPECT_EQ(metadata.at("dscope_version"), nn::dscope_version());
  EXPECT_EQ(Json::parse(metadata.at("dscope")).at("architecture").at("name"), "resnet");
}

TEST_F(CheckpointTest, EnsembleSavesEveryNetworkAndLoadsThemBack) {
  const auto first = small_resnet(1), second = small_resnet(2);
  update_batch_norm_statistics(*first);
  first->eval();
  second->eval();
  Generator generator(9);
  const Tensor images = Tensor::randn({2, 3, 8, 8}, generator);
  NoGradGuard no_grad;
  nn::ModelCard card = example_card();
  card.training.split_digest = "0123456789abcdef";
  nn::ModelCard other_member = example_card();
  other_member.input.height = other_member.input.width = 12;
  other_member.training.seed = 2;
  card.members = {example_card(), other_member};
  const fs::path path = file("ensemble.safetensors");
  nn::save_ensemble(path, {first.get(), second.get()}, card);

  const nn::LoadedNetworks loaded = nn::load_networks(path, {"akiec", "bcc", "bkl"});
  ASSERT_EQ(loaded.networks.size(), 2u);
  EXPECT_TRUE(loaded.card.is_ensemble());
  EXPECT_EQ(loaded.card.training.split_digest, "0123456789abcdef");
  EXPECT_EQ(loaded.card.decision.threshold, card.decision.threshold);  // the ensemble's own rules
  EXPECT_EQ(loaded.card.input.views, 8);
  EXPECT_EQ(loaded.networks[1].card.input.height, 12);  // each member keeps its own input
  EXPECT_EQ(loaded.networks[1].card.training.seed, 2u);
  EXPECT_TRUE(loaded.networks[0].card.decision.positive_labels.empty());  // members carry no decision
  EXPECT_TRUE(bitwise_equal((*loaded.networks[0].model)(images), (*first)(images), "member 0"));
  EXPECT_TRUE(bitwise_equal((*loaded.networks[1].model)(images), (*second)(images), "member 1"));
  for (const auto& [name, tensor] : nn::read_safetensors(path).tensors)
    EXPECT_TRUE(name.rfind("member0.", 0) == 0 || name.rfind("member1.", 0) == 0) << name;

  // A single network's file loads as one network; an ensemble's is not one ResNet.
  nn::save_model(file("single.safetensors"), *first, example_card());
  EXPECT_EQ(nn::load_networks(file("single.safetensors")).networks.size(), 1u);
  EXPECT_TRUE(
      throws_with<DataError>([&] { nn::load_resnet(path); }, {"ensemble.safetensors", "ensemble of 2"}));

  // What an ensemble cannot be: one network, cards that do not match the networks, members for other labels.
  nn::ModelCard one = card;
  one.members.resize(1);
  EXPECT_TRUE(throws_with<ValueError>([&] { nn::save_ensemble(file("one.safetensors"), {first.get()}, one); },
                                      {"at least two"}));
  EXPECT_TRUE(throws_with<ValueError>(
      [&] {
        nn::save_ensemble(file("three.safetensors"), {first.get(), second.get(), first.get()}, card);
      },
      {"3 networks and 2 member cards"}));
  nn::ModelCard other_labels = card;
  other_labels.members[1].labels = {"akiec", "bcc", "mel"};
  EXPECT_TRUE(throws_with<ValueError>(
      [&] {
        nn::save_ensemble(file("labels.safetensors"), {first.get(), second.get()}, other_labels);
      },
      {"member 1", "akiec, bcc, mel"}));

  // A tensor that belongs to no member, or a member missing one: refused, naming them.
  nn::TensorMap tensors = nn::read_safetensors(path).tensors;
  const nn::Metadata metadata = nn::read_safetensors_header(path).metadata;
  tensors.emplace("member2.fc.bias", tensors.at("member0.fc.bias"));
  tensors.erase("member1.fc.weight");
  nn::write_safetensors(file("edited.safetensors"), tensors, metadata);
  EXPECT_TRUE(throws_with<ShapeError>([&] { nn::load_networks(file("edited.safetensors")); },
                                      {"edited.safetensors", "member2.fc.bias"}));
  tensors.erase("member2.fc.bias");
  nn::write_safetensors(file("edited.safetensors"), tensors, metadata);
  EXPECT_TRUE(throws_with<ShapeError>([&] { nn::load_networks(file("edited.safetensors")); },
                                      {"member 1", "fc.weight"}));
}

TEST_F(CheckpointTest, LoadListsEveryMissingUnexpectedAndMismatchedTensor) {
  const auto model = small_resnet(1);
  const fs::path good = file("model.safetensors");
  nn::save_model(good, *model, example_card());
  nn::TensorMap tensors = model->state_dict();
  tensors.erase("fc.bias");
  tensors["fc.extra"] = Tensor::zeros({2});
  tensors["conv1.weight"] = Tensor::zeros({4, 3, 5, 5});
  tensors["bn1.num_batches_tracked"] = Tensor::zeros({});  // float32 where int64 is expected
  const fs::path path = file("edited.safetensors");
  nn::write_safetensors(path, tensors, nn::read_safetensors_header(good).metadata);

  const auto target = small_resnet(2);
  EXPECT_TRUE(throws_with<ShapeError>(
      [&] { nn::load_model(path, *target); },
      {"edited.safetensors", "4 entries", "missing: fc.bias [3]", "unexpected: fc.extra [2]",
       "conv1.weight: expected float32 [4,3,3,3], got float32 [4,3,5,5]",
       "bn1.num_batches_tracked: expected int64 [], got float32 []"}));
  EXPECT_TRUE(
      throws_with<ShapeError>([&] { nn::load_resnet(path); }, {"edited.safetensors", "missing: fc.bias"}));
  // A model of another shape altogether.
  nn::ResNet wider(nn::resnet_config(8, 3, nn::StemKind::Small, 0.5f));
  EXPECT_TRUE(throws_with<ShapeError>([&] { nn::load_model(good, wider); },
                                      {"model.safetensors", "conv1.weight: expected float32 [8,3,3,3]"}));
}

TEST_F(CheckpointTest, ModelForOtherLabelsIsRefused) {
  const fs::path path = file("model.safetensors");
  nn::save_model(path, *small_resnet(1), example_card());
  const auto model = small_resnet(2);
  EXPECT_TRUE(throws_with<ValueError>(
      [&] {
        nn::load_model(path, *model, {"akiec", "bcc", "mel"});
      },
      {"model.safetensors", "labels [akiec, bcc, bkl]", "[akiec, bcc, mel]",
       "class 2 is 'bkl', expected 'mel'"}));
  EXPECT_TRUE(throws_with<ValueError>(
      [&] {
        nn::load_resnet(path, {"akiec", "bcc"});
      },
      {"model.safetensors", "3 labels instead of 2"}));
  EXPECT_NO_THROW(nn::load_resnet(path, {"akiec", "bcc", "bkl"}));
}

TEST_F(CheckpointTest, SaveRefusesACardThatDoesNotFitTheModel) {
  nn::ModelCard card = example_card();
  card.labels = {"one", "two"};
  EXPECT_TRUE(throws_with<ValueError>([&] { nn::save_model(file("m.safetensors"), *small_resnet(1), card); },
                                      {"m.safetensors", "2 labels for a model of 3 classes"}));
  card = example_card();
  card.input.stddev = {1.0f, 0.0f, 1.0f};
  EXPECT_TRUE(throws_with<ValueError>([&] { nn::save_model(file("m.safetensors"), *small_resnet(1), card); },
                                      {"standard deviation 0 is not positive"}));
  EXPECT_FALSE(fs::exists(file("m.safetensors")));
}

TEST_F(CheckpointTest, FileWithoutOrWithABrokenModelCard) {
  const fs::path plain = file("plain.safetensors");
  nn::write_safetensors(plain, small_resnet(1)->state_dict());
  EXPECT_TRUE(throws_with<DataError>([&] { nn::load_resnet(plain); },
                                     {"plain.safetensors", "no \"dscope\" metadata"}));

  const fs::path good = file("model.safetensors");
  nn::save_model(good, *small_resnet(1), example_card());
  const nn::TensorMap tensors = nn::read_safetensors(good).tensors;
  const Json card = Json::parse(nn::read_model_card(good).to_json());
  const fs::path broken = file("broken.safetensors");
  auto rejects_card = [&](const Json& edited, const std::string& part) {
    nn::write_safetensors(broken, tensors, {{"dscope", edited.dump()}});
    return throws_with<DataError>([&] { nn::load_resnet(broken); },
                                  {"model card of '", "broken.safetensors", part});
  };
  Json edited = card;
  edited["architecture"]["classes"] = "seven";
  EXPECT_TRUE(rejects_card(edited, "'architecture.classes' must be a 64-bit integer, got \"seven\""));
  edited = card;
  edited["training"].erase("seed");
  EXPECT_TRUE(rejects_card(edited, "'training.seed' is missing"));
  edited = card;
  edited["format_version"] = 2;
  EXPECT_TRUE(rejects_card(edited, "format_version 2 is not 1"));
  edited = card;
  edited["architecture"]["stage_widths"] = {16, 32, 1 << 30};
  EXPECT_TRUE(rejects_card(edited, "stage_widths holds 1073741824"));
  edited = card;
  edited["architecture"]["width_multiplier"] = 1e300;
  EXPECT_TRUE(rejects_card(edited, "within float range"));
  edited = card;
  edited["labels"] = {"a", "a", "b"};
  EXPECT_TRUE(rejects_card(edited, "label 'a' is empty or appears twice"));
  edited = card;
  edited["decision"]["positive_labels"] = {"akiec", "mel"};
  EXPECT_TRUE(rejects_card(edited, "decision positive label 'mel' is not one of the model's labels"));
  edited = card;
  edited["decision"]["threshold"] = 1.5;
  EXPECT_TRUE(rejects_card(edited, "decision threshold 1.5 is outside [0, 1]"));
  edited = card;
  edited["logit_adjustment"]["train_prior"] = {0.5, 0.5};
  EXPECT_TRUE(rejects_card(edited, "logit adjustment has 2 class priors for 3 labels"));
  edited = card;
  edited["logit_adjustment"]["train_prior"] = {0.5, 0.0, 0.5};
  EXPECT_TRUE(rejects_card(edited, "logit adjustment prior 0 is outside (0, 1]"));
  edited = card;
  edited["logit_adjustment"]["class_factor"] = {1.0, 2.0};
  EXPECT_TRUE(rejects_card(edited, "logit adjustment has 2 class factors for 3 labels"));
  edited = card;
  edited["logit_adjustment"]["class_factor"] = {1.0, -2.0, 1.0};
  EXPECT_TRUE(rejects_card(edited, "logit adjustment class factor -2 is outside (0, 1e6]"));
  edited = card;
  edited["logit_adjustment"]["min_recall"] = {{"mel", 0.6}};
  EXPECT_TRUE(rejects_card(edited, "minimum recall for 'mel', which is not one of the model's labels"));
  edited = card;
  edited["logit_adjustment"]["min_recall"] = {{"bcc", 1.5}};
  EXPECT_TRUE(rejects_card(edited, "minimum recall 1.5 for 'bcc' is outside (0, 1]"));
  edited = card;
  edited["input"]["crop"] = "random";
  EXPECT_TRUE(rejects_card(edited, "input crop 'random'"));
  edited = card;
  edited["input"]["views"] = 4;
  EXPECT_TRUE(rejects_card(edited, "input views 4 is neither 1 nor 8"));
  // Cards written before the decision, crop and views fields existed still load, with the defaults.
  edited = card;
  edited.erase("decision");
  edited["logit_adjustment"].erase("class_factor");
  edited["logit_adjustment"].erase("min_recall");
  nn::write_safetensors(broken, tensors, {{"dscope", edited.dump()}});
  EXPECT_TRUE(nn::load_resnet(broken).card.adjustment.class_factor.empty());
  edited.erase("logit_adjustment");
  edited["input"].erase("crop");
  edited["input"].erase("views");
  nn::write_safetensors(broken, tensors, {{"dscope", edited.dump()}});
  EXPECT_EQ(nn::load_resnet(broken).card.input.views, 1);
  EXPECT_TRUE(nn::load_resnet(broken).card.decision.positive_labels.empty());
  EXPECT_TRUE(nn::load_resnet(broken).card.adjustment.train_prior.empty());
  nn::write_safetensors(broken, tensors, {{"dscope", "{not json"}});
  EXPECT_TRUE(
      throws_with<DataError>([&] { nn::load_resnet(broken); }, {"broken.safetensors", "not valid JSON"}));
}

// ---------------------------------------------------------------------------------------------------------
// Training state

// One training step on a batch drawn from `generator`, so the generator's state matters for what follows.
void train_step(nn::ResNet& model, optim::Optimizer& optimizer, Generator& generator) {
  const Tensor images = Tensor::randn({4, 3, 8, 8}, generator);
  std::vector<std::int64_t> labels;
  for (int i = 0; i < 4; ++i)
    labels.push_back(static_cast<std::int64_t>(generator.below(3)));
  optimizer.zero_grad();
  cross_entropy(model(images), Tensor::from_int64(labels, {4})).backward();
  optimizer.step();
}

TEST(GeneratorState, RestoringTheStateRepeatsTheSequence) {
  Generator generator(77);
  generator.normal();  // leaves a spare normal waiting
  const Generator::State saved = generator.state();
  const std::vector<float> expected = {generator.normal(), generator.uniform(), generator.normal()};
  Generator other(1);
  other.set_state(saved);
  EXPECT_EQ((std::vector<float>{other.normal(), other.uniform(), other.normal()}), expected);
  EXPECT_EQ(other.seed(), 77u);
}

using OptimizerFactory = std::function<std::unique_ptr<optim::Optimizer>(const nn::ResNet&)>;

// Trains kSteps steps straight through, and again with an interruption after kInterruptAt steps: the model
// and training state are saved, and a fresh model (other initial weights), optimizer and generator (another
// seed) resume from the files. Both runs must end with the same bits.
void expect_exact_resume(const OptimizerFactory& make_optimizer, const fs::path& folder) {
  constexpr int kSteps = 5, kInterruptAt = 2;
  const auto straight = small_resnet(1);
  const auto straight_optimizer = make_optimizer(*straight);
  Generator straight_data(11);
  for (int step = 0; step < kSteps; ++step)
    train_step(*straight, *straight_optimizer, straight_data);

  const fs::path model_path = folder / "model.safetensors", state_path = folder / "state.safetensors";
  {
    const auto first = small_resnet(1);
    const auto optimizer = make_optimizer(*first);
    Generator data(11);
    for (int step = 0; step < kInterruptAt; ++step)
      train_step(*first, *optimizer, data);
    nn::save_model(model_path, *first, example_card());
    optim::TrainingProgress progress;
    progress.epoch = 1;
    progress.step = optimizer->steps_taken();
    progress.values = {{"best_accuracy", 0.7}, {"epochs_without_improvement", 2.0}};
    optim::save_training_state(state_path, *optimizer, progress, {{"data", &data}});
  }
  const auto resumed = small_resnet(99);
  const auto optimizer = make_optimizer(*resumed);
  Generator data(12345);
  nn::load_model(model_path, *resumed);
  const optim::TrainingProgress progress =
      optim::load_training_state(state_path, *optimizer, {{"data", &data}});
  EXPECT_EQ(progress.epoch, 1);
  EXPECT_EQ(progress.step, kInterruptAt);
  EXPECT_EQ(optimizer->steps_taken(), kInterruptAt);
  EXPECT_EQ(progress.values.at("best_accuracy"), 0.7);
  EXPECT_EQ(progress.values.at("epochs_without_improvement"), 2.0);
  for (int step = kInterruptAt; step < kSteps; ++step)
    train_step(*resumed, *optimizer, data);

  for (const auto& [name, tensor] : straight->state_dict())
    EXPECT_TRUE(bitwise_equal(resumed->state_dict().at(name), tensor, name));
  for (const auto& [name, tensor] : straight_optimizer->state_dict())
    EXPECT_TRUE(bitwise_equal(optimizer->state_dict().at(name), tensor, "optimizer " + name));
  EXPECT_EQ(data.next_u64(), straight_data.next_u64());
}

TEST_F(CheckpointTest, InterruptedTrainingResumesExactlyWithAdamW) {
  expect_exact_resume(
      [](const nn::ResNet& model) {
        return std::make_unique<optim::AdamW>(model.parameters(), 1e-2f, 1e-2f);
      },
      folder());
}

TEST_F(CheckpointTest, InterruptedTrainingResumesExactlyWithSgdMomentum) {
  expect_exact_resume(
      [](const nn::ResNet& model) {
        return std::make_unique<optim::Sgd>(model.parameters(), 0.05f, 5e-4f, optim::SgdOptions{0.9f, true});
      },
      folder());
}

TEST_F(CheckpointTest, TrainingStateThatDoesNotFitIsRefused) {
  const auto model = small_resnet(1);
  optim::Sgd optimizer(model->parameters(), 0.05f, 0.0f, optim::SgdOptions{0.9f, false});
  Generator data(1), augment(2);
  train_step(*model, optimizer, data);
  const fs::path path = file("state.safetensors");
  optim::save_training_state(path, optimizer, {}, {{"data", &data}, {"augment", &augment}});

  EXPECT_TRUE(throws_with<ValueError>(
      [&] {
        optim::load_training_state(path, optimizer, {{"data", &data}, {"dropout", &augment}});
      },
      {"state.safetensors", "missing 'dropout'", "unexpected 'augment'"}));
  // An optimizer of another kind, and one over other parameters.
  optim::Adam adam(model->parameters());
  EXPECT_TRUE(throws_with<Error>(
      [&] {
        optim::load_training_state(path, adam, {{"data", &data}, {"augment", &augment}});
      },
      {"state.safetensors", "exp_avg"}));
  const auto wider = std::make_shared<nn::ResNet>(nn::resnet_config(8, 3, nn::StemKind::Small, 0.5f));
  optim::Sgd other(wider->parameters(), 0.05f, 0.0f, optim::SgdOptions{0.9f, false});
  EXPECT_TRUE(throws_with<Error>(
      [&] {
        optim::load_training_state(path, other, {{"data", &data}, {"augment", &augment}});
      },
      {"state.safetensors"}));
  // A model file is not a training state.
  nn::save_model(file("model.safetensors"), *model, example_card());
  EXPECT_TRUE(
      throws_with<DataError>([&] { optim::load_training_state(file("model.safetensors"), optimizer, {}); },
                             {"model.safetensors", "no \"dscope_training_state\" metadata"}));
  // Truncated.
  const std::string bytes = read_bytes(path);
  write_bytes(file("cut.safetensors"), bytes.substr(0, bytes.size() - 3));
  EXPECT_TRUE(throws_with<DataError>(
      [&] { optim::load_training_state(file("cut.safetensors"), optimizer, {}); }, {"cut.safetensors"}));
}

}  // namespace
}  // namespace dscope
