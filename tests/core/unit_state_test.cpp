// The target core and a logical unit's own state: sense the core builds is
// in the unit's format (D_SENSE), and REPORTED LUNS DATA HAS CHANGED takes
// its place among the unit's unit attentions. A TargetCore, a LocalDevice
// and a scsi::LogicalUnit over a RAM disk, as in embedded mode.
#include <gtest/gtest.h>

#include <vector>

#include "../sbc/sbc_harness.h"
#include "core/local_device.h"
#include "core/target_core.h"
#include "core_test_util.h"
#include "handler/block_device.h"
#include "scsi/logical_unit.h"
#include "scsi/sense.h"

namespace scstu::core {
namespace {

using test::Exchange;

constexpr const char* kTarget = "iqn.2026-11.org.scstu:state";
constexpr const char* kIni = "iqn.2026-11.org.scstu:initiator";

class UnitStateTest : public ::testing::Test {
 protected:
  void SetUp() override {
    scsi::LogicalUnitConfig cfg;
    cfg.serial = "state0";
    lu = std::make_shared<scsi::LogicalUnit>(cfg, &disk);
    LocalDeviceOptions o;
    o.info.name = "disk0";
    o.info.block_size = 512;
    o.max_io_bytes = 64 * 1024;
    device = std::make_shared<LocalDevice>(lu, o);
    cfg.serial = "state1";
    lu1 = std::make_shared<scsi::LogicalUnit>(cfg, &disk1);
    o.info.name = "disk1";
    device1 = std::make_shared<LocalDevice>(lu1, o);
    ASSERT_NO_FATAL_FAILURE(one.add(device, 0));
    ASSERT_NO_FATAL_FAILURE(one.add(device1));
    ASSERT_NO_FATAL_FAILURE(one.open(kIni));
  }

  // One command; `out` is its Data-Out. Returns the sense (empty if none).
  std::vector<uint8_t> run(const std::vector<uint8_t>& cdb, uint32_t expected, DataDirection dir,
                           const std::vector<uint8_t>& out = {},
                           std::vector<uint8_t>* in = nullptr) {
    Exchange x(session.get(), 0, cdb, expected, dir);
    x.run(*core, out);
    EXPECT_EQ(x.done_calls, 1);
    if (in) *in = x.data_in;
    std::vector<uint8_t> sense(x.cmd.sense.begin(), x.cmd.sense.begin() + x.cmd.sense_len);
    last_status = x.cmd.status;
    core->release(x.cmd);
    return sense;
  }
  scsi::SenseCode tur() {
    return scsi::parse_sense(run({0x00, 0, 0, 0, 0, 0}, 0, DataDirection::kNone)).code;
  }

