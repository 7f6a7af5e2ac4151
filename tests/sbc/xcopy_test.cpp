// EXTENDED COPY (LID1) and RECEIVE COPY RESULTS through LogicalUnits over
// RAM disks: within a unit, across units of the process, and every error.
#include "scsi/xcopy.h"

#include <gtest/gtest.h>

#include "sbc_harness.h"
#include "scsi/identity.h"
#include "scsi/xcopy_targets.h"

namespace scstu::testing {
namespace {

using scsi::FieldPointer;
using scsi::kNoBit;

constexpr uint64_t kBlocks = 4096;
constexpr uint32_t kBs = 512;

struct Unit {
  explicit Unit(const std::string& serial, uint64_t id = 1)
      : disk(kBlocks, kBs), lu(config(serial), &disk), ini(lu, id) {}
  static scsi::LogicalUnitConfig config(const std::string& serial) {
    scsi::LogicalUnitConfig c;
    c.serial = serial;
    return c;
  }
  RamDisk disk;
  scsi::LogicalUnit lu;
  Initiator ini;
};

// E4h identification descriptor target descriptor naming `lu` by its NAA.
Bytes target(const scsi::LogicalUnit& lu, uint32_t block_size = kBs) {
  Bytes d(32, 0);
  d[0] = 0xE4;
  d[4] = 0x01;  // binary
  d[5] = 0x03;  // LU association, NAA
  d[7] = 16;
  const auto naa = scsi::make_identity(lu.config()).naa;
  std::copy(naa.begin(), naa.end(), d.begin() + 8);
  d[29] = static_cast<uint8_t>(block_size >> 16);
  d[30] = static_cast<uint8_t>(block_size >> 8);
  d[31] = static_cast<uint8_t>(block_size);
  return d;
}

// 02h block-to-block segment descriptor.
Bytes segment(uint16_t src, uint16_t dst, uint16_t blocks, uint64_t src_lba, uint64_t dst_lba) {
  Bytes d(28, 0);
  d[0] = 0x02;
  put16(d, 2, 24);
  put16(d, 4, src);
  put16(d, 6, dst);
  put16(d, 10, blocks);
  put64(d, 12, src_lba);
  put64(d, 20, dst_lba);
  return d;
}

Bytes parameter_list(uint8_t list_id, uint8_t usage, const std::vector<Bytes>& targets,
                     const std::vector<Bytes>& segments) {
  Bytes p(16, 0);
  p[0] = list_id;
  p[1] = static_cast<uint8_t>(usage << 3);
  size_t t = 0, s = 0;
  for (const Bytes& x : targets) t += x.size();
  for (const Bytes& x : segments) s += x.size();
  put16(p, 2, static_cast<uint16_t>(t));
  put32(p, 8, static_cast<uint32_t>(s));
  for (const Bytes& x : targets) p.insert(p.end(), x.begin(), x.end());
  for (const Bytes& x : segments) p.insert(p.end(), x.begin(), x.end());
  return p;
}

Bytes xcopy_cdb(uint32_t length) {
  Bytes c(16, 0);
  c[0] = 0x83;
  put32(c, 10, length);
  return c;
}

Result xcopy(Initiator& ini, const Bytes& p) {
  return ini.run(xcopy_cdb(static_cast<uint32_t>(p.size())), p);
}

Bytes rcr_cdb(uint8_t sa, uint8_t list_id, uint32_t alloc) {
  Bytes c(16, 0);
  c[0] = 0x84;
  c[1] = sa;
  c[2] = list_id;
  put32(c, 10, alloc);
  return c;
}

void pattern(RamDisk& d, uint64_t lba, uint64_t blocks, uint8_t seed) {
  for (uint64_t b = 0; b < blocks; ++b) {
    for (size_t i = 0; i < kBs; ++i) d.block(lba + b)[i] = static_cast<uint8_t>(seed + b * 7 + i);
  }
}
bool same(RamDisk& a, uint64_t a_lba, RamDisk& b, uint64_t b_lba, uint64_t blocks) {
  return std::memcmp(a.block(a_lba), b.block(b_lba), blocks * kBs) == 0;
}

TEST(ExtendedCopy, WithinOneUnit) {
  Unit u("xc-a");
  pattern(u.disk, 0, 2048, 3);
  Bytes p = parameter_list(1, 0, {target(u.lu)}, {segment(0, 0, 2048, 0, kBlocks - 2048)});
  expect_good(xcopy(u.ini, p));
  EXPECT_TRUE(same(u.disk, 0, u.disk, kBlocks - 2048, 2048));
  // RECEIVE COPY RESULTS, COPY STATUS: byte for byte.
  Result r = u.ini.run(rcr_cdb(0x00, 1, 64), {}, 64);
  expect_good(r);
  EXPECT_EQ(r.transferred, 12u);
  Bytes want = {0, 0, 0, 8, 0x01, 0, 1, 0x00, 0, 0, 0, 0};
  put32(want, 8, 2048 * kBs);
  EXPECT_EQ(Bytes(r.data.begin(), r.data.begin() + 12), want);
  // FAILED SEGMENT DETAILS of a good copy: nothing to report.
  r = u.ini.run(rcr_cdb(0x04, 1, 64), {}, 64);
  expect_good(r);
  EXPECT_EQ(Bytes(r.data.begin(), r.data.begin() + 4), (Bytes{0, 0, 0, 0}));
}

TEST(ExtendedCopy, OverlappingRangesInOneUnitCopyLikeMemmove) {
  Unit u("xc-overlap");
  pattern(u.disk, 0, 4096, 9);
  Bytes before(u.disk.block(100), u.disk.block(100) + 3000 * kBs);
  Bytes p = parameter_list(2, 0, {target(u.lu)}, {segment(0, 0, 3000, 100, 600)});
  expect_good(xcopy(u.ini, p));
  EXPECT_EQ(std::memcmp(u.disk.block(600), before.data(), before.size()), 0);
}

TEST(ExtendedCopy, AcrossRegisteredUnits) {
  Unit a("xc-src", 1);
  Unit b("xc-dst", 2);
  pattern(a.disk, 10, 300, 5);
  Bytes p = parameter_list(3, 0, {target(a.lu), target(b.lu)},
                           {segment(0, 1, 300, 10, 1000), segment(1, 0, 300, 1000, 2000)});
  // b is not registered: not reachable.
  expect_check(xcopy(a.ini, p), scsi::kCopyTargetDeviceNotReachable);
  {
    auto reg = scsi::CopyTargets::process().add(b.lu);
    expect_good(xcopy(a.ini, p));
    EXPECT_TRUE(same(a.disk, 10, b.disk, 1000, 300));
    EXPECT_TRUE(same(a.disk, 10, a.disk, 2000, 300));
    Result r = a.ini.run(rcr_cdb(0x00, 3, 12), {}, 12);
    expect_good(r);
    EXPECT_EQ(r.data[4], 0x01);
    EXPECT_EQ(r.data[6], 2);  // segments processed
  }
  // Unregistered again.
  expect_check(xcopy(a.ini, p), scsi::kCopyTargetDeviceNotReachable);
}

TEST(ExtendedCopy, ZeroLengthAndHeaderErrors) {
  Unit u("xc-hdr");
  expect_good(u.ini.run(xcopy_cdb(0)));
  Bytes p = parameter_list(1, 0, {target(u.lu)}, {segment(0, 0, 8, 0, 100)});
  // Truncated target descriptor / segment descriptor / header.
  expect_check(u.ini.run(xcopy_cdb(16 + 31), Bytes(p.begin(), p.begin() + 47)),
               scsi::kParameterListLengthError);
  expect_check(
      u.ini.run(xcopy_cdb(static_cast<uint32_t>(p.size() - 1)), Bytes(p.begin(), p.end() - 1)),
      scsi::kParameterListLengthError);
  expect_check(u.ini.run(xcopy_cdb(8), Bytes(8, 0)), scsi::kParameterListLengthError);
  // LIST ID USAGE 01b is reserved.
  Bytes bad = p;
  bad[1] = 0x08;
  expect_check(xcopy(u.ini, bad), scsi::kInvalidFieldInParameterList, FieldPointer{false, 1, 4});
  // Inline data is not supported.
  bad = p;
  put32(bad, 12, 4);
  bad.resize(bad.size() + 4);
  expect_check(xcopy(u.ini, bad), scsi::kInvalidFieldInParameterList,
               FieldPointer{false, 12, kNoBit});
  // Target list not a multiple of 32.
  bad = parameter_list(1, 0, {Bytes(31, 0)}, {});
  expect_check(xcopy(u.ini, bad), scsi::kInvalidFieldInParameterList,
               FieldPointer{false, 2, kNoBit});
}

TEST(ExtendedCopy, DescriptorLimitsAsOperatingParametersSay) {
  Unit u("xc-limits");
  Result op = u.ini.run(rcr_cdb(0x03, 0, 256), {}, 256);
  expect_good(op);
  const uint16_t max_targets = static_cast<uint16_t>(op.data[8] << 8 | op.data[9]);
  const uint16_t max_segments = static_cast<uint16_t>(op.data[10] << 8 | op.data[11]);
  const uint32_t max_list =
      static_cast<uint32_t>(op.data[12] << 24 | op.data[13] << 16 | op.data[14] << 8 | op.data[15]);
  std::vector<Bytes> t(max_targets + 1, target(u.lu));
  expect_check(xcopy(u.ini, parameter_list(1, 0, t, {segment(0, 0, 1, 0, 1)})),
               scsi::kTooManyTargetDescriptors);
  std::vector<Bytes> s(max_segments + 1, segment(0, 0, 1, 0, 1));
  expect_check(xcopy(u.ini, parameter_list(1, 0, {target(u.lu)}, s)),
               scsi::kTooManySegmentDescriptors);
  // Longer than MAXIMUM DESCRIPTOR LIST LENGTH: a length error first.
  std::vector<Bytes> many(max_list / 28 + 1, segment(0, 0, 1, 0, 1));
  expect_check(xcopy(u.ini, parameter_list(1, 0, t, many)), scsi::kParameterListLengthError);
}

TEST(ExtendedCopy, UnsupportedDescriptorTypes) {
  Unit u("xc-types");
  Bytes t = target(u.lu);
  t[0] = 0xE0;  // Fibre Channel N_Port_Name
  expect_check(xcopy(u.ini, parameter_list(1, 0, {t}, {segment(0, 0, 1, 0, 1)})),
               scsi::kUnsupportedTargetDescriptorType, FieldPointer{false, 16, kNoBit});
  t = target(u.lu);
  t[1] = 0x01;  // a tape
  expect_check(xcopy(u.ini, parameter_list(1, 0, {t}, {segment(0, 0, 1, 0, 1)})),
               scsi::kUnsupportedTargetDescriptorType, FieldPointer{false, 17, 4});
  Bytes s = segment(0, 0, 1, 0, 1);
  s[0] = 0x00;  // block to stream
  expect_check(xcopy(u.ini, parameter_list(1, 0, {target(u.lu)}, {s})),
               scsi::kUnsupportedSegmentDescriptorType, FieldPointer{false, 48, kNoBit});
  s = segment(0, 0, 1, 0, 1);
  put16(s, 2, 20);  // wrong length for 02h
  expect_check(xcopy(u.ini, parameter_list(1, 0, {target(u.lu)}, {s})),
               scsi::kInvalidFieldInParameterList, FieldPointer{false, 50, kNoBit});
  // LU ID TYPE is ignored (SPC-4): still copies.
  t = target(u.lu);
  t[1] = 0xC0;
  expect_good(xcopy(u.ini, parameter_list(1, 0, {t}, {segment(0, 0, 1, 0, 1)})));
  // A designator nobody has.
  t = target(u.lu);
  t[8] ^= 0xFF;
  expect_check(xcopy(u.ini, parameter_list(1, 0, {t}, {segment(0, 0, 1, 0, 1)})),
               scsi::kCopyTargetDeviceNotReachable);
}

TEST(ExtendedCopy, SegmentErrorsAbortTheCopy) {
  Unit u("xc-seg");
  pattern(u.disk, 0, 16, 1);
  // Destination index beyond the target list.
  // COPY ABORTED carries a segment pointer (SPC-4 4.5.2.4.6): SD = 0, so
  // the pointer counts from the start of the parameter list.
  auto segment_pointer = [](const Result& r, uint16_t field) {
    ASSERT_GE(r.sense.size(), 18u);
    EXPECT_EQ(r.sense[15], 0x80);
    EXPECT_EQ(r.sense[16] << 8 | r.sense[17], field);
  };
  Result r = xcopy(u.ini, parameter_list(7, 0, {target(u.lu)}, {segment(0, 1, 8, 0, 100)}));
  expect_check(r, scsi::SenseCode{0x0A, 0x08, 0x04});  // UNREACHABLE COPY TARGET
  segment_pointer(r, 54);
  // Beyond the end of the destination: COPY ABORTED, 00/00, the LBA in
  // INFORMATION (fixed format bytes 3-6, VALID set).
  r = xcopy(u.ini, parameter_list(8, 0, {target(u.lu)}, {segment(0, 0, 2048, 0, kBlocks - 1)}));
  expect_check(r, scsi::SenseCode{0x0A, 0x00, 0x00});
  ASSERT_GE(r.sense.size(), 18u);
  EXPECT_EQ(r.sense[0], 0xF0);
  EXPECT_EQ((Bytes{r.sense[3], r.sense[4], r.sense[5], r.sense[6]}),
            (Bytes{0, 0, (kBlocks - 1) >> 8, (kBlocks - 1) & 0xFF}));
  // Block length that is not the unit's.
  r = xcopy(u.ini, parameter_list(9, 0, {target(u.lu, 4096)}, {segment(0, 0, 1, 0, 1)}));
  expect_check(r, scsi::SenseCode{0x0A, 0x26, 0x00});
  segment_pointer(r, 45);
  // A device error: COPY ABORTED, and FAILED SEGMENT DETAILS has the sense.
  u.disk.fail_with = -EIO;
  r = xcopy(u.ini, parameter_list(10, 0, {target(u.lu)},
                                  {segment(0, 0, 0, 0, 100), segment(0, 0, 4, 0, 100)}));
  expect_check(r, scsi::SenseCode{0x0A, 0x11, 0x00});
  u.disk.fail_with = 0;
  Result st = u.ini.run(rcr_cdb(0x00, 10, 12), {}, 12);
  expect_good(st);
  EXPECT_EQ(st.data[4], 0x02);  // completed with errors
  EXPECT_EQ(st.data[6], 1);     // the empty first segment was processed
  Result fd = u.ini.run(rcr_cdb(0x04, 10, 200), {}, 200);
  expect_good(fd);
  const uint16_t sense_len = static_cast<uint16_t>(fd.data[58] << 8 | fd.data[59]);
  ASSERT_GT(sense_len, 13u);
  EXPECT_EQ(fd.data[56], status::kCheckCondition);
  EXPECT_EQ(fd.data[60 + 2] & 0x0F, 0x0A);
  EXPECT_EQ(fd.data[60 + 12], 0x11);
  EXPECT_EQ(fd.transferred, 60u + sense_len);
  // Write protection of the destination.
  RamDisk disk(kBlocks, kBs);
  scsi::LogicalUnitConfig cfg = Unit::config("xc-ro");
  cfg.read_only = true;
  scsi::LogicalUnit ro(cfg, &disk);
  auto reg = scsi::CopyTargets::process().add(ro);
  expect_check(
      xcopy(u.ini, parameter_list(11, 0, {target(u.lu), target(ro)}, {segment(0, 1, 1, 0, 0)})),
      scsi::SenseCode{0x0A, 0x27, 0x00});
}

TEST(ReceiveCopyResults, OperatingParametersBytes) {
  Unit u("rcr-op");
  Result r = u.ini.run(rcr_cdb(0x03, 0, 256), {}, 256);
  expect_good(r);
  Bytes want(46, 0);
  put32(want, 0, 42);
  want[4] = 0x01;
  put16(want, 8, 4);
  put16(want, 10, 16);
  put32(want, 12, 4 * 32 + 16 * 28);
  put32(want, 16, 0xFFFF * kBs);
  put16(want, 34, 16);
  want[36] = 16;
  want[43] = 2;
  want[44] = 0x02;
  want[45] = 0xE4;
  EXPECT_EQ(r.transferred, 46u);
  EXPECT_EQ(Bytes(r.data.begin(), r.data.begin() + 46), want);
  // Truncated to the allocation length.
  r = u.ini.run(rcr_cdb(0x03, 0, 10), {}, 10);
  expect_good(r);
  EXPECT_EQ(r.transferred, 10u);
}

TEST(ReceiveCopyResults, UnknownListAndServiceAction) {
  Unit u("rcr-err");
  expect_check(u.ini.run(rcr_cdb(0x00, 5, 64), {}, 64), scsi::kInvalidFieldInCdb,
               FieldPointer{true, 2, kNoBit});
  expect_check(u.ini.run(rcr_cdb(0x04, 5, 64), {}, 64), scsi::kInvalidFieldInCdb,
               FieldPointer{true, 2, kNoBit});
  // LIST ID USAGE 10b / 11b: nothing is held.
  Bytes p = parameter_list(6, 2, {target(u.lu)}, {segment(0, 0, 1, 0, 1)});
  expect_good(xcopy(u.ini, p));
  expect_check(u.ini.run(rcr_cdb(0x00, 6, 64), {}, 64), scsi::kInvalidFieldInCdb);
  // Results are per I_T nexus.
  expect_good(xcopy(u.ini, parameter_list(6, 0, {target(u.lu)}, {segment(0, 0, 1, 0, 1)})));
  Initiator other(u.lu, 2, "iqn.2026-01.test:i2");
  expect_check(other.run(rcr_cdb(0x00, 6, 64), {}, 64), scsi::kInvalidFieldInCdb);
  expect_good(u.ini.run(rcr_cdb(0x00, 6, 64), {}, 64));
}

TEST(ExtendedCopy, ListIdInUseByARunningCopy) {
  Unit u("xc-busy");
  u.disk.hold = true;
  Bytes p = parameter_list(4, 0, {target(u.lu)}, {segment(0, 0, 8, 0, 100)});
  const uint32_t first = u.ini.start(xcopy_cdb(static_cast<uint32_t>(p.size())), p);
  Result second = u.ini.result(u.ini.start(xcopy_cdb(static_cast<uint32_t>(p.size())), p));
  expect_check(second, scsi::SenseCode{0x05, 0x00, 0x16});
  Result st = u.ini.result(u.ini.start(rcr_cdb(0x00, 4, 12), {}, 12));
  expect_good(st);
  EXPECT_EQ(st.data[4], 0x00);  // in progress
  while (u.disk.pump()) {
  }
  expect_good(u.ini.result(first));
}

}  // namespace
}  // namespace scstu::testing

