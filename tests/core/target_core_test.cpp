#include "core/target_core.h"

#include <gtest/gtest.h>

#include "core/lun.h"
#include "core_test_util.h"
#include "test_devices.h"

namespace scstu::core {
namespace {

using test::Exchange;
using test::RecordingDevice;

constexpr const char* kTarget = "iqn.2007-05.com.example:storage.disk1.sys1.xyz";
constexpr const char* kSpecIni = "iqn.2007-05.com.example:storage.disk1.spec_ini.xyz";
constexpr const char* kOtherIni = "iqn.1993-08.org.debian:01:abcdef";

class TargetCoreTest : public ::testing::Test {
 protected:
  void SetUp() override { build(TargetCoreOptions{}); }
  void build(TargetCoreOptions options) {
    core = std::make_unique<TargetCore>(options);
    dev1 = std::make_shared<RecordingDevice>("dev1");
    dev2 = std::make_shared<RecordingDevice>("dev2");
    ASSERT_TRUE(core->access().add_device(dev1));
    ASSERT_TRUE(core->access().add_device(dev2));
    ASSERT_TRUE(core->access().add_target(kTarget));
  }
  // The seed's example, through the same calls an admin tool makes.
  void configure_seed_example() {
    AccessControl& acl = core->access();
    const std::string def = std::string("Default_") + kTarget;
    ASSERT_TRUE(acl.add_group(def));
    ASSERT_TRUE(acl.add_lun(def, 0, "dev1"));
    ASSERT_TRUE(acl.add_lun(def, 1, "dev2"));
    ASSERT_TRUE(acl.add_group("spec_ini"));
    ASSERT_TRUE(acl.add_initiator("spec_ini", kSpecIni));
    ASSERT_TRUE(acl.add_lun("spec_ini", 0, "dev2"));
  }
  std::shared_ptr<Session> open(const char* initiator, uint64_t isid = 0x023d00000001) {
    SessionParams p;
    p.target_name = kTarget;
    p.initiator_name = initiator;
    p.isid = isid;
    std::string why;
    auto s = core->open_session(p, &why);
    EXPECT_TRUE(s) << why;
    return s;
  }
  std::vector<uint8_t> report_luns(Session* s, uint64_t lun = 0, uint32_t alloc = 4096) {
    Exchange x(s, lun, test::report_luns(0, alloc), alloc, DataDirection::kRead);
    EXPECT_FALSE(x.run(*core));
    EXPECT_EQ(x.done_calls, 1);
    EXPECT_EQ(x.cmd.status, status::kGood);
    core->release(x.cmd);
    return x.data_in;
  }

