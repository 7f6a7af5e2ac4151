#include <gtest/gtest.h>

#include <string>

#include "initiator.h"
#include "scsi/logical_unit.h"

namespace scstu::scsi {
namespace {

using testing::Initiator;
using testing::inquiry;
using testing::RamDisk;
using testing::Reply;

LogicalUnitConfig disk_config() {
  LogicalUnitConfig cfg;
  cfg.vendor = "ACME";
  cfg.product = "RAMDISK";
  cfg.revision = "0102";
  cfg.serial = "SN0001";
  return cfg;
}

class Spc : public ::testing::Test {
 protected:
  Spc() : disk_(2048), lu_(disk_config(), &disk_), ini_(lu_) {}
  RamDisk disk_;
  LogicalUnit lu_;
  Initiator ini_;
};

TEST_F(Spc, StandardInquiryLayout) {
  const Reply r = ini_.run(inquiry(0, 96, false));
  ASSERT_EQ(r.status, status::kGood);
  ASSERT_EQ(r.data.size(), 96u);
  EXPECT_EQ(r.data[0], 0x00);  // PQ 0, disk
  EXPECT_EQ(r.data[1], 0x00);  // not removable
  EXPECT_EQ(r.data[2], 0x06);  // SPC-4
  EXPECT_EQ(r.data[3], 0x12);  // HISUP, format 2
  EXPECT_EQ(r.data[4], 91);
  EXPECT_EQ(r.data[5] & 0x31, 0x10);  // TPGS 01b, PROTECT 0
  EXPECT_EQ(r.data[7], 0x02);         // CMDQUE
  EXPECT_EQ(std::string(r.data.begin() + 8, r.data.begin() + 16), "ACME    ");
  EXPECT_EQ(std::string(r.data.begin() + 16, r.data.begin() + 32), "RAMDISK         ");
  EXPECT_EQ(std::string(r.data.begin() + 32, r.data.begin() + 36), "0102");
  EXPECT_EQ(get_be16(&r.data[58]), 0x00A0);  // SAM-5
  EXPECT_EQ(get_be16(&r.data[60]), 0x0460);  // SPC-4
  EXPECT_EQ(get_be16(&r.data[62]), 0x04C0);  // SBC-3
  EXPECT_EQ(get_be16(&r.data[64]), 0x0960);  // iSCSI
}

TEST_F(Spc, InquiryAllocationLengthTruncates) {
  const Reply r = ini_.run(inquiry(0, 5, false));
  ASSERT_EQ(r.status, status::kGood);
  EXPECT_EQ(r.transferred, 5u);
  EXPECT_EQ(r.data[4], 91);  // still the full additional length
}

TEST_F(Spc, InquiryPageCodeWithoutEvpd) {
  const Reply r = ini_.run(inquiry(0x80, 96, false));
  EXPECT_EQ(r.status, status::kCheckCondition);
  EXPECT_EQ(r.code(), kInvalidFieldInCdb);
  EXPECT_EQ(r.parsed().field->field, 2);
}

TEST_F(Spc, VpdSupportedPagesAndSerial) {
  Reply r = ini_.run(inquiry(0x00, 255, true));
  ASSERT_EQ(r.status, status::kGood);
  EXPECT_EQ(r.data[1], 0x00);
  const std::vector<uint8_t> pages(r.data.begin() + 4, r.data.end());
  EXPECT_EQ(pages, (std::vector<uint8_t>{0x00, 0x80, 0x83, 0x86, 0x8F, 0xB0, 0xB1, 0xB2}));
  EXPECT_EQ(get_be16(&r.data[2]), pages.size());
  r = ini_.run(inquiry(0x80, 255, true));
  EXPECT_EQ(std::string(r.data.begin() + 4, r.data.end()), "SN0001");
  r = ini_.run(inquiry(0x99, 255, true));
  EXPECT_EQ(r.code(), kInvalidFieldInCdb);
}

TEST_F(Spc, VpdDeviceIdentification) {
  const Reply r = ini_.run(inquiry(0x83, 1024, true));
  ASSERT_EQ(r.status, status::kGood);
  ASSERT_EQ(get_be16(&r.data[2]) + 4u, r.data.size());
  // First designator: NAA 6, binary, LU association, 16 bytes.
  EXPECT_EQ(r.data[4], 0x01);
  EXPECT_EQ(r.data[5], 0x03);
  EXPECT_EQ(r.data[7], 16);
  EXPECT_EQ(r.data[8] >> 4, 0x6);
  // Walk: T10 vendor id, relative target port (PIV, iSCSI), target port group.
  size_t at = 4;
  bool t10 = false, rel = false, tpg = false, name = false;
  while (at + 4 <= r.data.size()) {
    const uint8_t type = r.data[at + 1] & 0x0F;
    const uint8_t assoc = (r.data[at + 1] >> 4) & 0x3;
    if (type == 1)
      t10 = std::string(r.data.begin() + at + 4, r.data.begin() + at + 12) == "ACME    ";
    if (type == 4 && assoc == 1) rel = get_be16(&r.data[at + 6]) == 1 && (r.data[at + 1] & 0x80);
    if (type == 5 && assoc == 1) tpg = get_be16(&r.data[at + 6]) == 1;
    if (type == 8 && assoc == 1) name = true;
    at += 4 + r.data[at + 3];
  }
  EXPECT_EQ(at, r.data.size());
  EXPECT_TRUE(t10);
  EXPECT_TRUE(rel);
  EXPECT_TRUE(tpg);
  EXPECT_TRUE(name);
}

TEST_F(Spc, VpdBlockLimitsAndProvisioning) {
  Reply r = ini_.run(inquiry(0xB0, 255, true));
  ASSERT_EQ(r.status, status::kGood);
  EXPECT_EQ(get_be16(&r.data[2]), 0x3C);
  EXPECT_EQ(get_be32(&r.data[8]), (8u << 20) / 512);  // MAXIMUM TRANSFER LENGTH
  r = ini_.run(inquiry(0xB1, 255, true));
  EXPECT_EQ(get_be16(&r.data[4]), 1);  // non-rotating
  r = ini_.run(inquiry(0xB2, 255, true));
  EXPECT_EQ(get_be16(&r.data[2]), 4);
  EXPECT_EQ(r.data[6] & 0x07, 0);  // fully provisioned
  r = ini_.run(inquiry(0x86, 255, true));
  EXPECT_EQ(r.data[5], 0x07);         // HEADSUP ORDSUP SIMPSUP
  EXPECT_EQ(r.data[6] & 0x01, 0x01);  // V_SUP: write-back cache
}

TEST_F(Spc, TestUnitReadyAndUnitAttentionOnAttach) {
  ini_.attach();
  Reply r = ini_.run({0x00, 0, 0, 0, 0, 0});
  EXPECT_EQ(r.status, status::kCheckCondition);
  EXPECT_EQ(r.code(), kUaPowerOnOccurred);
  r = ini_.run({0x00, 0, 0, 0, 0, 0});
  EXPECT_EQ(r.status, status::kGood);
}

TEST_F(Spc, InquiryNeitherReportsNorClearsUnitAttention) {
  ini_.attach();
  EXPECT_EQ(ini_.run(inquiry(0, 36, false)).status, status::kGood);
  EXPECT_EQ(ini_.run({0x00, 0, 0, 0, 0, 0}).code(), kUaPowerOnOccurred);
}

TEST_F(Spc, RequestSenseReturnsUnitAttentionInRequestedFormat) {
  ini_.attach();
  Reply r = ini_.run({0x03, 0x01, 0, 0, 252, 0});  // DESC = 1
  ASSERT_EQ(r.status, status::kGood);
  EXPECT_EQ(r.data[0], 0x72);
  EXPECT_EQ(r.code(), kNoSense);  // the reply itself has no sense
  EXPECT_EQ(parse_sense(r.data).code, kUaPowerOnOccurred);
  r = ini_.run({0x03, 0, 0, 0, 252, 0});
  ASSERT_EQ(r.status, status::kGood);
  EXPECT_EQ(r.data.size(), 18u);
  EXPECT_EQ(r.data[0], 0x70);
  EXPECT_EQ(parse_sense(r.data).code, kNoSense);
}

TEST_F(Spc, ModeSenseLayout) {
  // MODE SENSE(6), caching page, current values, with a block descriptor.
  Reply r = ini_.run({0x1A, 0, 0x08, 0, 255, 0});
  ASSERT_EQ(r.status, status::kGood);
  ASSERT_EQ(r.data.size(), 4u + 8 + 20);
  EXPECT_EQ(r.data[0], r.data.size() - 1);
  EXPECT_EQ(r.data[2], 0x10);  // DPOFUA, not WP
  EXPECT_EQ(r.data[3], 8);
  EXPECT_EQ(get_be32(&r.data[4]), 2048u);
  EXPECT_EQ(get_be24(&r.data[9]), 512u);
  EXPECT_EQ(r.data[12], 0x88);  // PS | caching
  EXPECT_EQ(r.data[13], 0x12);
  EXPECT_EQ(r.data[14] & 0x04, 0x04);  // WCE
  // DBD, all pages.
  r = ini_.run({0x1A, 0x08, 0x3F, 0, 255, 0});
  ASSERT_EQ(r.status, status::kGood);
  EXPECT_EQ(r.data[3], 0);
  EXPECT_EQ(r.data.size(), 4u + 12 + 20 + 12 + 12);
  // MODE SENSE(10) with LLBAA: a 16-byte descriptor.
  r = ini_.run({0x5A, 0x10, 0x0A, 0, 0, 0, 0, 0x01, 0x00, 0});
  ASSERT_EQ(r.status, status::kGood);
  EXPECT_EQ(r.data[4] & 0x01, 0x01);  // LONGLBA
  EXPECT_EQ(get_be16(&r.data[6]), 16);
  EXPECT_EQ(get_be64(&r.data[8]), 2048u);
  EXPECT_EQ(get_be32(&r.data[20]), 512u);
  EXPECT_EQ(get_be16(&r.data[0]), r.data.size() - 2);
  // Changeable values of the control page: D_SENSE, SWP, TAS.
  r = ini_.run({0x1A, 0x08, 0x4A, 0, 255, 0});
  ASSERT_EQ(r.status, status::kGood);
  EXPECT_EQ(r.data[4 + 2], 0x04);
  EXPECT_EQ(r.data[4 + 4], 0x08);
  EXPECT_EQ(r.data[4 + 5], 0x40);
  // Unknown page, unknown subpage.
  r = ini_.run({0x1A, 0, 0x15, 0, 255, 0});
  EXPECT_EQ(r.parsed().field->field, 2);
  r = ini_.run({0x1A, 0, 0x08, 0x01, 255, 0});
  EXPECT_EQ(r.parsed().field->field, 3);
}

TEST_F(Spc, ModeSelectDsenseSwitchesSenseFormatAndRaisesUaForOthers) {
  Initiator other(lu_, 2, "iqn.2026-11.test:ini2");
  ini_.attach();
  other.attach();
  ini_.run({0x00, 0, 0, 0, 0, 0});
  other.run({0x00, 0, 0, 0, 0, 0});
  Reply ms = ini_.run({0x1A, 0x08, 0x0A, 0, 255, 0});
  std::vector<uint8_t> list(4, 0);
  list.insert(list.end(), ms.data.begin() + 4, ms.data.end());
  list[4] &= 0x3F;
  list[4 + 2] |= 0x04;  // D_SENSE
  Reply r = ini_.run({0x15, 0x10, 0, 0, static_cast<uint8_t>(list.size()), 0}, list);
  ASSERT_EQ(r.status, status::kGood) << int(r.code().asc);
  r = ini_.run({0x1A, 0, 0x15, 0, 255, 0});  // a failing command
  EXPECT_EQ(r.sense[0], 0x72);
  EXPECT_EQ(ini_.run({0x00, 0, 0, 0, 0, 0}).status, status::kGood);  // no UA for the changer
  EXPECT_EQ(other.run({0x00, 0, 0, 0, 0, 0}).code(), kUaModeParametersChanged);
}

TEST_F(Spc, ModeSelectRejectsWithoutPfAndBadList) {
  std::vector<uint8_t> list = {0, 0, 0, 0, 0x0A, 0x0A, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0};
  Reply r = ini_.run({0x15, 0x00, 0, 0, static_cast<uint8_t>(list.size()), 0}, list);
  EXPECT_EQ(r.code(), kInvalidFieldInCdb);
  EXPECT_EQ(r.parsed().field->field, 1);
  EXPECT_EQ(r.parsed().field->bit, 4);
  // GLTSD (page byte 2 bit 1) is set and not changeable: clearing it fails.
  r = ini_.run({0x15, 0x10, 0, 0, static_cast<uint8_t>(list.size()), 0}, list);
  EXPECT_EQ(r.code(), kInvalidFieldInParameterList);
  EXPECT_FALSE(r.parsed().field->in_cdb);
  EXPECT_EQ(r.parsed().field->field, 6);
  EXPECT_EQ(r.parsed().field->bit, 1);
}

TEST_F(Spc, SoftwareWriteProtectViaControlPage) {
  Reply ms = ini_.run({0x1A, 0x08, 0x0A, 0, 255, 0});
  std::vector<uint8_t> list(4, 0);
  list.insert(list.end(), ms.data.begin() + 4, ms.data.end());
  list[4] &= 0x3F;
  list[4 + 4] |= 0x08;  // SWP
  ASSERT_EQ(ini_.run({0x15, 0x10, 0, 0, static_cast<uint8_t>(list.size()), 0}, list).status,
            status::kGood);
  Reply r = ini_.run(testing::cdb10(0x2A, 0, 1), std::vector<uint8_t>(512, 1));
  EXPECT_EQ(r.code(), kWriteProtected);
  r = ini_.run({0x1A, 0x08, 0x08, 0, 255, 0});
  EXPECT_EQ(r.data[2] & 0x80, 0x80);  // WP
}

TEST_F(Spc, ReportSupportedOperationCodesAll) {
  std::vector<uint8_t> c(12, 0);
  c[0] = 0xA3;
  c[1] = 0x0C;
  put_be32(&c[6], 8192);
  Reply r = ini_.run(c);
  ASSERT_EQ(r.status, status::kGood);
  const uint32_t len = get_be32(&r.data[0]);
  ASSERT_EQ(len + 4, r.data.size());
  EXPECT_EQ(len % 8, 0u);
  bool read10 = false, rcap16 = false, read_long = false;
  for (size_t at = 4; at < r.data.size(); at += 8) {
    if (r.data[at] == 0x28) read10 = get_be16(&r.data[at + 6]) == 10;
    if (r.data[at] == 0x9E && get_be16(&r.data[at + 2]) == 0x10) rcap16 = r.data[at + 5] & 0x01;
    if (r.data[at] == 0x3E) read_long = true;
  }
  EXPECT_TRUE(read10);
  EXPECT_TRUE(rcap16);
  EXPECT_FALSE(read_long);  // in the table, no emulation entry
  // RCTD: 20-byte descriptors with CTDP.
  c[2] = 0x80;
  r = ini_.run(c);
  ASSERT_EQ(r.status, status::kGood);
  EXPECT_EQ(get_be32(&r.data[0]) % 20, 0u);
  EXPECT_EQ(r.data[4 + 5] & 0x02, 0x02);
  EXPECT_EQ(get_be16(&r.data[4 + 8]), 0x0A);
}

TEST_F(Spc, ReportSupportedOperationCodesOne) {
  std::vector<uint8_t> c(12, 0);
  c[0] = 0xA3;
  c[1] = 0x0C;
  c[2] = 0x01;
  c[3] = 0x28;
  put_be32(&c[6], 512);
  Reply r = ini_.run(c);
  ASSERT_EQ(r.status, status::kGood);
  EXPECT_EQ(r.data[1] & 0x07, 0x03);
  EXPECT_EQ(get_be16(&r.data[2]), 10);
  EXPECT_EQ(r.data[4], 0x28);
  EXPECT_EQ(r.data[5], 0x1E);
  // An opcode with service actions under option 1 is an error ...
  c[3] = 0x9E;
  EXPECT_EQ(ini_.run(c).code(), kInvalidFieldInCdb);
  // ... and works under option 2.
  c[2] = 0x02;
  c[5] = 0x10;
  r = ini_.run(c);
  ASSERT_EQ(r.status, status::kGood);
  EXPECT_EQ(r.data[4], 0x9E);
  EXPECT_EQ(r.data[5], 0x10);
  // Option 2 on an opcode without service actions is an error.
  c[3] = 0x28;
  c[5] = 0;
  EXPECT_EQ(ini_.run(c).code(), kInvalidFieldInCdb);
  // Not supported: SUPPORT 001b.
  c[2] = 0x01;
  c[3] = 0x3E;
  r = ini_.run(c);
  ASSERT_EQ(r.status, status::kGood);
  EXPECT_EQ(r.data[1] & 0x07, 0x01);
  // READ(32) needs type 2 protection: known, not supported (SUPPORT 001b).
  c[2] = 0x02;
  c[3] = 0x7F;
  c[4] = 0x00;
  c[5] = 0x09;
  r = ini_.run(c);
  ASSERT_EQ(r.status, status::kGood);
  EXPECT_EQ(r.data[1] & 0x07, 0x01);
  c[4] = 0;
  c[5] = 0;
  // Reserved reporting option.
  c[2] = 0x07;
  EXPECT_EQ(ini_.run(c).code(), kInvalidFieldInCdb);
}

// EXTENDED COPY and RECEIVE COPY RESULTS are executed by the producer's copy
// manager: listed where one fronts the unit (the default), not on a unit
// behind the kernel shim (third_party_copy = false), where they would be
// refused with INVALID COMMAND OPERATION CODE.
TEST(SpcCopyManager, ReportSupportedOperationCodesListsCopiesOnlyWithACopyManager) {
  // The (opcode, service action) pairs the copy manager answers.
  const std::vector<std::pair<uint8_t, uint16_t>> copies = {
      {0x83, 0x00}, {0x84, 0x00}, {0x84, 0x03}, {0x84, 0x04}};
  auto listed = [](const Reply& all, uint8_t op, uint16_t sa) {
    for (size_t at = 4; at + 8 <= all.data.size(); at += 8) {
      if (all.data[at] == op && get_be16(&all.data[at + 2]) == sa) return true;
    }
    return false;
  };
  for (const bool copy_manager : {true, false}) {
    SCOPED_TRACE(copy_manager ? "with a copy manager" : "kernel shim");
    RamDisk disk(2048);
    LogicalUnitConfig cfg = disk_config();
    cfg.third_party_copy = copy_manager;
    LogicalUnit lu(cfg, &disk);
    Initiator ini(lu);
    std::vector<uint8_t> c(12, 0);
    c[0] = 0xA3;
    c[1] = 0x0C;
    put_be32(&c[6], 8192);
    const Reply all = ini.run(c);
    ASSERT_EQ(all.status, status::kGood);
    ASSERT_EQ(get_be32(&all.data[0]) + 4, all.data.size());
    EXPECT_TRUE(listed(all, 0xA0, 0));  // REPORT LUNS: answered by the core either way
    for (const auto& [op, sa] : copies) {
      SCOPED_TRACE(op * 256 + sa);
      EXPECT_EQ(listed(all, op, sa), copy_manager);
      // One command (option 2): SUPPORT 011b (supported) or 001b (not).
      c[2] = 0x02;
      c[3] = op;
      put_be16(&c[4], sa);
      const Reply one = ini.run(c);
      ASSERT_EQ(one.status, status::kGood);
      EXPECT_EQ(one.data[1] & 0x07, copy_manager ? 0x03 : 0x01);
      c[2] = c[3] = c[4] = c[5] = 0;
    }
    if (!copy_manager) {
      // What is not listed is refused by the unit itself.
      std::vector<uint8_t> xcopy(16, 0);
      xcopy[0] = 0x83;
      EXPECT_EQ(ini.run(xcopy).code(), kInvalidCommandOperationCode);
    }
  }
}

TEST_F(Spc, ReportSupportedTmfs) {
  std::vector<uint8_t> c(12, 0);
  c[0] = 0xA3;
  c[1] = 0x0D;
  put_be32(&c[6], 16);
  Reply r = ini_.run(c);
  ASSERT_EQ(r.status, status::kGood);
  ASSERT_EQ(r.data.size(), 4u);
  EXPECT_EQ(r.data[0] & 0x80, 0x80);  // ATS
  EXPECT_EQ(r.data[0] & 0x08, 0x08);  // LURS
  c[2] = 0x80;
  r = ini_.run(c);
  EXPECT_EQ(r.data.size(), 16u);
  EXPECT_EQ(r.data[3], 0x0C);
}

TEST_F(Spc, ReportTargetPortGroups) {
  std::vector<uint8_t> c(12, 0);
  c[0] = 0xA3;
  c[1] = 0x0A;
  put_be32(&c[6], 255);
  Reply r = ini_.run(c);
  ASSERT_EQ(r.status, status::kGood);
  EXPECT_EQ(get_be32(&r.data[0]), 12u);
  EXPECT_EQ(r.data[4] & 0x0F, 0);  // active/optimized
  EXPECT_EQ(get_be16(&r.data[6]), 1);
  EXPECT_EQ(r.data[11], 1);
  EXPECT_EQ(get_be16(&r.data[14]), 1);
}

TEST_F(Spc, LogSense) {
  Reply r = ini_.run({0x4D, 0, 0x00, 0, 0, 0, 0, 0x01, 0x00, 0});
  ASSERT_EQ(r.status, status::kGood);
  EXPECT_EQ(std::vector<uint8_t>(r.data.begin() + 4, r.data.end()),
            (std::vector<uint8_t>{0x00, 0x0D, 0x2F}));
  r = ini_.run({0x4D, 0, 0x2F, 0, 0, 0, 0, 0x01, 0x00, 0});
  ASSERT_EQ(r.status, status::kGood);
  EXPECT_EQ(get_be16(&r.data[2]), 7);
  EXPECT_EQ(ini_.run({0x4D, 0, 0x33, 0, 0, 0, 0, 0x01, 0x00, 0}).code(), kInvalidFieldInCdb);
  EXPECT_EQ(ini_.run({0x4D, 1, 0x00, 0, 0, 0, 0, 0x01, 0x00, 0}).code(), kInvalidFieldInCdb);
}

TEST_F(Spc, SendDiagnostic) {
  EXPECT_EQ(ini_.run({0x1D, 0x04, 0, 0, 0, 0}).status, status::kGood);
  EXPECT_EQ(ini_.run({0x1D, 0x24, 0, 0, 0, 0}).code(), kInvalidFieldInCdb);
  EXPECT_EQ(ini_.run({0x1D, 0x60, 0, 0, 0, 0}).code(), kInvalidFieldInCdb);
}

TEST_F(Spc, ReportLunsLocalView) {
  Reply r = ini_.run({0xA0, 0, 0, 0, 0, 0, 0, 0, 0, 16, 0, 0});
  ASSERT_EQ(r.status, status::kGood);
  EXPECT_EQ(get_be32(&r.data[0]), 8u);
  EXPECT_EQ(ini_.run({0xA0, 0, 0, 0, 0, 0, 0, 0, 0, 4, 0, 0}).code(), kInvalidFieldInCdb);
}

TEST_F(Spc, UnknownOpcodeAndServiceAction) {
  Reply r = ini_.run({0xC0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0});
  EXPECT_EQ(r.code(), kInvalidCommandOperationCode);
  r = ini_.run({0x9E, 0x1E, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 32, 0, 0});
  EXPECT_EQ(r.code(), kInvalidFieldInCdb);
  EXPECT_EQ(r.parsed().field->field, 1);
  // In the table, not emulated (READ LONG).
  r = ini_.run({0x3E, 0, 0, 0, 0, 0, 0, 0, 1, 0});
  EXPECT_EQ(r.code(), kInvalidCommandOperationCode);
}

TEST(SpcRemovable, PreventBlocksEjectAndLoadWorks) {
  RamDisk disk(64);
  LogicalUnitConfig cfg = disk_config();
  cfg.removable = true;
  LogicalUnit lu(cfg, &disk);
  Initiator ini(lu);
  EXPECT_EQ(ini.run({0x12, 0, 0, 0, 36, 0}).data[1], 0x80);  // RMB
  ASSERT_EQ(ini.run({0x1E, 0, 0, 0, 1, 0}).status, status::kGood);
  EXPECT_EQ(ini.run({0x1B, 0, 0, 0, 0x02, 0}).code(), kMediumRemovalPrevented);
  ASSERT_EQ(ini.run({0x1E, 0, 0, 0, 0, 0}).status, status::kGood);
  ASSERT_EQ(ini.run({0x1B, 1, 0, 0, 0x02, 0}).status, status::kGood);  // eject
  EXPECT_EQ(ini.run({0x00, 0, 0, 0, 0, 0}).code().asc, 0x3A);
  EXPECT_EQ(ini.run(testing::cdb10(0x28, 0, 1)).code().asc, 0x3A);
  ASSERT_EQ(ini.run({0x1B, 0, 0, 0, 0x03, 0}).status, status::kGood);  // load
  EXPECT_EQ(ini.run({0x00, 0, 0, 0, 0, 0}).status, status::kGood);
  // START = 0 without LOEJ: no stopped state is emulated, the medium stays.
  ASSERT_EQ(ini.run({0x1B, 0, 0, 0, 0x00, 0}).status, status::kGood);
  EXPECT_EQ(ini.run({0x00, 0, 0, 0, 0, 0}).status, status::kGood);
  // Power conditions are accepted and change nothing, even with LOEJ.
  for (uint8_t pc = 1; pc < 16; ++pc) {
    ASSERT_EQ(ini.run({0x1B, 0, 0, 0, static_cast<uint8_t>(pc << 4 | 0x02), 0}).status,
              status::kGood);
  }
  EXPECT_EQ(ini.run({0x00, 0, 0, 0, 0, 0}).status, status::kGood);
  // PREVENT blocks loading as well as ejecting.
  ASSERT_EQ(ini.run({0x1B, 0, 0, 0, 0x02, 0}).status, status::kGood);
  ASSERT_EQ(ini.run({0x1E, 0, 0, 0, 1, 0}).status, status::kGood);
  EXPECT_EQ(ini.run({0x1B, 0, 0, 0, 0x03, 0}).code(), kMediumRemovalPrevented);
  // A LUN reset clears PREVENT.
  TaskManagementRequest tmf;
  tmf.function = SCSTU_TMF_LUN_RESET;
  tmf.session = &ini.session();
  lu.task_management(tmf);
  EXPECT_EQ(ini.run({0x1B, 0, 0, 0, 0x03, 0}).status, status::kGood);
}

TEST_F(Spc, EjectOfNonRemovableFails) {
  EXPECT_EQ(ini_.run({0x1B, 1, 0, 0, 0x02, 0}).code(), kInvalidFieldInCdb);
}

TEST(SpcNoMedium, SpcOnlyUnitWithoutBlockDevice) {
  LogicalUnitConfig cfg;
  cfg.device_type = 0x08;  // changer placeholder
  LogicalUnit lu(cfg, nullptr);
  Initiator ini(lu);
  Reply r = ini.run({0x12, 0, 0, 0, 96, 0});
  ASSERT_EQ(r.status, status::kGood);
  EXPECT_EQ(r.data[0], 0x08);
  EXPECT_EQ(get_be16(&r.data[62]), 0x0480);  // SMC-3
  EXPECT_EQ(ini.run({0x00, 0, 0, 0, 0, 0}).code(), kMediumNotPresent);
  EXPECT_EQ(ini.run({0x1A, 0, 0x3F, 0, 255, 0}).status, status::kGood);
}

// Raw passthrough of chosen opcodes.
class Echo : public LowLevelHandler {
 public:
  void command(CommandHandle cmd) override {
    ++count;
    std::move(cmd).complete_status(status::kConditionMet);
  }
  int count = 0;
};

TEST(SpcPassthrough, ChosenOpcodesGoRaw) {
  RamDisk disk(64);
  Echo echo;
  LogicalUnitConfig cfg = disk_config();
  cfg.passthrough = &echo;
  cfg.passthrough_opcodes.set(0xC1);
  LogicalUnit lu(cfg, &disk);
  Initiator ini(lu);
  EXPECT_EQ(ini.run({0xC1, 0, 0, 0, 0, 0, 0, 0, 0, 0}).status, status::kConditionMet);
  EXPECT_EQ(ini.run({0x00, 0, 0, 0, 0, 0}).status, status::kGood);
  EXPECT_EQ(echo.count, 1);
}

}  // namespace
}  // namespace scstu::scsi
