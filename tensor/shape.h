// Shape: the extent of each dimension, outermost first, plus the helpers every op needs
// (element count, row-major strides, broadcasting). Printed as [8,3,64,64] in error messages.
#pragma once

#include <cstdint>
#include <initializer_list>
#include <ostream>
#include <string>
#include <vector>

namespace dscope {

class Shape {
 public:
  Shape() = default;
  Shape(std::initializer_list<std::int64_t> dims) : dims_(dims) {}
  explicit Shape(std::vector<std::int64_t> dims) : dims_(std::move(dims)) {}

  std::int64_t rank() const { return static_cast<std::int64_t>(dims_.size()); }
  std::int64_t operator[](std::int64_t axis) const { return dims_[static_cast<std::size_t>(axis)]; }
  std::int64_t& operator[](std::int64_t axis) { return dims_[static_cast<std::size_t>(axis)]; }
  // Product of the dimensions; 1 for a scalar (rank 0).
  std::int64_t numel() const;
  const std::vector<std::int64_t>& dims() const { return dims_; }
  auto begin() const { return dims_.begin(); }
  auto end() const { return dims_.end(); }
  bool operator==(const Shape&) const = default;
  std::string to_string() const;

 private:
  std::vector<std::int64_t> dims_;
};

using Strides = std::vector<std::int64_t>;

inline std::ostream& operator<<(std::ostream& out, const Shape& shape) {
  return out << shape.to_string();
}

// Row-major (C order) strides of a dense tensor of this shape, in elements.
Strides contiguous_strides(const Shape& shape);

// Maps a possibly negative axis (-1 is the last) into [0, rank); throws ShapeError naming `op` if out of
// range.
std::int64_t normalize_axis(std::int64_t axis, std::int64_t rank, const char* op);

// NumPy broadcasting: dimensions are aligned from the right and must be equal or 1.
// Throws ShapeError naming `op` and both shapes when they do not broadcast.
Shape broadcast_shapes(const Shape& a, const Shape& b, const char* op);

}  // namespace dscope
