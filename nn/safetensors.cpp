#include "nn/safetensors.h"

#include <algorithm>
#include <array>
#include <bit>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <limits>
#include <string_view>
#include <vector>

#include "nn/json_reader.h"

namespace dscope::nn {
namespace {

static_assert(std::endian::native == std::endian::little,
              "safetensors data is little-endian and is read and written without byte swapping");

using Json = nlohmann::json;

constexpr std::uint64_t kMaxHeaderBytes = 100'000'000;  // the reference reader's limit
constexpr const char* kMetadataKey = "__metadata__";

template <typename... Parts>
[[noreturn]] void malformed(const std::filesystem::path& path, const Parts&... parts) {
  throw DataError(detail::concat("safetensors: '", path.string(), "': ", parts...));
}

template <typename... Parts>
[[noreturn]] void io_failure(const char* action, const std::filesystem::path& path, const Parts&... parts) {
  throw IoError(detail::concat("safetensors: cannot ", action, " '", path.string(), "'", parts...));
}

std::string_view dtype_code(DType dtype) {
  switch (dtype) {
    case DType::Float32:
      return "F32";
    case DType::Int64:
      return "I64";
    default:
      return "";
  }
}

std::uint64_t unsigned_field(const Json& value, const std::filesystem::path& path, const std::string& name,
                             const char* what) {
  // nlohmann parses every non-negative integer literal that fits 64 bits as unsigned; negatives, fractions
  // and larger numbers are other kinds.
  if (!value.is_number_unsigned())
    malformed(path, "tensor '", name, "': ", what, " must be a non-negative integer, got ",
              json_excerpt(value));
  return value.get<std::uint64_t>();
}

const Json& required_field(const Json& info, const char* key, const std::filesystem::path& path,
                           const std::string& name) {
  const auto found = info.find(key);
  if (found == info.end()) malformed(path, "tensor '", name, "' has no \"", key, "\" field");
  return *found;
}

SafetensorsEntry parse_entry(const std::string& name, const Json& info, const std::filesystem::path& path) {
  if (!info.is_object())
    malformed(path, "tensor '", name, "' is described by a JSON ", info.type_name(), ", expected an object");
  SafetensorsEntry entry;

  const Json& dtype = required_field(info, "dtype", path, name);
  if (dtype == "F32") {
    entry.dtype = DType::Float32;
  } else if (dtype == "I64") {
    entry.dtype = DType::Int64;
  } else {
    malformed(path, "tensor '", name, "' has dtype ", json_excerpt(dtype),
              "; dscope reads \"F32\" and \"I64\"");
  }

  const Json& shape = required_field(info, "shape", path, name);
  if (!shape.is_array())
    malformed(path, "tensor '", name, "': shape must be an array, got ", json_excerpt(shape));
  std::vector<std::int64_t> dims;
  // The byte size is computed with overflow checks: a corrupt shape must not wrap around to a small number.
  std::uint64_t bytes = element_size(entry.dtype);
  bool overflow = false, empty = false;
  for (const Json& extent : shape) {
    const std::uint64_t dim = unsigned_field(extent, path, name, "every shape extent");
    if (dim > static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max()))
      malformed(path, "tensor '", name, "': shape extent ", dim, " is too large");
    dims.push_back(static_cast<std::int64_t>(dim));
    if (dim == 0) {
      empty = true;
    } else if (bytes > std::numeric_limits<std::uint64_t>::max() / dim) {
      overflow = true;
    } else {
      bytes *= dim;
    }
  }
  if (empty) bytes = 0;
  entry.shape = Shape(std::move(dims));

