// The Optimizer base: parameter groups, gradients, and per-parameter state that can be saved and restored.
//
// State lives in one map keyed "group.param.slot", so saving it is a copy of the map and restoring it is a
// check of every key against the groups. Loading builds the new map aside and swaps it in only when every
// entry fits, so a bad state leaves the optimizer as it was.
#include "optim/optimizer.h"

#include <cmath>
#include <optional>
#include <set>
#include <sstream>
#include <utility>

namespace dscope::optim {
namespace {

constexpr const char* kStepKey = "step";

std::string state_key(std::size_t group, std::size_t index, const std::string& slot) {
  return std::to_string(group) + "." + std::to_string(index) + "." + slot;
}

struct StateKey {
  std::size_t group = 0;
  std::size_t index = 0;
  std::string slot;
};

// Parses "group.param.slot" (two decimal indices and a non-empty slot name); nothing if the name has
// another form.
std::optional<StateKey> parse_state_key(const std::string& name) {
  const std::size_t first = name.find('.');
  if (first == std::string::npos) return std::nullopt;
  const std::size_t second = name.find('.', first + 1);
  if (second == std::string::npos || second + 1 == name.size()) return std::nullopt;
  const auto parse_index = [](const std::string& digits) -> std::optional<std::size_t> {
    if (digits.empty() || digits.size() > 9 || digits.find_first_not_of("0123456789") != std::string::npos)
      return std::nullopt;
    return static_cast<std::size_t>(std::stoul(digits));
  };
  const auto group = parse_index(name.substr(0, first));
  const auto index = parse_index(name.substr(first + 1, second - first - 1));
  if (!group || !index) return std::nullopt;
  return StateKey{*group, *index, name.substr(second + 1)};
}

// An int64 scalar holding a count ≥ 0: the form of "step" and of every Counter slot.
bool is_count(const Tensor& tensor) {
  return tensor.dtype() == DType::Int64 && tensor.rank() == 0 && tensor.item<std::int64_t>() >= 0;
}

std::string describe(const Tensor& tensor) {
  return detail::concat(dtype_name(tensor.dtype()), " ", tensor.shape());
}

}  // namespace

void check_non_negative(float value, const char* where, const char* what) {
  DSCOPE_CHECK(std::isfinite(value) && value >= 0.0f, ValueError, where, ": ", what,
               " must be finite and >= 0, got ", value);
}

Optimizer::Optimizer(std::vector<ParamGroup> groups) : groups_(std::move(groups)) {
  std::set<const TensorImpl*> seen;
  for (std::size_t g = 0; g < groups_.size(); ++g) {
    const ParamGroup& group = groups_[g];
    const std::string where = "optimizer: group " + std::to_string(g);
    check_non_negative(group.learning_rate, where.c_str(), "learning rate");
    check_non_negative(group.weight_decay, where.c_str(), "weight decay");
    for (std::size_t i = 0; i < group.params.size(); ++i) {
      const Tensor& param = group.params[i];
      DSCOPE_CHECK(param.defined() && param.dtype() == DType::Float32, ValueError, where, ": parameter ", i,
                   " must be a defined float32 tensor");
      DSCOPE_CHECK(seen.insert(param.impl()).second, ValueError, where, ": parameter ", i, " ", param.shape(),
                   " appears more than once in this optimizer's groups");
    }
  }
  DSCOPE_CHECK(!seen.empty(), ValueError, "optimizer: no parameters to optimise (", groups_.size(),
               " groups, all empty)");
}

void Optimizer::zero_grad() {
  for (ParamGroup& group : groups_)
    for (Tensor& param : group.params)
      param.set_grad(Tensor());
}

void Optimizer::set_learning_rate(float learning_rate) {
  check_non_negative(learning_rate, "optimizer: set_learning_rate", "learning rate");
  for (ParamGroup& group : groups_)
    group.learning_rate = learning_rate;
}

Tensor& Optimizer::state(std::size_t group, std::size_t index, const std::string& slot) {
  const std::string key = state_key(group, index, slot);
  const Tensor& param = groups_.at(group).params.at(index);
  auto found = state_.find(key);
  if (found == state_.end())
    found = state_.emplace(key, Tensor::zeros(param.shape(), DType::Float32, param.device())).first;
  // A kernel handed pointers on two devices would crash rather than throw: name the usual cause instead.
  DSCOPE_CHECK(found->second.device() == param.device(), DeviceError, "optimizer: group ", group,
               " parameter ", index, " is on ", param.device(), " but its state '", slot, "' is on ",
               found->second.device(), "; move the model (Module::to) before creating the optimizer");
  return found->second;
}

std::int64_t& Optimizer::counter(std::size_t group, std::size_t index, const std::string& slot) {
  const std::string key = state_key(group, index, slot);
  auto found = state_.find(key);
  if (found == state_.end()) found = state_.emplace(key, Tensor::zeros(Shape{}, DType::Int64)).first;
  return *found->second.data<std::int64_t>();
}

Tensor Optimizer::gradient_for_update(std::size_t group, std::size_t index) const {
  const Tensor& param = groups_.at(group).params.at(index);
  const Tensor grad = param.grad();
  if (!grad.defined()) return grad;
  DSCOPE_CHECK(grad.dtype() == DType::Float32 && grad.shape() == param.shape(), ShapeError,
               "optimizer: group ", group, " parameter ", index, " is float32 ", param.shape(),
               " but its gradient is ", describe(grad));
  DSCOPE_CHECK(grad.device() == param.device(), DeviceError, "optimizer: group ", group, " parameter ", index,
               " is on ", param.device(), " but its gradient is on ", grad.device());
  DSCOPE_CHECK(param.is_contiguous(), ValueError, "optimizer: group ", group, " parameter ", index, " ",
               param.shape(), " is a non-contiguous view; optimise the tensor it views instead");
  return grad.is_contiguous() ? grad : dense_copy(grad);
}

std::map<std::string, Tensor> Optimizer::state_dict() const {
  std::map<std::string, Tensor> out;
  for (const auto& [name, tensor] : state_)
    out.emplace(name, dense_copy(tensor));
  out.emplace(kStepKey, Tensor::from_int64({steps_}, Shape{}));
  return out;
}

void Optimizer::load_state_dict(const std::map<std::string, Tensor>& state) {
  const std::map<std::string, SlotKind> slots = state_slots();
  std::ostringstream problems;
  int count = 0;
  bool shape_problem = false;
  const auto problem = [&](bool is_shape, const auto&... parts) {
    problems << "\n  " << detail::concat(parts...);
    ++count;
    shape_problem = shape_problem || is_shape;
  };

  std::int64_t steps = 0;
  const auto step = state.find(kStepKey);
  if (step == state.end()) {
    problem(false, "missing: ", kStepKey, " (int64 scalar)");
  } else if (!step->second.defined() || !is_count(step->second)) {
    problem(true, kStepKey, ": expected an int64 scalar >= 0, got ",
            step->second.defined() ? describe(step->second) : "an undefined tensor");
  } else {
    steps = step->second.item<std::int64_t>();
  }

  std::map<std::pair<std::size_t, std::size_t>, std::set<std::string>> present;
  std::map<std::string, Tensor> restored;
  for (const auto& [name, tensor] : state) {
    if (name == kStepKey) continue;
    const std::optional<StateKey> key = parse_state_key(name);
    if (!key) {
      problem(false, "unexpected: ", name, " (names are \"step\" or \"<group>.<param>.<slot>\")");
      continue;
    }
    if (key->group >= groups_.size()) {
      problem(false, name, ": there is no group ", key->group, " (this optimizer has ", groups_.size(), ")");
      continue;
    }
    const std::vector<Tensor>& params = groups_[key->group].params;
    if (key->index >= params.size()) {
      problem(false, name, ": group ", key->group, " has no parameter ", key->index, " (it has ",
              params.size(), ")");
      continue;
    }
    const auto slot = slots.find(key->slot);
    if (slot == slots.end()) {
      std::string kept;
      for (const auto& [slot_name, kind] : slots)
        kept += (kept.empty() ? "" : ", ") + slot_name;
      problem(false, "unexpected: ", name, " (this optimizer keeps ",
              kept.empty() ? "no per-parameter state" : "only " + kept, ")");
      continue;
    }
    // Recorded before the value is checked, so that a mis-shaped slot is reported once, not also as missing.
    present[{key->group, key->index}].insert(key->slot);
    const Tensor& param = params[key->index];
    if (!tensor.defined()) {
      problem(true, name, ": an undefined tensor");
      continue;
    }
    if (slot->second == SlotKind::Counter) {
      if (!is_count(tensor)) {
        problem(true, name, ": expected an int64 scalar >= 0, got ", describe(tensor));
        continue;
      }
      restored.emplace(name, dense_copy(tensor.to(Device::cpu())));
    } else {
      if (tensor.dtype() != DType::Float32 || tensor.shape() != param.shape()) {
        problem(true, name, ": expected float32 ", param.shape(), " (the parameter's shape), got ",
                describe(tensor));
        continue;
      }
      restored.emplace(name, dense_copy(tensor.to(param.device())));
    }
  }
  for (const auto& [parameter, slot_names] : present)
    for (const auto& [slot_name, kind] : slots)
      if (slot_names.count(slot_name) == 0)
        problem(false, "missing: ", state_key(parameter.first, parameter.second, slot_name),
                " (other state of parameter ", parameter.first, ".", parameter.second, " is present)");

  if (count > 0) {
    const std::string message =
        detail::concat("optimizer: load_state_dict: ", count, count == 1 ? " entry does" : " entries do",
                       " not fit this optimizer", problems.str());
    if (shape_problem) throw ShapeError(message);
    throw ValueError(message);
  }
  state_ = std::move(restored);
  steps_ = steps;
}

}  // namespace dscope::optim
