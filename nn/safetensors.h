// Reading and writing the safetensors format (Hugging Face), so that a dscope model opens in Python too.
//
// A file is: an 8-byte little-endian unsigned header length N; N bytes of UTF-8 JSON mapping each tensor
// name to {"dtype": "F32"|"I64", "shape": [...], "data_offsets": [begin, end]}, plus an optional
// "__metadata__" object of string → string; then the data section, raw little-endian elements in row-major
// order. Offsets count bytes from the start of the data section.
//
// The reader is as strict as the reference implementation (the Rust `safetensors` crate): the tensors must
// tile the data section exactly, without gaps or overlaps, each spanning shape × element size bytes. So a
// file dscope accepts is one Python accepts, and every corruption (truncation, bad offsets, a header that is
// not JSON) is detected from the header and the file size before a single data byte is read. Every error
// names the file.
//
// The writer lays tensors out in name order, pads the header with spaces so the data starts 8-byte aligned
// (as the reference writer does), and writes to a temporary file renamed over the target at the end, so an
// interrupted save never leaves a truncated file where a good one was.
#pragma once

#include <cstdint>
#include <filesystem>
#include <map>
#include <string>

#include "tensor/tensor.h"

namespace dscope::nn {

using TensorMap = std::map<std::string, Tensor>;
using Metadata = std::map<std::string, std::string>;

// One tensor as the header describes it.
struct SafetensorsEntry {
  DType dtype = DType::Float32;
  Shape shape;
  std::uint64_t begin = 0;  // byte offsets into the data section, end exclusive
  std::uint64_t end = 0;
};

struct SafetensorsHeader {
  std::map<std::string, SafetensorsEntry> entries;
  Metadata metadata;
  std::uint64_t data_start = 0;  // byte offset of the data section in the file (8 + header length)
};

struct SafetensorsContents {
  TensorMap tensors;  // float32 and int64 CPU tensors
  Metadata metadata;
};

// Writes `tensors` (float32 or int64, any device and strides; names non-empty and not "__metadata__") and
// `metadata` to `path`. Throws DTypeError / ValueError for tensors it cannot store, IoError when writing
// fails.
void write_safetensors(const std::filesystem::path& path, const TensorMap& tensors,
                       const Metadata& metadata = {});

// Reads and validates the header only (cheap: no tensor data), e.g. to show a model's metadata.
// Throws IoError if the file cannot be opened or read, DataError naming the file and the defect otherwise.
SafetensorsHeader read_safetensors_header(const std::filesystem::path& path);

// Reads every tensor and the metadata. Errors as read_safetensors_header.
SafetensorsContents read_safetensors(const std::filesystem::path& path);

}  // namespace dscope::nn