  const Json& offsets = required_field(info, "data_offsets", path, name);
  if (!offsets.is_array() || offsets.size() != 2)
    malformed(path, "tensor '", name, "': data_offsets must be [begin, end], got ", json_excerpt(offsets));
  entry.begin = unsigned_field(offsets[0], path, name, "data_offsets[0]");
  entry.end = unsigned_field(offsets[1], path, name, "data_offsets[1]");
  if (entry.end < entry.begin)
    malformed(path, "tensor '", name, "': data_offsets [", entry.begin, ", ", entry.end,
              "] end before they begin");
  if (overflow || entry.end - entry.begin != bytes)
    malformed(path, "tensor '", name, "': shape ", entry.shape, " of ", dtype_code(entry.dtype), " needs ",
              overflow ? std::string("more than 2^64") : std::to_string(bytes), " bytes but data_offsets [",
              entry.begin, ", ", entry.end, "] span ", entry.end - entry.begin);
  return entry;
}

Metadata parse_metadata(const Json& value, const std::filesystem::path& path) {
  Metadata metadata;
  if (value.is_null()) return metadata;
  if (!value.is_object())
    malformed(path, "__metadata__ is a JSON ", value.type_name(), ", expected an object");
  for (const auto& [key, text] : value.items()) {
    if (!text.is_string())
      malformed(path, "__metadata__ value of '", key, "' must be a string, got ", json_excerpt(text));
    metadata.emplace(key, text.get<std::string>());
  }
  return metadata;
}

// The tensors must tile the data section: sorted by offset, each begins where the previous one ends, the
// first at 0 and the last at the end of the file.
void check_layout(const SafetensorsHeader& header, std::uint64_t data_bytes,
                  const std::filesystem::path& path) {
  std::vector<std::pair<std::string, const SafetensorsEntry*>> order;
  for (const auto& [name, entry] : header.entries) {
    if (entry.end > data_bytes)
      malformed(path, "tensor '", name, "': data_offsets [", entry.begin, ", ", entry.end,
                "] run past the end of the data section (", data_bytes, " bytes; is the file truncated?)");
    order.emplace_back(name, &entry);
  }
  std::sort(order.begin(), order.end(), [](const auto& a, const auto& b) {
    return std::pair(a.second->begin, a.second->end) < std::pair(b.second->begin, b.second->end);
  });
  std::uint64_t covered = 0;
  std::string previous = "the start of the data section";
  for (const auto& [name, entry] : order) {
    if (entry->begin < covered)
      malformed(path, "tensor '", name, "': data_offsets [", entry->begin, ", ", entry->end, "] overlap ",
                previous, ", which ends at byte ", covered);
    if (entry->begin > covered)
      malformed(path, "bytes [", covered, ", ", entry->begin, ") of the data section, between ", previous,
                " and tensor '", name, "', belong to no tensor");
    covered = entry->end;
    previous = "tensor '" + name + "'";
  }
  if (covered != data_bytes)
    malformed(path, "the data section has ", data_bytes, " bytes but the tensors cover only ", covered);
}

std::ifstream open_for_reading(const std::filesystem::path& path, std::uint64_t& file_bytes) {
  std::error_code error;
  const auto status = std::filesystem::status(path, error);
  if (error || !std::filesystem::exists(status))
    io_failure("open", path, ": ", error ? error.message() : "No such file or directory");
  if (!std::filesystem::is_regular_file(status)) io_failure("open", path, ": not a regular file");
  std::ifstream file(path, std::ios::binary);
  if (!file) io_failure("open", path, ": ", std::strerror(errno));
  file.seekg(0, std::ios::end);
  const std::streamoff size = file.tellg();
  if (size < 0) io_failure("read", path, ": cannot determine its size");
  file.seekg(0, std::ios::beg);
  file_bytes = static_cast<std::uint64_t>(size);
  return file;
}

SafetensorsHeader parse_header(std::ifstream& file, std::uint64_t file_bytes,
                               const std::filesystem::path& path) {
  if (file_bytes < 8)
    malformed(path, "the file has ", file_bytes, " bytes, fewer than the 8-byte header length (truncated?)");
  std::array<unsigned char, 8> length_bytes{};
  if (!file.read(reinterpret_cast<char*>(length_bytes.data()), 8)) io_failure("read", path);
  std::uint64_t header_bytes = 0;
  for (int i = 7; i >= 0; --i)
    header_bytes = (header_bytes << 8) | length_bytes[static_cast<std::size_t>(i)];
  if (header_bytes > file_bytes - 8)
    malformed(path, "the header length ", header_bytes, " runs past the end of the file (", file_bytes,
              " bytes; truncated, or not a safetensors file?)");
  if (header_bytes > kMaxHeaderBytes)
    malformed(path, "the header length ", header_bytes, " exceeds the limit of ", kMaxHeaderBytes, " bytes");

  std::string text(static_cast<std::size_t>(header_bytes), '\0');
  if (!file.read(text.data(), static_cast<std::streamsize>(header_bytes))) io_failure("read", path);
  Json json;
  try {
    json = Json::parse(text);
  } catch (const Json::exception& error) {
    malformed(path, "the header is not valid JSON (", error.what(), ")");
  }
  if (!json.is_object()) malformed(path, "the header is a JSON ", json.type_name(), ", expected an object");

  SafetensorsHeader header;
  header.data_start = 8 + header_bytes;
  for (const auto& [name, info] : json.items()) {
    if (name == kMetadataKey) {
      header.metadata = parse_metadata(info, path);
    } else {
      header.entries.emplace(name, parse_entry(name, info, path));
    }
  }
  check_layout(header, file_bytes - header.data_start, path);
  return header;
}

}  // namespace

