// Split mode (a TargetCore over a RingDevice, scsi::LogicalUnit served by
// serve() in a thread of this process): the target core's part of the unit's
// state crosses the ring (ABI 1.2, SCSTU_F_UNIT_STATE). REPORTED LUNS DATA
// HAS CHANGED is queued with the unit's own unit attentions (SAM-5 5.14
// precedence), REPORT LUNS clears it there, and sense the core builds follows
// the D_SENSE the handler publishes. A handler that does not accept the
// feature (an ABI 1.1 handler) gets the core-held behaviour.
#include <gtest/gtest.h>

#include <atomic>
#include <condition_variable>
#include <cstring>
#include <memory>
#include <mutex>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "core/local_device.h"
#include "core/lun.h"
#include "core/target_core.h"
#include "handler/block_device.h"
#include "ring/region_layout.h"
#include "ring_test_support.h"
#include "scsi/logical_unit.h"
#include "scsi/sense.h"

namespace scstu::core {
namespace {

using ring_test::HandlerThread;
using ring_test::Producer;

constexpr const char* kTarget = "iqn.2026-11.org.scstu:split-state";
constexpr const char* kIni = "iqn.2026-11.org.scstu:initiator";
constexpr uint32_t kBlocks = 256;

class RamDisk : public BlockDevice {
 public:
  BlockGeometry geometry() const override { return {512, kBlocks}; }
  BlockCapabilities capabilities() const override { return {}; }
  void submit(BlockRequest& req) override {
    if (req.op == BlockOp::kRead || req.op == BlockOp::kWrite) {
      size_t off = req.lba * 512;
      for (const iovec& v : req.iov) {
        if (req.op == BlockOp::kRead) {
          std::memcpy(v.iov_base, &data_[off], v.iov_len);
        } else {
          std::memcpy(&data_[off], v.iov_base, v.iov_len);
        }
        off += v.iov_len;
      }
    }
    req.complete(0);
  }

