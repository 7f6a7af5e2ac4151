// GET LBA STATUS from a sparse file's real allocation (FileDevice::allocation,
// SEEK_DATA / SEEK_HOLE), through a LogicalUnit: written zeroes are mapped,
// holes (never written, or punched by UNMAP) are deallocated.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <linux/falloc.h>
#include <unistd.h>

#include <memory>
#include <tuple>
#include <vector>

#include "../scsi/initiator.h"
#include "io/file_device.h"
#include "test_file.h"

namespace scstu::io {
namespace {

using Descriptor = std::tuple<uint64_t, uint32_t, uint8_t>;  // LBA, blocks, provisioning status

constexpr uint64_t kKiB = 1024;

void put_be(std::vector<uint8_t>& b, size_t at, uint64_t v, int bytes) {
  for (int i = 0; i < bytes; ++i) b[at + i] = static_cast<uint8_t>(v >> (8 * (bytes - 1 - i)));
}
uint64_t get_be(const uint8_t* p, int bytes) {
  uint64_t v = 0;
  for (int i = 0; i < bytes; ++i) v = v << 8 | p[i];
  return v;
}

void pwrite_all(const std::string& path, uint64_t offset, const std::vector<uint8_t>& data) {
  const int fd = ::open(path.c_str(), O_WRONLY);
  ASSERT_GE(fd, 0);
  ASSERT_EQ(pwrite(fd, data.data(), data.size(), static_cast<off_t>(offset)),
            static_cast<ssize_t>(data.size()));
  ASSERT_EQ(fsync(fd), 0);
  ::close(fd);
}

class LbaStatus : public ::testing::Test {
 protected:
  void SetUp() override {
    // Sparse 4 MiB: data at [0, 64K), explicit zeroes at [1M, 1M + 8K), data
    // at [2M, 2M + 4K); the rest holes.
    pwrite_all(file_.path(), 0, testing::random_bytes(64 * kKiB, 1));
    pwrite_all(file_.path(), 1024 * kKiB, std::vector<uint8_t>(8 * kKiB, 0));
    pwrite_all(file_.path(), 2048 * kKiB, testing::random_bytes(4 * kKiB, 2));
    FileDeviceOptions o;
    o.thin = true;
    dev_ = FileDevice::open(file_.path(), o);
    if (dev_->allocation(0, 1).state == BlockAllocation::kUnknown) {
      GTEST_SKIP() << "no SEEK_DATA on this filesystem";
    }
    scsi::LogicalUnitConfig cfg;
    cfg.thin = true;
    lu_ = std::make_unique<scsi::LogicalUnit>(cfg, dev_.get());
    ini_ = std::make_unique<scsi::testing::Initiator>(*lu_);
    ini_->attach();
    ini_->run({0x00, 0, 0, 0, 0, 0});  // TEST UNIT READY takes the power-on unit attention
  }

  std::vector<Descriptor> get_lba_status(uint64_t lba, uint32_t alloc = 4096) {
    std::vector<uint8_t> cdb(16, 0);
    cdb[0] = 0x9E;  // SERVICE ACTION IN(16)
    cdb[1] = 0x12;  // GET LBA STATUS
    put_be(cdb, 2, lba, 8);
    put_be(cdb, 10, alloc, 4);
    const scsi::testing::Reply r = ini_->run(cdb);
    EXPECT_EQ(r.status, 0) << "GET LBA STATUS at " << lba;
    std::vector<Descriptor> out;
    if (r.data.size() < 8) return out;
    const uint64_t length = get_be(r.data.data(), 4);
    EXPECT_EQ((length - 4) % 16, 0u);
    for (size_t at = 8; at + 16 <= r.data.size() && at < length + 4; at += 16) {
      const uint8_t* d = &r.data[at];
      out.emplace_back(get_be(d, 8), static_cast<uint32_t>(get_be(d + 8, 4)), d[12] & 0x0F);
    }
    return out;
  }

  testing::ScratchFile file_{4096 * kKiB};
  std::unique_ptr<FileDevice> dev_;
  std::unique_ptr<scsi::LogicalUnit> lu_;
  std::unique_ptr<scsi::testing::Initiator> ini_;
};

TEST_F(LbaStatus, AllocationFollowsHolesAndData) {
  EXPECT_EQ(dev_->allocation(0, 100000).state, BlockAllocation::kMapped);
  EXPECT_EQ(dev_->allocation(0, 100000).blocks, 128u);
  EXPECT_EQ(dev_->allocation(0, 10).blocks, 10u) << "capped at max_blocks";
  const AllocationExtent hole = dev_->allocation(128, 100000);
  EXPECT_EQ(hole.state, BlockAllocation::kDeallocated);
  EXPECT_EQ(hole.blocks, 2048u - 128u);
  EXPECT_EQ(dev_->allocation(8191, 100).blocks, 1u) << "capped at the capacity";
  EXPECT_EQ(dev_->allocation(8192, 100).state, BlockAllocation::kUnknown) << "past the end";
}

TEST_F(LbaStatus, DescriptorsFromTheFilesAllocation) {
  const std::vector<Descriptor> want = {
      {0, 128, 0},       // data
      {128, 1920, 1},    // hole
      {2048, 16, 0},     // written zeroes are allocated: mapped, not a hole
      {2064, 2032, 1},   // hole
      {4096, 8, 0},      // data
      {4104, 4088, 1}};  // hole to the end
  EXPECT_EQ(get_lba_status(0), want);
  // From inside a run: the first descriptor starts at the requested LBA.
  EXPECT_EQ(get_lba_status(130)[0], Descriptor(130, 1918, 1));
  // ALLOCATION LENGTH for two descriptors: the first two runs only.
  const std::vector<Descriptor> two(want.begin(), want.begin() + 2);
  EXPECT_EQ(get_lba_status(0, 8 + 2 * 16), two);
}

TEST_F(LbaStatus, UnmapDeallocates) {
  // UNMAP LBA 0, 64 blocks (32 KiB: whole filesystem blocks).
  std::vector<uint8_t> params(24, 0);
  put_be(params, 0, 22, 2);
  put_be(params, 2, 16, 2);
  put_be(params, 8, 0, 8);
  put_be(params, 16, 64, 4);
  std::vector<uint8_t> cdb(10, 0);
  cdb[0] = 0x42;
  put_be(cdb, 7, params.size(), 2);
  ASSERT_EQ(ini_->run(cdb, params).status, 0);
  const std::vector<Descriptor> got = get_lba_status(0, 8 + 2 * 16);
  const std::vector<Descriptor> want = {{0, 64, 1}, {64, 64, 0}};
  EXPECT_EQ(got, want);
}

}  // namespace
}  // namespace scstu::io
