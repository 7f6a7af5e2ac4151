#include "scsi/mode_select.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "scsi/mode_file.h"
#include "scsi/mode_pages.h"

namespace scstu::scsi {
namespace {

std::vector<uint8_t> current(ModePages& pages, uint8_t code) {
  std::vector<uint8_t> out;
  EXPECT_TRUE(pages.sense(code, 0, PageControl::kCurrent, out));
  return out;
}

ModeSelectInput six() {
  ModeSelectInput in;
  in.block_size = 512;
  return in;
}

TEST(ModeSelect, ChangesWceAndDsense) {
  ModePages pages(ModePagesConfig{});
  EXPECT_TRUE(pages.wce());
  std::vector<uint8_t> caching = current(pages, 0x08);
  caching[0] &= 0x3F;  // PS is reserved in MODE SELECT
  caching[2] &= ~0x04;
  std::vector<uint8_t> list = {0, 0, 0, 0};
  list.insert(list.end(), caching.begin(), caching.end());
  bool changed = false;
  EXPECT_FALSE(apply_mode_select(pages, six(), list, &changed).has_value());
  EXPECT_TRUE(changed);
  EXPECT_FALSE(pages.wce());
  // The same list again changes nothing.
  EXPECT_FALSE(apply_mode_select(pages, six(), list, &changed).has_value());
  EXPECT_FALSE(changed);
}

// Found by mode_select_fuzz: a list carrying the control page twice, the second
// copy undoing the first, leaves the parameters as they were, so no MODE
// PARAMETERS CHANGED unit attention may be raised for it.
TEST(ModeSelect, SamePageTwiceThatUndoesItselfIsNoChange) {
  ModePages pages(ModePagesConfig{});
  std::vector<uint8_t> control = current(pages, 0x0A);
  control[0] &= 0x3F;
  std::vector<uint8_t> flipped = control;
  flipped[2] ^= 0x04;  // D_SENSE
  std::vector<uint8_t> list = {0, 0, 0, 0};
  list.insert(list.end(), flipped.begin(), flipped.end());
  list.insert(list.end(), control.begin(), control.end());
  bool changed = true;
  EXPECT_FALSE(apply_mode_select(pages, six(), list, &changed).has_value());
  EXPECT_FALSE(changed);
  EXPECT_EQ(current(pages, 0x0A)[2] & 0x04, control[2] & 0x04);
}

TEST(ModeSelect, UnchangeableBitPointsAtIt) {
  ModePages pages(ModePagesConfig{});
  std::vector<uint8_t> control = current(pages, 0x0A);
  control[3] ^= 0x02;  // QERR is not changeable
  std::vector<uint8_t> list = {0, 0, 0, 0};
  list.insert(list.end(), control.begin(), control.end());
  bool changed = false;
  auto err = apply_mode_select(pages, six(), list, &changed);
  ASSERT_TRUE(err.has_value());
  EXPECT_EQ(err->code, kInvalidFieldInParameterList);
  EXPECT_FALSE(err->field.in_cdb);
  EXPECT_EQ(err->field.field, 4 + 3);
  EXPECT_EQ(err->field.bit, 1);
}

TEST(ModeSelect, ValidatesBeforeApplying) {
  ModePages pages(ModePagesConfig{});
  std::vector<uint8_t> caching = current(pages, 0x08);
  caching[2] &= ~0x04;
  std::vector<uint8_t> bad = {0x55, 0x02, 0, 0};  // unknown page 15h
  std::vector<uint8_t> list = {0, 0, 0, 0};
  list.insert(list.end(), caching.begin(), caching.end());
  list.insert(list.end(), bad.begin(), bad.end());
  bool changed = false;
  auto err = apply_mode_select(pages, six(), list, &changed);
  ASSERT_TRUE(err.has_value());
  EXPECT_EQ(err->field.field, 4 + caching.size());
  EXPECT_TRUE(pages.wce());  // the good page before it was not applied
}

TEST(ModeSelect, HeaderAndBlockDescriptor) {
  ModePages pages(ModePagesConfig{});
  bool changed = false;
  // MODE DATA LENGTH must be 0.
  std::vector<uint8_t> list = {3, 0, 0, 0};
  auto err = apply_mode_select(pages, six(), list, &changed);
  ASSERT_TRUE(err.has_value());
  EXPECT_EQ(err->field.field, 0);
  // A block descriptor with the current block length is accepted, another is not.
  list = {0, 0, 0, 8, 0, 0, 0, 0, 0, 0, 0x02, 0x00};
  EXPECT_FALSE(apply_mode_select(pages, six(), list, &changed).has_value());
  list[10] = 0x10;
  err = apply_mode_select(pages, six(), list, &changed);
  ASSERT_TRUE(err.has_value());
  EXPECT_EQ(err->field.field, 4 + 5);
  // Truncated page.
  list = {0, 0, 0, 0, 0x08, 0x12, 0x00};
  err = apply_mode_select(pages, six(), list, &changed);
  ASSERT_TRUE(err.has_value());
  EXPECT_EQ(err->code, kParameterListLengthError);
  // Wrong page length.
  list = {0, 0, 0, 0, 0x0A, 0x05, 0, 0, 0, 0, 0};
  err = apply_mode_select(pages, six(), list, &changed);
  ASSERT_TRUE(err.has_value());
  EXPECT_EQ(err->field.field, 5);
}

TEST(ModeSelect, SaveAndReset) {
  ModePages pages(ModePagesConfig{});
  std::vector<uint8_t> control = current(pages, 0x0A);
  control[0] &= 0x3F;
  control[2] |= 0x04;  // D_SENSE
  std::vector<uint8_t> list = {0, 0, 0, 0};
  list.insert(list.end(), control.begin(), control.end());
  bool changed = false;
  ModeSelectInput in = six();
  ASSERT_FALSE(apply_mode_select(pages, in, list, &changed).has_value());
  EXPECT_TRUE(pages.d_sense());
  pages.reset_to_saved();
  EXPECT_FALSE(pages.d_sense());  // not saved
  in.save = true;
  ASSERT_FALSE(apply_mode_select(pages, in, list, &changed).has_value());
  pages.reset_to_saved();
  EXPECT_TRUE(pages.d_sense());
  std::vector<uint8_t> saved;
  ASSERT_TRUE(pages.sense(0x0A, 0, PageControl::kSaved, saved));
  EXPECT_EQ(saved[2] & 0x04, 0x04);
}

TEST(ModeSelect, NvCacheWceNotChangeable) {
  ModePagesConfig cfg;
  cfg.write_cache = false;
  cfg.wce_changeable = false;
  ModePages pages(cfg);
  std::vector<uint8_t> changeable;
  ASSERT_TRUE(pages.sense(0x08, 0, PageControl::kChangeable, changeable));
  EXPECT_EQ(changeable[2] & 0x04, 0);
  EXPECT_FALSE(pages.wce());
}

}  // namespace
}  // namespace scstu::scsi

