// UNMAP, WRITE SAME, GET LBA STATUS, COMPARE AND WRITE, ORWRITE, WRITE
// ATOMIC, FORMAT UNIT, SANITIZE, PRE-FETCH, READ DEFECT DATA through a
// LogicalUnit over a RAM disk: data on the medium and every byte returned.
#include <gtest/gtest.h>

#include <thread>

#include "sbc_harness.h"
#include "scsi/lu_runtime.h"
#include "scsi/sanitize.h"
#include "scsi/sbc_advanced_job.h"

namespace scstu::testing {
namespace {

using scsi::FieldPointer;
using scsi::kNoBit;

constexpr uint64_t kBlocks = 1024;
constexpr uint32_t kBs = 512;

Bytes cdb10(uint8_t op, uint8_t b1, uint32_t lba, uint16_t len) {
  Bytes c(10, 0);
  c[0] = op;
  c[1] = b1;
  put32(c, 2, lba);
  put16(c, 7, len);
  return c;
}
Bytes cdb16(uint8_t op, uint8_t b1, uint64_t lba, uint32_t len) {
  Bytes c(16, 0);
  c[0] = op;
  c[1] = b1;
  put64(c, 2, lba);
  put32(c, 10, len);
  return c;
}

struct Unit {
  explicit Unit(bool thin = true, BlockCapabilities caps = RamDisk::thin_caps(),
                uint64_t blocks = kBlocks)
      : disk(blocks, kBs, caps), lu(config(thin), &disk), ini(lu) {}
  static scsi::LogicalUnitConfig config(bool thin) {
    scsi::LogicalUnitConfig c;
    c.serial = "sbc-test";
    c.thin = thin;
    c.max_write_same_blocks = 512;
    c.max_unmap_descriptors = 4;
    c.max_unmap_lba_count = 256;
    c.max_compare_write_blocks = 8;
    c.max_atomic_transfer_blocks = 16;
    return c;
  }
  RamDisk disk;
  scsi::LogicalUnit lu;
  Initiator ini;
};

// ---- per-unit state ---------------------------------------------------------------

// The range lock and copy records belong to the unit's runtime: each unit
// has its own, and they go away with it.
TEST(SbcAdvancedState, OwnedByTheUnitsRuntime) {
  Unit a;
  Unit b;
  scsi::SbcAdvancedState& sa = scsi::sbc_advanced_state(a.lu);
  EXPECT_EQ(&sa, a.lu.runtime().sbc);
  EXPECT_EQ(&sa, a.lu.runtime().sbc_storage.get());
  EXPECT_NE(&sa, &scsi::sbc_advanced_state(b.lu));
  EXPECT_EQ(&sa, &scsi::sbc_advanced_state(a.lu));  // created once
  std::weak_ptr<scsi::SbcAdvancedState> gone;
  {
    Unit c;
    gone = c.lu.runtime().sbc_storage;
    EXPECT_FALSE(gone.expired());
  }
  EXPECT_TRUE(gone.expired());
}

// ---- WRITE SAME --------------------------------------------------------------

TEST(WriteSame, Ten_WritesTheBlockOverTheRange) {
  Unit u;
  u.disk.fill(0, 20, 0x11);
  Bytes block(kBs, 0xA5);
  expect_good(u.ini.run(cdb10(0x41, 0, 3, 10), block));
  EXPECT_TRUE(u.disk.all(3, 10, 0xA5));
  EXPECT_TRUE(u.disk.all(0, 3, 0x11));
  EXPECT_TRUE(u.disk.all(13, 7, 0x11));
  EXPECT_EQ(u.disk.unmapped_blocks, 0u);
}

TEST(WriteSame, Sixteen_UsesNativeWriteSameWhenTheDeviceHasIt) {
  BlockCapabilities caps = RamDisk::thin_caps();
  caps.write_same = true;
  Unit u(true, caps);
  Bytes block(kBs, 0x5A);
  expect_good(u.ini.run(cdb16(0x93, 0, 100, 300), block));
  EXPECT_TRUE(u.disk.all(100, 300, 0x5A));
  EXPECT_EQ(u.disk.submitted[BlockOp::kWriteSame], 1);
  EXPECT_EQ(u.disk.submitted[BlockOp::kWrite], 0);
}

TEST(WriteSame, UnmapBitWithZeroBlockDeallocates) {
  Unit u;
  u.disk.fill(0, 64, 0x77);
  expect_good(u.ini.run(cdb16(0x93, 0x08, 8, 16), Bytes(kBs, 0)));
  EXPECT_EQ(u.disk.unmapped_blocks, 16u);
  EXPECT_TRUE(u.disk.all(8, 16, 0));
  EXPECT_TRUE(u.disk.all(24, 8, 0x77));
}

TEST(WriteSame, UnmapBitWithDataWritesIt) {
  Unit u;
  expect_good(u.ini.run(cdb10(0x41, 0x08, 8, 4), Bytes(kBs, 0x42)));
  EXPECT_EQ(u.disk.unmapped_blocks, 0u);
  EXPECT_TRUE(u.disk.all(8, 4, 0x42));
}

TEST(WriteSame, UnmapFallsBackToWritingOnADeviceWithoutUnmap) {
  // Thin by configuration, but the device refuses kUnmap at run time.
  BlockCapabilities caps = RamDisk::thin_caps();
  Unit u(true, caps);
  u.disk.fill(0, 64, 0x77);
  u.disk.refuse_unmap = true;
  expect_good(u.ini.run(cdb16(0x93, 0x08, 0, 4), Bytes(kBs, 0)));
  EXPECT_TRUE(u.disk.all(0, 4, 0));
  EXPECT_TRUE(u.disk.all(4, 60, 0x77));
  EXPECT_EQ(u.disk.unmapped_blocks, 0u);
  EXPECT_EQ(u.disk.submitted[BlockOp::kUnmap], 1);
}

TEST(WriteSame, NdobWritesZeroesWithoutDataOut) {
  Unit u;
  u.disk.fill(0, 64, 0x77);
  expect_good(u.ini.run(cdb16(0x93, 0x01, 2, 3)));
  EXPECT_TRUE(u.disk.all(2, 3, 0));
  EXPECT_TRUE(u.disk.all(5, 1, 0x77));
}

TEST(WriteSame, ZeroBlocksMeansToTheLastLba) {
  Unit u(true, RamDisk::thin_caps(), 600);  // more than MAXIMUM WRITE SAME LENGTH (512)
  expect_good(u.ini.run(cdb10(0x41, 0, 88, 0), Bytes(kBs, 0x3C)));  // 512 blocks
  EXPECT_TRUE(u.disk.all(88, 512, 0x3C));
  EXPECT_TRUE(u.disk.all(0, 88, 0));
}

// SBC-4 5.50: the blocks a NUMBER OF LOGICAL BLOCKS of zero implies count
// against MAXIMUM WRITE SAME LENGTH like an explicit count (libiscsi
// WriteSame10/16.ZeroBlocks).
TEST(WriteSame, ZeroBlocksBeyondTheMaximumLengthIsAnInvalidField) {
  Unit u(true, RamDisk::thin_caps(), 600);
  expect_check(u.ini.run(cdb10(0x41, 0, 87, 0), Bytes(kBs, 0x3C)), scsi::kInvalidFieldInCdb,
               FieldPointer{true, 7, kNoBit});
  expect_check(u.ini.run(cdb16(0x93, 0, 0, 0), Bytes(kBs, 0x3C)), scsi::kInvalidFieldInCdb,
               FieldPointer{true, 10, kNoBit});
  EXPECT_TRUE(u.disk.all(0, 600, 0));
}

TEST(WriteSame, OneBlockNeedsOneBlockOfBuffer) {
  Unit u;
  expect_good(u.ini.run(cdb10(0x41, 0, 3, 1), Bytes(kBs, 0x21)));
  EXPECT_TRUE(u.disk.all(3, 1, 0x21));
  EXPECT_EQ(u.disk.submitted[BlockOp::kWrite], 1);
  EXPECT_EQ(u.disk.submitted[BlockOp::kFlush], 0);
}

TEST(WriteSame, Errors) {
  Unit u;
  Unit fat(false, BlockCapabilities{});
  Bytes block(kBs, 1);
  // UNMAP on a fully provisioned unit (no LBPWS).
  expect_check(fat.ini.run(cdb16(0x93, 0x08, 0, 1), block), scsi::kInvalidFieldInCdb,
               FieldPointer{true, 1, 3});
  // ANCHOR (ANC_SUP = 0).
  expect_check(u.ini.run(cdb16(0x93, 0x10, 0, 1), block), scsi::kInvalidFieldInCdb,
               FieldPointer{true, 1, 4});
  // More than MAXIMUM WRITE SAME LENGTH.
  expect_check(u.ini.run(cdb16(0x93, 0, 0, 513), block), scsi::kInvalidFieldInCdb,
               FieldPointer{true, 10, kNoBit});
  // Beyond the end.
  expect_check(u.ini.run(cdb16(0x93, 0, kBlocks - 1, 2), block), scsi::kLbaOutOfRange);
  expect_check(u.ini.run(cdb10(0x41, 0, kBlocks + 1, 0), block), scsi::kLbaOutOfRange);
  // Wrong data-out size: half a block, or two blocks (libiscsi
  // WriteSame*.InvalidDataOutSize): INVALID FIELD IN COMMAND IU, nothing written.
  expect_check(u.ini.run(cdb16(0x93, 0, 0, 1), Bytes(kBs / 2, 1)), scsi::kInvalidFieldInCommandIu);
  expect_check(u.ini.run(cdb16(0x93, 0, 0, 1), Bytes(2 * kBs, 1)), scsi::kInvalidFieldInCommandIu);
  // With DATA PROTECT first on a write-protected unit (libiscsi ReadOnly.ReadOnlySBC).
  {
    scsi::LogicalUnitConfig cfg = Unit::config(true);
    cfg.read_only = true;
    RamDisk disk(kBlocks, kBs, RamDisk::thin_caps());
    scsi::LogicalUnit lu(cfg, &disk);
    Initiator ini(lu);
    expect_check(ini.run(cdb16(0x93, 0, 0, 1), Bytes(kBs / 2, 1)), scsi::kWriteProtected);
  }
  // A device error carries the LBA.
  u.disk.fail_with = -EIO;
  Result r = u.ini.run(cdb16(0x93, 0, 7, 1), block);
  expect_check(r, scsi::kWriteError);
  EXPECT_EQ(r.parsed().information, 7u);
}

TEST(WriteSame, WriteProtected) {
  RamDisk disk(kBlocks, kBs, RamDisk::thin_caps());
  scsi::LogicalUnitConfig cfg = Unit::config(true);
  cfg.read_only = true;
  scsi::LogicalUnit lu(cfg, &disk);
  Initiator ini(lu);
  expect_check(ini.run(cdb10(0x41, 0, 0, 1), Bytes(kBs, 1)), scsi::kWriteProtected);
  expect_check(ini.run(cdb10(0x42, 0, 0, 24), Bytes(24, 0)), scsi::kWriteProtected);
}

// ---- UNMAP -------------------------------------------------------------------

Bytes unmap_list(std::vector<std::pair<uint64_t, uint32_t>> extents) {
  Bytes p(8 + 16 * extents.size(), 0);
  put16(p, 0, static_cast<uint16_t>(p.size() - 2));
  put16(p, 2, static_cast<uint16_t>(16 * extents.size()));
  for (size_t i = 0; i < extents.size(); ++i) {
    put64(p, 8 + 16 * i, extents[i].first);
    put32(p, 8 + 16 * i + 8, extents[i].second);
  }
  return p;
}

TEST(Unmap, DeallocatesEachDescriptor) {
  Unit u;
  u.disk.fill(0, 100, 0x99);
  Bytes p = unmap_list({{10, 5}, {50, 0}, {60, 20}});
  Result r = u.ini.run(cdb10(0x42, 0, 0, static_cast<uint16_t>(p.size())), p);
  expect_good(r);
  EXPECT_EQ(u.disk.unmapped_blocks, 25u);
  EXPECT_TRUE(u.disk.all(10, 5, 0));
  EXPECT_TRUE(u.disk.all(60, 20, 0));
  EXPECT_TRUE(u.disk.all(15, 45, 0x99));
  EXPECT_TRUE(u.disk.all(80, 20, 0x99));
}

TEST(Unmap, Errors) {
  Unit u;
  u.disk.fill(0, kBlocks, 0x99);
  auto send = [&](const Bytes& p, uint16_t len) { return u.ini.run(cdb10(0x42, 0, 0, len), p); };
  // Zero length: nothing to do.
  expect_good(u.ini.run(cdb10(0x42, 0, 0, 0)));
  // Shorter than the header.
  expect_check(send(Bytes(6, 0), 6), scsi::kParameterListLengthError);
  // Descriptor data longer than the list.
  Bytes p = unmap_list({{0, 1}});
  put16(p, 2, 32);
  expect_check(send(p, 24), scsi::kInvalidFieldInParameterList, FieldPointer{false, 2, kNoBit});
  // More descriptors than MAXIMUM UNMAP BLOCK DESCRIPTOR COUNT (4).
  p = unmap_list({{0, 1}, {2, 1}, {4, 1}, {6, 1}, {8, 1}});
  expect_check(send(p, static_cast<uint16_t>(p.size())), scsi::kInvalidFieldInParameterList,
               FieldPointer{false, 2, kNoBit});
  // More blocks than MAXIMUM UNMAP LBA COUNT (256) in the second descriptor.
  p = unmap_list({{0, 1}, {2, 257}});
  expect_check(send(p, static_cast<uint16_t>(p.size())), scsi::kInvalidFieldInParameterList,
               FieldPointer{false, 32, kNoBit});
  // Out of range: nothing at all is unmapped, not even the good descriptor.
  p = unmap_list({{0, 4}, {kBlocks - 2, 3}});
  Result r = send(p, static_cast<uint16_t>(p.size()));
  expect_check(r, scsi::kLbaOutOfRange);
  EXPECT_EQ(r.parsed().information, kBlocks - 2);
  EXPECT_TRUE(u.disk.all(0, 4, 0x99));
  // ANCHOR.
  expect_check(u.ini.run(cdb10(0x42, 0x01, 0, 24), unmap_list({{0, 1}})), scsi::kInvalidFieldInCdb,
               FieldPointer{true, 1, 0});
  EXPECT_EQ(u.disk.unmapped_blocks, 0u);
  // A fully provisioned unit has no UNMAP.
  Unit fat(false, BlockCapabilities{});
  expect_check(fat.ini.run(cdb10(0x42, 0, 0, 24), unmap_list({{0, 1}})),
               scsi::kInvalidCommandOperationCode);
}

// ---- GET LBA STATUS ------------------------------------------------------------

Bytes get_lba_status(uint64_t lba, uint32_t alloc) {
  Bytes c = cdb16(0x9E, 0x12, lba, alloc);
  return c;
}

TEST(GetLbaStatus, ThinReportsDeallocatedRuns) {
  Unit u(true, RamDisk::thin_caps(), 8);
  u.disk.fill(0, 8, 0x10);
  Bytes p = unmap_list({{2, 3}});
  expect_good(u.ini.run(cdb10(0x42, 0, 0, 24), p));
  Result r = u.ini.run(get_lba_status(1, 64), {}, 64);
  expect_good(r);
  Bytes want(8 + 3 * 16, 0);
  put32(want, 0, 4 + 3 * 16);
  put64(want, 8, 1);
  put32(want, 16, 1);
  want[20] = 0;  // mapped
  put64(want, 24, 2);
  put32(want, 32, 3);
  want[36] = 1;  // deallocated
  put64(want, 40, 5);
  put32(want, 48, 3);
  want[52] = 0;
  EXPECT_EQ(r.transferred, want.size());
  EXPECT_EQ(Bytes(r.data.begin(), r.data.begin() + static_cast<ptrdiff_t>(want.size())), want);
}

// The answer covers the unit past the first chunk read (libiscsi
// Sanitize.BlockErase wants the whole LUN described), and stops once the
// descriptors the allocation length holds are complete.
TEST(GetLbaStatus, ScansPastOneChunkUntilTheDescriptorsAreComplete) {
  constexpr uint64_t kBig = 3 * scsi::kChunkBytes / kBs;
  Unit u(true, RamDisk::thin_caps(), kBig);
  Result r = u.ini.run(get_lba_status(0, 64), {}, 64);
  expect_good(r);
  Bytes want(8 + 16, 0);
  put32(want, 0, 4 + 16);
  put32(want, 16, static_cast<uint32_t>(kBig));
  want[20] = 1;
  EXPECT_EQ(r.transferred, want.size());
  EXPECT_EQ(Bytes(r.data.begin(), r.data.begin() + static_cast<ptrdiff_t>(want.size())), want);

  u.disk.fill(kBig - 100, 1, 0x42);  // one mapped block in the last chunk
  r = u.ini.run(get_lba_status(0, 8 + 3 * 16), {}, 8 + 3 * 16);
  expect_good(r);
  want.assign(8 + 3 * 16, 0);
  put32(want, 0, 4 + 3 * 16);
  put32(want, 16, static_cast<uint32_t>(kBig - 100));
  want[20] = 1;
  put64(want, 24, kBig - 100);
  put32(want, 32, 1);
  put64(want, 40, kBig - 99);
  put32(want, 48, 99);
  want[52] = 1;
  EXPECT_EQ(r.data, want);

  // Room for one descriptor: the first run only.
  r = u.ini.run(get_lba_status(0, 24), {}, 24);
  expect_good(r);
  want.assign(24, 0);
  put32(want, 0, 20);
  put32(want, 16, static_cast<uint32_t>(kBig - 100));
  want[20] = 1;
  EXPECT_EQ(r.data, want);
}

TEST(GetLbaStatus, FullyProvisionedIsAllMapped) {
  Unit u(false, BlockCapabilities{});
  Result r = u.ini.run(get_lba_status(100, 24), {}, 24);
  expect_good(r);
  Bytes want(24, 0);
  put32(want, 0, 20);
  put64(want, 8, 100);
  put32(want, 16, kBlocks - 100);
  EXPECT_EQ(r.data, want);
  // Allocation length shorter than one descriptor: truncated.
  r = u.ini.run(get_lba_status(0, 8), {}, 8);
  expect_good(r);
  EXPECT_EQ(r.transferred, 8u);
  EXPECT_EQ(r.data, (Bytes{0, 0, 0, 20, 0, 0, 0, 0}));
}

TEST(GetLbaStatus, BeyondTheEnd) {
  Unit u;
  expect_check(u.ini.run(get_lba_status(kBlocks, 24), {}, 24), scsi::kLbaOutOfRange);
  expect_check(u.ini.run(get_lba_status(~0ull, 24), {}, 24), scsi::kLbaOutOfRange);
}

// ---- COMPARE AND WRITE, ORWRITE, WRITE ATOMIC ------------------------------------

Bytes caw(uint64_t lba, uint8_t n) {
  Bytes c = cdb16(0x89, 0, lba, 0);
  c[13] = n;
  return c;
}

Bytes two_halves(uint32_t n, uint8_t verify, uint8_t write) {
  Bytes d(2 * n * kBs, verify);
  std::fill(d.begin() + n * kBs, d.end(), write);
  return d;
}

TEST(CompareAndWrite, WritesWhenTheBlocksMatch) {
  Unit u;
  u.disk.fill(5, 2, 0xAA);
  expect_good(u.ini.run(caw(5, 2), two_halves(2, 0xAA, 0xBB)));
  EXPECT_TRUE(u.disk.all(5, 2, 0xBB));
}

TEST(CompareAndWrite, MiscompareReportsTheOffsetAndWritesNothing) {
  Unit u;
  u.disk.fill(5, 2, 0xAA);
  u.disk.block(6)[17] = 0x00;  // byte 512 + 17 of the range
  Result r = u.ini.run(caw(5, 2), two_halves(2, 0xAA, 0xBB));
  expect_check(r, scsi::kMiscompareDuringVerify);
  ASSERT_TRUE(r.parsed().information.has_value());
  EXPECT_EQ(*r.parsed().information, 512u + 17u);
  // Fixed format: VALID bit and INFORMATION bytes 3-6.
  ASSERT_GE(r.sense.size(), 18u);
  EXPECT_EQ(r.sense[0], 0xF0);
  EXPECT_EQ(r.sense[2], 0x0E);
  EXPECT_EQ((Bytes{r.sense[3], r.sense[4], r.sense[5], r.sense[6]}), (Bytes{0, 0, 2, 17}));
  EXPECT_TRUE(u.disk.all(5, 1, 0xAA));
  EXPECT_EQ(u.disk.block(6)[0], 0xAA);
}

TEST(CompareAndWrite, Limits) {
  Unit u;
  expect_good(u.ini.run(caw(0, 0)));
  // Zero blocks but Data-Out announced (a count of 256 wrapped to 0, as
  // libiscsi's CompareAndWrite.Simple sends): refused, nothing written.
  u.disk.fill(0, 4, 0x5A);
  expect_check(u.ini.run_overflowing(caw(0, 0), 2 * 256 * kBs), scsi::kInvalidFieldInCdb,
               FieldPointer{true, 13, kNoBit});
  EXPECT_TRUE(u.disk.all(0, 4, 0x5A));
  expect_check(u.ini.run(caw(0, 9), two_halves(9, 0, 0)), scsi::kInvalidFieldInCdb,
               FieldPointer{true, 13, kNoBit});
  expect_check(u.ini.run(caw(kBlocks - 1, 2), two_halves(2, 0, 0)), scsi::kLbaOutOfRange);
}

// Two COMPARE AND WRITEs of the same block, each expecting what the other
// wrote first: the second must not read before the first has written.
TEST(CompareAndWrite, AtomicAgainstAnOverlappingCompareAndWrite) {
  Unit u;
  u.disk.fill(0, 4, 0x01);
  u.disk.hold = true;
  const uint32_t first = u.ini.start(caw(1, 2), two_halves(2, 0x01, 0x02));
  const uint32_t second = u.ini.start(caw(2, 1), two_halves(1, 0x02, 0x03));
  const uint32_t apart = u.ini.start(caw(3, 1), two_halves(1, 0x01, 0x04));
  // First's read and the non-overlapping one's read are in flight; the
  // overlapping second waits for the range.
  EXPECT_EQ(u.disk.held(), 2u);
  while (u.disk.pump()) {
  }
  for (uint32_t t : {first, second, apart}) expect_good(u.ini.result(t));
  EXPECT_TRUE(u.disk.all(1, 1, 0x02));
  EXPECT_TRUE(u.disk.all(2, 1, 0x03));
  EXPECT_TRUE(u.disk.all(3, 1, 0x04));
  EXPECT_EQ(scsi::sbc_advanced_state(u.lu).ranges.held(), 0u);
}

// A WRITE SAME in flight holds its range shared: an overlapping COMPARE AND
// WRITE does not read until it is written, then sees the new data.
TEST(CompareAndWrite, WaitsForAnOverlappingWriteSame) {
  Unit u;
  u.disk.fill(0, 8, 0x01);
  u.disk.hold = true;
  const uint32_t ws = u.ini.start(cdb10(0x41, 0, 0, 4), Bytes(kBs, 0x07));
  const uint32_t cw = u.ini.start(caw(3, 1), two_halves(1, 0x07, 0x08));
  EXPECT_EQ(u.disk.held(), 1u);  // only the WRITE SAME write
  while (u.disk.pump()) {
  }
  expect_good(u.ini.result(ws));
  expect_good(u.ini.result(cw));
  EXPECT_TRUE(u.disk.all(0, 3, 0x07));
  EXPECT_TRUE(u.disk.all(3, 1, 0x08));
}

TEST(CompareAndWrite, ReadErrorReleasesTheRange) {
  Unit u;
  u.disk.fail_with = -EIO;
  Result r = u.ini.run(caw(3, 1), two_halves(1, 0, 0));
  expect_check(r, scsi::kWriteError);
  EXPECT_EQ(scsi::sbc_advanced_state(u.lu).ranges.held(), 0u);
  u.disk.fail_with = 0;
  expect_good(u.ini.run(caw(3, 1), two_halves(1, 0, 9)));
}

TEST(OrWrite, OrsTheDataIntoTheBlocks) {
  Unit u;
  u.disk.fill(10, 2, 0x0F);
  expect_good(u.ini.run(cdb16(0x8B, 0, 10, 2), Bytes(2 * kBs, 0x30)));
  EXPECT_TRUE(u.disk.all(10, 2, 0x3F));
  expect_good(u.ini.run(cdb16(0x8B, 0, 10, 0)));
  expect_check(u.ini.run(cdb16(0x8B, 0, kBlocks, 1), Bytes(kBs, 1)), scsi::kLbaOutOfRange);
}

Bytes write_atomic(uint64_t lba, uint16_t n) {
  Bytes c(16, 0);
  c[0] = 0x9C;
  put64(c, 2, lba);
  put16(c, 12, n);
  return c;
}

TEST(WriteAtomic, WritesWithinTheAtomicLimit) {
  Unit u;
  expect_good(u.ini.run(write_atomic(20, 16), Bytes(16 * kBs, 0x61)));
  EXPECT_TRUE(u.disk.all(20, 16, 0x61));
  expect_good(u.ini.run(write_atomic(20, 0)));
  expect_check(u.ini.run(write_atomic(0, 17), Bytes(17 * kBs, 1)), scsi::kInvalidFieldInCdb,
               FieldPointer{true, 12, kNoBit});
  expect_check(u.ini.run(write_atomic(kBlocks - 1, 2), Bytes(2 * kBs, 1)), scsi::kLbaOutOfRange);
}

// ---- FORMAT UNIT, SANITIZE ----------------------------------------------------------

TEST(FormatUnit, WithoutParameterListZeroesTheMedium) {
  Unit u;
  u.disk.fill(0, kBlocks, 0xCD);
  expect_good(u.ini.run({0x04, 0, 0, 0, 0, 0}));
  EXPECT_TRUE(u.disk.all(0, kBlocks, 0));
  EXPECT_EQ(u.disk.unmapped_blocks, kBlocks);  // thin: deallocated
  Unit fat(false, BlockCapabilities{});
  fat.disk.fill(0, kBlocks, 0xCD);
  expect_good(fat.ini.run({0x04, 0, 0, 0, 0, 0}));
  EXPECT_TRUE(fat.disk.all(0, kBlocks, 0));
  EXPECT_EQ(fat.disk.unmapped_blocks, 0u);
}

TEST(FormatUnit, ParameterListHeader) {
  Unit u;
  u.disk.fill(0, kBlocks, 0xCD);
  // FMTDATA, short header, FOV = 0, no defects: fine.
  expect_good(u.ini.run({0x04, 0x10, 0, 0, 0, 0}, Bytes{0, 0, 0, 0}));
  EXPECT_TRUE(u.disk.all(0, kBlocks, 0));
  // Long header with IMMED.
  expect_good(u.ini.run({0x04, 0x30, 0, 0, 0, 0}, Bytes{0, 0x02, 0, 0, 0, 0, 0, 0}));
  // Errors.
  expect_check(u.ini.run({0x04, 0x40, 0, 0, 0, 0}), scsi::kInvalidFieldInCdb,
               FieldPointer{true, 1, 7});
  expect_check(u.ini.run({0x04, 0x02, 0, 0, 0, 0}), scsi::kInvalidFieldInCdb,
               FieldPointer{true, 1, 2});
  expect_check(u.ini.run({0x04, 0x10, 0, 0, 0, 0}, Bytes{0, 0, 0, 8}),
               scsi::kInvalidFieldInParameterList, FieldPointer{false, 2, kNoBit});
  expect_check(u.ini.run({0x04, 0x30, 0, 0, 0, 0}, Bytes{0, 0, 0, 0, 0, 0, 0, 8}),
               scsi::kInvalidFieldInParameterList, FieldPointer{false, 4, kNoBit});
  expect_check(u.ini.run({0x04, 0x10, 0, 0, 0, 0}, Bytes{0, 0x88, 0, 0}),
               scsi::kInvalidFieldInParameterList, FieldPointer{false, 1, 3});
  expect_check(u.ini.run({0x04, 0x10, 0, 0, 0, 0}, Bytes{0, 0x40, 0, 0}),
               scsi::kInvalidFieldInParameterList, FieldPointer{false, 1, 6});
  expect_check(u.ini.run({0x04, 0x10, 0, 0, 0, 0}, Bytes{0x01, 0, 0, 0}),
               scsi::kInvalidFieldInParameterList, FieldPointer{false, 0, 2});
}

Bytes sanitize(uint8_t sa, uint16_t len) {
  Bytes c(10, 0);
  c[0] = 0x48;
  c[1] = sa;
  put16(c, 7, len);
  return c;
}

TEST(Sanitize, OverwriteWithInvertedPasses) {
  Unit u(true, RamDisk::thin_caps(), 16);
  // Two passes with INVERT: the last pass writes the complement.
  Bytes p = {0x80 | 0x02, 0, 0, 2, 0x12, 0x34};
  expect_good(u.ini.run_wait(sanitize(0x01, 6), p));
  for (uint64_t lba = 0; lba < 16; ++lba) {
    for (size_t i = 0; i < kBs; ++i) {
      ASSERT_EQ(u.disk.block(lba)[i], static_cast<uint8_t>(~(i % 2 ? 0x34 : 0x12)));
    }
  }
  EXPECT_EQ(u.disk.submitted[BlockOp::kWrite], 2);  // one 16-block write per pass
  EXPECT_EQ(u.disk.submitted[BlockOp::kFlush], 1);  // durable once, at the end
}

TEST(Sanitize, BlockEraseCryptoEraseExitFailureMode) {
  Unit u;
  u.disk.fill(0, kBlocks, 0xEE);
  expect_good(u.ini.run_wait(sanitize(0x02, 0)));
  EXPECT_TRUE(u.disk.all(0, kBlocks, 0));
  u.disk.fill(0, kBlocks, 0xEE);
  expect_good(u.ini.run_wait(sanitize(0x03, 0)));
  EXPECT_TRUE(u.disk.all(0, kBlocks, 0));
  expect_good(u.ini.run(sanitize(0x1F, 0)));
  expect_good(u.ini.run(sanitize(0x80 | 0x20 | 0x02, 0)));  // IMMED, AUSE: GOOD at once
}

// Runs the held requests of `u`'s disk until TEST UNIT READY is GOOD (the
// sanitize in the background has ended). Bounded: fails after 100000 rounds.
template <typename U>
void finish_sanitize(U& u) {
  u.disk.hold = false;
  for (int i = 0; i < 100000; ++i) {
    u.disk.pump();
    Result r = u.ini.run({0x00, 0, 0, 0, 0, 0});
    if (r.status == status::kGood) return;
    ASSERT_EQ(r.code(), scsi::kNotReadySanitizeInProgress);
    std::this_thread::yield();
  }
  FAIL() << "the sanitize never ended";
}

// SBC-4 4.11.2 / SPC-4 4.5.2.4.3: while the operation runs, commands get NOT
// READY / SANITIZE IN PROGRESS with a progress indication; INQUIRY and
// REQUEST SENSE are processed; a LUN reset does not stop it (libiscsi
// Sanitize.Reset). IMMED = 1 completed GOOD before any block was written.
TEST(Sanitize, ImmediateRunsInTheBackground) {
  Unit u(true, RamDisk::thin_caps(), 16);
  u.disk.fill(0, 16, 0xEE);
  u.disk.hold = true;
  expect_good(u.ini.run(sanitize(0x80 | 0x01, 5), Bytes{0x01, 0, 0, 1, 0xA5}));
  EXPECT_TRUE(u.disk.all(0, 16, 0xEE));

  Result r = u.ini.run({0x00, 0, 0, 0, 0, 0});
  expect_check(r, scsi::kNotReadySanitizeInProgress);
  EXPECT_TRUE(r.parsed().progress.has_value());
  expect_check(u.ini.run({0x28, 0, 0, 0, 0, 0, 0, 0, 1, 0}, {}, kBs),
               scsi::kNotReadySanitizeInProgress);
  expect_check(u.ini.run({0x1B, 0, 0, 0, 0x01, 0}), scsi::kNotReadySanitizeInProgress);
  expect_check(u.ini.run(sanitize(0x02, 0)), scsi::kNotReadySanitizeInProgress);
  expect_good(u.ini.run({0x12, 0, 0, 0, 96, 0}, {}, 96));
  r = u.ini.run({0x03, 0, 0, 0, 18, 0}, {}, 18);
  expect_good(r);
  const scsi::ParsedSense rs = scsi::parse_sense(std::span(r.data).first(r.transferred));
  EXPECT_EQ(rs.code, scsi::kNotReadySanitizeInProgress);
  EXPECT_TRUE(rs.progress.has_value());

  TaskManagementRequest tmf;
  tmf.function = SCSTU_TMF_LUN_RESET;
  tmf.session = &u.ini.session();
  EXPECT_EQ(u.lu.task_management(tmf), SCSTU_TMF_COMPLETE);
  expect_check(u.ini.run({0x00, 0, 0, 0, 0, 0}), scsi::kUaBusDeviceResetFunctionOccurred);
  expect_check(u.ini.run({0x00, 0, 0, 0, 0, 0}), scsi::kNotReadySanitizeInProgress);

  finish_sanitize(u);
  EXPECT_TRUE(u.disk.all(0, 16, 0xA5));
  EXPECT_EQ(u.disk.submitted[BlockOp::kFlush], 1);
}

// IMMED = 0: the command waits for the operation; ABORT TASK lets the
// command go at once, and the operation goes on to the end.
TEST(Sanitize, AbortedCommandLeavesTheOperationRunning) {
  Unit u(true, RamDisk::thin_caps(), 16);
  u.disk.fill(0, 16, 0xEE);
  u.disk.hold = true;
  const uint32_t token = u.ini.start(sanitize(0x01, 5), Bytes{0x01, 0, 0, 1, 0x5A});
  EXPECT_FALSE(u.ini.done(token));
  TaskManagementRequest tmf;
  tmf.function = SCSTU_TMF_ABORT_TASK;
  tmf.session = &u.ini.session();
  tmf.ref_tag = token;
  EXPECT_EQ(u.lu.task_management(tmf), SCSTU_TMF_COMPLETE);
  EXPECT_TRUE(u.ini.done(token));
  EXPECT_NE(u.ini.result(token).status, status::kGood);
  expect_check(u.ini.run({0x00, 0, 0, 0, 0, 0}), scsi::kNotReadySanitizeInProgress);
  finish_sanitize(u);
  EXPECT_TRUE(u.disk.all(0, 16, 0x5A));
}

// SBC-4 4.11.4 sanitize failure mode: medium access fails 31/03 until a
// sanitize succeeds, or, when the failed one had AUSE = 1, EXIT FAILURE MODE.
TEST(Sanitize, FailureModeAndExit) {
  Unit u(true, RamDisk::thin_caps(), 16);
  const Bytes read10 = {0x28, 0, 0, 0, 0, 0, 0, 0, 1, 0};
  u.disk.fail_with = -EIO;
  expect_check(u.ini.run_wait(sanitize(0x01, 5), Bytes{0x01, 0, 0, 1, 0x11}),
               scsi::kSanitizeCommandFailed);
  u.disk.fail_with = 0;
  expect_check(u.ini.run(read10, {}, kBs), scsi::kSanitizeCommandFailed);
  expect_good(u.ini.run({0x12, 0, 0, 0, 96, 0}, {}, 96));
  // AUSE = 0: neither EXIT FAILURE MODE nor an unrestricted sanitize.
  expect_check(u.ini.run(sanitize(0x1F, 0)), scsi::kInvalidFieldInCdb);
  expect_check(u.ini.run(sanitize(0x20 | 0x02, 0)), scsi::kInvalidFieldInCdb);
  expect_check(u.ini.run(read10, {}, kBs), scsi::kSanitizeCommandFailed);
  expect_good(u.ini.run_wait(sanitize(0x02, 0)));
  expect_good(u.ini.run(read10, {}, kBs));

  u.disk.fail_with = -EIO;
  expect_check(u.ini.run_wait(sanitize(0x20 | 0x01, 5), Bytes{0x01, 0, 0, 1, 0x11}),
               scsi::kSanitizeCommandFailed);
  u.disk.fail_with = 0;
  expect_good(u.ini.run(sanitize(0x1F, 0)));
  expect_good(u.ini.run(read10, {}, kBs));
}

// SPC-4 6.35: the CDB usage data of SANITIZE names the fields it uses:
// IMMED and AUSE (not ZNR, for zoned devices only).
TEST(Sanitize, ReportSupportedOpcodesUsageData) {
  Unit u;
  Bytes c(12, 0);
  c[0] = 0xA3;
  c[1] = 0x0C;
  c[2] = 0x02;  // one command, with service action
  c[3] = 0x48;
  c[5] = 0x01;
  put32(c, 6, 64);
  Result r = u.ini.run(c, {}, 64);
  expect_good(r);
  EXPECT_EQ(r.data[1] & 0x07, 3);  // supported as the standard says
  EXPECT_EQ(r.data[3], 10);        // CDB size
  EXPECT_EQ(r.data[4], 0x48);
  // IMMED (7), AUSE (5), and the service action field holding the service
  // action reported (SPC-4 6.35.3); bit 6 (ZNR) is not used.
  EXPECT_EQ(r.data[5], 0xA1);
  EXPECT_EQ(r.data[4 + 7], 0xFF);  // PARAMETER LIST LENGTH
  EXPECT_EQ(r.data[4 + 9], 0x00);  // CONTROL: no NACA, no LINK
}

// SBC-4 table 80: byte 1 bit 6 and bytes 2-6 are reserved (libiscsi
// Sanitize.*Reserved).
TEST(Sanitize, ReservedFieldsAreInvalid) {
  Unit u;
  u.disk.fill(0, kBlocks, 0xEE);
  for (uint8_t sa : {0x01, 0x02, 0x03}) {
    Bytes c = sanitize(sa | 0x40, 0);
    expect_check(u.ini.run(c), scsi::kInvalidFieldInCdb, FieldPointer{true, 1, 6});
    for (uint8_t i = 2; i <= 6; ++i) {
      c = sanitize(sa, 0);
      c[i] = i;
      Result r = u.ini.run(c);
      expect_check(r, scsi::kInvalidFieldInCdb);
      ASSERT_TRUE(r.parsed().field.has_value());
      EXPECT_EQ(r.parsed().field->field, i);
    }
  }
  EXPECT_TRUE(u.disk.all(0, kBlocks, 0xEE));
}

TEST(Sanitize, Errors) {
  Unit u;
  u.disk.fill(0, kBlocks, 0xEE);
  expect_check(u.ini.run(sanitize(0x02, 4), Bytes(4, 0)), scsi::kInvalidFieldInCdb,
               FieldPointer{true, 7, kNoBit});
  expect_check(u.ini.run(sanitize(0x1F, 4), Bytes(4, 0)), scsi::kInvalidFieldInCdb,
               FieldPointer{true, 7, kNoBit});
  // OVERWRITE: PARAMETER LIST LENGTH outside 5..block length + 4.
  for (uint16_t len = 0; len < 5; ++len) {
    expect_check(u.ini.run(sanitize(0x01, len), Bytes(len, 1)), scsi::kInvalidFieldInCdb,
                 FieldPointer{true, 7, kNoBit});
  }
  expect_check(u.ini.run(sanitize(0x01, kBs + 5), Bytes(kBs + 5, 1)), scsi::kInvalidFieldInCdb,
               FieldPointer{true, 7, kNoBit});
  expect_check(u.ini.run(sanitize(0x01, 6), Bytes{0x00, 0, 0, 2, 1, 2}),
               scsi::kInvalidFieldInParameterList, FieldPointer{false, 0, 4});
  expect_check(u.ini.run(sanitize(0x01, 6), Bytes{0x21, 0, 0, 2, 1, 2}),
               scsi::kInvalidFieldInParameterList, FieldPointer{false, 0, 6});
  expect_check(u.ini.run(sanitize(0x01, 6), Bytes{0x01, 0, 0, 0, 1, 2}),
               scsi::kInvalidFieldInParameterList, FieldPointer{false, 2, kNoBit});
  expect_check(u.ini.run(sanitize(0x01, 8), Bytes{0x01, 0, 0, 2, 1, 2, 3, 4}),
               scsi::kInvalidFieldInParameterList, FieldPointer{false, 2, kNoBit});
  Bytes big(4 + kBs, 0);
  big[0] = 1;
  put16(big, 2, kBs + 4);  // longer than a block
  expect_check(u.ini.run(sanitize(0x01, static_cast<uint16_t>(big.size())), big),
               scsi::kInvalidFieldInParameterList, FieldPointer{false, 2, kNoBit});
  EXPECT_TRUE(u.disk.all(0, kBlocks, 0xEE));
}

// ---- PRE-FETCH, READ DEFECT DATA ----------------------------------------------------

TEST(PreFetch, ConditionMetWithinRange) {
  Unit u;
  Result r = u.ini.run(cdb10(0x34, 0, 10, 20));
  ASSERT_TRUE(r.done);
  EXPECT_EQ(r.status, status::kConditionMet);
  r = u.ini.run(cdb16(0x90, 0x02, 0, 0));
  EXPECT_EQ(r.status, status::kConditionMet);
  expect_check(u.ini.run(cdb10(0x34, 0, kBlocks - 1, 2)), scsi::kLbaOutOfRange);
  expect_check(u.ini.run(cdb16(0x90, 0, kBlocks + 1, 0)), scsi::kLbaOutOfRange);
}

TEST(ReadDefectData, EmptyListsWithCorrectHeaders) {
  Unit u;
  Result r = u.ini.run({0x37, 0, 0x18 | 0x05, 0, 0, 0, 0, 0, 64, 0}, {}, 64);
  expect_good(r);
  EXPECT_EQ(r.transferred, 4u);
  EXPECT_EQ(Bytes(r.data.begin(), r.data.begin() + 4), (Bytes{0, 0x1D, 0, 0}));
  r = u.ini.run({0xB7, 0x08 | 0x03, 0, 0, 0, 0, 0, 0, 0, 64, 0, 0}, {}, 64);
  expect_good(r);
  EXPECT_EQ(r.transferred, 8u);
  EXPECT_EQ(Bytes(r.data.begin(), r.data.begin() + 8), (Bytes{0, 0x0B, 0, 0, 0, 0, 0, 0}));
  expect_check(u.ini.run({0x37, 0, 0x01, 0, 0, 0, 0, 0, 64, 0}, {}, 64), scsi::kInvalidFieldInCdb,
               FieldPointer{true, 2, 2});
  expect_check(u.ini.run({0xB7, 0x07, 0, 0, 0, 0, 0, 0, 0, 64, 0, 0}, {}, 64),
               scsi::kInvalidFieldInCdb, FieldPointer{true, 1, 2});
}

// ---- VERIFY, SYNCHRONIZE CACHE --------------------------------------------------

// SBC-3 5.27: BYTCHK = 0 verifies the medium: the blocks are read, and a
// read error is the verification's MEDIUM ERROR (INFORMATION: the LBA).
TEST(Verify, WithoutByteCheckReadsTheMedium) {
  Unit u;
  expect_good(u.ini.run(cdb10(0x2F, 0, 8, 16)));
  EXPECT_EQ(u.disk.submitted[BlockOp::kRead], 1);
  u.disk.fail_with = -EIO;
  Result r = u.ini.run(cdb10(0x2F, 0, 8, 16));
  expect_check(r, scsi::kUnrecoveredReadError);
  EXPECT_EQ(r.parsed().information, 8u);
  u.disk.fail_with = 0;
  expect_check(u.ini.run(cdb10(0x2F, 0, kBlocks - 1, 2)), scsi::kLbaOutOfRange);
}

// SBC-3 5.22: IMMED = 1 returns GOOD once the CDB is validated and flushes
// in the background; IMMED = 0 returns after the flush. A failed background
// flush is a deferred error (SPC-4 4.5.1, response code 71h) for the next
// command of the nexus.
TEST(SynchronizeCache, ImmediateFlushesInTheBackground) {
  Unit u;
  u.disk.hold = true;
  expect_good(u.ini.run(cdb10(0x35, 0x02, 0, 0)));
  EXPECT_EQ(u.disk.held(), 1u);
  EXPECT_TRUE(u.disk.pump());
  const uint32_t t = u.ini.start(cdb10(0x35, 0, 0, 0));
  EXPECT_FALSE(u.ini.done(t));
  EXPECT_TRUE(u.disk.pump());
  EXPECT_TRUE(u.ini.done(t));
  expect_good(u.ini.result(t));
  u.disk.hold = false;
  expect_check(u.ini.run(cdb10(0x35, 0x02, kBlocks, 1)), scsi::kLbaOutOfRange);

  u.disk.fail_with = -EIO;
  expect_good(u.ini.run(cdb10(0x35, 0x02, 0, 0)));
  u.disk.fail_with = 0;
  Result r = u.ini.run({0x00, 0, 0, 0, 0, 0});
  expect_check(r, scsi::kWriteError);
  EXPECT_TRUE(r.parsed().deferred);
  expect_good(u.ini.run({0x00, 0, 0, 0, 0, 0}));
}

}  // namespace
}  // namespace scstu::testing