namespace scstu::testing {
namespace {

// SPC-4 7.8.17, for INQUIRY to serve (the layout sg_vpd decodes).
TEST(ThirdPartyCopyVpd, PageBytes) {
  Unit u("tpc-vpd");
  const Bytes page = scsi::third_party_copy_vpd_page(u.lu);
  Bytes want = {0x00, 0x8F, 0, 0};
  Bytes d1 = {0x00, 0x01, 0, 12, 8, 0x83, 1, 0x00, 0x84, 3, 0x00, 0x03, 0x04, 0, 0, 0};
  Bytes d4(32, 0);
  d4[1] = 0x04;
  d4[3] = 28;
  put16(d4, 8, 4);
  put16(d4, 10, 16);
  put32(d4, 12, 4 * 32 + 16 * 28);
  Bytes d8 = {0x00, 0x08, 0, 4, 2, 0x02, 0xE4, 0};
  Bytes dc = {0x00, 0x0C, 0, 4, 0, 0, 0, 0};
  Bytes g(36, 0);
  g[0] = 0x80;
  g[1] = 0x01;
  g[3] = 32;
  put32(g, 4, 16);
  put32(g, 8, 16);
  put32(g, 12, 0xFFFF * kBs);
  for (const Bytes* d : {&d1, &d4, &d8, &dc, &g}) want.insert(want.end(), d->begin(), d->end());
  put16(want, 2, static_cast<uint16_t>(want.size() - 4));
  EXPECT_EQ(page, want);
  EXPECT_EQ(page.size() % 4, 0u);
}

}  // namespace
}  // namespace scstu::testing
