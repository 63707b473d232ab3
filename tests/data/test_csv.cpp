// CSV parsing: quoting, line endings, and malformed records reported with their line numbers.
#include <gtest/gtest.h>

#include "data/csv.h"
#include "tensor/error.h"
#include "tests/data/temp_folder.h"

namespace dscope::data {
namespace {

TEST(Csv, ReadsQuotedFieldsWithCommasQuotesAndLineBreaks) {
  const CsvTable table =
      parse_csv("a,b,c\r\n1,\"two, three\",4\r\n\"say \"\"hi\"\"\",\"line\nbreak\",x\n5,6,7", "test.csv");
  ASSERT_EQ(table.header, (std::vector<std::string>{"a", "b", "c"}));
  ASSERT_EQ(table.records.size(), 3u);
  EXPECT_EQ(table.records[0].fields, (std::vector<std::string>{"1", "two, three", "4"}));
  EXPECT_EQ(table.records[1].fields, (std::vector<std::string>{"say \"hi\"", "line\nbreak", "x"}));
  EXPECT_EQ(table.records[2].fields, (std::vector<std::string>{"5", "6", "7"}));
  EXPECT_EQ(table.records[0].line, 2);
  EXPECT_EQ(table.records[1].line, 3);
  EXPECT_EQ(table.records[2].line, 5);  // the quoted line break moved it down one line
  EXPECT_TRUE(table.problems.empty());
  EXPECT_EQ(table.column("b"), 1);
  EXPECT_EQ(table.column("missing"), -1);
}

TEST(Csv, SkipsMalformedRecordsAndSaysWhichLine) {
  const CsvTable table = parse_csv("id,dx\nA,nv\nB\nC,mel,extra\nD\"x,bcc\nE,df\n\nF,\"open", "meta.csv");
  ASSERT_EQ(table.records.size(), 2u);
  EXPECT_EQ(table.records[0].fields[0], "A");
  EXPECT_EQ(table.records[1].fields[0], "E");
  EXPECT_EQ(table.records[1].line, 6);
  ASSERT_EQ(table.problems.size(), 4u);
  EXPECT_EQ(table.problems[0].line, 3);  // too few fields
  EXPECT_NE(table.problems[0].reason.find("1 fields where the header has 2"), std::string::npos);
  EXPECT_EQ(table.problems[1].line, 4);  // too many
  EXPECT_EQ(table.problems[2].line, 5);  // a quote inside an unquoted field
  EXPECT_EQ(table.problems[3].line, 8);  // never closed
  EXPECT_NE(table.problems[3].reason.find("never closed"), std::string::npos);
}

TEST(Csv, EmptyTextHasNoHeader) {
  EXPECT_THROW(parse_csv("", "empty.csv"), DataError);
  EXPECT_THROW(parse_csv("\n\n", "blank.csv"), DataError);
}

TEST(Csv, ByteOrderMarkIsNotPartOfTheFirstColumn) {
  const CsvTable table = parse_csv("\xEF\xBB\xBFlesion_id,image_id\nL,I\n", "bom.csv");
  EXPECT_EQ(table.column("lesion_id"), 0);
}

TEST(Csv, ReadingAMissingFileIsAnIoError) {
  testing::TempFolder folder;
  EXPECT_THROW(read_csv(folder / "absent.csv"), IoError);
  EXPECT_EQ(read_csv(folder.write_text("one.csv", "x\n1\n")).records.size(), 1u);
}

TEST(Csv, FieldsAreQuotedOnlyWhenNeeded) {
  EXPECT_EQ(csv_field("plain"), "plain");
  EXPECT_EQ(csv_field("a,b"), "\"a,b\"");
  EXPECT_EQ(csv_field("say \"hi\""), "\"say \"\"hi\"\"\"");
  const CsvTable round_trip = parse_csv("v\n" + csv_field("a,\"b\"\nc") + "\n", "round.csv");
  ASSERT_EQ(round_trip.records.size(), 1u);
  EXPECT_EQ(round_trip.records[0].fields[0], "a,\"b\"\nc");
}

}  // namespace
}  // namespace dscope::data
