// Embedded mode's counterpart of fixed_buffers_ring_test: core::LocalDevice's
// command slots registered one at a time as io_uring fixed buffers
// (LocalDeviceOptions::on_slot_buffer -> FileDevice::set_fixed_buffer), as
// fileio_tgt --iscsi does. READ/WRITE must go READ_FIXED/WRITE_FIXED with
// O_DIRECT and move the right data; a slot that grows is re-registered.
#include <gtest/gtest.h>

#include <condition_variable>
#include <cstring>
#include <memory>
#include <mutex>

#include "../core/core_test_util.h"
#include "core/local_device.h"
#include "io/file_device.h"
#include "scsi/logical_unit.h"
#include "test_file.h"

namespace scstu::io {
namespace {

constexpr const char* kTarget = "iqn.2026-11.org.scstu:fixed";

// One command through the core, waited for (the FileDevice completes on its
// reaper thread); retried once on the new nexus's unit attention.
struct Command {
  static uint8_t run(core::TargetCore& core, core::Session* session, std::vector<uint8_t> cdb,
                     uint32_t length, DataDirection dir, uint8_t fill,
                     std::vector<uint8_t>* data_in = nullptr) {
    for (int attempt = 0; attempt < 2; ++attempt) {
      core::test::Exchange x(session, 0, cdb, length, dir);
      std::mutex mu;
      std::condition_variable cv;
      bool done = false;
      auto inner = x.cmd.done;
      x.cmd.done = [&, inner](core::TargetCommand& t) {
        inner(t);
        std::lock_guard lock(mu);
        done = true;
        cv.notify_all();
      };
      if (!x.run(core, fill)) return 0xFF;
      {
        std::unique_lock lock(mu);
        if (!cv.wait_for(lock, std::chrono::seconds(10), [&] { return done; })) return 0xFE;
      }
      const uint8_t status = x.cmd.status;
      if (data_in) *data_in = x.data_in;
      core.release(x.cmd);
      if (!(status == status::kCheckCondition && x.sense_key() == 0x06)) return status;
    }
    return status::kCheckCondition;
  }
};

TEST(FixedBuffersEmbedded, LocalDeviceSlotsAreFixedBuffers) {
  testing::ScratchFile file(8 << 20);
  FileDeviceOptions o;
  o.engine.kind = IoEngineKind::kUring;
  o.direct = true;
  std::unique_ptr<FileDevice> dev;
  try {
    dev = FileDevice::open(file.path(), o);
  } catch (const FileDeviceError& e) {
    GTEST_SKIP() << e.what();
  }
  scsi::LogicalUnitConfig cfg;
  cfg.serial = "fixed1";
  auto lu = std::make_shared<scsi::LogicalUnit>(cfg, dev.get());

  core::LocalDeviceOptions lo;
  lo.info.name = "disk0";
  lo.info.block_size = 512;
  lo.queue_depth = 4;
  ASSERT_EQ(dev->reserve_fixed_buffers(lo.queue_depth), 0);
  int registrations = 0, clears = 0;
  std::mutex mu;
  lo.on_slot_buffer = [&](uint32_t slot, std::span<std::byte> buffer) {
    std::lock_guard lock(mu);
    ++(buffer.empty() ? clears : registrations);
    EXPECT_EQ(dev->set_fixed_buffer(slot, buffer), 0);
  };
  {
    core::TargetCore core;
    ASSERT_TRUE(core.access().add_device(std::make_shared<core::LocalDevice>(lu, lo)));
    ASSERT_TRUE(core.access().add_target(kTarget));
    ASSERT_TRUE(core.access().add_lun("Default", 0, "disk0"));
    core::SessionParams p;
    p.target_name = kTarget;
    p.initiator_name = "iqn.2026-11.org.scstu:ini";
    auto session = core.open_session(p);
    ASSERT_TRUE(session);

    // 8 KiB, then 256 KiB: the slot grows and is registered again.
    for (uint16_t blocks : {16, 512}) {
      const uint32_t len = blocks * 512u;
      ASSERT_EQ(Command::run(core, session.get(), core::test::write10(64, blocks), len,
                             DataDirection::kWrite, 0xA5),
                status::kGood);
      EXPECT_EQ(file.read_back(64 * 512, len), std::vector<uint8_t>(len, 0xA5));
      std::vector<uint8_t> in;
      ASSERT_EQ(Command::run(core, session.get(), core::test::read10(64, blocks), len,
                             DataDirection::kRead, 0, &in),
                status::kGood);
      EXPECT_EQ(in, std::vector<uint8_t>(len, 0xA5));
    }
    const IoEngineStats s = dev->io_stats();
    EXPECT_GE(s.fixed_writes, 2u);
    EXPECT_GE(s.fixed_reads, 2u);
    EXPECT_EQ(s.vectored_reads + s.vectored_writes, 0u);
    EXPECT_GE(registrations, 2) << "a slot registered, then again when it grew";
    core.close_session(*session);
  }
  EXPECT_GE(clears, 1) << "every slot cleared before the LocalDevice frees it";
}

TEST(FixedBuffersEmbedded, AClearedEntryIsNoLongerUsed) {
  std::string error;
  IoEngineOptions eo;
  eo.kind = IoEngineKind::kUring;
  auto engine = make_io_engine(eo, &error);
  ASSERT_TRUE(engine) << error;
  void* p = nullptr;
  ASSERT_EQ(posix_memalign(&p, 4096, 8192), 0);
  ASSERT_EQ(engine->reserve_fixed_buffers(2), 0);
  EXPECT_EQ(engine->fixed_index(p, 4096), -1) << "empty entries match nothing";
  ASSERT_EQ(engine->set_fixed_buffer(1, iovec{p, 8192}), 0);
  EXPECT_EQ(engine->fixed_index(static_cast<char*>(p) + 4096, 4096), 1);
  ASSERT_EQ(engine->set_fixed_buffer(1, iovec{nullptr, 0}), 0);
  EXPECT_EQ(engine->fixed_index(p, 4096), -1);
  EXPECT_EQ(engine->set_fixed_buffer(2, iovec{p, 8192}), -EINVAL) << "beyond the table";
  free(p);
}

}  // namespace
}  // namespace scstu::io
