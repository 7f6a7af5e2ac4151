#include <gtest/gtest.h>

#include <cerrno>
#include <numeric>

#include "initiator.h"
#include "scsi/logical_unit.h"

namespace scstu::scsi {
namespace {

using testing::cdb10;
using testing::cdb12;
using testing::cdb16;
using testing::Initiator;
using testing::RamDisk;
using testing::Reply;

std::vector<uint8_t> pattern(size_t n, uint8_t seed) {
  std::vector<uint8_t> v(n);
  for (size_t i = 0; i < n; ++i) v[i] = static_cast<uint8_t>(seed + i * 7);
  return v;
}

class Sbc : public ::testing::TestWithParam<bool> {
 protected:
  Sbc() : disk_(1024, 512, GetParam()), lu_(LogicalUnitConfig{}, &disk_), ini_(lu_) {}
  RamDisk disk_;
  LogicalUnit lu_;
  Initiator ini_;
};

TEST_P(Sbc, WriteReadRoundTripAllSizes) {
  const auto data = pattern(4 * 512, 3);
  ASSERT_EQ(ini_.run(cdb10(0x2A, 10, 4), data).status, status::kGood);
  EXPECT_TRUE(std::equal(data.begin(), data.end(), disk_.bytes().begin() + 10 * 512));
  Reply r = ini_.run(cdb10(0x28, 10, 4));
  ASSERT_EQ(r.status, status::kGood);
  EXPECT_EQ(r.transferred, 4u * 512);
  EXPECT_EQ(r.data, data);
  r = ini_.run(cdb12(0xA8, 10, 4));
  EXPECT_EQ(r.data, data);
  r = ini_.run(cdb16(0x88, 10, 4));
  EXPECT_EQ(r.data, data);
  r = ini_.run({0x08, 0, 0, 10, 4, 0});
  EXPECT_EQ(r.data, data);
  std::vector<uint8_t> read32(32, 0);
  read32[0] = 0x7F;
  read32[7] = 0x18;
  read32[9] = 0x09;
  put_be64(&read32[12], 10);
  put_be32(&read32[28], 4);
  // 32-byte CDBs need type 2 protection (SBC-3), which this LU has not.
  EXPECT_EQ(ini_.run(read32).code(), kInvalidCommandOperationCode);
  // WRITE(6) with TRANSFER LENGTH 0 = 256 blocks.
  const auto big = pattern(256 * 512, 9);
  ASSERT_EQ(ini_.run({0x0A, 0, 0, 0, 0, 0}, big).status, status::kGood);
  EXPECT_TRUE(std::equal(big.begin(), big.end(), disk_.bytes().begin()));
  // WRITE(12), WRITE(16).
  ASSERT_EQ(ini_.run(cdb12(0xAA, 500, 1), pattern(512, 1)).status, status::kGood);
  ASSERT_EQ(ini_.run(cdb16(0x8A, 501, 1), pattern(512, 2)).status, status::kGood);
  EXPECT_EQ(ini_.run(cdb10(0x28, 501, 1)).data, pattern(512, 2));
}

TEST_P(Sbc, ZeroBlocksAndBeyondEnd) {
  EXPECT_EQ(ini_.run(cdb10(0x28, 1024, 0)).status, status::kGood);
  EXPECT_EQ(ini_.run(cdb10(0x28, 1025, 0)).code(), kLbaOutOfRange);
  EXPECT_EQ(ini_.run(cdb10(0x28, 1023, 2)).code(), kLbaOutOfRange);
  EXPECT_EQ(ini_.run(cdb16(0x88, ~0ull, 1)).code(), kLbaOutOfRange);
  EXPECT_EQ(ini_.run(cdb16(0x8A, 1024, 1), pattern(512, 0)).code(), kLbaOutOfRange);
  EXPECT_EQ(ini_.run(cdb10(0x2F, 1024, 1)).code(), kLbaOutOfRange);
  EXPECT_EQ(ini_.run(cdb10(0x35, 1000, 100)).code(), kLbaOutOfRange);
}

TEST_P(Sbc, FuaAndWriteCache) {
  ini_.run(cdb10(0x2A, 0, 1, 0x08), pattern(512, 0));  // FUA
  ASSERT_FALSE(disk_.log.empty());
  EXPECT_EQ(disk_.log.back().flags & kBlockFua, kBlockFua);
  ini_.run(cdb10(0x2A, 0, 1, 0x10), pattern(512, 0));  // DPO only
  EXPECT_EQ(disk_.log.back().flags & kBlockFua, 0u);
  ini_.run(cdb10(0x2E, 0, 1), pattern(512, 0));  // WRITE AND VERIFY: durable
  EXPECT_EQ(disk_.log.back().flags & kBlockFua, kBlockFua);
  ASSERT_EQ(ini_.run(cdb10(0x35, 0, 0)).status, status::kGood);
  EXPECT_EQ(disk_.log.back().op, BlockOp::kFlush);
}

TEST_P(Sbc, VerifyCompare) {
  const auto data = pattern(2 * 512, 5);
  ASSERT_EQ(ini_.run(cdb10(0x2A, 7, 2), data).status, status::kGood);
  EXPECT_EQ(ini_.run(cdb10(0x2F, 7, 2, 0x02), data).status, status::kGood);
  auto wrong = data;
  wrong[700] ^= 0xFF;
  Reply r = ini_.run(cdb10(0x2F, 7, 2, 0x02), wrong);
  EXPECT_EQ(r.code(), kMiscompare);
  EXPECT_EQ(r.parsed().information, 700u);
  // BYTCHK 11b: one block compared with each.
  const std::vector<uint8_t> same(512, 0x5A);
  std::vector<uint8_t> two = same;
  two.insert(two.end(), same.begin(), same.end());
  ASSERT_EQ(ini_.run(cdb10(0x2A, 20, 2), two).status, status::kGood);
  EXPECT_EQ(ini_.run(cdb10(0x2F, 20, 2, 0x06), same).status, status::kGood);
  EXPECT_EQ(ini_.run(cdb10(0x2F, 19, 2, 0x06), same).code(), kMiscompare);
  // BYTCHK 0: medium verification, no data.
  EXPECT_EQ(ini_.run(cdb10(0x2F, 0, 16)).status, status::kGood);
  EXPECT_EQ(ini_.run(cdb16(0x8F, 7, 2, 0x02), data).status, status::kGood);
  EXPECT_EQ(ini_.run(cdb12(0xAF, 7, 2, 0x02), data).status, status::kGood);
}

TEST_P(Sbc, BlockErrorsMapToSense) {
  disk_.fail_with = -EIO;
  Reply r = ini_.run(cdb10(0x28, 33, 1));
  EXPECT_EQ(r.code(), kUnrecoveredReadError);
  EXPECT_EQ(r.parsed().information, 33u);
  disk_.fail_with = -EIO;
  EXPECT_EQ(ini_.run(cdb10(0x2A, 3, 1), pattern(512, 0)).code(), kWriteError);
  disk_.fail_with = -ENOSPC;
  EXPECT_EQ(ini_.run(cdb10(0x2A, 3, 1), pattern(512, 0)).code(),
            kSpaceAllocationFailedWriteProtect);
  disk_.fail_with = -EROFS;
  EXPECT_EQ(ini_.run(cdb10(0x2A, 3, 1), pattern(512, 0)).code(), kWriteProtected);
  disk_.fail_with = -EOPNOTSUPP;
  EXPECT_EQ(ini_.run(cdb10(0x35, 0, 0)).code(), kInvalidCommandOperationCode);
  disk_.fail_with = -EINVAL;
  EXPECT_EQ(ini_.run(cdb10(0x28, 3, 1)).code(), kInternalTargetFailure);
}

TEST_P(Sbc, ReadOnlyMappingProtectsEveryWrite) {
  const auto data = pattern(512, 0);
  EXPECT_EQ(ini_.run(cdb10(0x2A, 0, 1), data, TaskAttribute::kSimple, true).code(),
            kWriteProtected);
  EXPECT_EQ(ini_.run(cdb10(0x2E, 0, 1), data, TaskAttribute::kSimple, true).code(),
            kWriteProtected);
  EXPECT_EQ(ini_.run({0x0A, 0, 0, 0, 1, 0}, data, TaskAttribute::kSimple, true).code(),
            kWriteProtected);
  EXPECT_EQ(ini_.run(cdb10(0x28, 0, 1), {}, TaskAttribute::kSimple, true).status, status::kGood);
  EXPECT_TRUE(disk_.log.empty() || disk_.log.back().op == BlockOp::kRead);
}

TEST_P(Sbc, BufferShorterThanTheCdbIsRefused) {
  // The producer decoded 4 blocks but handed 1 block of Data-Out (the
  // initiator sent less than the CDB asks): no partial write, INVALID FIELD
  // IN COMMAND INFORMATION UNIT.
  Reply r = ini_.run(cdb10(0x2A, 0, 4), pattern(512, 0), TaskAttribute::kSimple, false, -1);
  EXPECT_EQ(r.code(), kInvalidFieldInCommandIu);
  // ... after write protection (DATA PROTECT first).
  r = ini_.run(cdb10(0x2A, 0, 4), pattern(512, 0), TaskAttribute::kSimple, true, -1);
  EXPECT_EQ(r.code(), kWriteProtected);
  // A read with too little buffer: the transfer length field is invalid.
  r = ini_.run(cdb10(0x28, 0, 4), {}, TaskAttribute::kSimple, false, 100);
  EXPECT_EQ(r.code(), kInvalidFieldInCdb);
  // A longer buffer is fine: only the decoded length is used.
  r = ini_.run(cdb10(0x28, 0, 1), {}, TaskAttribute::kSimple, false, 4096);
  EXPECT_EQ(r.status, status::kGood);
  EXPECT_EQ(r.transferred, 512u);
}

INSTANTIATE_TEST_SUITE_P(SyncAndAsync, Sbc, ::testing::Values(false, true));

TEST(SbcCapacity, ReadCapacity10And16) {
  RamDisk disk(1000, 4096);
  disk.caps.unmap = true;
  LogicalUnitConfig cfg;
  cfg.thin = true;
  cfg.physical_block_exponent = 3;
  LogicalUnit lu(cfg, &disk);
  Initiator ini(lu);
  Reply r = ini.run(cdb10(0x25, 0, 0));
  ASSERT_EQ(r.status, status::kGood);
  EXPECT_EQ(r.data, (std::vector<uint8_t>{0, 0, 0x03, 0xE7, 0, 0, 0x10, 0}));
  std::vector<uint8_t> c(16, 0);
  c[0] = 0x9E;
  c[1] = 0x10;
  put_be32(&c[10], 32);
  r = ini.run(c);
  ASSERT_EQ(r.status, status::kGood);
  ASSERT_EQ(r.data.size(), 32u);
  EXPECT_EQ(get_be64(&r.data[0]), 999u);
  EXPECT_EQ(get_be32(&r.data[8]), 4096u);
  EXPECT_EQ(r.data[12], 0);     // no protection
  EXPECT_EQ(r.data[13], 0x03);  // 8 logical blocks per physical block
  EXPECT_EQ(r.data[14], 0xC0);  // LBPME, LBPRZ
  // PMI = 0 with an LBA is invalid.
  EXPECT_EQ(ini.run(cdb10(0x25, 5, 0)).code(), kInvalidFieldInCdb);
  put_be32(&c[10], 8);  // short allocation length
  EXPECT_EQ(ini.run(c).transferred, 8u);
}

TEST(SbcCapacity, Over32BitsReportsFfffffff) {
  class Huge : public BlockDevice {
   public:
    BlockGeometry geometry() const override { return {512, 1ull << 33}; }
    void submit(BlockRequest& req) override { req.complete(0); }
  } huge;
  LogicalUnit lu(LogicalUnitConfig{}, &huge);
  Initiator ini(lu);
  Reply r = ini.run(cdb10(0x25, 0, 0));
  EXPECT_EQ(get_be32(&r.data[0]), 0xFFFFFFFFu);
  std::vector<uint8_t> c(16, 0);
  c[0] = 0x9E;
  c[1] = 0x10;
  put_be32(&c[10], 32);
  EXPECT_EQ(get_be64(&ini.run(c).data[0]), (1ull << 33) - 1);
}

TEST(SbcCache, NvCacheIgnoresFlushAndFuaAndReportsWriteThrough) {
  RamDisk disk(64);
  LogicalUnitConfig cfg;
  cfg.write_cache = WriteCacheMode::kNvCache;
  LogicalUnit lu(cfg, &disk);
  Initiator ini(lu);
  ini.run(cdb10(0x2A, 0, 1, 0x08), pattern(512, 0));
  EXPECT_EQ(disk.log.back().flags & kBlockFua, 0u);
  const size_t n = disk.log.size();
  EXPECT_EQ(ini.run(cdb10(0x35, 0, 0)).status, status::kGood);
  EXPECT_EQ(disk.log.size(), n);  // no flush
  Reply r = ini.run({0x1A, 0x08, 0x08, 0, 255, 0});
  EXPECT_EQ(r.data[4 + 2] & 0x04, 0);  // WCE = 0
}

TEST(SbcCache, WriteThroughMakesEveryWriteDurable) {
  RamDisk disk(64);
  LogicalUnitConfig cfg;
  cfg.write_cache = WriteCacheMode::kWriteThrough;
  LogicalUnit lu(cfg, &disk);
  Initiator ini(lu);
  ini.run(cdb10(0x2A, 0, 1), pattern(512, 0));
  EXPECT_EQ(disk.log.back().flags & kBlockFua, kBlockFua);
}

TEST(SbcReadOnly, ConfigReadOnlyAndMaxTransfer) {
  RamDisk disk(100000);
  LogicalUnitConfig cfg;
  cfg.read_only = true;
  cfg.max_transfer_bytes = 64 * 1024;
  LogicalUnit lu(cfg, &disk);
  Initiator ini(lu);
  EXPECT_EQ(ini.run(cdb10(0x2A, 0, 1), pattern(512, 0)).code(), kWriteProtected);
  EXPECT_EQ(ini.run({0x1A, 0, 0x3F, 0, 255, 0}).data[2] & 0x80, 0x80);  // WP
  EXPECT_EQ(ini.run(cdb10(0x28, 0, 129)).code(), kInvalidFieldInCdb);
  EXPECT_EQ(ini.run(cdb10(0x28, 0, 128)).status, status::kGood);
}

TEST(SbcCdrom, ReadsButNoWrites) {
  RamDisk disk(100, 2048);
  LogicalUnitConfig cfg;
  cfg.device_type = 0x05;
  LogicalUnit lu(cfg, &disk);
  Initiator ini(lu);
  EXPECT_EQ(ini.run(cdb10(0x28, 0, 2)).transferred, 4096u);
  EXPECT_EQ(ini.run(cdb10(0x2A, 0, 1), std::vector<uint8_t>(2048)).code(),
            kInvalidCommandOperationCode);
  EXPECT_EQ(get_be32(&ini.run(cdb10(0x25, 0, 0)).data[4]), 2048u);
}

}  // namespace
}  // namespace scstu::scsi
