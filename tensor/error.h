// The exceptions dscope throws, and DSCOPE_CHECK, which builds a message only when a check fails.
//
// Every error is validated at an API boundary (an op, a module, a file reader) and names the operation,
// the argument, and what was expected against what was found, with full shapes, e.g.
//   conv2d: weight expects 3 input channels but input has 4 (input [8,4,144,192], weight [16,3,3,3])
// Library code never exits or prints and carries on: it throws, and only main() turns that into a message.
#pragma once

#include <sstream>
#include <stdexcept>
#include <string>

namespace dscope {

class Error : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};
class ShapeError : public Error {  // shapes, ranks or axes that do not fit the operation
 public:
  using Error::Error;
};
class DTypeError : public Error {  // an element type the operation does not accept
 public:
  using Error::Error;
};
class DeviceError : public Error {  // tensors on different devices, or a device this build lacks
 public:
  using Error::Error;
};
class AutogradError : public Error {  // misuse of backward: non-scalar root, freed graph, ...
 public:
  using Error::Error;
};
class ValueError : public Error {  // an argument out of its range (negative stride, p outside [0,1), ...)
 public:
  using Error::Error;
};
class DataError : public Error {  // malformed input data; the message names file and line
 public:
  using Error::Error;
};
class IoError : public Error {  // a file that cannot be opened, read or written
 public:
  using Error::Error;
};
class CudaError : public Error {  // a failed CUDA runtime call: call text, file:line and CUDA's reason
 public:
  using Error::Error;
};

namespace detail {
template <typename... Parts>
std::string concat(const Parts&... parts) {
  std::ostringstream out;
  (out << ... << parts);
  return out.str();
}
}  // namespace detail

}  // namespace dscope

// DSCOPE_CHECK(condition, ErrorType, message parts...): throws ErrorType with the parts streamed together.
// The parts are evaluated only when the condition fails, so checks cost nothing on the happy path.
#define DSCOPE_CHECK(condition, ErrorType, ...)                               \
  do {                                                                        \
    if (!(condition)) throw ErrorType(::dscope::detail::concat(__VA_ARGS__)); \
  } while (0)
