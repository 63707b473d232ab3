#include "data/csv.h"

#include <fstream>
#include <sstream>

#include "tensor/error.h"

namespace dscope::data {
namespace {

std::string trim(const std::string& text) {
  const auto first = text.find_first_not_of(" \t");
  if (first == std::string::npos) return "";
  return text.substr(first, text.find_last_not_of(" \t") - first + 1);
}

// Reads one record starting at `position`, advancing it past the record's line ending. Returns false with
// `reason` set when the record is malformed; `position` then points past the bad record's line, so reading
// can go on.
bool read_record(const std::string& text, std::size_t& position, std::int64_t& line,
                 std::vector<std::string>& fields, std::string& reason) {
  fields.assign(1, std::string());
  bool quoted = false, after_quote = false;
  const std::int64_t start_line = line;
  while (position < text.size()) {
    const char c = text[position++];
    if (quoted) {
      if (c == '"') {
        if (position < text.size() && text[position] == '"') {
          fields.back() += '"';
          ++position;
        } else {
          quoted = false;
          after_quote = true;
        }
      } else {
        if (c == '\n') ++line;
        fields.back() += c;
      }
      continue;
    }
    if (c == ',') {
      fields.emplace_back();
      after_quote = false;
    } else if (c == '\n' || (c == '\r' && position < text.size() && text[position] == '\n')) {
      if (c == '\r') ++position;
      ++line;
      return true;
    } else if (c == '"') {
      if (!trim(fields.back()).empty() || after_quote) {
        reason = "a quote inside an unquoted field";
        position = text.find('\n', position);
        position = position == std::string::npos ? text.size() : position + 1;
        ++line;
        return false;
      }
      fields.back().clear();  // spaces before an opening quote are not part of the field
      quoted = true;
    } else if (after_quote) {
      if (c != ' ' && c != '\t' && c != '\r') {
        reason = "text after a closing quote";
        position = text.find('\n', position);
        position = position == std::string::npos ? text.size() : position + 1;
        ++line;
        return false;
      }
    } else {
      fields.back() += c;
    }
  }
  if (quoted) {
    reason = detail::concat("a quoted field opened on line ", start_line, " is never closed");
    return false;
  }
  ++line;
  return true;
}

bool blank(const std::vector<std::string>& fields) {
  return fields.size() == 1 && trim(fields[0]).empty();
}

}  // namespace

std::int64_t CsvTable::column(const std::string& name) const {
  for (std::size_t i = 0; i < header.size(); ++i)
    if (header[i] == name) return static_cast<std::int64_t>(i);
  return -1;
}

CsvTable parse_csv(const std::string& text, const std::string& name) {
  CsvTable table;
  std::size_t position = 0;
  std::int64_t line = 1;
  // A UTF-8 byte-order mark, as spreadsheet programs write, is not part of the first column's name.
  if (text.compare(0, 3, "\xEF\xBB\xBF") == 0) position = 3;
  std::vector<std::string> fields;
  std::string reason;
  while (position < text.size() && table.header.empty()) {
    const std::int64_t header_line = line;
    DSCOPE_CHECK(read_record(text, position, line, fields, reason), DataError, name, ":", header_line,
                 ": malformed header: ", reason);
    if (blank(fields)) continue;
    for (const std::string& field : fields)
      table.header.push_back(trim(field));
  }
  DSCOPE_CHECK(!table.header.empty(), DataError, name, ": no header line (the file is empty)");
  while (position < text.size()) {
    const std::int64_t record_line = line;
    if (!read_record(text, position, line, fields, reason)) {
      table.problems.push_back({record_line, reason});
      continue;
    }
    if (blank(fields)) continue;
    if (fields.size() != table.header.size()) {
      table.problems.push_back(
          {record_line, detail::concat(fields.size(), " fields where the header has ", table.header.size())});
      continue;
    }
    table.records.push_back({record_line, fields});
  }
  return table;
}

CsvTable read_csv(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  DSCOPE_CHECK(in.good(), IoError, "cannot open ", path.string());
  std::ostringstream text;
  text << in.rdbuf();
  DSCOPE_CHECK(!in.bad(), IoError, "reading ", path.string(), " failed");
  return parse_csv(text.str(), path.string());
}

std::string csv_field(const std::string& value) {
  if (value.find_first_of(",\"\r\n") == std::string::npos) return value;
  std::string quoted = "\"";
  for (const char c : value) {
    if (c == '"') quoted += '"';
    quoted += c;
  }
  return quoted + '"';
}

}  // namespace dscope::data
