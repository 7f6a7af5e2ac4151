#include <gtest/gtest.h>

#include "initiator.h"
#include "scsi/logical_unit.h"

namespace scstu::scsi {
namespace {

using testing::Initiator;
using testing::RamDisk;
using testing::Reply;

class Mmc : public ::testing::Test {
 protected:
  static LogicalUnitConfig config() {
    LogicalUnitConfig cfg;
    cfg.device_type = device_type::kCdrom;
    cfg.removable = true;
    return cfg;
  }
  Mmc() : disk_(1000, 2048), lu_(config(), &disk_), ini_(lu_) {}
  RamDisk disk_;
  LogicalUnit lu_;
  Initiator ini_;
};

TEST_F(Mmc, GetConfigurationCurrentProfile) {
  Reply r = ini_.run({0x46, 0x00, 0, 0, 0, 0, 0, 0x01, 0x00, 0});
  ASSERT_EQ(r.status, status::kGood);
  EXPECT_EQ(get_be32(&r.data[0]) + 4, r.data.size());
  EXPECT_EQ(get_be16(&r.data[6]), 0x0008);
  EXPECT_EQ(get_be16(&r.data[8]), 0x0000);  // profile list first
  EXPECT_EQ(get_be16(&r.data[12]), 0x0008);
  // RT 10b: exactly the one feature (Random Readable: block size 2048).
  r = ini_.run({0x46, 0x02, 0x00, 0x10, 0, 0, 0, 0x01, 0x00, 0});
  ASSERT_EQ(r.data.size(), 8u + 12);
  EXPECT_EQ(get_be16(&r.data[8]), 0x0010);
  EXPECT_EQ(get_be32(&r.data[12]), 2048u);
  EXPECT_EQ(ini_.run({0x46, 0x03, 0, 0, 0, 0, 0, 0x01, 0x00, 0}).code(), kInvalidFieldInCdb);
}

TEST_F(Mmc, ReadTocLbaAndMsf) {
  Reply r = ini_.run({0x43, 0, 0, 0, 0, 0, 0, 0x01, 0x00, 0});
  ASSERT_EQ(r.status, status::kGood);
  ASSERT_EQ(r.data.size(), 4u + 16);
  EXPECT_EQ(get_be16(&r.data[0]), 18);
  EXPECT_EQ(r.data[2], 1);
  EXPECT_EQ(r.data[3], 1);
  EXPECT_EQ(r.data[5], 0x14);
  EXPECT_EQ(r.data[6], 1);
  EXPECT_EQ(get_be32(&r.data[8]), 0u);
  EXPECT_EQ(r.data[14], 0xAA);
  EXPECT_EQ(get_be32(&r.data[16]), 1000u);
  r = ini_.run({0x43, 0x02, 0, 0, 0, 0, 0, 0x01, 0x00, 0});  // MSF
  // Lead-out at LBA 1000: 1150 frames = 00:15:25.
  EXPECT_EQ(r.data[17], 0);
  EXPECT_EQ(r.data[18], 15);
  EXPECT_EQ(r.data[19], 25);
  EXPECT_EQ(ini_.run({0x43, 0, 0x01, 0, 0, 0, 0, 0x01, 0x00, 0}).data.size(), 12u);
  EXPECT_EQ(ini_.run({0x43, 0, 0x05, 0, 0, 0, 0, 0x01, 0x00, 0}).code(), kInvalidFieldInCdb);
  EXPECT_EQ(ini_.run({0x43, 0, 0, 0, 0, 0, 2, 0x01, 0x00, 0}).code(), kInvalidFieldInCdb);
}

TEST_F(Mmc, EventStatusDiscInfoMechanism) {
  EXPECT_EQ(ini_.run({0x4A, 0x00, 0, 0, 0x10, 0, 0, 0, 8, 0}).code(), kInvalidFieldInCdb);
  Reply r = ini_.run({0x4A, 0x01, 0, 0, 0x10, 0, 0, 0, 8, 0});
  ASSERT_EQ(r.status, status::kGood);
  EXPECT_EQ(r.data[2], 0x04);
  EXPECT_EQ(r.data[5], 0x02);  // media present
  r = ini_.run({0x51, 0, 0, 0, 0, 0, 0, 0, 34, 0});
  ASSERT_EQ(r.status, status::kGood);
  EXPECT_EQ(get_be16(&r.data[0]), 32);
  EXPECT_EQ(r.data[2], 0x0E);
  r = ini_.run({0xBD, 0, 0, 0, 0, 0, 0, 0, 0, 8, 0, 0});
  EXPECT_EQ(r.data.size(), 8u);
  r = ini_.run({0x52, 0x01, 0, 0, 0, 1, 0, 0, 36, 0});
  ASSERT_EQ(r.status, status::kGood);
  EXPECT_EQ(get_be32(&r.data[24]), 1000u);
}

TEST_F(Mmc, EjectedMedium) {
  ASSERT_EQ(ini_.run({0x1B, 0, 0, 0, 0x02, 0}).status, status::kGood);
  Reply r = ini_.run({0x46, 0x00, 0, 0, 0, 0, 0, 0x01, 0x00, 0});
  ASSERT_EQ(r.status, status::kGood);
  EXPECT_EQ(get_be16(&r.data[6]), 0x0000);  // no current profile
  EXPECT_EQ(ini_.run({0x43, 0, 0, 0, 0, 0, 0, 0x01, 0x00, 0}).code().asc, 0x3A);
  r = ini_.run({0x4A, 0x01, 0, 0, 0x10, 0, 0, 0, 8, 0});
  EXPECT_EQ(r.data[5], 0x01);  // door open, no media
}

}  // namespace
}  // namespace scstu::scsi
