// Split mode with a real ring: a RingDevice producer and serve() with a
// LogicalUnit over a FileDevice, the data area registered through
// HandlerOptions::on_data_area as io_uring fixed buffers, as fileio_tgt
// --attach does. READ/WRITE must go READ_FIXED/WRITE_FIXED (the engine's
// counters say so), with O_DIRECT, and the data must be right.
#include <gtest/gtest.h>

#include <cstring>
#include <memory>

#include "../ring/ring_test_support.h"
#include "io/file_device.h"
#include "scsi/logical_unit.h"
#include "test_file.h"

namespace scstu::io {
namespace {

using ring_test::HandlerThread;
using ring_test::Producer;
using ring_test::TestCommand;

constexpr uint32_t kBlock = 512;

// READ(10) / WRITE(10) of `blocks` at `lba` through the producer; retries
// once on the new nexus's unit attention. Returns the SCSI status.
uint8_t rw10(Producer& p, bool write, uint32_t lba, uint16_t blocks, const uint8_t* out,
             uint8_t* in) {
  for (int attempt = 0; attempt < 2; ++attempt) {
    const uint32_t len = blocks * kBlock;
    TestCommand c(write ? 0x2A : 0x28, len, write ? DataDirection::kWrite : DataDirection::kRead);
    std::memset(c.cmd.cdb.data(), 0, 10);
    c.cmd.cdb[0] = write ? 0x2A : 0x28;
    c.cmd.cdb[2] = static_cast<uint8_t>(lba >> 24);
    c.cmd.cdb[3] = static_cast<uint8_t>(lba >> 16);
    c.cmd.cdb[4] = static_cast<uint8_t>(lba >> 8);
    c.cmd.cdb[5] = static_cast<uint8_t>(lba);
    c.cmd.cdb[7] = static_cast<uint8_t>(blocks >> 8);
    c.cmd.cdb[8] = static_cast<uint8_t>(blocks);
    if (!p.device->alloc_buffer(c.cmd)) return 0xFF;
    if (write) DataBuffer(c.cmd.buffer).copy_from(0, {out, len});
    p.device->submit(c.cmd);
    if (!c.wait()) return 0xFE;
    if (!write && c.cmd.status == status::kGood) DataBuffer(c.cmd.buffer).copy_to(0, {in, len});
    p.device->release_buffer(c.cmd);
    const bool unit_attention =
        c.cmd.status == status::kCheckCondition && ring_test::sense_code(c.cmd)[0] == 0x06;
    if (!unit_attention) return c.cmd.status;
  }
  return status::kCheckCondition;
}

TEST(FixedBuffersOverTheRing, ReadsAndWritesUseFixedOpsWithODirect) {
  testing::ScratchFile file(8 << 20);
  FileDeviceOptions o;
  o.engine.kind = IoEngineKind::kUring;
  o.direct = true;
  std::unique_ptr<FileDevice> dev;
  try {
    dev = FileDevice::open(file.path(), o);
  } catch (const FileDeviceError& e) {
    GTEST_SKIP() << e.what();  // no io_uring or no O_DIRECT here
  }
  scsi::LogicalUnitConfig cfg;
  cfg.serial = "fixed0";
  auto lu = std::make_shared<scsi::LogicalUnit>(cfg, dev.get());

  Producer p;
  HandlerOptions h = p.options();
  std::atomic<int> registered{0}, unregistered{0}, rc{1};
  h.on_data_area = [&](std::span<std::byte> area) {
    if (area.empty()) {
      ++unregistered;
      dev->register_buffers({});
      return;
    }
    const iovec region{area.data(), area.size()};
    rc = dev->register_buffers(std::span<const iovec>(&region, 1));
    ++registered;
  };
  {
    HandlerThread t(h, *lu);
    ASSERT_TRUE(p.device->wait_ready(10000));
    // serve() maps the region after the producer is ready, then calls
    // on_data_area, then starts the queues: wait for the call.
    for (int i = 0; i < 1000 && registered.load() == 0; ++i) {
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    ASSERT_EQ(registered.load(), 1);
    if (rc.load() != 0) GTEST_SKIP() << "io_uring_register_buffers: " << std::strerror(-rc.load());

    const auto data = testing::random_bytes(256 * 1024, 7);
    ASSERT_EQ(rw10(p, true, 100, 512, data.data(), nullptr), status::kGood);
    EXPECT_EQ(file.read_back(100 * kBlock, data.size()), data) << "written through the ring";
    std::vector<uint8_t> back(data.size());
    ASSERT_EQ(rw10(p, false, 100, 512, nullptr, back.data()), status::kGood);
    EXPECT_EQ(back, data) << "read through the ring";

    const IoEngineStats s = dev->io_stats();
    EXPECT_GE(s.fixed_writes, 1u);
    EXPECT_GE(s.fixed_reads, 1u);
    EXPECT_EQ(s.vectored_reads + s.vectored_writes, 0u) << "every buffer lies in the data area";
    EXPECT_EQ(t.stop(), 0);
  }
  EXPECT_EQ(unregistered.load(), 1) << "on_data_area({}) when serve() stops";
}

}  // namespace
}  // namespace scstu::io
