#include "nn/sequential.h"

#include <string>

namespace dscope::nn {

Sequential::Sequential(const std::vector<std::shared_ptr<Module>>& modules) {
  for (const auto& module : modules)
    append(module);
}

void Sequential::append(std::shared_ptr<Module> module) {
  modules_.push_back(register_module(std::to_string(modules_.size()), std::move(module)));
}

Tensor Sequential::forward(const Tensor& input) {
  Tensor x = input;
  for (const auto& module : modules_)
    x = module->forward(x);
  return x;
}

}  // namespace dscope::nn
