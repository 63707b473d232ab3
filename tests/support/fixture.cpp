#include "tests/support/fixture.h"

#include <bit>
#include <cstring>
#include <fstream>
#include <iterator>
#include <vector>

namespace dscope::testing {
namespace {

static_assert(std::endian::native == std::endian::little,
              "the fixture loader reads little-endian data in place");

// Bounds-checked reads from the file's bytes; a short file names what was being read.
struct Reader {
  const std::string& path;
  const std::string& bytes;
  std::size_t offset = 0;

  void read_into(void* destination, std::size_t size, const std::string& what) {
    DSCOPE_CHECK(size <= bytes.size() - offset, DataError, "fixture ", path, ": truncated at byte ", offset,
                 " while reading ", what, " (", size, " bytes needed, ", bytes.size() - offset, " left)");
    std::memcpy(destination, bytes.data() + offset, size);
    offset += size;
  }
  template <typename T>
  T read(const std::string& what) {
    T value;
    read_into(&value, sizeof value, what);
    return value;
  }
  std::string read_bytes(std::size_t size, const std::string& what) {
    std::string value(size, '\0');
    read_into(value.data(), size, what);
    return value;
  }
};

}  // namespace

Fixture Fixture::load(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  DSCOPE_CHECK(in, IoError, "fixture ", path, ": cannot open (regenerate with its tests/fixtures/gen_*.py)");
  const std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  Fixture fixture;
  fixture.path_ = path;
  Reader reader{path, bytes};
  DSCOPE_CHECK(bytes.size() >= sizeof kFixtureMagic &&
                   std::memcmp(bytes.data(), kFixtureMagic, sizeof kFixtureMagic) == 0,
               DataError, "fixture ", path, ": not a fixture file (bad magic; expected \"DSCOPEFX\")");
  reader.offset = sizeof kFixtureMagic;
  const auto version = reader.read<std::uint32_t>("format version");
  DSCOPE_CHECK(version == kFixtureFormatVersion, DataError, "fixture ", path, ": format version ", version,
               ", but this loader reads version ", kFixtureFormatVersion, " (regenerate the fixture)");
  const auto count = reader.read<std::uint32_t>("array count");
  for (std::uint32_t index = 0; index < count; ++index) {
    const auto name_length = reader.read<std::uint32_t>("name length");
    const std::string name = reader.read_bytes(name_length, "array name");
    const auto dtype_code = reader.read<std::uint32_t>("dtype of " + name);
    const auto rank = reader.read<std::uint32_t>("rank of " + name);
    DSCOPE_CHECK(rank <= 8, DataError, "fixture ", path, ": array ", name, " has rank ", rank);
    std::vector<std::int64_t> dims;
    for (std::uint32_t axis = 0; axis < rank; ++axis) {
      dims.push_back(reader.read<std::int64_t>("shape of " + name));
      DSCOPE_CHECK(dims.back() >= 0, DataError, "fixture ", path, ": array ", name, " has a negative extent");
    }
    const Shape shape(dims);
    const auto numel = static_cast<std::size_t>(shape.numel());
    if (dtype_code == 1) {
      std::vector<float> values(numel);
      reader.read_into(values.data(), numel * sizeof(float), "data of " + name);
      fixture.arrays_[name] = Tensor::from_vector(values, shape);
    } else if (dtype_code == 2) {
      std::vector<std::int64_t> values(numel);
      reader.read_into(values.data(), numel * sizeof(std::int64_t), "data of " + name);
      fixture.arrays_[name] = Tensor::from_int64(values, shape);
    } else {
      throw DataError(
          detail::concat("fixture ", path, ": array ", name, " has unknown dtype code ", dtype_code));
    }
  }
  DSCOPE_CHECK(reader.offset == bytes.size(), DataError, "fixture ", path, ": ", bytes.size() - reader.offset,
               " bytes after the last of ", count, " arrays");
  return fixture;
}

Tensor Fixture::get(const std::string& name) const {
  const auto found = arrays_.find(name);
  DSCOPE_CHECK(found != arrays_.end(), DataError, "fixture ", path_, ": no array named '", name, "'");
  return dense_copy(found->second);
}

std::set<std::string> Fixture::names_under(const std::string& prefix) const {
  std::set<std::string> names;
  for (const auto& [name, value] : arrays_)
    if (name.rfind(prefix, 0) == 0) names.insert(name.substr(prefix.size()));
  return names;
}

}  // namespace dscope::testing
