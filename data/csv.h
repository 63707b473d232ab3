// CSV reading as RFC 4180 describes it: comma-separated fields, fields in double quotes may hold commas,
// line breaks and doubled quotes (""), lines end in LF or CRLF. Metadata files from clinics and from
// spreadsheet exports use all of these.
//
// A malformed record (an unterminated quote, a stray quote inside an unquoted field, the wrong number of
// fields) does not stop the read: it is reported with its line number and skipped, so that one bad line in
// ten thousand costs one image, not the import. The caller decides whether what is left is enough.
#pragma once

#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

namespace dscope::data {

struct CsvRecord {
  std::int64_t line = 0;  // 1-based line on which the record starts
  std::vector<std::string> fields;
};

struct CsvProblem {
  std::int64_t line = 0;
  std::string reason;
};

struct CsvTable {
  std::vector<std::string> header;
  std::vector<CsvRecord> records;    // each with header.size() fields
  std::vector<CsvProblem> problems;  // records skipped, in file order
  // Index of the column named `name` (exact match after trimming spaces), or -1.
  std::int64_t column(const std::string& name) const;
};

// Parses CSV text; `name` is what problems and errors call it. The first record is the header. Throws
// DataError when there is no header (empty text) or the header itself is malformed.
CsvTable parse_csv(const std::string& text, const std::string& name);
// Reads and parses a file; IoError when it cannot be read.
CsvTable read_csv(const std::filesystem::path& path);

// Quotes a field for writing when it needs it (a comma, quote, or line break inside).
std::string csv_field(const std::string& value);

}  // namespace dscope::data
