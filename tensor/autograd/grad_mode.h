// Whether ops record the graph. Off inside NoGradGuard (evaluation, optimizer updates) and while the engine
// runs backward functions, so that computing gradients never builds a graph of its own.
#pragma once

namespace dscope {

bool grad_enabled();

// Disables graph recording for its lifetime; nests, and restores the previous mode on destruction.
class NoGradGuard {
 public:
  NoGradGuard();
  ~NoGradGuard();
  NoGradGuard(const NoGradGuard&) = delete;
  NoGradGuard& operator=(const NoGradGuard&) = delete;

 private:
  bool previous_;
};

}  // namespace dscope
