// LogicalUnit with the per-LU state of core/: unit attentions, reservations,
// the task set and task management.
#include <gtest/gtest.h>

#include <mutex>
#include <vector>

#include "initiator.h"
#include "scsi/logical_unit.h"
#include "scsi/lu_runtime.h"
#include "scsi/sbc_advanced_job.h"

namespace scstu::scsi {
namespace {

using testing::cdb10;
using testing::Initiator;
using testing::RamDisk;
using testing::Reply;

// Holds every request until release_all().
class GatedDisk : public BlockDevice {
 public:
  BlockGeometry geometry() const override { return {512, 128}; }
  void submit(BlockRequest& req) override {
    std::lock_guard lock(mutex_);
    held_.push_back(&req);
  }
  size_t held() {
    std::lock_guard lock(mutex_);
    return held_.size();
  }
  void release_all() {
    std::vector<BlockRequest*> reqs;
    {
      std::lock_guard lock(mutex_);
      reqs.swap(held_);
    }
    for (BlockRequest* r : reqs) r->complete(0);
  }

 private:
  std::mutex mutex_;
  std::vector<BlockRequest*> held_;
};

const std::vector<uint8_t> kTur = {0x00, 0, 0, 0, 0, 0};

// SAM-5 5.9 / 8.9: this unit offers no ACA (NormACA = 0 in INQUIRY), so a
// CDB asking for one (NACA = 1 in the CONTROL byte) is refused with INVALID
// FIELD IN CDB pointing at that bit, and a command with the ACA task
// attribute, with no ACA condition to run in, gets ILLEGAL REQUEST / INVALID
// MESSAGE ERROR. Neither touches the medium nor the task set.
TEST(LuState, NoAcaOffered) {
  RamDisk disk(64);
  LogicalUnit lu(LogicalUnitConfig{}, &disk);
  Initiator ini(lu);
  Reply r = ini.run({0x12, 0, 0, 0, 96, 0});
  ASSERT_EQ(r.status, status::kGood);
  EXPECT_EQ(r.data[3] & 0x20, 0);  // NormACA
  r = ini.run({0x28, 0, 0, 0, 0, 0, 0, 0, 1, 0x04});
  EXPECT_EQ(r.code(), kInvalidFieldInCdb);
  ASSERT_TRUE(r.parsed().field.has_value());
  EXPECT_TRUE(r.parsed().field->in_cdb);
  EXPECT_EQ(r.parsed().field->field, 9);
  EXPECT_EQ(r.parsed().field->bit, 2);
  r = ini.run(kTur, {}, TaskAttribute::kAca);
  EXPECT_EQ(r.status, status::kCheckCondition);
  EXPECT_EQ(r.code(), kIllegalRequestInvalidMessage);
  EXPECT_TRUE(disk.log.empty());
}

TEST(LuState, OrderedWaitsForOlderAndBlocksNewer) {
  GatedDisk disk;
  LogicalUnit lu(LogicalUnitConfig{}, &disk);
  Initiator ini(lu);
  const uint32_t read = ini.start(cdb10(0x28, 0, 1));
  const uint32_t ordered = ini.start(kTur, {}, TaskAttribute::kOrdered);
  const uint32_t simple = ini.start(kTur);
  ini.submit_started();
  EXPECT_EQ(disk.held(), 1u);
  EXPECT_FALSE(ini.done(read));
  EXPECT_FALSE(ini.done(ordered));
  EXPECT_FALSE(ini.done(simple));
  disk.release_all();
  EXPECT_EQ(ini.wait(read).status, status::kGood);
  EXPECT_EQ(ini.wait(ordered).status, status::kGood);
  EXPECT_EQ(ini.wait(simple).status, status::kGood);
}

TEST(LuState, HeadOfQueueRunsAtOnce) {
  GatedDisk disk;
  LogicalUnit lu(LogicalUnitConfig{}, &disk);
  Initiator ini(lu);
  const uint32_t read = ini.start(cdb10(0x28, 0, 1));
  const uint32_t ordered = ini.start(kTur, {}, TaskAttribute::kOrdered);
  const uint32_t hoq = ini.start(kTur, {}, TaskAttribute::kHeadOfQueue);
  ini.submit_started();
  EXPECT_TRUE(ini.done(hoq));
  EXPECT_FALSE(ini.done(ordered));
  disk.release_all();
  EXPECT_EQ(ini.wait(read).status, status::kGood);
  EXPECT_EQ(ini.wait(ordered).status, status::kGood);
  EXPECT_EQ(ini.wait(hoq).status, status::kGood);
}

TEST(LuState, AbortTaskOfARunningCommand) {
  GatedDisk disk;
  LogicalUnit lu(LogicalUnitConfig{}, &disk);
  Initiator ini(lu);
  const uint32_t read = ini.start(cdb10(0x28, 0, 1));
  const uint32_t queued = ini.start(kTur, {}, TaskAttribute::kOrdered);
  ini.submit_started();
  TaskManagementRequest tmf;
  tmf.function = SCSTU_TMF_ABORT_TASK;
  tmf.session = &ini.session();
  tmf.ref_tag = queued;
  EXPECT_EQ(lu.task_management(tmf), SCSTU_TMF_COMPLETE);
  EXPECT_EQ(ini.wait(queued).status, status::kTaskAborted);
  tmf.ref_tag = read;
  // ABORT TASK does not wait: the running read is marked, and its reply,
  // when the device completes it, becomes TASK ABORTED.
  EXPECT_EQ(lu.task_management(tmf), SCSTU_TMF_COMPLETE);
  disk.release_all();
  const Reply r = ini.wait(read);
  EXPECT_EQ(r.status, status::kTaskAborted);
}

TEST(LuState, Spc2ReservationConflict) {
  RamDisk disk(64);
  LogicalUnit lu(LogicalUnitConfig{}, &disk);
  Initiator a(lu, 1, "iqn.2026-11.test:a");
  Initiator b(lu, 2, "iqn.2026-11.test:b");
  ASSERT_EQ(a.run({0x16, 0, 0, 0, 0, 0}).status, status::kGood);
  EXPECT_EQ(b.run(cdb10(0x28, 0, 1)).status, status::kReservationConflict);
  EXPECT_EQ(b.run({0x12, 0, 0, 0, 36, 0}).status, status::kGood);
  EXPECT_EQ(b.run({0x16, 0, 0, 0, 0, 0}).status, status::kReservationConflict);
  EXPECT_EQ(a.run(cdb10(0x28, 0, 1)).status, status::kGood);
  ASSERT_EQ(a.run({0x17, 0, 0, 0, 0, 0}).status, status::kGood);
  EXPECT_EQ(b.run(cdb10(0x28, 0, 1)).status, status::kGood);
}

TEST(LuState, LunResetClearsReservationAndRaisesUa) {
  RamDisk disk(64);
  LogicalUnit lu(LogicalUnitConfig{}, &disk);
  Initiator a(lu, 1, "iqn.2026-11.test:a");
  Initiator b(lu, 2, "iqn.2026-11.test:b");
  a.attach();
  b.attach();
  a.run(kTur);
  b.run(kTur);
  ASSERT_EQ(a.run({0x16, 0, 0, 0, 0, 0}).status, status::kGood);
  TaskManagementRequest tmf;
  tmf.function = SCSTU_TMF_LUN_RESET;
  tmf.session = &b.session();
  lu.task_management(tmf);
  EXPECT_EQ(b.run(kTur).code().asc, 0x29);
  EXPECT_EQ(b.run(cdb10(0x28, 0, 1)).status, status::kGood);
}

TEST(LuState, PersistentReservationWriteExclusive) {
  RamDisk disk(64);
  LogicalUnit lu(LogicalUnitConfig{}, &disk);
  Initiator a(lu, 1, "iqn.2026-11.test:a");
  Initiator b(lu, 2, "iqn.2026-11.test:b");
  a.attach();
  b.attach();
  a.run(kTur);
  b.run(kTur);
  // REGISTER key 0x1234 from a.
  std::vector<uint8_t> params(24, 0);
  put_be64(&params[8], 0x1234);
  std::vector<uint8_t> out = {0x5F, 0x00, 0, 0, 0, 0, 0, 0, 24, 0};
  ASSERT_EQ(a.run(out, params).status, status::kGood);
  // RESERVE, type WRITE EXCLUSIVE.
  std::fill(params.begin(), params.end(), 0);
  put_be64(&params[0], 0x1234);
  out[1] = 0x01;
  out[2] = 0x01;
  ASSERT_EQ(a.run(out, params).status, status::kGood);
  EXPECT_EQ(b.run(cdb10(0x2A, 0, 1), std::vector<uint8_t>(512)).status,
            status::kReservationConflict);
  EXPECT_EQ(b.run(cdb10(0x28, 0, 1)).status, status::kGood);
  EXPECT_EQ(a.run(cdb10(0x2A, 0, 1), std::vector<uint8_t>(512)).status, status::kGood);
  // READ KEYS shows the registration.
  Reply r = b.run({0x5E, 0x00, 0, 0, 0, 0, 0, 0, 64, 0});
  ASSERT_EQ(r.status, status::kGood);
  EXPECT_EQ(get_be32(&r.data[4]), 8u);
  EXPECT_EQ(get_be64(&r.data[8]), 0x1234u);
}

TEST(LuState, CapacityChangedRaisesUa) {
  RamDisk disk(64);
  LogicalUnit lu(LogicalUnitConfig{}, &disk);
  Initiator a(lu);
  a.attach();
  a.run(kTur);
  disk.resize(128);
  lu.capacity_changed();
  EXPECT_EQ(a.run(kTur).code(), kUaCapacityDataHasChanged);
  EXPECT_EQ(lu.capacity_blocks(), 128u);
  EXPECT_EQ(a.run(cdb10(0x28, 100, 1)).status, status::kGood);
}

TEST(LuState, DetachDropsUnitAttentionsAndReservation) {
  RamDisk disk(64);
  LogicalUnit lu(LogicalUnitConfig{}, &disk);
  Initiator a(lu, 1, "iqn.2026-11.test:a");
  Initiator b(lu, 2, "iqn.2026-11.test:b");
  a.attach();
  a.run(kTur);
  ASSERT_EQ(a.run({0x16, 0, 0, 0, 0, 0}).status, status::kGood);
  a.detach();
  EXPECT_EQ(b.run(cdb10(0x28, 0, 1)).status, status::kGood);
}

// COMPARE AND WRITE holds its range exclusive; a WRITE overlapping it waits.
TEST(LuState, WriteWaitsForAnExclusiveRange) {
  RamDisk disk(64);
  LogicalUnit lu(LogicalUnitConfig{}, &disk);
  Initiator ini(lu);
  LbaRangeLock& ranges = lu.runtime().sbc->ranges;
  LbaRangeLock::Holder caw;
  caw.lba = 4;
  caw.blocks = 2;
  caw.exclusive = true;
  ASSERT_TRUE(ranges.acquire(caw));
  const uint32_t outside = ini.start(cdb10(0x2A, 10, 1), std::vector<uint8_t>(512, 1));
  const uint32_t inside = ini.start(cdb10(0x2A, 5, 1), std::vector<uint8_t>(512, 2));
  ini.submit_started();
  EXPECT_TRUE(ini.done(outside));
  EXPECT_FALSE(ini.done(inside));
  ranges.release(caw);
  EXPECT_EQ(ini.wait(inside).status, status::kGood);
  EXPECT_EQ(ini.wait(outside).status, status::kGood);
  EXPECT_EQ(disk.bytes()[5 * 512], 2);
}

TEST(LuState, ManyCommandsInFlightFromThePool) {
  RamDisk disk(4096, 512, /*async=*/true);
  LogicalUnit lu(LogicalUnitConfig{}, &disk);
  Initiator ini(lu);
  std::vector<uint32_t> tokens;
  for (uint32_t i = 0; i < 600; ++i) tokens.push_back(ini.start(cdb10(0x28, i, 1)));
  ini.submit_started();
  for (uint32_t t : tokens) EXPECT_EQ(ini.wait(t).status, status::kGood);
}

}  // namespace
}  // namespace scstu::scsi
