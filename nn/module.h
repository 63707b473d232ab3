// Module: the unit models are built from. It owns named parameters (tensors that learn), named buffers
// (state that does not learn, e.g. batch norm's running statistics) and named child modules, and switches
// all of them between training and evaluation.
//
// Names are dotted paths ("layer1.0.conv1.weight"), the same scheme PyTorch uses, so a state dict maps
// one to one onto a PyTorch model's. Parameters and buffers are Tensor handles shared with whoever asked
// for them (an optimizer, say); loading a state dict therefore copies values into the existing tensors
// rather than replacing them, so every handle stays valid. Moving a module to another device keeps the
// handles valid the same way: each tensor's storage is swapped, not the tensor.
#pragma once

#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "tensor/tensor.h"

namespace dscope::nn {

using NamedTensors = std::vector<std::pair<std::string, Tensor>>;

class Module {
 public:
  virtual ~Module() = default;
  Module() = default;
  Module(const Module&) = delete;
  Module& operator=(const Module&) = delete;

  virtual Tensor forward(const Tensor& input) = 0;
  Tensor operator()(const Tensor& input) { return forward(input); }

  // Training mode (the default) vs evaluation mode, for this module and all its descendants.
  void train(bool training = true);
  void eval() { train(false); }
  bool is_training() const { return training_; }

  // Everything below is recursive, in registration order, with dotted names.
  NamedTensors named_parameters() const;
  NamedTensors named_buffers() const;
  std::vector<Tensor> parameters() const;
  std::vector<std::pair<std::string, std::shared_ptr<Module>>> named_children() const { return children_; }
  std::int64_t parameter_count() const;
  // The float32 parameters and buffers, each tensor once even when registered under two names: what moves
  // between devices and what a weight average follows (integer buffers such as batch norm's step counter
  // are left out).
  NamedTensors float_state() const;
  // Parameters and buffers together: what a checkpoint stores.
  std::map<std::string, Tensor> state_dict() const;
  // Copies every entry of `state` into the tensor of the same name. Throws ShapeError / ValueError listing
  // every missing, unexpected or mis-shaped entry at once (not just the first).
  void load_state_dict(const std::map<std::string, Tensor>& state);
  // Drops every parameter's gradient (the next backward starts from nothing).
  void zero_grad();

  // Moves every float32 parameter and buffer of this module and its descendants, with any gradient, to
  // `device`, in place: the tensors keep their identity (layers and callers keep valid handles) and only
  // their storage changes, so parameters() then returns tensors on `device`. Unlike Tensor::to, which
  // returns a copy. All or nothing: every copy is made before any tensor changes, so a failure (DeviceError
  // for a device this build or machine lacks) leaves the module where it was. Integer buffers (counters such
  // as BatchNorm2d's num_batches_tracked) stay on the CPU: the host updates them at every forward, and no
  // kernel reads them.
  // Call it before creating an optimizer: an optimizer keeps its state (momentum, moments) on the device its
  // parameters had at its first step, and throws DeviceError if they have moved since.
  void to(Device device);

  // The module's kind and settings in one line, e.g. "Conv2d(3->16, 3x3, stride 1, padding 1)".
  virtual std::string describe() const = 0;
  // The module tree, one line per module, indented by depth.
  std::string summary() const;

 protected:
  Tensor register_parameter(const std::string& name, Tensor value);
  Tensor register_buffer(const std::string& name, Tensor value);
  template <typename M>
  std::shared_ptr<M> register_module(const std::string& name, std::shared_ptr<M> module) {
    add_child(name, module);
    return module;
  }

 private:
  void add_child(const std::string& name, std::shared_ptr<Module> module);
  void collect(const std::string& prefix, bool parameters, NamedTensors& out) const;
  void summarise(const std::string& name, int depth, std::string& out) const;

  NamedTensors parameters_;
  NamedTensors buffers_;
  std::vector<std::pair<std::string, std::shared_ptr<Module>>> children_;
  bool training_ = true;
};

}  // namespace dscope::nn
