// Importing label folders and HAM10000 metadata: labels, counts, and every skipped file or row reported
// with where and why.
#include <gtest/gtest.h>

#include "data/dataset.h"
#include "tensor/error.h"
#include "tests/data/temp_folder.h"
#include "tests/support/expect_error.h"

namespace dscope::data {
namespace {

TEST(LabelFolders, LabelsComeFromFolderNamesInSortedOrder) {
  testing::TempFolder root;
  root.write_flat_image("mel/a.png", 4, 4, 10);
  root.write_flat_image("mel/b.JPG", 4, 4, 20);
  root.write_flat_image("bcc/c.png", 4, 4, 30);
  root.write_text("bcc/notes.txt", "not an image");
  root.write_text("README", "top-level file");
  root.write_flat_image("bcc/old/d.png", 4, 4, 40);
  const Dataset dataset = import_label_folders(root.path());
  EXPECT_EQ(dataset.labels, (std::vector<std::string>{"bcc", "mel"}));
  ASSERT_EQ(dataset.samples.size(), 3u);
  EXPECT_EQ(dataset.counts_per_label(), (std::vector<std::int64_t>{1, 2}));
  EXPECT_EQ(dataset.samples[0].path.filename(), "c.png");
  EXPECT_EQ(dataset.samples[0].label, 0);
  EXPECT_EQ(dataset.ignored_files, 2);
  ASSERT_EQ(dataset.problems.size(), 1u);  // the sub-folder is reported, not searched
  EXPECT_NE(dataset.problems[0].where.find("old"), std::string::npos);
  const std::string summary = dataset.summary();
  EXPECT_NE(summary.find("3 images in 2 labels"), std::string::npos) << summary;
  EXPECT_NE(summary.find("mel    2  (67%)"), std::string::npos) << summary;  // counts right-aligned
}

TEST(LabelFolders, EmptyLabelFolderSingleLabelAndMissingRootAreErrors) {
  testing::TempFolder root;
  testing::expect_error<DataError>([&] { import_label_folders(root / "absent"); }, {"is not a folder"});
  root.write_flat_image("nv/a.png", 4, 4, 1);
  testing::expect_error<DataError>([&] { import_label_folders(root.path()); }, {"at least two"});
  std::filesystem::create_directories(root / "df");
  root.write_text("df/readme.txt", "no images here");
  testing::expect_error<DataError>([&] { import_label_folders(root.path()); }, {"df"});
}

TEST(LabelFolders, WithoutRemovesFailedImagesAndRecordsWhy) {
  testing::TempFolder root;
  root.write_flat_image("a/1.png", 4, 4, 1);
  root.write_flat_image("a/2.png", 4, 4, 2);
  root.write_flat_image("b/3.png", 4, 4, 3);
  const Dataset dataset = import_label_folders(root.path());
  const Dataset kept = dataset.without({{(root / "a/2.png").string(), "corrupt"}});
  ASSERT_EQ(kept.samples.size(), 2u);
  ASSERT_EQ(kept.problems.size(), 1u);
  EXPECT_EQ(kept.problems[0].reason, "corrupt");
  EXPECT_NE(kept.summary().find("1 skipped"), std::string::npos);
}

TEST(Ham10000, ImportsRowsAndReportsEachBadOneWithItsLine) {
  testing::TempFolder root;
  for (const char* id : {"ISIC_1", "ISIC_2", "ISIC_3", "ISIC_4"})
    root.write_flat_image(std::string("images/") + id + ".jpg", 8, 6, 100);
  const auto csv = root.write_text("meta.csv",
                                   "lesion_id,image_id,dx,dx_type,age,sex,localization\n"
                                   "HAM_1,ISIC_1,mel,histo,50.0,male,back\n"
                                   "HAM_1,ISIC_2,mel,histo,50.0,male,back\n"
                                   "HAM_2,ISIC_3,NV,follow_up,35.0,female,\"lower extremity, left\"\n"
                                   "HAM_3,ISIC_9,bcc,histo,70.0,male,face\n"
                                   "HAM_4,ISIC_4,melanoma?,histo,70.0,male,face\n"
                                   "HAM_5,ISIC_4,nv\n"
                                   "HAM_2,ISIC_3,nv,follow_up,35.0,female,trunk\n");
  const Dataset dataset = import_ham10000(root / "images", csv);
  EXPECT_EQ(dataset.labels, (std::vector<std::string>{"mel", "nv"}));
  ASSERT_EQ(dataset.samples.size(), 3u);
  EXPECT_EQ(dataset.samples[0].group, "HAM_1");
  EXPECT_EQ(dataset.samples[2].label, 1);  // "NV" is read as nv
  ASSERT_EQ(dataset.problems.size(), 4u);
  std::string all;
  for (const ImportProblem& problem : dataset.problems)
    all += problem.where + " " + problem.reason + "\n";
  EXPECT_NE(all.find("meta.csv:5 image ISIC_9 is not in"), std::string::npos) << all;
  EXPECT_NE(all.find("meta.csv:6 unknown diagnosis 'melanoma?'"), std::string::npos) << all;
  EXPECT_NE(all.find("meta.csv:7 malformed line"), std::string::npos) << all;
  EXPECT_NE(all.find("meta.csv:8 image ISIC_3 is listed twice"), std::string::npos) << all;
}

TEST(Ham10000, MissingColumnsOrNothingUsableAreErrors) {
  testing::TempFolder root;
  root.write_flat_image("images/ISIC_1.jpg", 8, 6, 100);
  testing::expect_error<DataError>(
      [&] { import_ham10000(root / "images", root.write_text("a.csv", "image,dx\nISIC_1,nv\n")); },
      {"lesion_id, image_id and dx"});
  testing::expect_error<DataError>(
      [&] {
        import_ham10000(root / "images", root.write_text("b.csv", "lesion_id,image_id,dx\nL,ISIC_7,nv\n"));
      },
      {"no usable row"});
  testing::expect_error<IoError>([&] { import_ham10000(root / "images", root / "absent.csv"); },
                                 {"absent.csv"});
  testing::expect_error<DataError>([&] { import_ham10000(root / "nope", root / "absent.csv"); }, {"nope"});
}

}  // namespace
}  // namespace dscope::data