  std::unique_ptr<TargetCore> core;
  std::shared_ptr<RecordingDevice> dev1, dev2;
};

TEST_F(TargetCoreTest, SeedExampleEndToEnd) {
  configure_seed_example();
  auto spec = open(kSpecIni);
  auto other = open(kOtherIni);
  ASSERT_TRUE(spec && other);
  EXPECT_EQ(spec->group(), "spec_ini");
  EXPECT_EQ(other->group(), std::string("Default_") + kTarget);

  // REPORT LUNS byte for byte (SPC-4 6.33, SAM-5 4.7 peripheral addressing).
  const std::vector<uint8_t> spec_luns = {0, 0, 0, 8, 0, 0, 0, 0,  //
                                          0, 0, 0, 0, 0, 0, 0, 0};
  EXPECT_EQ(report_luns(spec.get()), spec_luns);
  const std::vector<uint8_t> other_luns = {0, 0, 0, 16, 0, 0, 0, 0,  //
                                           0, 0, 0, 0,  0, 0, 0, 0,  //
                                           0, 1, 0, 0,  0, 0, 0, 0};
  EXPECT_EQ(report_luns(other.get()), other_luns);

  // spec_ini's LUN 0 is dev2; its LUN 1 does not exist.
  Exchange r(spec.get(), 0, test::read10(0, 1), 512, DataDirection::kRead);
  ASSERT_TRUE(r.run(*core));
  EXPECT_EQ(r.cmd.device, dev2.get());
  core->release(r.cmd);
  Exchange r1(spec.get(), 1, test::read10(0, 1), 512, DataDirection::kRead);
  EXPECT_FALSE(r1.run(*core));
  EXPECT_EQ(r1.cmd.status, status::kCheckCondition);
  EXPECT_EQ(r1.sense_key(), 0x05);
  EXPECT_EQ(r1.asc(), 0x25);
  core->release(r1.cmd);
  // Everyone else: LUN 0 dev1, LUN 1 dev2.
  Exchange o0(other.get(), 0, test::read10(0, 1), 512, DataDirection::kRead);
  ASSERT_TRUE(o0.run(*core));
  EXPECT_EQ(o0.cmd.device, dev1.get());
  core->release(o0.cmd);
  Exchange o1(other.get(), 1, test::read10(0, 1), 512, DataDirection::kRead);
  ASSERT_TRUE(o1.run(*core));
  EXPECT_EQ(o1.cmd.device, dev2.get());
  core->release(o1.cmd);

  // Handlers heard ATTACH with the initiator's identity.
  ASSERT_EQ(dev1->attached.size(), 1u);
  EXPECT_EQ(dev1->attached[0].initiator_name, kOtherIni);
  ASSERT_EQ(dev2->attached.size(), 2u);
  EXPECT_EQ(dev2->attached[0].initiator_name, kSpecIni);
  EXPECT_EQ(dev2->attached[0].transport_id, std::string(kSpecIni) + ",i,0x023d00000001");
  EXPECT_EQ(dev2->attached[0].target_name, kTarget);
  EXPECT_EQ(dev2->attached[0].protocol_id, kProtocolIscsi);
  EXPECT_NE(dev2->attached[0].id, dev2->attached[1].id);
}

TEST_F(TargetCoreTest, UnknownTargetAndEmptyInitiatorAreRefused) {
  SessionParams p;
  p.target_name = "iqn.2007-05.com.example:nope";
  p.initiator_name = kOtherIni;
  std::string why;
  EXPECT_FALSE(core->open_session(p, &why));
  EXPECT_NE(why.find("target 'iqn.2007-05.com.example:nope' does not exist"), std::string::npos);
  p.target_name = kTarget;
  p.initiator_name = "";
  EXPECT_FALSE(core->open_session(p, &why));
}

TEST(TransportId, IscsiFormat) {
  EXPECT_EQ(iscsi_transport_id("iqn.x", 0x400001370000), "iqn.x,i,0x400001370000");
  EXPECT_EQ(iscsi_transport_id("iqn.x", 0x1), "iqn.x,i,0x000000000001");
  EXPECT_EQ(iscsi_transport_id("iqn.x", 0xFFFF123456789ABCull), "iqn.x,i,0x123456789abc");
}

TEST(LunEncoding, PeripheralAndFlat) {
  EXPECT_EQ(encode_lun(0), 0ull);
  EXPECT_EQ(encode_lun(5), 0x0005000000000000ull);
  EXPECT_EQ(encode_lun(255), 0x00FF000000000000ull);
  EXPECT_EQ(encode_lun(256), 0x4100000000000000ull);
  EXPECT_EQ(encode_lun(300), 0x412C000000000000ull);
  EXPECT_EQ(encode_lun(16383), 0x7FFF000000000000ull);
  for (uint64_t l : {0ull, 1ull, 255ull, 256ull, 4095ull, 16383ull})
    EXPECT_EQ(decode_lun(encode_lun(l)), l);
  EXPECT_EQ(decode_lun(0x4005000000000000ull), 5u);  // flat form of a small LUN
  EXPECT_FALSE(decode_lun(0x0105000000000000ull));   // bus identifier 1
  EXPECT_FALSE(decode_lun(0xC101000000000000ull));   // well-known / extended
  EXPECT_FALSE(decode_lun(0x8001000000000000ull));   // logical unit addressing
  EXPECT_FALSE(decode_lun(0x0001000100000000ull));   // second level
}

TEST_F(TargetCoreTest, ReportLunsSelectAllocationAndFlatSpace) {
  ASSERT_TRUE(core->access().add_lun("Default", 0, "dev1"));
  ASSERT_TRUE(core->access().add_lun("Default", 300, "dev2", true));
  auto s = open(kOtherIni);
  const std::vector<uint8_t> all = {0,    0,    0, 16, 0, 0, 0, 0,  //
                                    0,    0,    0, 0,  0, 0, 0, 0,  //
                                    0x41, 0x2C, 0, 0,  0, 0, 0, 0};
  EXPECT_EQ(report_luns(s.get()), all);
  // Allocation length 16: truncated, the LUN LIST LENGTH still says 16.
  EXPECT_EQ(report_luns(s.get(), 0, 16), std::vector<uint8_t>(all.begin(), all.begin() + 16));
  // Addressed to an unmapped LUN: answered all the same.
  EXPECT_EQ(report_luns(s.get(), 7), all);

  // SELECT REPORT 02h: the same; 01h: well-known LUs only, none.
  {
    Exchange x(s.get(), 0, test::report_luns(2, 4096), 4096, DataDirection::kRead);
    EXPECT_FALSE(x.run(*core));
    EXPECT_EQ(x.data_in, all);
    EXPECT_EQ(x.cmd.residual, Residual::kUnderflow);
    EXPECT_EQ(x.cmd.residual_count, 4096u - 24u);
    core->release(x.cmd);
  }
  {
    Exchange x(s.get(), 0, test::report_luns(1, 4096), 4096, DataDirection::kRead);
    EXPECT_FALSE(x.run(*core));
    EXPECT_EQ(x.data_in, std::vector<uint8_t>(8, 0));
    core->release(x.cmd);
  }
  // SELECT REPORT 03h: INVALID FIELD IN CDB, field pointer at byte 2.
  {
    Exchange x(s.get(), 0, test::report_luns(3, 4096), 4096, DataDirection::kRead);
    EXPECT_FALSE(x.run(*core));
    EXPECT_EQ(x.cmd.status, status::kCheckCondition);
    EXPECT_EQ(x.sense_key(), 0x05);
    EXPECT_EQ(x.asc(), 0x24);
    ASSERT_GE(x.cmd.sense_len, 18);
    EXPECT_EQ(x.cmd.sense[15] & 0xC0, 0xC0);  // SKSV, C/D = CDB
    EXPECT_EQ(x.cmd.sense[17], 2);
    core->release(x.cmd);
  }
  // Allocation length below 16: INVALID FIELD IN CDB at byte 6.
  for (uint32_t alloc : {0u, 8u, 15u}) {
    Exchange x(s.get(), 0, test::report_luns(0, alloc), alloc, DataDirection::kRead);
    EXPECT_FALSE(x.run(*core));
    EXPECT_EQ(x.cmd.status, status::kCheckCondition) << alloc;
    EXPECT_EQ(x.asc(), 0x24);
    core->release(x.cmd);
  }
}

TEST_F(TargetCoreTest, ReportLunsOfAnEmptyGroupListsLunZero) {
  auto s = open(kOtherIni);
  EXPECT_EQ(s->group(), "Default");
  EXPECT_EQ(report_luns(s.get()),
            (std::vector<uint8_t>{0, 0, 0, 8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0}));
}

TEST_F(TargetCoreTest, UnmappedLun) {
  ASSERT_TRUE(core->access().add_lun("Default", 0, "dev1"));
  auto s = open(kOtherIni);
  // INQUIRY: peripheral qualifier 011b, type 1Fh.
  {
    Exchange x(s.get(), 3, test::inquiry(false, 0, 96), 96, DataDirection::kRead);
    EXPECT_FALSE(x.run(*core));
    EXPECT_EQ(x.cmd.status, status::kGood);
    ASSERT_EQ(x.data_in.size(), 36u);
    EXPECT_EQ(x.data_in[0], 0x7F);
    EXPECT_EQ(x.data_in[4], 31);
    EXPECT_EQ(x.cmd.residual, Residual::kUnderflow);
    EXPECT_EQ(x.cmd.residual_count, 60u);
    core->release(x.cmd);
  }
  {  // allocation length shorter than the data
    Exchange x(s.get(), 3, test::inquiry(false, 0, 4), 4, DataDirection::kRead);
    EXPECT_FALSE(x.run(*core));
    ASSERT_EQ(x.data_in.size(), 4u);
    EXPECT_EQ(x.data_in[0], 0x7F);
    EXPECT_EQ(x.cmd.residual, Residual::kNone);
    core->release(x.cmd);
  }
  {  // VPD page 00h
    Exchange x(s.get(), 3, test::inquiry(true, 0, 255), 255, DataDirection::kRead);
    EXPECT_FALSE(x.run(*core));
    EXPECT_EQ(x.data_in, (std::vector<uint8_t>{0x7F, 0, 0, 1, 0}));
    core->release(x.cmd);
  }
  {  // page code without EVPD
    Exchange x(s.get(), 3, test::inquiry(false, 0x80, 255), 255, DataDirection::kRead);
    EXPECT_FALSE(x.run(*core));
    EXPECT_EQ(x.cmd.status, status::kCheckCondition);
    EXPECT_EQ(x.asc(), 0x24);
    core->release(x.cmd);
  }
  {  // REQUEST SENSE: GOOD, sense data LOGICAL UNIT NOT SUPPORTED
    Exchange x(s.get(), 3, test::request_sense(false, 252), 252, DataDirection::kRead);
    EXPECT_FALSE(x.run(*core));
    EXPECT_EQ(x.cmd.status, status::kGood);
    ASSERT_GE(x.data_in.size(), 14u);
    EXPECT_EQ(x.data_in[0], 0x70);
    EXPECT_EQ(x.data_in[2] & 0x0F, 0x05);
    EXPECT_EQ(x.data_in[12], 0x25);
    EXPECT_EQ(x.data_in[13], 0x00);
    core->release(x.cmd);
  }
  {  // descriptor format on request
    Exchange x(s.get(), 3, test::request_sense(true, 252), 252, DataDirection::kRead);
    EXPECT_FALSE(x.run(*core));
    ASSERT_GE(x.data_in.size(), 4u);
    EXPECT_EQ(x.data_in[0], 0x72);
    EXPECT_EQ(x.data_in[1] & 0x0F, 0x05);
    EXPECT_EQ(x.data_in[2], 0x25);
    core->release(x.cmd);
  }
  for (const auto& c : {test::test_unit_ready(), test::read10(0, 1), test::write10(0, 1)}) {
    Exchange x(s.get(), 3, c, c[0] == 0x2A ? 512 : 0, DataDirection::kNone);
    EXPECT_FALSE(x.run(*core));
    EXPECT_EQ(x.cmd.status, status::kCheckCondition);
    EXPECT_EQ(x.sense_key(), 0x05);
    EXPECT_EQ(x.asc(), 0x25);
    EXPECT_EQ(x.ascq(), 0x00);
    EXPECT_EQ(x.done_calls, 1);
    core->release(x.cmd);
  }
  {  // a LUN encoding this target does not use
    Exchange x(s.get(), 0, test::test_unit_ready(), 0, DataDirection::kNone);
    x.cmd.lun = 0x0100000000000000ull;  // bus identifier 1
    EXPECT_FALSE(x.run(*core));
    EXPECT_EQ(x.asc(), 0x25);
    core->release(x.cmd);
  }
  EXPECT_EQ(dev1->submits.load(), 0);
}

TEST_F(TargetCoreTest, ResidualsFollowTheCdb) {
  ASSERT_TRUE(core->access().add_lun("Default", 0, "dev1"));
  auto s = open(kOtherIni);
  struct Case {
    std::vector<uint8_t> cdb;
    uint32_t expected;
    DataDirection dir;
    uint32_t data_length;
    Residual residual;
    uint32_t count;
    uint32_t sent;
  };
  const Case cases[] = {
      {test::read10(0, 8), 4096, DataDirection::kRead, 4096, Residual::kNone, 0, 4096},
      {test::read10(0, 8), 512, DataDirection::kRead, 4096, Residual::kOverflow, 3584, 512},
      {test::read10(0, 8), 0, DataDirection::kNone, 4096, Residual::kOverflow, 4096, 0},
      {test::read10(0, 8), 8192, DataDirection::kRead, 4096, Residual::kUnderflow, 4096, 4096},
      {test::read10(0, 0), 512, DataDirection::kRead, 0, Residual::kUnderflow, 512, 0},
      {test::write10(0, 1), 512, DataDirection::kWrite, 512, Residual::kNone, 0, 0},
      {test::write10(0, 1), 4096, DataDirection::kWrite, 512, Residual::kUnderflow, 3584, 0},
      {test::test_unit_ready(), 512, DataDirection::kRead, 0, Residual::kUnderflow, 512, 0},
  };
  for (const Case& c : cases) {
    Exchange x(s.get(), 0, c.cdb, c.expected, c.dir);
    ASSERT_TRUE(x.run(*core)) << int(c.cdb[0]) << " " << c.expected;
    EXPECT_EQ(x.cmd.data_length, c.data_length);
    EXPECT_EQ(x.done_calls, 1);
    EXPECT_EQ(x.cmd.status, status::kGood);
    EXPECT_EQ(x.cmd.residual, c.residual) << int(c.cdb[0]) << " expected " << c.expected;
    EXPECT_EQ(x.cmd.residual_count, c.count) << int(c.cdb[0]) << " expected " << c.expected;
    if (c.cdb[0] == 0x28) {
      EXPECT_EQ(x.cmd.transferred, c.sent);
    }
    core->release(x.cmd);
  }
  // A block write asking for more than the initiator sends is cut to the
  // blocks it sends (FCP-4 9.4.2 a): the device sees a 1-block WRITE(10).
  {
    Exchange w(s.get(), 0, test::write10(0, 8), 512, DataDirection::kWrite);
    ASSERT_TRUE(w.run(*core));
    EXPECT_EQ(w.cmd.data_length, 512u);
    EXPECT_EQ(w.cmd.cdb[7], 0);
    EXPECT_EQ(w.cmd.cdb[8], 1);
    EXPECT_EQ(w.cmd.status, status::kGood);
    EXPECT_EQ(w.cmd.residual, Residual::kOverflow);
    EXPECT_EQ(w.cmd.residual_count, 4096u - 512u);
    core->release(w.cmd);
  }
  {  // EDTL 0: nothing written, overflow of one block
    Exchange w(s.get(), 0, test::write10(0, 1), 0, DataDirection::kWrite);
    ASSERT_TRUE(w.run(*core));
    EXPECT_EQ(w.cmd.data_length, 0u);
    EXPECT_EQ(w.cmd.cdb[8], 0);
    EXPECT_EQ(w.cmd.residual, Residual::kOverflow);
    EXPECT_EQ(w.cmd.residual_count, 512u);
    core->release(w.cmd);
  }
  // A medium write that cannot be cut (not whole blocks; WRITE(6), whose 0
  // means 256 blocks) goes to the device with only the bytes the initiator
  // sends: the device server answers DATA PROTECT if write protected, else
  // 0E/03 (scsi::LogicalUnit). The overflow is reported either way.
  const int submits = dev1->submits.load();
  {
    Exchange w(s.get(), 0, test::write10(0, 1), 200, DataDirection::kWrite);
    ASSERT_TRUE(w.run(*core));
    EXPECT_EQ(w.cmd.data_length, 200u);
    EXPECT_EQ(w.cmd.cdb[8], 1);  // the CDB is not rewritten
    EXPECT_EQ(w.cmd.residual, Residual::kOverflow);
    EXPECT_EQ(w.cmd.residual_count, 312u);
    core->release(w.cmd);
  }
  {
    Exchange w(s.get(), 0, test::cdb({0x0A, 0, 0, 0, 1, 0}), 0, DataDirection::kWrite);
    ASSERT_TRUE(w.run(*core));
    EXPECT_EQ(w.cmd.data_length, 0u);
    EXPECT_EQ(w.cmd.residual, Residual::kOverflow);
    core->release(w.cmd);
  }
  EXPECT_EQ(dev1->submits.load(), submits + 2);
  // Not a medium write (MODE SELECT's parameter list): refused by the core.
  {
    Exchange w(s.get(), 0, test::cdb({0x15, 0x10, 0, 0, 24, 0}), 8, DataDirection::kWrite);
    EXPECT_FALSE(w.run(*core));
    EXPECT_EQ(w.cmd.status, status::kCheckCondition);
    EXPECT_EQ(w.sense_key(), 0x05);
    EXPECT_EQ(w.asc(), 0x0E);
    EXPECT_EQ(w.ascq(), 0x03);
    EXPECT_EQ(w.cmd.residual, Residual::kOverflow);
    EXPECT_EQ(w.cmd.residual_count, 16u);
    core->release(w.cmd);
  }
  EXPECT_EQ(dev1->submits.load(), submits + 2);
  // Directions that disagree: the CDB wins, the initiator gets no data it did
  // not ask for and nothing it did not send is written.
  {
    Exchange r(s.get(), 0, test::read10(0, 1), 512, DataDirection::kWrite);
    ASSERT_TRUE(r.run(*core));
    EXPECT_EQ(r.cmd.status, status::kGood);
    EXPECT_EQ(r.cmd.transferred, 0u);
    EXPECT_TRUE(r.data_in.empty());
    EXPECT_EQ(r.cmd.residual, Residual::kOverflow);
    EXPECT_EQ(r.cmd.residual_count, 512u);
    core->release(r.cmd);
  }
  {
    Exchange w(s.get(), 0, test::write10(0, 1), 512, DataDirection::kRead);
    ASSERT_TRUE(w.run(*core));
    EXPECT_EQ(w.cmd.data_length, 0u);  // cut to 0 blocks
    EXPECT_EQ(w.cmd.status, status::kGood);
    core->release(w.cmd);
  }
}

TEST_F(TargetCoreTest, TransferredIsClampedSoStaleBytesNeverLeave) {
  ASSERT_TRUE(core->access().add_lun("Default", 0, "dev1"));
  auto s = open(kOtherIni);
  dev1->reply_transferred = 1u << 30;  // a handler claiming more than the buffer
  Exchange x(s.get(), 0, test::read10(0, 2), 1024, DataDirection::kRead);
  ASSERT_TRUE(x.run(*core));
  EXPECT_EQ(x.cmd.transferred, 1024u);
  EXPECT_EQ(x.data_in.size(), 1024u);
  core->release(x.cmd);
  dev1->reply_transferred = 100;  // a short read
  Exchange y(s.get(), 0, test::read10(0, 2), 1024, DataDirection::kRead);
  ASSERT_TRUE(y.run(*core));
  EXPECT_EQ(y.cmd.transferred, 100u);
  EXPECT_EQ(y.cmd.residual, Residual::kUnderflow);
  EXPECT_EQ(y.cmd.residual_count, 924u);
  core->release(y.cmd);
}

TEST_F(TargetCoreTest, MaxTransferLengthAndReadOnlyMapping) {
  dev1->info_.max_transfer_bytes = 64 * 1024;
  ASSERT_TRUE(core->access().add_lun("Default", 0, "dev1", /*read_only=*/true));
  auto s = open(kOtherIni);
  Exchange big(s.get(), 0, test::read10(0, 129), 129 * 512, DataDirection::kRead);
  EXPECT_FALSE(big.run(*core));
  EXPECT_EQ(big.cmd.status, status::kCheckCondition);
  EXPECT_EQ(big.asc(), 0x24);
  core->release(big.cmd);
  Exchange ok(s.get(), 0, test::read10(0, 128), 128 * 512, DataDirection::kRead);
  ASSERT_TRUE(ok.run(*core));
  EXPECT_TRUE(ok.cmd.read_only);
  core->release(ok.cmd);
  // Writes through a READ_ONLY mapping never reach the device.
  const int submits = dev1->submits.load();
  Exchange w(s.get(), 0, test::write10(0, 1), 512, DataDirection::kWrite);
  EXPECT_FALSE(w.run(*core));
  EXPECT_EQ(w.cmd.status, status::kCheckCondition);
  EXPECT_EQ(w.sense_key(), 0x07);
  EXPECT_EQ(w.asc(), 0x27);
  EXPECT_EQ(w.ascq(), 0x00);
  core->release(w.cmd);
  // ... also with less Data-Out than the CDB asks for: write protection
  // first (libiscsi ReadOnly.ReadOnlySBC sends WRITE SAME with no data).
  Exchange ws(s.get(), 0, test::cdb({0x41, 0, 0, 0, 0, 0, 0, 0, 1, 0}), 0, DataDirection::kWrite);
  EXPECT_FALSE(ws.run(*core));
  EXPECT_EQ(ws.sense_key(), 0x07);
  EXPECT_EQ(ws.asc(), 0x27);
  core->release(ws.cmd);
  EXPECT_EQ(dev1->submits.load(), submits);
  // A non-medium command still goes through.
  Exchange t(s.get(), 0, test::test_unit_ready(), 0, DataDirection::kNone);
  EXPECT_TRUE(t.run(*core));
  core->release(t.cmd);
  const auto all = core->all_statistics();
  ASSERT_EQ(all.size(), 2u);
}

TEST_F(TargetCoreTest, FlowControlTaskSetFullThenBusy) {
  TargetCoreOptions o;
  o.limits = FlowLimits{/*per_device=*/0, /*per_session=*/2};
  build(o);
  ASSERT_TRUE(core->access().add_lun("Default", 0, "dev1"));
  ASSERT_TRUE(core->access().add_lun("Default", 1, "dev2"));
  dev1->auto_complete = false;
  auto s = open(kOtherIni);
  Exchange a(s.get(), 0, test::read10(0, 1), 512, DataDirection::kRead);
  Exchange b(s.get(), 0, test::read10(1, 1), 512, DataDirection::kRead);
  ASSERT_TRUE(a.run(*core));
  ASSERT_TRUE(b.run(*core));
  EXPECT_EQ(s->outstanding(), 2u);
  // Third on the same LU: TASK SET FULL (its nexus has commands outstanding).
  Exchange c(s.get(), 0, test::read10(2, 1), 512, DataDirection::kRead);
  EXPECT_FALSE(c.run(*core));
  EXPECT_EQ(c.cmd.status, status::kTaskSetFull);
  EXPECT_EQ(c.done_calls, 1);
  core->release(c.cmd);
  // On LU 1, where this nexus has nothing outstanding: BUSY.
  Exchange d(s.get(), 1, test::read10(0, 1), 512, DataDirection::kRead);
  EXPECT_FALSE(d.run(*core));
  EXPECT_EQ(d.cmd.status, status::kBusy);
  core->release(d.cmd);
  EXPECT_EQ(core->statistics("dev1")->task_set_full, 1u);
  EXPECT_EQ(core->statistics("dev2")->busy, 1u);
  // Completions free the slots.
  dev1->complete_pending();
  EXPECT_EQ(a.done_calls, 1);
  EXPECT_EQ(b.done_calls, 1);
  EXPECT_EQ(s->outstanding(), 0u);
  core->release(a.cmd);
  core->release(b.cmd);
  Exchange e(s.get(), 1, test::read10(0, 1), 512, DataDirection::kRead);
  EXPECT_TRUE(e.run(*core));
  core->release(e.cmd);
}

TEST_F(TargetCoreTest, PerDeviceLimitAcrossSessions) {
  TargetCoreOptions o;
  o.limits = FlowLimits{/*per_device=*/1, /*per_session=*/0};
  build(o);
  ASSERT_TRUE(core->access().add_lun("Default", 0, "dev1"));
  dev1->auto_complete = false;
  auto s1 = open(kOtherIni);
  auto s2 = open("iqn.second");
  Exchange a(s1.get(), 0, test::read10(0, 1), 512, DataDirection::kRead);
  ASSERT_TRUE(a.run(*core));
  Exchange b(s2.get(), 0, test::read10(0, 1), 512, DataDirection::kRead);
  EXPECT_FALSE(b.run(*core));
  EXPECT_EQ(b.cmd.status, status::kBusy);
  core->release(b.cmd);
  // A prepared command that is never executed gives its slot back at release().
  dev1->complete_pending();
  core->release(a.cmd);
  Exchange c(s2.get(), 0, test::write10(0, 1), 512, DataDirection::kWrite);
  ASSERT_TRUE(core->prepare(c.cmd));
  core->release(c.cmd);  // connection lost during Data-Out
  Exchange d(s1.get(), 0, test::read10(0, 1), 512, DataDirection::kRead);
  EXPECT_TRUE(core->prepare(d.cmd));
  core->release(d.cmd);
  EXPECT_EQ(dev1->allocs.load(), dev1->releases.load());
}

TEST_F(TargetCoreTest, BufferShortageIsBusyOrTaskSetFull) {
  ASSERT_TRUE(core->access().add_lun("Default", 0, "dev1"));
  auto s = open(kOtherIni);
  dev1->fail_alloc = true;
  Exchange x(s.get(), 0, test::read10(0, 1), 512, DataDirection::kRead);
  EXPECT_FALSE(x.run(*core));
  EXPECT_EQ(x.cmd.status, status::kBusy);
  core->release(x.cmd);
  EXPECT_EQ(s->outstanding(), 0u);
  dev1->fail_alloc = false;
  dev1->auto_complete = false;
  Exchange y(s.get(), 0, test::read10(0, 1), 512, DataDirection::kRead);
  ASSERT_TRUE(y.run(*core));
  dev1->fail_alloc = true;
  Exchange z(s.get(), 0, test::read10(0, 1), 512, DataDirection::kRead);
  EXPECT_FALSE(z.run(*core));
  EXPECT_EQ(z.cmd.status, status::kTaskSetFull);
  core->release(z.cmd);
  dev1->complete_pending();
  core->release(y.cmd);
}

TEST_F(TargetCoreTest, StatisticsPerDevice) {
  ASSERT_TRUE(core->access().add_lun("Default", 0, "dev1"));
  auto s = open(kOtherIni);
  for (int i = 0; i < 3; ++i) {
    Exchange r(s.get(), 0, test::read10(0, 8), 4096, DataDirection::kRead);
    ASSERT_TRUE(r.run(*core));
    core->release(r.cmd);
  }
  Exchange w(s.get(), 0, test::write10(0, 2), 1024, DataDirection::kWrite);
  ASSERT_TRUE(w.run(*core));
  core->release(w.cmd);
  dev1->reply_status = status::kCheckCondition;
  Exchange t(s.get(), 0, test::test_unit_ready(), 0, DataDirection::kNone);
  ASSERT_TRUE(t.run(*core));
  core->release(t.cmd);
  auto st = core->statistics("dev1");
  ASSERT_TRUE(st);
  EXPECT_EQ(st->commands(), 5u);
  EXPECT_EQ(st->of(CommandClass::kRead).commands, 3u);
  EXPECT_EQ(st->bytes_read(), 3u * 4096);
  EXPECT_EQ(st->bytes_written(), 1024u);
  EXPECT_EQ(st->of(CommandClass::kNonData).errors, 1u);
  uint64_t in_histogram = 0;
  for (uint64_t n : st->of(CommandClass::kRead).latency) in_histogram += n;
  EXPECT_EQ(in_histogram, 3u);
  EXPECT_FALSE(core->statistics("nodev"));
  core->reset_statistics("dev1");
  EXPECT_EQ(core->statistics("dev1")->commands(), 0u);
}

TEST_F(TargetCoreTest, InventoryChangeRaisesReportedLunsDataHasChanged) {
  ASSERT_TRUE(core->access().add_lun("Default", 0, "dev1"));
  auto s = open(kOtherIni);
  ASSERT_EQ(dev2->attached.size(), 0u);
  ASSERT_TRUE(core->access().add_lun("Default", 1, "dev2"));
  ASSERT_EQ(dev2->attached.size(), 1u);  // the session now sees dev2
  // INQUIRY neither reports nor clears it (SAM-5 5.14).
  {
    Exchange x(s.get(), 0, test::inquiry(false, 0, 36), 36, DataDirection::kRead);
    EXPECT_TRUE(x.run(*core));
    core->release(x.cmd);
  }
  {
    Exchange x(s.get(), 0, test::test_unit_ready(), 0, DataDirection::kNone);
    EXPECT_FALSE(x.run(*core));
    EXPECT_EQ(x.cmd.status, status::kCheckCondition);
    EXPECT_EQ(x.sense_key(), 0x06);
    EXPECT_EQ(x.asc(), 0x3F);
    EXPECT_EQ(x.ascq(), 0x0E);
    core->release(x.cmd);
  }
  {  // reported once per LUN
    Exchange x(s.get(), 0, test::test_unit_ready(), 0, DataDirection::kNone);
    EXPECT_TRUE(x.run(*core));
    EXPECT_EQ(x.cmd.status, status::kGood);
    core->release(x.cmd);
  }
  {  // REQUEST SENSE on LUN 1 returns it as parameter data
    Exchange x(s.get(), 1, test::request_sense(false, 18), 18, DataDirection::kRead);
    EXPECT_FALSE(x.run(*core));
    EXPECT_EQ(x.cmd.status, status::kGood);
    ASSERT_EQ(x.data_in.size(), 18u);
    EXPECT_EQ(x.data_in[2] & 0x0F, 0x06);
    EXPECT_EQ(x.data_in[12], 0x3F);
    EXPECT_EQ(x.data_in[13], 0x0E);
    core->release(x.cmd);
  }
  // Another change; REPORT LUNS clears it on every LUN.
  ASSERT_TRUE(core->access().remove_lun("Default", 1));
  ASSERT_EQ(dev2->detached.size(), 1u);
  report_luns(s.get());
  Exchange x(s.get(), 0, test::test_unit_ready(), 0, DataDirection::kNone);
  EXPECT_TRUE(x.run(*core));
  core->release(x.cmd);
  // A change that leaves this session's view alone raises nothing.
  ASSERT_TRUE(core->access().add_group("unrelated"));
  Exchange y(s.get(), 0, test::test_unit_ready(), 0, DataDirection::kNone);
  EXPECT_TRUE(y.run(*core));
  core->release(y.cmd);
}

TEST_F(TargetCoreTest, SessionMovesGroupWhenANamingGroupAppears) {
  ASSERT_TRUE(core->access().add_lun("Default", 0, "dev1"));
  auto s = open(kSpecIni);
  EXPECT_EQ(s->group(), "Default");
  ASSERT_TRUE(core->access().add_group("spec_ini"));
  ASSERT_TRUE(core->access().add_lun("spec_ini", 0, "dev2"));
  ASSERT_TRUE(core->access().add_initiator("spec_ini", "*spec_ini*"));
  EXPECT_EQ(s->group(), "spec_ini");
  ASSERT_EQ(s->luns().size(), 1u);
  EXPECT_EQ(s->luns()[0].device->name(), "dev2");
  EXPECT_EQ(dev1->detached.size(), 1u);
}

TEST_F(TargetCoreTest, CloseSessionIsNexusLossThenDetach) {
  configure_seed_example();
  auto s = open(kOtherIni);
  core->close_session(*s);
  ASSERT_EQ(dev1->tmfs.size(), 1u);
  EXPECT_EQ(dev1->tmfs[0].first, SCSTU_TMF_I_T_NEXUS_LOSS);
  ASSERT_EQ(dev2->tmfs.size(), 1u);
  EXPECT_EQ(dev2->tmfs[0].second, encode_lun(1));
  EXPECT_EQ(dev1->detached.size(), 1u);
  EXPECT_EQ(dev2->detached.size(), 1u);
  EXPECT_TRUE(s->closed());
  EXPECT_TRUE(core->sessions().empty());
  Exchange x(s.get(), 0, test::test_unit_ready(), 0, DataDirection::kNone);
  EXPECT_FALSE(x.run(*core));
  EXPECT_EQ(x.cmd.status, status::kCheckCondition);
  core->release(x.cmd);
  core->close_session(*s);  // twice: harmless
  EXPECT_EQ(dev1->detached.size(), 1u);
}

TEST_F(TargetCoreTest, TaskManagementRouting) {
  configure_seed_example();
  auto spec = open(kSpecIni);
  auto other = open(kOtherIni);
  dev2->auto_complete = false;
  Exchange running(spec.get(), 0, test::read10(0, 1), 512, DataDirection::kRead);
  ASSERT_TRUE(running.run(*core));

  std::vector<scstu_tmf_response> answers;
  auto tmf = [&](scstu_tmf_function f, Session* s, uint64_t lun, TargetCommand* ref) {
    TargetTmf t;
    t.function = f;
    t.session = s;
    t.lun = encode_lun(lun);
    t.ref = ref;
    t.done = [&](scstu_tmf_response r) { answers.push_back(r); };
    core->task_management(t);
  };
  // ABORT TASK of a command with the device: forwarded, with its LUN.
  tmf(SCSTU_TMF_ABORT_TASK, spec.get(), 0, &running.cmd);
  ASSERT_EQ(dev2->tmfs.size(), 1u);
  EXPECT_EQ(dev2->tmfs.back().first, SCSTU_TMF_ABORT_TASK);
  // ... of a command of another session, or one never executed: FUNCTION COMPLETE here.
  tmf(SCSTU_TMF_ABORT_TASK, other.get(), 0, &running.cmd);
  Exchange idle(spec.get(), 0, test::read10(0, 1), 512, DataDirection::kRead);
  tmf(SCSTU_TMF_QUERY_TASK, spec.get(), 0, &idle.cmd);
  EXPECT_EQ(dev2->tmfs.size(), 1u);
  // LUN RESET goes to the device behind the session's LUN; unmapped: INCORRECT LUN.
  tmf(SCSTU_TMF_LUN_RESET, other.get(), 0, nullptr);
  ASSERT_EQ(dev1->tmfs.size(), 1u);
  EXPECT_EQ(dev1->tmfs.back().first, SCSTU_TMF_LUN_RESET);
  tmf(SCSTU_TMF_LUN_RESET, spec.get(), 1, nullptr);
  // TARGET RESET from spec reaches dev1 too (other sessions of the target see it).
  dev1->tmf_response = SCSTU_TMF_FAILED;
  tmf(SCSTU_TMF_TARGET_RESET, spec.get(), 0, nullptr);
  EXPECT_EQ(dev1->tmfs.back().first, SCSTU_TMF_TARGET_RESET);
  EXPECT_EQ(dev2->tmfs.back().first, SCSTU_TMF_TARGET_RESET);
  tmf(SCSTU_TMF_I_T_NEXUS_LOSS, spec.get(), 0, nullptr);  // only close_session() says that
  EXPECT_EQ(answers,
            (std::vector<scstu_tmf_response>{
                SCSTU_TMF_COMPLETE, SCSTU_TMF_COMPLETE, SCSTU_TMF_COMPLETE, SCSTU_TMF_COMPLETE,
                SCSTU_TMF_INCORRECT_LUN, SCSTU_TMF_FAILED, SCSTU_TMF_NOT_SUPPORTED}));
  dev2->complete_pending();
  EXPECT_EQ(running.done_calls, 1);
  core->release(running.cmd);
}

TEST_F(TargetCoreTest, CommandObjectsAreReusable) {
  ASSERT_TRUE(core->access().add_lun("Default", 0, "dev1"));
  auto s = open(kOtherIni);
  Exchange x(s.get(), 0, test::read10(0, 1), 512, DataDirection::kRead);
  for (int i = 0; i < 5; ++i) {
    ASSERT_TRUE(x.run(*core));
    core->release(x.cmd);
    // An answer of the core's own in between.
    x.cmd.lun = encode_lun(9);
    EXPECT_FALSE(x.run(*core));
    core->release(x.cmd);
    x.cmd.lun = encode_lun(0);
  }
  EXPECT_EQ(x.done_calls, 10);
  EXPECT_EQ(dev1->allocs.load(), 5);
  EXPECT_EQ(dev1->releases.load(), 5);
}

}  // namespace
}  // namespace scstu::core
