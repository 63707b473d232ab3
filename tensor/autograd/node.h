// Node: one recorded operation in the dynamic graph.
//
// When an op runs on inputs that require gradients, it records a Node whose backward function maps the
// gradient of its output to the gradients of its inputs (one per input, undefined where an input needs none).
// `next` holds, per input, the node that continues the chain: the input's own grad_fn, or an AccumulateGrad
// node for a leaf, or null when that input needs no gradient.
//
// The backward function is a closure written right below the op's forward (see tensor/ops/): it captures
// exactly the tensors it needs, detached so that no reference cycle runs back through the graph. After the
// engine has used a node it calls release(), which destroys the closure and with it the saved tensors; this
// is how "the graph is freed after backward" happens.
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "tensor/tensor.h"

namespace dscope::autograd {

using Gradients = std::vector<Tensor>;
using BackwardFunction = std::function<Gradients(const Tensor& grad_output)>;

class Node {
 public:
  // What each input's gradient must be: its shape and dtype.
  struct InputSignature {
    Shape shape;
    DType dtype = DType::Float32;
  };

  Node(std::string name, std::vector<std::shared_ptr<Node>> next, std::vector<InputSignature> inputs,
       BackwardFunction backward);
  virtual ~Node() = default;

  // Gradients of the inputs, in input order, validated against the inputs' shapes and dtypes.
  virtual Gradients apply(const Tensor& grad_output);
  // Frees what the backward function saved; apply() afterwards throws AutogradError.
  virtual void release() { backward_ = nullptr; }

  const std::string& name() const { return name_; }
  const std::vector<std::shared_ptr<Node>>& next() const { return next_; }

 private:
  std::string name_;
  std::vector<std::shared_ptr<Node>> next_;
  std::vector<InputSignature> inputs_;
  BackwardFunction backward_;
};

// The end of every chain: adds the incoming gradient into a leaf's grad (allocating it the first time).
// Adding, not assigning, is what makes a parameter used twice (a residual connection) get both gradients.
class AccumulateGrad : public Node {
 public:
  explicit AccumulateGrad(std::shared_ptr<TensorImpl> leaf);
  Gradients apply(const Tensor& grad_output) override;
  void release() override {}  // the leaf outlives any one backward

 private:
  std::shared_ptr<TensorImpl> leaf_;
};

// Records `output` as computed from `inputs` by `name`, when grad mode is on and some input requires a
// gradient; otherwise returns `output` unchanged and drops `backward`. Returns the output for chaining.
Tensor record(const char* name, const Tensor& output, const std::vector<Tensor>& inputs,
              BackwardFunction backward);

}  // namespace dscope::autograd
