#include "tensor/shape.h"

#include <sstream>

#include "tensor/error.h"

namespace dscope {

std::int64_t Shape::numel() const {
  std::int64_t count = 1;
  for (std::int64_t extent : dims_)
    count *= extent;
  return count;
}

std::string Shape::to_string() const {
  std::ostringstream out;
  out << '[';
  for (std::size_t i = 0; i < dims_.size(); ++i)
    out << (i ? "," : "") << dims_[i];
  out << ']';
  return out.str();
}

Strides contiguous_strides(const Shape& shape) {
  Strides strides(static_cast<std::size_t>(shape.rank()));
  std::int64_t step = 1;
  for (std::int64_t axis = shape.rank() - 1; axis >= 0; --axis) {
    strides[static_cast<std::size_t>(axis)] = step;
    step *= shape[axis];
  }
  return strides;
}

std::int64_t normalize_axis(std::int64_t axis, std::int64_t rank, const char* op) {
  const std::int64_t normalized = axis < 0 ? axis + rank : axis;
  DSCOPE_CHECK(normalized >= 0 && normalized < rank, ShapeError, op, ": axis ", axis,
               " is out of range for a tensor of rank ", rank);
  return normalized;
}

Shape broadcast_shapes(const Shape& a, const Shape& b, const char* op) {
  const std::int64_t rank = std::max(a.rank(), b.rank());
  std::vector<std::int64_t> dims(static_cast<std::size_t>(rank));
  for (std::int64_t i = 0; i < rank; ++i) {
    const std::int64_t da = i < rank - a.rank() ? 1 : a[i - (rank - a.rank())];
    const std::int64_t db = i < rank - b.rank() ? 1 : b[i - (rank - b.rank())];
    DSCOPE_CHECK(da == db || da == 1 || db == 1, ShapeError, op, ": shapes ", a, " and ", b,
                 " do not broadcast (dimension ", i, ": ", da, " vs ", db, ")");
    dims[static_cast<std::size_t>(i)] = da == 1 ? db : da;
  }
  return Shape(std::move(dims));
}

}  // namespace dscope