  testing::RamDisk disk{256, 512, BlockCapabilities{}}, disk1{256, 512, BlockCapabilities{}};
  std::shared_ptr<scsi::LogicalUnit> lu, lu1;  // disk1: mapped as LUN 1 by some tests
  std::shared_ptr<LocalDevice> device, device1;
  test::OneTarget one{kTarget};
  std::unique_ptr<TargetCore>& core = one.core;
  std::shared_ptr<Session>& session = one.session;
  uint8_t last_status = 0;
};

// SPC-4 4.5.1: with D_SENSE = 1 in the control mode page, the sense data the
// core builds for the unit (a transfer beyond the unit's maximum, an
// undecodable CDB) is in descriptor format too; with D_SENSE = 0, fixed.
TEST_F(UnitStateTest, CoreSenseFollowsDSense) {
  EXPECT_EQ(tur(), scsi::kUaPowerOnOccurred);
  const std::vector<uint8_t> too_long = {0x28, 0, 0, 0, 0, 0, 0, 0x01, 0x00, 0};  // 256 blocks
  std::vector<uint8_t> s = run(too_long, 256 * 512, DataDirection::kRead);
  ASSERT_GE(s.size(), 18u);
  EXPECT_EQ(s[0], 0x70);

  // MODE SENSE(6) of the control page, D_SENSE set, MODE SELECT(6) back.
  std::vector<uint8_t> page;
  EXPECT_TRUE(run({0x1A, 0x08, 0x0A, 0, 255, 0}, 255, DataDirection::kRead, {}, &page).empty());
  ASSERT_GE(page.size(), 4u + 12u);
  std::vector<uint8_t> list(page.begin(), page.end());
  list[0] = 0;          // MODE DATA LENGTH: reserved in MODE SELECT
  list[4] &= 0x3F;      // PS
  list[4 + 2] |= 0x04;  // D_SENSE
  const uint8_t len = static_cast<uint8_t>(list.size());
  EXPECT_TRUE(run({0x15, 0x10, 0, 0, len, 0}, len, DataDirection::kWrite, list).empty());
  ASSERT_TRUE(lu->descriptor_sense());

  s = run(too_long, 256 * 512, DataDirection::kRead);
  const scsi::ParsedSense p = scsi::parse_sense(s);
  EXPECT_EQ(s[0], 0x72);
  EXPECT_EQ(p.code, scsi::kInvalidFieldInCdb);
  ASSERT_TRUE(p.field.has_value());
  EXPECT_EQ(p.field->field, 7);
  s = run({0xFF, 0, 0, 0, 0, 0}, 0, DataDirection::kNone);  // no such opcode
  EXPECT_EQ(s[0], 0x72);
  EXPECT_EQ(scsi::parse_sense(s).code, scsi::kInvalidCommandOperationCode);
  // Less Data-Out than MODE SELECT's parameter list: the core's 0E/03.
  s = run({0x15, 0x10, 0, 0, 24, 0}, 8, DataDirection::kWrite, std::vector<uint8_t>(8, 0));
  EXPECT_EQ(s[0], 0x72);
  EXPECT_EQ(scsi::parse_sense(s).code, scsi::kInvalidFieldInCommandIu);
}

// SAM-5 5.14: one unit attention per command, the reset family first. A LUN
// mapping change raises REPORTED LUNS DATA HAS CHANGED in the unit's own
// queue, so a pending power on / reset condition is reported before it;
// REPORT LUNS clears it.
TEST_F(UnitStateTest, ReportedLunsChangedTakesItsPrecedence) {
  // A second LUN for the session's group: the inventory changed while the
  // POWER ON condition of the new nexus is still pending.
  ASSERT_TRUE(core->access().add_lun("Default", 1, "disk1"));
  EXPECT_EQ(tur(), scsi::kUaPowerOnOccurred);
  EXPECT_EQ(tur(), scsi::kUaReportedLunsDataHasChanged);
  EXPECT_EQ(last_status, status::kCheckCondition);
  EXPECT_EQ(tur(), scsi::SenseCode{});
  EXPECT_EQ(last_status, status::kGood);

  // Raised again, then a LUN reset: the reset is reported first, and does
  // not drop the target's REPORTED LUNS DATA HAS CHANGED.
  ASSERT_TRUE(core->access().remove_lun("Default", 1));
  TargetTmf tmf;
  tmf.function = SCSTU_TMF_LUN_RESET;
  tmf.lun = encode_lun(0);
  tmf.session = session.get();
  scstu_tmf_response response = SCSTU_TMF_FAILED;
  tmf.done = [&](scstu_tmf_response r) { response = r; };
  core->task_management(tmf);
  EXPECT_EQ(response, SCSTU_TMF_COMPLETE);
  EXPECT_EQ(tur(), scsi::kUaBusDeviceResetFunctionOccurred);
  EXPECT_EQ(tur(), scsi::kUaReportedLunsDataHasChanged);
  EXPECT_EQ(last_status, status::kCheckCondition);

  // REPORT LUNS clears it before it is reported.
  ASSERT_TRUE(core->access().add_lun("Default", 1, "disk1"));
  std::vector<uint8_t> luns;
  EXPECT_TRUE(
      run({0xA0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0}, 256, DataDirection::kRead, {}, &luns).empty());
  EXPECT_EQ(luns.size(), 8u + 16u);
  EXPECT_EQ(tur(), scsi::SenseCode{});
  EXPECT_EQ(last_status, status::kGood);
}

}  // namespace
}  // namespace scstu::core
