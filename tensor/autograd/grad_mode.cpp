#include "tensor/autograd/grad_mode.h"

namespace dscope {
namespace {
// Per thread, as in PyTorch: a data-loading thread under NoGradGuard must not switch recording off
// for the training thread.
thread_local bool grad_mode_enabled = true;
}  // namespace

bool grad_enabled() {
  return grad_mode_enabled;
}

NoGradGuard::NoGradGuard() : previous_(grad_mode_enabled) {
  grad_mode_enabled = false;
}
NoGradGuard::~NoGradGuard() {
  grad_mode_enabled = previous_;
}

}  // namespace dscope