 private:
  std::vector<uint8_t> data_ = std::vector<uint8_t>(kBlocks * 512);
};

// A handler that keeps no unit attentions (LowLevelHandler's defaults):
// every command GOOD.
class PlainHandler : public LowLevelHandler {
 public:
  void command(CommandHandle cmd) override { std::move(cmd).complete_good(0); }
};

// One command through the core, waited for (the ring completes it on the
// device's event thread).
struct Call {
  TargetCommand cmd;
  std::mutex mu;
  std::condition_variable cv;
  int done_calls = 0;
  Call(Session* s, uint64_t lun, const std::vector<uint8_t>& cdb, uint32_t expected,
       DataDirection dir) {
    cmd.session = s;
    cmd.lun = encode_lun(lun);
    std::memcpy(cmd.cdb.data(), cdb.data(), cdb.size());
    cmd.cdb_len = static_cast<uint16_t>(cdb.size());
    cmd.expected_length = expected;
    cmd.expected_direction = dir;
    cmd.done = [this](TargetCommand&) {
      std::lock_guard lock(mu);
      ++done_calls;
      cv.notify_all();
    };
  }
  bool wait() {
    std::unique_lock lock(mu);
    return cv.wait_for(lock, std::chrono::seconds(10), [&] { return done_calls > 0; });
  }
};

class SplitUnitState : public ::testing::Test {
 protected:
  // LUN 0: a LogicalUnit (or `handler`) behind the ring; LUN 1, added and
  // removed by the tests: an in-process unit.
  void start(LowLevelHandler* handler, bool accept_unit_state) {
    scsi::LogicalUnitConfig cfg;
    cfg.serial = "split0";
    lu = std::make_shared<scsi::LogicalUnit>(cfg, &disk);
    served = handler ? handler : lu.get();
    options = producer.options();
    options.unit_state = accept_unit_state;
    // Where the handler's mapping of the header page is, for the hostile
    // block test: the data area sits at the layout's data_offset.
    options.on_data_area = [this](std::span<std::byte> area) {
      ring::RegionParams params;
      params.nr_queues = producer_config().nr_queues;
      params.queue_depth = producer_config().queue_depth;
      params.data_size = producer_config().data_size;
      params.max_io_bytes = producer_config().max_io_bytes;
      scstu_region_header h;
      std::string error;
      if (!area.empty() && ring::compute_layout(params, &h, &error))
        header_page.store(reinterpret_cast<uint8_t*>(area.data()) - h.data_offset);
    };
    attach_handler();

    cfg.serial = "split1";
    lu1 = std::make_shared<scsi::LogicalUnit>(cfg, &disk1);
    LocalDeviceOptions o;
    o.info.name = "disk1";
    o.info.block_size = 512;
    o.max_io_bytes = 64 * 1024;
    device1 = std::make_shared<LocalDevice>(lu1, o);

    core = std::make_unique<TargetCore>();
    ASSERT_TRUE(core->access().add_device(producer.device));
    ASSERT_TRUE(core->access().add_device(device1));
    ASSERT_TRUE(core->access().add_target(kTarget));
    ASSERT_TRUE(core->access().add_lun("Default", 0, "disk0"));
    SessionParams p;
    p.target_name = kTarget;
    p.initiator_name = kIni;
    session = core->open_session(p);
    ASSERT_TRUE(session);
  }
  void attach_handler() {
    handler_thread = std::make_unique<HandlerThread>(options, *served);
    ASSERT_TRUE(producer.device->wait_ready(10000)) << handler_thread->error;
  }
  // The handler goes away (as a handler process that exits would) and the
  // producer notices.
  void detach_handler() {
    EXPECT_EQ(handler_thread->stop(), 0);
    handler_thread.reset();
    for (int i = 0; i < 1000 && producer.device->last_drop_reason().empty(); ++i)
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    ASSERT_FALSE(producer.device->last_drop_reason().empty());
  }
  void TearDown() override {
    if (session) core->close_session(*session);
    handler_thread.reset();
  }

