// Golden tests: dscope's ops against PyTorch on the fixtures in tests/fixtures/ (written by gen_golden.py;
// format in tests/fixtures/README.md). PyTorch computed them in float64 from float32 inputs, so they are
// exact to float32 rounding and the tolerance measures our float32 error: every output and gradient must
// satisfy |ours − golden| ≤ 1e-5 + 1e-4·|golden|. The absolute floor covers values near zero (a gradient
// that cancels to ~1e-7), where a relative bound alone would demand more than float32 can give.
//
// The fixture loader (tests/support/fixture.h) is tested here too: a missing file, a bad magic, another
// format version or a truncated file is an IoError or DataError naming the file, reported as a test failure,
// not a crash.
#include <gtest/gtest.h>

#include <cstdint>
#include <fstream>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "tensor/ops/all.h"
#include "tests/support/compare.h"
#include "tests/support/fixture.h"

namespace dscope {
namespace {

using testing::Fixture;
using testing::kFixtureFormatVersion;
using testing::kFixtureMagic;
using testing::load_fixture;

constexpr double kAtol = 1e-5, kRtol = 1e-4;

::testing::AssertionResult matches(const Tensor& actual, const Tensor& expected, const std::string& what) {
  if (!actual.defined()) return ::testing::AssertionFailure() << what << ": not computed (undefined tensor)";
  if (actual.shape() != expected.shape())
    return ::testing::AssertionFailure()
           << what << ": shape " << actual.shape() << ", expected " << expected.shape();
  return testing::all_close(actual.to_vector<float>(), expected.to_vector<float>(), kAtol, kRtol,
                            what + " " + expected.shape().to_string());
}

Tensor leaf(const Tensor& value) {
  Tensor copy = dense_copy(value);
  copy.set_requires_grad(true);
  return copy;
}

std::vector<std::int64_t> int64_values(const Fixture& fixture, const std::string& name) {
  return fixture.get(name).to_vector<std::int64_t>();
}

TEST(Golden, Conv2d) {
  const std::optional<Fixture> fixture = load_fixture("conv2d.bin");
  ASSERT_TRUE(fixture.has_value());
  for (const std::string name :
       {"3x3_stride1_pad1_bias", "3x3_stride2_pad1", "3x3_dilation2_pad2_bias", "1x1_stride2",
        "1x1_stride1_bias", "3x5_stride2x1_pad1x2_bias", "5x5_stride1_pad0"}) {
    const std::string at = "conv2d " + name + " ";
    const std::vector<std::int64_t> geometry = int64_values(*fixture, name + "/geometry");
    Conv2dOptions options;
    options.stride_h = geometry[0], options.stride_w = geometry[1];
    options.padding_h = geometry[2], options.padding_w = geometry[3];
    options.dilation_h = geometry[4], options.dilation_w = geometry[5];
    const Tensor input = leaf(fixture->get(name + "/input"));
    const Tensor weight = leaf(fixture->get(name + "/weight"));
    const bool has_bias = fixture->contains(name + "/bias");
    const Tensor bias = has_bias ? leaf(fixture->get(name + "/bias")) : Tensor();
    const Tensor output = conv2d(input, weight, bias, options);
    EXPECT_TRUE(matches(output, fixture->get(name + "/output"), at + "output"));
    output.backward(fixture->get(name + "/grad_output"));
    EXPECT_TRUE(matches(input.grad(), fixture->get(name + "/grad_input"), at + "grad_input"));
    EXPECT_TRUE(matches(weight.grad(), fixture->get(name + "/grad_weight"), at + "grad_weight"));
    if (has_bias) {
      EXPECT_TRUE(matches(bias.grad(), fixture->get(name + "/grad_bias"), at + "grad_bias"));
    }
  }
}

TEST(Golden, BatchNorm2d) {
  const std::optional<Fixture> fixture = load_fixture("batch_norm2d.bin");
  ASSERT_TRUE(fixture.has_value());
  for (const auto& [name, training] :
       std::vector<std::pair<std::string, bool>>{{"train", true}, {"train_batch1", true}, {"eval", false}}) {
    const std::string at = "batch_norm2d " + name + " ";
    const std::vector<float> hyperparameters = fixture->get(name + "/hyperparameters").to_vector<float>();
    const Tensor input = leaf(fixture->get(name + "/input"));
    const Tensor weight = leaf(fixture->get(name + "/weight"));
    const Tensor bias = leaf(fixture->get(name + "/bias"));
    const Tensor running_mean = fixture->get(name + "/running_mean");
    const Tensor running_var = fixture->get(name + "/running_var");
    const Tensor output = batch_norm2d(input, weight, bias, running_mean, running_var, training,
                                       hyperparameters[0], hyperparameters[1]);
    EXPECT_TRUE(matches(output, fixture->get(name + "/output"), at + "output"));
    EXPECT_TRUE(matches(running_mean, fixture->get(name + "/running_mean_after"), at + "running_mean"));
    EXPECT_TRUE(matches(running_var, fixture->get(name + "/running_var_after"), at + "running_var"));
    output.backward(fixture->get(name + "/grad_output"));
    EXPECT_TRUE(matches(input.grad(), fixture->get(name + "/grad_input"), at + "grad_input"));
    EXPECT_TRUE(matches(weight.grad(), fixture->get(name + "/grad_weight"), at + "grad_weight"));
    EXPECT_TRUE(matches(bias.grad(), fixture->get(name + "/grad_bias"), at + "grad_bias"));
  }
}

TEST(Golden, Pooling) {
  const std::optional<Fixture> fixture = load_fixture("pooling.bin");
  ASSERT_TRUE(fixture.has_value());
  for (const std::string name : {"max_3x3_stride2_pad1", "max_2x2_stride2", "max_3x2_stride1x2_pad1x0",
                                 "avg_3x3_stride2_pad1", "avg_2x2_stride2", "global_avg"}) {
    const std::string at = "pooling " + name + " ";
    const Tensor input = leaf(fixture->get(name + "/input"));
    Tensor output;
    if (name == "global_avg") {
      output = global_avg_pool2d(input);
    } else {
      const std::vector<std::int64_t> geometry = int64_values(*fixture, name + "/geometry");
      Pool2dOptions options;
      options.kernel_h = geometry[0], options.kernel_w = geometry[1];
      options.stride_h = geometry[2], options.stride_w = geometry[3];
      options.padding_h = geometry[4], options.padding_w = geometry[5];
      output = name.rfind("max", 0) == 0 ? max_pool2d(input, options) : avg_pool2d(input, options);
    }
    EXPECT_TRUE(matches(output, fixture->get(name + "/output"), at + "output"));
    output.backward(fixture->get(name + "/grad_output"));
    EXPECT_TRUE(matches(input.grad(), fixture->get(name + "/grad_input"), at + "grad_input"));
  }
}

TEST(Golden, CrossEntropy) {
  const std::optional<Fixture> fixture = load_fixture("cross_entropy.bin");
  ASSERT_TRUE(fixture.has_value());
  const Tensor targets = fixture->get("targets");
  for (const std::string name : {"plain_mean", "plain_sum", "weighted_mean", "weighted_sum", "smoothed_mean",
                                 "smoothed_sum", "weighted_smoothed_mean", "weighted_smoothed_sum"}) {
    const std::string at = "cross_entropy " + name + " ";
    const std::vector<std::int64_t> settings = int64_values(*fixture, name + "/options");
    CrossEntropyOptions options;
    if (settings[0] == 1) options.class_weights = fixture->get("class_weights");
    options.reduction = settings[1] == 0 ? Reduction::Mean : Reduction::Sum;
    options.label_smoothing = fixture->get(name + "/label_smoothing").item<float>();
    const Tensor logits = leaf(fixture->get("logits"));
    const Tensor loss = cross_entropy(logits, targets, options);
    EXPECT_TRUE(matches(loss, fixture->get(name + "/loss"), at + "loss"));
    loss.backward();
    EXPECT_TRUE(matches(logits.grad(), fixture->get(name + "/grad_logits"), at + "grad_logits"));
  }
}

TEST(Golden, LogSoftmax) {
  const std::optional<Fixture> fixture = load_fixture("log_softmax.bin");
  ASSERT_TRUE(fixture.has_value());
  for (const std::string name : {"last", "middle", "first"}) {
    const std::string at = "log_softmax " + name + " ";
    const Tensor input = leaf(fixture->get("input"));
    const Tensor output = log_softmax(input, int64_values(*fixture, name + "/axis")[0]);
    EXPECT_TRUE(matches(output, fixture->get(name + "/output"), at + "output"));
    output.backward(fixture->get(name + "/grad_output"));
    EXPECT_TRUE(matches(input.grad(), fixture->get(name + "/grad_input"), at + "grad_input"));
  }
}

// The fixture's parameters as leaves, created on first use, so the test can check that the network below
// used every parameter the fixture has.
class Parameters {
 public:
  explicit Parameters(const Fixture& fixture) : fixture_(fixture) {}
  const Tensor& operator[](const std::string& name) {
    auto found = leaves_.find(name);
    if (found == leaves_.end()) found = leaves_.emplace(name, leaf(fixture_.get("param/" + name))).first;
    return found->second;
  }
  const std::map<std::string, Tensor>& used() const { return leaves_; }

