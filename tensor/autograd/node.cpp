#include "tensor/autograd/node.h"

#include "tensor/autograd/accumulate.h"
#include "tensor/autograd/grad_mode.h"

namespace dscope::autograd {

Node::Node(std::string name, std::vector<std::shared_ptr<Node>> next, std::vector<InputSignature> inputs,
           BackwardFunction backward)
    : name_(std::move(name)),
      next_(std::move(next)),
      inputs_(std::move(inputs)),
      backward_(std::move(backward)) {}

Gradients Node::apply(const Tensor& grad_output) {
  DSCOPE_CHECK(
      backward_ != nullptr, AutogradError, "backward: the graph through ", name_,
      " was already freed by an earlier backward(); pass retain_graph=true to the first call to keep it");
  Gradients gradients = backward_(grad_output);
  DSCOPE_CHECK(gradients.size() == next_.size(), AutogradError, "autograd: ", name_, " returned ",
               gradients.size(), " gradients for ", next_.size(), " inputs");
  for (std::size_t i = 0; i < gradients.size(); ++i) {
    if (!next_[i] || !gradients[i].defined()) continue;
    DSCOPE_CHECK(gradients[i].shape() == inputs_[i].shape, ShapeError, "autograd: ", name_,
                 " returned a gradient of shape ", gradients[i].shape(), " for input ", i, " of shape ",
                 inputs_[i].shape);
    DSCOPE_CHECK(gradients[i].dtype() == inputs_[i].dtype, DTypeError, "autograd: ", name_, " returned a ",
                 dtype_name(gradients[i].dtype()), " gradient for input ", i, ", which is ",
                 dtype_name(inputs_[i].dtype), " (shape ", inputs_[i].shape, ")");
  }
  return gradients;
}

AccumulateGrad::AccumulateGrad(std::shared_ptr<TensorImpl> leaf)
    : Node("accumulate_grad", {}, {}, nullptr), leaf_(std::move(leaf)) {}

Gradients AccumulateGrad::apply(const Tensor& grad_output) {
  DSCOPE_CHECK(grad_output.shape() == leaf_->shape, ShapeError, "autograd: gradient of shape ",
               grad_output.shape(), " for a leaf of shape ", leaf_->shape);
  if (!leaf_->grad) {
    // A private dense copy: the incoming gradient may be a view of another tensor, and later
    // backward passes add into this one in place.
    leaf_->grad = dense_copy(grad_output).impl_ptr();
  } else {
    accumulate_into(Tensor(leaf_->grad), grad_output);
  }
  return {};
}

namespace {
std::shared_ptr<Node> edge_to(const Tensor& input) {
  if (!input.defined() || !input.requires_grad()) return nullptr;
  if (input.grad_fn()) return input.grad_fn();
  std::shared_ptr<Node> accumulator = input.impl()->grad_accumulator.lock();
  if (!accumulator) {
    accumulator = std::make_shared<AccumulateGrad>(input.impl_ptr());
    input.impl()->grad_accumulator = accumulator;
  }
  return accumulator;
}
}  // namespace

Tensor record(const char* name, const Tensor& output, const std::vector<Tensor>& inputs,
              BackwardFunction backward) {
  if (!grad_enabled()) return output;
  std::vector<std::shared_ptr<Node>> next;
  std::vector<Node::InputSignature> signatures;
  bool any_requires_grad = false;
  for (const Tensor& input : inputs) {
    next.push_back(edge_to(input));
    signatures.push_back(input.defined() ? Node::InputSignature{input.shape(), input.dtype()}
                                         : Node::InputSignature{});
    any_requires_grad = any_requires_grad || next.back() != nullptr;
  }
  if (!any_requires_grad) return output;
  output.impl()->grad_fn =
      std::make_shared<Node>(name, std::move(next), std::move(signatures), std::move(backward));
  output.impl()->requires_grad = true;
  return output;
}

}  // namespace dscope::autograd