  // One command to `lun`; `out` is its Data-Out. Returns the sense (empty if none).
  std::vector<uint8_t> run(uint64_t lun, const std::vector<uint8_t>& cdb, uint32_t expected,
                           DataDirection dir, const std::vector<uint8_t>& out = {},
                           std::vector<uint8_t>* in = nullptr) {
    Call c(session.get(), lun, cdb, expected, dir);
    if (core->prepare(c.cmd)) {
      size_t at = 0;
      for (const iovec& v : c.cmd.buffer) {
        const size_t n = std::min(v.iov_len, out.size() - std::min(out.size(), at));
        if (n) std::memcpy(v.iov_base, out.data() + at, n);
        at += n;
      }
      core->execute(c.cmd);
    }
    EXPECT_TRUE(c.wait());
    EXPECT_EQ(c.done_calls, 1);
    if (in) {
      in->clear();
      size_t left = c.cmd.transferred;
      for (const iovec& v : c.cmd.buffer) {
        const size_t n = std::min(left, v.iov_len);
        in->insert(in->end(), static_cast<uint8_t*>(v.iov_base),
                   static_cast<uint8_t*>(v.iov_base) + n);
        left -= n;
      }
    }
    std::vector<uint8_t> sense(c.cmd.sense.begin(), c.cmd.sense.begin() + c.cmd.sense_len);
    last_status = c.cmd.status;
    core->release(c.cmd);
    return sense;
  }
  scsi::SenseCode tur() {
    return scsi::parse_sense(run(0, {0x00, 0, 0, 0, 0, 0}, 0, DataDirection::kNone)).code;
  }
  std::vector<uint8_t> report_luns() {
    std::vector<uint8_t> luns;
    EXPECT_TRUE(
        run(0, {0xA0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0}, 256, DataDirection::kRead, {}, &luns)
            .empty());
    return luns;
  }
  scstu_tmf_response lun_reset() {
    TargetTmf tmf;
    tmf.function = SCSTU_TMF_LUN_RESET;
    tmf.lun = encode_lun(0);
    tmf.session = session.get();
    std::mutex mu;
    std::condition_variable cv;
    bool done = false;
    scstu_tmf_response response = SCSTU_TMF_FAILED;
    tmf.done = [&](scstu_tmf_response r) {
      std::lock_guard lock(mu);
      response = r;
      done = true;
      cv.notify_all();
    };
    core->task_management(tmf);
    std::unique_lock lock(mu);
    EXPECT_TRUE(cv.wait_for(lock, std::chrono::seconds(10), [&] { return done; }));
    return response;
  }
  // MODE SELECT(6) of the control mode page with D_SENSE = `on`, through the ring.
  void set_d_sense(bool on) {
    std::vector<uint8_t> page;
    ASSERT_TRUE(
        run(0, {0x1A, 0x08, 0x0A, 0, 255, 0}, 255, DataDirection::kRead, {}, &page).empty());
    ASSERT_GE(page.size(), 4u + 12u);
    std::vector<uint8_t> list = page;
    list[0] = 0;      // MODE DATA LENGTH: reserved in MODE SELECT
    list[4] &= 0x3F;  // PS
    list[4 + 2] = static_cast<uint8_t>((list[4 + 2] & ~0x04) | (on ? 0x04 : 0));  // D_SENSE
    const uint8_t len = static_cast<uint8_t>(list.size());
    ASSERT_TRUE(run(0, {0x15, 0x10, 0, 0, len, 0}, len, DataDirection::kWrite, list).empty());
    ASSERT_EQ(lu->descriptor_sense(), on);
  }
  // READ(10) of 256 blocks: beyond the ring's max_io_bytes (64 KiB by
  // default here), refused by the core before the unit sees it.
  std::vector<uint8_t> core_refused() {
    return run(0, {0x28, 0, 0, 0, 0, 0, 0, 0x01, 0x00, 0}, 256 * 512, DataDirection::kRead);
  }

