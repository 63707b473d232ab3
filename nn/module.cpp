#include "nn/module.h"

#include <set>
#include <sstream>

namespace dscope::nn {
namespace {
void check_name(const std::string& name, const char* what) {
  DSCOPE_CHECK(!name.empty() && name.find('.') == std::string::npos, ValueError, "module: ", what, " name '",
               name, "' must be non-empty and contain no '.'");
}
}  // namespace

void Module::train(bool training) {
  training_ = training;
  for (auto& [name, child] : children_)
    child->train(training);
}

Tensor Module::register_parameter(const std::string& name, Tensor value) {
  check_name(name, "parameter");
  DSCOPE_CHECK(value.defined() && value.dtype() == DType::Float32, DTypeError, "module: parameter '", name,
               "' must be a defined float32 tensor");
  value.set_requires_grad(true);
  parameters_.emplace_back(name, value);
  return value;
}

Tensor Module::register_buffer(const std::string& name, Tensor value) {
  check_name(name, "buffer");
  buffers_.emplace_back(name, value);
  return value;
}

void Module::add_child(const std::string& name, std::shared_ptr<Module> module) {
  check_name(name, "child module");
  DSCOPE_CHECK(module != nullptr, ValueError, "module: child '", name, "' is null");
  children_.emplace_back(name, std::move(module));
}

void Module::collect(const std::string& prefix, bool parameters, NamedTensors& out) const {
  for (const auto& [name, tensor] : parameters ? parameters_ : buffers_)
    out.emplace_back(prefix + name, tensor);
  for (const auto& [name, child] : children_)
    child->collect(prefix + name + ".", parameters, out);
}

NamedTensors Module::named_parameters() const {
  NamedTensors out;
  collect("", true, out);
  return out;
}

NamedTensors Module::named_buffers() const {
  NamedTensors out;
  collect("", false, out);
  return out;
}

std::vector<Tensor> Module::parameters() const {
  std::vector<Tensor> out;
  for (auto& [name, tensor] : named_parameters())
    out.push_back(tensor);
  return out;
}

std::int64_t Module::parameter_count() const {
  std::int64_t count = 0;
  for (auto& [name, tensor] : named_parameters())
    count += tensor.numel();
  return count;
}

std::map<std::string, Tensor> Module::state_dict() const {
  std::map<std::string, Tensor> state;
  for (auto& [name, tensor] : named_parameters())
    state.emplace(name, tensor);
  for (auto& [name, tensor] : named_buffers())
    state.emplace(name, tensor);
  return state;
}

void Module::load_state_dict(const std::map<std::string, Tensor>& state) {
  const std::map<std::string, Tensor> own = state_dict();
  std::ostringstream problems;
  int count = 0;
  for (const auto& [name, tensor] : own) {
    auto found = state.find(name);
    if (found == state.end()) {
      problems << "\n  missing: " << name << " " << tensor.shape();
      ++count;
    } else if (found->second.shape() != tensor.shape() || found->second.dtype() != tensor.dtype()) {
      problems << "\n  " << name << ": expected " << dtype_name(tensor.dtype()) << " " << tensor.shape()
               << ", got " << dtype_name(found->second.dtype()) << " " << found->second.shape();
      ++count;
    }
  }
  for (const auto& [name, tensor] : state)
    if (own.find(name) == own.end()) {
      problems << "\n  unexpected: " << name << " " << tensor.shape();
      ++count;
    }
  DSCOPE_CHECK(count == 0, ShapeError, "load_state_dict: ", count, " entries do not fit this ", describe(),
               problems.str());
  for (const auto& [name, tensor] : own)
    copy_elements(state.at(name).to(tensor.device()), tensor);
}

void Module::zero_grad() {
  for (Tensor parameter : parameters())
    parameter.set_grad(Tensor());
}

NamedTensors Module::float_state() const {
  NamedTensors result;
  std::set<const TensorImpl*> seen;
  for (const NamedTensors& named : {named_parameters(), named_buffers()})
    for (const auto& [name, tensor] : named)
      if (tensor.dtype() == DType::Float32 && seen.insert(tensor.impl()).second)
        result.emplace_back(name, tensor);
  return result;
}

void Module::to(Device device) {
  // Phase one copies (the only step that can fail), phase two swaps storages, so a failure changes nothing.
  struct Move {
    TensorImpl* target;
    Tensor moved;
    Tensor moved_grad;
  };
  std::vector<Move> moves;
  for (const auto& [name, tensor] : float_state()) {
    const Tensor grad = tensor.grad();
    moves.push_back({tensor.impl(), tensor.to(device), grad.defined() ? grad.to(device) : Tensor()});
  }
  for (Move& move : moves) {
    move.target->storage = move.moved.impl()->storage;
    move.target->offset = move.moved.offset();
    move.target->strides = move.moved.strides();
    move.target->grad = move.moved_grad.impl_ptr();
  }
}

void Module::summarise(const std::string& name, int depth, std::string& out) const {
  out += std::string(static_cast<std::size_t>(depth) * 2, ' ') + (name.empty() ? "" : name + ": ") +
         describe() + "\n";
  for (const auto& [child_name, child] : children_)
    child->summarise(child_name, depth + 1, out);
}

std::string Module::summary() const {
  std::string out;
  summarise("", 0, out);
  return out;
}

}  // namespace dscope::nn