 private:
  const Fixture& fixture_;
  std::map<std::string, Tensor> leaves_;
};

Tensor conv(const Tensor& x, Parameters& parameters, const std::string& name, std::int64_t stride,
            std::int64_t padding) {
  Conv2dOptions options;
  options.stride_h = options.stride_w = stride;
  options.padding_h = options.padding_w = padding;
  return conv2d(x, parameters[name + ".weight"], Tensor(), options);
}

Tensor batch_norm(const Tensor& x, Parameters& parameters, const std::string& name) {
  return batch_norm2d(x, parameters[name + ".weight"], parameters[name + ".bias"], Tensor(), Tensor(), true);
}

TEST(Golden, TwoBlockResnetForwardAndBackward) {
  const std::optional<Fixture> fixture = load_fixture("resnet.bin");
  ASSERT_TRUE(fixture.has_value());
  Parameters p(*fixture);
  const Tensor input = leaf(fixture->get("input"));
  // Written with raw ops, in the same order as resnet_fixture() in gen_golden.py.
  Tensor h = relu(batch_norm(conv(input, p, "stem.conv", 1, 1), p, "stem.bn"));
  Tensor r = relu(batch_norm(conv(h, p, "block1.conv1", 1, 1), p, "block1.bn1"));
  h = relu(batch_norm(conv(r, p, "block1.conv2", 1, 1), p, "block1.bn2") + h);
  r = relu(batch_norm(conv(h, p, "block2.conv1", 2, 1), p, "block2.bn1"));
  const Tensor shortcut = batch_norm(conv(h, p, "block2.shortcut.conv", 2, 0), p, "block2.shortcut.bn");
  h = relu(batch_norm(conv(r, p, "block2.conv2", 1, 1), p, "block2.bn2") + shortcut);
  const Tensor logits = linear(global_avg_pool2d(h), p["fc.weight"], p["fc.bias"]);
  const Tensor loss = cross_entropy(logits, fixture->get("targets"));

  EXPECT_TRUE(matches(logits, fixture->get("logits"), "resnet logits"));
  EXPECT_TRUE(matches(loss, fixture->get("loss"), "resnet loss"));
  loss.backward();
  EXPECT_TRUE(matches(input.grad(), fixture->get("grad_input"), "resnet grad_input"));
  std::set<std::string> used;
  for (const auto& [name, parameter] : p.used()) {
    used.insert(name);
    EXPECT_TRUE(matches(parameter.grad(), fixture->get("grad/" + name), "resnet grad " + name));
  }
  EXPECT_EQ(used, fixture->names_under("param/"));
}

// ---- The loader's own failures ----

std::string write_file(const std::string& name, const std::string& bytes) {
  const std::string path = ::testing::TempDir() + "dscope_fixture_" + name;
  std::ofstream(path, std::ios::binary) << bytes;
  return path;
}

std::string header(std::uint32_t version, std::uint32_t count) {
  std::string bytes(kFixtureMagic, sizeof kFixtureMagic);
  bytes.append(reinterpret_cast<const char*>(&version), sizeof version);
  bytes.append(reinterpret_cast<const char*>(&count), sizeof count);
  return bytes;
}

template <typename ErrorType>
void expect_load_error(const std::string& path, const std::string& fragment) {
  try {
    Fixture::load(path);
    FAIL() << "expected an error containing '" << fragment << "' for " << path;
  } catch (const ErrorType& error) {
    const std::string message = error.what();
    EXPECT_NE(message.find(path), std::string::npos) << message;
    EXPECT_NE(message.find(fragment), std::string::npos) << message;
  }
}

TEST(GoldenFixtureLoader, MalformedFilesAreClearErrors) {
  expect_load_error<IoError>(::testing::TempDir() + "dscope_fixture_that_does_not_exist", "cannot open");
  expect_load_error<DataError>(write_file("bad_magic", "NOTAFIXTURE-FILE"), "bad magic");
  expect_load_error<DataError>(write_file("empty", ""), "bad magic");
  expect_load_error<DataError>(write_file("version", header(kFixtureFormatVersion + 1, 0)),
                               "format version 2");
  // One float32 array of shape [3] whose data stops after two elements.
  std::string truncated = header(kFixtureFormatVersion, 1);
  const std::uint32_t name_length = 1, dtype = 1, rank = 1;
  const std::int64_t extent = 3;
  const float values[2] = {1.0f, 2.0f};
  truncated.append(reinterpret_cast<const char*>(&name_length), 4).append("x");
  truncated.append(reinterpret_cast<const char*>(&dtype), 4).append(reinterpret_cast<const char*>(&rank), 4);
  truncated.append(reinterpret_cast<const char*>(&extent), 8)
      .append(reinterpret_cast<const char*>(values), 8);
  expect_load_error<DataError>(write_file("truncated", truncated), "truncated");
  expect_load_error<DataError>(write_file("missing_count", header(kFixtureFormatVersion, 0).substr(0, 10)),
                               "truncated");
}

TEST(GoldenFixtureLoader, MissingArrayNamesFileAndArray) {
  const std::string path = write_file("no_arrays", header(kFixtureFormatVersion, 0));
  const Fixture fixture = Fixture::load(path);
  try {
    fixture.get("conv/output");
    FAIL() << "expected DataError";
  } catch (const DataError& error) {
    const std::string message = error.what();
    EXPECT_NE(message.find(path), std::string::npos) << message;
    EXPECT_NE(message.find("conv/output"), std::string::npos) << message;
  }
}

}  // namespace
}  // namespace dscope
