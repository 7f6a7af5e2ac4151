// Unit attentions, reservations and the task set as initiators see them
// through scsi::LogicalUnit: CDBs in, status and sense out.
#include <gtest/gtest.h>

#include "sbc_harness.h"

namespace scstu::testing {
namespace {

constexpr uint32_t kBs = 512;

Bytes read10(uint32_t lba, uint16_t n) {
  return {0x28, 0, 0, 0, 0, static_cast<uint8_t>(lba), 0, 0, static_cast<uint8_t>(n), 0};
}
Bytes write10(uint32_t lba, uint16_t n) {
  return {0x2A, 0, 0, 0, 0, static_cast<uint8_t>(lba), 0, 0, static_cast<uint8_t>(n), 0};
}
const Bytes kTur = {0, 0, 0, 0, 0, 0};

Bytes prout(uint8_t sa, uint8_t type) { return {0x5F, sa, type, 0, 0, 0, 0, 0, 24, 0}; }
Bytes prout_params(uint64_t key, uint64_t sa_key) {
  Bytes p(24, 0);
  put64(p, 0, key);
  put64(p, 8, sa_key);
  return p;
}

struct Lu {
  Lu()
      : disk(256, kBs),
        lu(config(), &disk),
        a(lu, 1, "iqn.2026-01.test:a"),
        b(lu, 2, "iqn.2026-01.test:b") {}
  static scsi::LogicalUnitConfig config() {
    scsi::LogicalUnitConfig c;
    c.serial = "lustate";
    return c;
  }
  RamDisk disk;
  scsi::LogicalUnit lu;
  Initiator a, b;
};

void expect_ua(const Result& r, scsi::SenseCode code) { expect_check(r, code); }

TEST(LogicalUnitState, PersistentReservationGatesCommands) {
  Lu u;
  expect_good(u.a.run(prout(0x00, 0), prout_params(0, 0xA)));
  expect_good(u.a.run(prout(0x01, 0x01), prout_params(0xA, 0)));  // WRITE EXCLUSIVE
  EXPECT_EQ(u.b.run(write10(0, 1), Bytes(kBs, 1)).status, status::kReservationConflict);
  expect_good(u.b.run(read10(0, 1), {}, kBs));
  expect_good(u.b.run(kTur));
  expect_good(u.a.run(write10(0, 1), Bytes(kBs, 1)));
  // PERSISTENT RESERVE IN READ RESERVATION from the other nexus.
  Result r = u.b.run({0x5E, 0x01, 0, 0, 0, 0, 0, 0, 24, 0}, {}, 24);
  expect_good(r);
  EXPECT_EQ(r.transferred, 24u);
  EXPECT_EQ(r.data[15], 0x0A);
  EXPECT_EQ(r.data[21], 0x01);
}

TEST(LogicalUnitState, PreemptAndAbortAbortsTheVictimsCommandsAndTellsIt) {
  Lu u;
  expect_good(u.a.run(prout(0x00, 0), prout_params(0, 0xA)));
  expect_good(u.b.run(prout(0x00, 0), prout_params(0, 0xB)));
  expect_good(u.a.run(prout(0x01, 0x03), prout_params(0xA, 0)));  // EXCLUSIVE ACCESS
  u.disk.hold = true;
  const uint32_t victim = u.a.start(write10(5, 1), Bytes(kBs, 0x55));
  ASSERT_EQ(u.disk.held(), 1u);
  expect_good(u.b.run(prout(0x05, 0x03), prout_params(0xB, 0xA)));  // PREEMPT AND ABORT
  while (u.disk.pump()) {
  }
  Result v = u.a.result(victim);
  ASSERT_TRUE(v.done);
  EXPECT_EQ(v.status, status::kTaskAborted);
  u.disk.hold = false;
  // a lost its registration and its commands: both unit attentions, in order.
  expect_ua(u.a.run(kTur), scsi::kUaRegistrationsPreempted);
  expect_ua(u.a.run(kTur), scsi::kUaCommandsClearedByAnotherInitiator);
  EXPECT_EQ(u.a.run(read10(0, 1), {}, kBs).status, status::kReservationConflict);
  expect_good(u.b.run(read10(0, 1), {}, kBs));
}

TEST(LogicalUnitState, Spc2ReserveAndResets) {
  Lu u;
  expect_good(u.a.run({0x16, 0, 0, 0, 0, 0}));
  EXPECT_EQ(u.b.run(kTur).status, status::kReservationConflict);
  expect_good(u.b.run({0x12, 0, 0, 0, 36, 0}, {}, 36));  // INQUIRY is allowed
  // PERSISTENT RESERVE OUT while an SPC-2 reservation is held: conflict.
  EXPECT_EQ(u.b.run(prout(0x00, 0), prout_params(0, 0xB)).status, status::kReservationConflict);
  // LUN RESET clears it and every nexus learns of the reset.
  TaskManagementRequest tmf;
  tmf.function = SCSTU_TMF_LUN_RESET;
  tmf.session = &u.b.session();
  EXPECT_EQ(u.lu.task_management(tmf), SCSTU_TMF_COMPLETE);
  expect_ua(u.a.run(kTur), scsi::kUaBusDeviceResetFunctionOccurred);
  expect_ua(u.b.run(kTur), scsi::kUaBusDeviceResetFunctionOccurred);
  expect_good(u.b.run(kTur));
  expect_good(u.b.run({0x16, 0, 0, 0, 0, 0}));
  // Registrations make RESERVE(6) conflict (SPC-2 5.5.1)...
  expect_good(u.b.run({0x17, 0, 0, 0, 0, 0}));
  expect_good(u.a.run(prout(0x00, 0), prout_params(0, 0xA)));
  EXPECT_EQ(u.b.run({0x16, 0, 0, 0, 0, 0}).status, status::kReservationConflict);
}

TEST(LogicalUnitState, RequestSenseReturnsAndClearsTheUnitAttention) {
  Lu u;
  u.lu.capacity_changed();  // same size: nothing
  expect_good(u.a.run(kTur));
  TaskManagementRequest tmf;
  tmf.function = SCSTU_TMF_LUN_RESET;
  tmf.session = &u.a.session();
  u.lu.task_management(tmf);
  Result r = u.a.run({0x03, 0, 0, 0, 18, 0}, {}, 18);
  expect_good(r);
  EXPECT_EQ(r.data[2] & 0x0F, 0x06);
  EXPECT_EQ(r.data[12], 0x29);
  EXPECT_EQ(r.data[13], 0x03);
  expect_good(u.a.run(kTur));
}

TEST(LogicalUnitState, OrderedCommandWaitsThroughTheLogicalUnit) {
  Lu u;
  u.disk.fill(0, 4, 0x01);
  u.disk.hold = true;
  const uint32_t w1 = u.a.start(write10(0, 1), Bytes(kBs, 0x02));
  const uint32_t ord = u.b.start(read10(0, 1), {}, kBs, TaskAttribute::kOrdered);
  const uint32_t w2 = u.a.start(write10(0, 1), Bytes(kBs, 0x03));
  // Only the first write reached the device; the ORDERED read waits for it,
  // the second write waits for the ORDERED read.
  EXPECT_EQ(u.disk.held(), 1u);
  ASSERT_TRUE(u.disk.pump());
  EXPECT_EQ(u.disk.held(), 1u);  // the ORDERED read
  ASSERT_TRUE(u.disk.pump());
  Result r = u.b.result(ord);
  expect_good(r);
  EXPECT_EQ(r.data[0], 0x02);  // saw the first write, not the second
  ASSERT_TRUE(u.disk.pump());
  expect_good(u.a.result(w1));
  expect_good(u.a.result(w2));
  EXPECT_EQ(u.disk.block(0)[0], 0x03);
}

}  // namespace
}  // namespace scstu::testing