  static transport::RingDeviceConfig producer_config() {
    transport::RingDeviceConfig c;
    c.max_io_bytes = 64 * 1024;
    c.data_size = 1 << 20;
    return c;
  }
  Producer producer{producer_config()};
  std::atomic<uint8_t*> header_page{nullptr};  // the handler's mapping of it
  HandlerOptions options;
  PlainHandler plain;  // a handler some tests serve instead of the LogicalUnit
  LowLevelHandler* served = nullptr;
  std::unique_ptr<HandlerThread> handler_thread;
  RamDisk disk, disk1;
  std::shared_ptr<scsi::LogicalUnit> lu, lu1;
  std::shared_ptr<LocalDevice> device1;
  std::unique_ptr<TargetCore> core;
  std::shared_ptr<Session> session;
  uint8_t last_status = 0;
};

// SAM-5 5.14: one unit attention per command, the reset family first. A LUN
// added while the new nexus's POWER ON is pending: POWER ON, then REPORTED
// LUNS DATA HAS CHANGED; a LUN reset after a LUN removal: BUS DEVICE RESET
// first, and the reset keeps the target's condition; REPORT LUNS clears it
// in the handler.
TEST_F(SplitUnitState, ReportedLunsChangedTakesItsPrecedence) {
  start(nullptr, true);
  ASSERT_TRUE(core->access().add_lun("Default", 1, "disk1"));
  EXPECT_EQ(tur(), scsi::kUaPowerOnOccurred);
  EXPECT_EQ(tur(), scsi::kUaReportedLunsDataHasChanged);
  EXPECT_EQ(last_status, status::kCheckCondition);
  EXPECT_EQ(tur(), scsi::SenseCode{});
  EXPECT_EQ(last_status, status::kGood);

  ASSERT_TRUE(core->access().remove_lun("Default", 1));
  EXPECT_EQ(lun_reset(), SCSTU_TMF_COMPLETE);
  EXPECT_EQ(tur(), scsi::kUaBusDeviceResetFunctionOccurred);
  EXPECT_EQ(tur(), scsi::kUaReportedLunsDataHasChanged);
  EXPECT_EQ(tur(), scsi::SenseCode{});

  // REPORT LUNS clears it in the handler before it is reported.
  ASSERT_TRUE(core->access().add_lun("Default", 1, "disk1"));
  EXPECT_EQ(report_luns().size(), 8u + 16u);
  EXPECT_EQ(tur(), scsi::SenseCode{});
  EXPECT_EQ(last_status, status::kGood);
  // REQUEST SENSE returns nothing pending either.
  std::vector<uint8_t> rs;
  EXPECT_TRUE(run(0, {0x03, 0, 0, 0, 252, 0}, 252, DataDirection::kRead, {}, &rs).empty());
  EXPECT_EQ(scsi::parse_sense(rs).code, scsi::SenseCode{});
}

// SPC-4 4.5.1: the core's sense for the unit is in the format the handler
// published: switched by MODE SELECT through the ring (no sense data came back
// in between to guess from), and published again by the next handler at attach.
TEST_F(SplitUnitState, CoreSenseFollowsPublishedDSense) {
  start(nullptr, true);
  EXPECT_EQ(tur(), scsi::kUaPowerOnOccurred);  // the unit's sense: fixed
  std::vector<uint8_t> s = core_refused();
  ASSERT_GE(s.size(), 18u);
  EXPECT_EQ(s[0], 0x70);

  set_d_sense(true);
  s = core_refused();
  ASSERT_GE(s.size(), 8u);
  EXPECT_EQ(s[0], 0x72);
  scsi::ParsedSense p = scsi::parse_sense(s);
  EXPECT_EQ(p.code, scsi::kInvalidFieldInCdb);
  ASSERT_TRUE(p.field.has_value());
  EXPECT_EQ(p.field->field, 7);
  s = run(0, {0xFF, 0, 0, 0, 0, 0}, 0, DataDirection::kNone);  // no such opcode
  EXPECT_EQ(s[0], 0x72);
  EXPECT_EQ(scsi::parse_sense(s).code, scsi::kInvalidCommandOperationCode);

  // A new handler attaches to the same unit: a fresh region, where only its
  // attach-time publication says descriptor.
  detach_handler();
  attach_handler();
  s = core_refused();
  EXPECT_EQ(s[0], 0x72);
  EXPECT_EQ(tur(), scsi::kUaPowerOnOccurred);  // the unit's own sense, descriptor too

  set_d_sense(false);
  s = core_refused();
  EXPECT_EQ(s[0], 0x70);
  EXPECT_EQ(scsi::parse_sense(s).code, scsi::kInvalidFieldInCdb);
}

// The sense the RingDevice builds itself (LOGICAL UNIT COMMUNICATION FAILURE
// for commands while no handler is attached) follows the D_SENSE the last
// handler published.
TEST_F(SplitUnitState, NoHandlerSenseFollowsTheLastPublishedDSense) {
  start(nullptr, true);
  EXPECT_EQ(tur(), scsi::kUaPowerOnOccurred);
  set_d_sense(true);
  detach_handler();
  const std::vector<uint8_t> s = run(0, {0x00, 0, 0, 0, 0, 0}, 0, DataDirection::kNone);
  ASSERT_GE(s.size(), 8u);
  EXPECT_EQ(s[0], 0x72);
  EXPECT_EQ(scsi::parse_sense(s).code, (scsi::SenseCode{0x0B, 0x08, 0x00}));
  EXPECT_EQ(core_refused()[0], 0x72) << "the core's own sense, too";
}

// A handler that keeps no unit attentions declines the event: the core
// reports the condition itself; its sense format is what it published (fixed).
TEST_F(SplitUnitState, HandlerWithoutUnitAttentionsLeavesTheConditionToTheCore) {
  start(&plain, true);
  ASSERT_TRUE(core->access().add_lun("Default", 1, "disk1"));
  EXPECT_EQ(tur(), scsi::kUaReportedLunsDataHasChanged);
  EXPECT_EQ(tur(), scsi::SenseCode{});
  EXPECT_EQ(last_status, status::kGood);
  EXPECT_EQ(core_refused()[0], 0x70);
}

// An ABI 1.1 handler (the feature not accepted): the core keeps REPORTED LUNS
// DATA HAS CHANGED and reports it ahead of the unit's own (the old
// behaviour), and guesses the sense format from the unit's last sense data.
TEST_F(SplitUnitState, OlderHandlerGetsTheCoreHeldFallback) {
  start(nullptr, false);
  ASSERT_TRUE(core->access().add_lun("Default", 1, "disk1"));
  EXPECT_EQ(tur(), scsi::kUaReportedLunsDataHasChanged);
  EXPECT_EQ(tur(), scsi::kUaPowerOnOccurred);
  EXPECT_EQ(tur(), scsi::SenseCode{});

  set_d_sense(true);
  EXPECT_EQ(core_refused()[0], 0x70) << "nothing published: the last sense seen was fixed";
  // LBA out of range, from the unit: descriptor format, which the core
  // follows from then on.
  const std::vector<uint8_t> lu_sense =
      run(0, {0x28, 0, 0, 0, 0x10, 0, 0, 0, 1, 0}, 512, DataDirection::kRead);
  ASSERT_FALSE(lu_sense.empty());
  EXPECT_EQ(lu_sense[0], 0x72);
  EXPECT_EQ(core_refused()[0], 0x72);
}

// The state block is the handler's to write, and the producer reads it as
// hostile: a flag it does not know, or a feature it did not offer, voids the
// block (sense format guessed again, the condition kept by the core), and
// nothing breaks.
TEST_F(SplitUnitState, HostileStateBlockIsIgnored) {
  start(nullptr, true);
  uint8_t* page = header_page.load();
  ASSERT_NE(page, nullptr);
  auto* state = reinterpret_cast<scstu_handler_state*>(page + SCSTU_HANDLER_STATE_OFFSET);
  EXPECT_EQ(tur(), scsi::kUaPowerOnOccurred);  // fixed: the last sense seen
  set_d_sense(true);
  EXPECT_EQ(producer.device->descriptor_sense(), std::optional<bool>(true));

  __atomic_store_n(&state->unit_flags, SCSTU_UNIT_F_D_SENSE | 0x80000000u, __ATOMIC_RELEASE);
  EXPECT_EQ(producer.device->descriptor_sense(), std::nullopt);
  EXPECT_EQ(core_refused()[0], 0x70) << "block void: the format of the last sense seen";
  ASSERT_TRUE(core->access().add_lun("Default", 1, "disk1"));
  EXPECT_EQ(tur(), scsi::kUaReportedLunsDataHasChanged) << "kept and reported by the core";
  EXPECT_EQ(tur(), scsi::SenseCode{});

  __atomic_store_n(&state->unit_flags, SCSTU_UNIT_F_D_SENSE, __ATOMIC_RELEASE);
  __atomic_store_n(&state->features, ~0ull, __ATOMIC_RELEASE);
  EXPECT_EQ(producer.device->descriptor_sense(), std::nullopt) << "features not offered";
  __atomic_store_n(&state->features, uint64_t{SCSTU_F_UNIT_STATE}, __ATOMIC_RELEASE);
  EXPECT_EQ(producer.device->descriptor_sense(), std::optional<bool>(true));
}

}  // namespace
}  // namespace scstu::core