void write_safetensors(const std::filesystem::path& path, const TensorMap& tensors,
                       const Metadata& metadata) {
  Json header = Json::object();
  std::vector<Tensor> payload;  // dense CPU copies (or the tensors themselves when already so), in name order
  std::uint64_t offset = 0;
  for (const auto& [name, tensor] : tensors) {
    DSCOPE_CHECK(!name.empty() && name != kMetadataKey, ValueError, "write_safetensors: '", path.string(),
                 "': tensor name '", name, "' is empty or reserved");
    DSCOPE_CHECK(tensor.defined(), ValueError, "write_safetensors: '", path.string(), "': tensor '", name,
                 "' is undefined");
    const std::string_view code = dtype_code(tensor.dtype());
    DSCOPE_CHECK(!code.empty(), DTypeError, "write_safetensors: '", path.string(), "': tensor '", name,
                 "' is ", dtype_name(tensor.dtype()), "; only float32 and int64 are stored");
    Tensor host = tensor.to(Device::cpu());
    if (!host.is_contiguous()) host = dense_copy(host);
    const std::uint64_t bytes = static_cast<std::uint64_t>(host.numel()) * element_size(host.dtype());
    header[name] = {{"dtype", std::string(code)},
                    {"shape", host.shape().dims()},
                    {"data_offsets", {offset, offset + bytes}}};
    offset += bytes;
    payload.push_back(host);
  }
  if (!metadata.empty()) header[kMetadataKey] = metadata;

  std::string text;
  try {
    text = header.dump();
  } catch (const Json::exception& error) {
    throw ValueError(detail::concat("write_safetensors: '", path.string(),
                                    "': a tensor name or metadata string is not valid UTF-8 (", error.what(),
                                    ")"));
  }
  text.append((8 - text.size() % 8) % 8, ' ');  // data starts 8-byte aligned, as the reference writer does
  std::array<char, 8> length_bytes{};
  for (std::size_t i = 0; i < 8; ++i)
    length_bytes[i] = static_cast<char>((text.size() >> (8 * i)) & 0xff);

  std::filesystem::path partial = path;
  partial += ".partial";
  {
    std::ofstream file(partial, std::ios::binary | std::ios::trunc);
    if (!file) io_failure("create", partial, ": ", std::strerror(errno));
    file.write(length_bytes.data(), 8);
    file.write(text.data(), static_cast<std::streamsize>(text.size()));
    for (const Tensor& tensor : payload)
      file.write(static_cast<const char*>(tensor.raw_data()),
                 static_cast<std::streamsize>(tensor.numel() *
                                              static_cast<std::int64_t>(element_size(tensor.dtype()))));
    file.close();
    if (!file) {
      std::filesystem::remove(partial);
      io_failure("write", partial, ": ", std::strerror(errno));
    }
  }
  std::error_code error;
  std::filesystem::rename(partial, path, error);
  if (error) {
    std::filesystem::remove(partial);
    io_failure("write", path, ": ", error.message());
  }
}

SafetensorsHeader read_safetensors_header(const std::filesystem::path& path) {
  std::uint64_t file_bytes = 0;
  std::ifstream file = open_for_reading(path, file_bytes);
  return parse_header(file, file_bytes, path);
}

SafetensorsContents read_safetensors(const std::filesystem::path& path) {
  std::uint64_t file_bytes = 0;
  std::ifstream file = open_for_reading(path, file_bytes);
  SafetensorsHeader header = parse_header(file, file_bytes, path);

  SafetensorsContents contents;
  contents.metadata = std::move(header.metadata);
  // check_layout proved every range lies inside the file, so these reads cannot run past its end unless the
  // file shrinks while we read it.
  for (const auto& [name, entry] : header.entries) {
    Tensor tensor = Tensor::empty(entry.shape, entry.dtype);
    file.seekg(static_cast<std::streamoff>(header.data_start + entry.begin));
    if (!file.read(static_cast<char*>(tensor.raw_data()),
                   static_cast<std::streamsize>(entry.end - entry.begin)))
      io_failure("read", path, ": it ended inside tensor '", name, "' (did it change while being read?)");
    contents.tensors.emplace(name, std::move(tensor));
  }
  return contents;
}

}  // namespace dscope::nn