namespace scstu::scsi {
namespace {

std::string temp_path(const char* name) {
  return (std::filesystem::temp_directory_path() /
          (std::string(name) + "." + std::to_string(::getpid())))
      .string();
}

TEST(ModeFile, SavedPagesSurviveARestart) {
  const std::string path = temp_path("scstu-mode-file");
  {
    ModePages pages(ModePagesConfig{});
    std::vector<uint8_t> control;
    ASSERT_TRUE(pages.sense(0x0A, 0, PageControl::kCurrent, control));
    control[0] &= 0x3F;
    control[2] |= 0x04;  // D_SENSE
    control[5] |= 0x40;  // TAS
    std::vector<uint8_t> list = {0, 0, 0, 0};
    list.insert(list.end(), control.begin(), control.end());
    ModeSelectInput in;
    in.save = true;
    bool changed = false;
    ASSERT_FALSE(apply_mode_select(pages, in, list, &changed).has_value());
    ASSERT_EQ(save_mode_file(pages, path), "");
  }
  ModePages restarted(ModePagesConfig{});
  EXPECT_FALSE(restarted.d_sense());
  ASSERT_EQ(load_mode_file(restarted, path), "");
  EXPECT_TRUE(restarted.d_sense());
  EXPECT_TRUE(restarted.tas());
  std::filesystem::remove(path);
  // No file yet: fine, defaults.
  EXPECT_EQ(load_mode_file(restarted, path), "");
}

TEST(ModeFile, CorruptFileIsRefusedWithItsName) {
  const std::string path = temp_path("scstu-mode-bad");
  ModePages pages(ModePagesConfig{});
  for (const char* text : {"zz\n", "15 0a0a\n", "0a 0a0a00\n", "0a 0a0a0200000000000000ffff\n"}) {
    std::ofstream(path) << text;
    const std::string err = load_mode_file(pages, path);
    EXPECT_NE(err.find(path), std::string::npos) << text;
  }
  // QERR (control byte 3 bit 1) is not changeable: a saved 1 is refused.
  std::ofstream(path) << "0a 0a0a0212000000000000ffff\n";
  EXPECT_NE(load_mode_file(pages, path), "");
  std::filesystem::remove(path);
}

}  // namespace
}  // namespace scstu::scsi
