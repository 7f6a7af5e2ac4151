// CdromDrive / MediumTray: the seed's vcdrom "change NAME [PATH]" at the
// logical unit: eject -> MEDIUM NOT PRESENT, load -> new capacity and
// MEDIUM MAY HAVE CHANGED for every nexus, refusals leave the medium in.
#include "cdrom_drive.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstdlib>
#include <fstream>
#include <string>
#include <vector>

#include "core/unit_attentions.h"
#include "scsi/lu_runtime.h"

namespace scstu::tools {
namespace {

class CdromDriveTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/scstu-cdrom-test.XXXXXX";
    ASSERT_NE(mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
  }
  void TearDown() override {
    for (const auto& f : files_) unlink(f.c_str());
    rmdir(dir_.c_str());
  }
  // An image of `blocks` 2048-byte blocks, each filled with `fill`.
  std::string image(const std::string& name, size_t blocks, char fill) {
    const std::string path = dir_ + "/" + name;
    std::ofstream(path, std::ios::binary) << std::string(blocks * 2048, fill);
    files_.push_back(path);
    return path;
  }
  static SessionInfo session(uint64_t id) {
    SessionInfo s;
    s.id = id;
    s.initiator_name = "iqn.2026-11.org.example:ini" + std::to_string(id);
    return s;
  }
  static void drain(scsi::LogicalUnit& lu, uint64_t nexus) {
    while (lu.runtime().unit_attentions.take(nexus)) {
    }
  }

  std::string dir_;
  std::vector<std::string> files_;
};

TEST_F(CdromDriveTest, EjectAndLoadChangeCapacityAndRaiseMediumMayHaveChanged) {
  CdromDrive drive("cd0", image("a.iso", 10, 'a'), {}, 1u << 20);
  auto& lu = *drive.lu();
  EXPECT_EQ(lu.device_type(), 5);
  EXPECT_EQ(lu.block_size(), 2048u);
  EXPECT_EQ(lu.capacity_blocks(), 10u);
  EXPECT_TRUE(lu.medium_present());
  lu.session_attached(session(1));
  lu.session_attached(session(2));
  drain(lu, 1);
  drain(lu, 2);

  std::string message;
  ASSERT_EQ(drive.change("", &message), "");
  EXPECT_NE(message.find("ejected"), std::string::npos);
  EXPECT_FALSE(lu.medium_present());
  EXPECT_EQ(drive.medium(), nullptr);
  EXPECT_EQ(lu.runtime().unit_attentions.count(1), 0u);  // removal raises nothing

  ASSERT_EQ(drive.change(image("b.iso", 25, 'b'), &message), "");
  EXPECT_NE(message.find("25 blocks"), std::string::npos);
  EXPECT_TRUE(lu.medium_present());
  EXPECT_EQ(lu.capacity_blocks(), 25u);
  for (uint64_t nexus : {1, 2}) {
    EXPECT_EQ(lu.runtime().unit_attentions.peek(nexus), core::UnitAttention::kMediumMayHaveChanged);
  }
  EXPECT_EQ(core::sense_code(core::UnitAttention::kMediumMayHaveChanged).asc, 0x28);
}

TEST_F(CdromDriveTest, RefusalsKeepTheMedium) {
  CdromDrive drive("cd0", image("a.iso", 10, 'a'), {}, 1u << 20);
  auto& lu = *drive.lu();
  std::string message;
  const std::string missing = dir_ + "/missing.iso";
  const std::string error = drive.change(missing, &message);
  EXPECT_NE(error.find(missing), std::string::npos) << error;
  EXPECT_TRUE(lu.medium_present());
  EXPECT_EQ(lu.capacity_blocks(), 10u);

  lu.session_attached(session(1));
  lu.nexuses().set_prevent(1, true);
  EXPECT_NE(drive.change("", &message).find("prevents medium removal"), std::string::npos);
  EXPECT_TRUE(lu.medium_present());
  lu.nexuses().set_prevent(1, false);
  EXPECT_EQ(drive.change("", &message), "");
}

TEST_F(CdromDriveTest, StartsEmptyAndTheTrayAnswersNoMedium) {
  CdromDrive drive("cd0", "", {}, 1u << 20);
  EXPECT_FALSE(drive.lu()->medium_present());
  EXPECT_EQ(drive.blocks(), 0u);

  // A request that slipped past the LU's medium check while ejecting.
  MediumTray tray(nullptr, 2048, {});
  std::vector<char> buf(2048);
  iovec iov{buf.data(), buf.size()};
  BlockRequest req;
  req.op = BlockOp::kRead;
  req.blocks = 1;
  req.iov = {&iov, 1};
  std::atomic<int> result{1};  // completions may come from an I/O thread
  req.context = &result;
  req.done = [](BlockRequest* r, int error) {
    static_cast<std::atomic<int>*>(r->context)->store(error);
  };
  tray.submit(req);
  EXPECT_EQ(result, -ENOMEDIUM);

  // With a medium, requests reach it.
  io::FileDeviceOptions cd;
  cd.cdrom = true;
  auto medium = io::FileDevice::open(image("c.iso", 4, 'c'), cd);
  EXPECT_EQ(tray.replace(std::move(medium), std::chrono::seconds(1)), nullptr);  // was empty
  EXPECT_EQ(tray.geometry().blocks, 4u);
  result = 1;
  tray.submit(req);
  for (int i = 0; i < 1000 && result == 1; ++i) usleep(1000);
  EXPECT_EQ(result, 0);
  EXPECT_EQ(buf[0], 'c');
  EXPECT_EQ(buf[2047], 'c');
}

}  // namespace
}  // namespace scstu::tools
