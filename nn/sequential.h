// Sequential: a chain of modules.
#pragma once

#include <memory>
#include <vector>
#include "nn/module.h"

namespace dscope::nn {

// Runs its children in order; children are named "0", "1", ... as in PyTorch.
class Sequential : public Module {
 public:
  Sequential() = default;
  explicit Sequential(const std::vector<std::shared_ptr<Module>>& modules);
  void append(std::shared_ptr<Module> module);
  std::size_t size() const { return modules_.size(); }
  Module& at(std::size_t index) const { return *modules_.at(index); }
  Tensor forward(const Tensor& input) override;
  std::string describe() const override { return "Sequential"; }

 private:
  std::vector<std::shared_ptr<Module>> modules_;
};

}  // namespace dscope::nn
