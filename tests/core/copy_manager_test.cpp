// The producer side's copy manager (core/copy_manager.h): EXTENDED COPY
// (LID1) and RECEIVE COPY RESULTS through a TargetCore whose LUNs are
// separate devices (LocalDevices over scsi::LogicalUnits over RAM disks, as
// two handler processes would be): within a unit, across units, every
// error, reservations of another initiator, task management, copy targets
// that answer BUSY / TASK SET FULL.
#include "core/copy_manager.h"

#include <gtest/gtest.h>

#include <chrono>
#include <thread>

#include "../sbc/sbc_harness.h"
#include "core/copy_job.h"
#include "core/local_device.h"
#include "core/lun.h"
#include "core/target_core.h"
#include "scsi/cdb.h"
#include "scsi/identity.h"
#include "scsi/xcopy.h"

namespace scstu::testing {
namespace {

using scsi::FieldPointer;
using scsi::kNoBit;
using scstu::DataDirection;

constexpr uint64_t kBlocks = 32768;
constexpr uint32_t kBs = 512;
constexpr const char* kTarget = "iqn.2026-11.org.scstu:xcopy";
constexpr const char* kIni = "iqn.2026-11.org.scstu:ini-a";
constexpr const char* kOther = "iqn.2026-11.org.scstu:ini-b";

// In front of a LogicalUnit: answers READ(16) / WRITE(16) with `refusal`
// (BUSY or TASK SET FULL, as a handler at its own queue limit would)
// `refusals` times before passing them on; refusals < 0: always.
class RefusingUnit : public LowLevelHandler {
 public:
  explicit RefusingUnit(std::shared_ptr<scsi::LogicalUnit> lu) : lu_(std::move(lu)) {}

  // Only commands whose LBA (16-byte CDBs) is at least `from_lba`.
  void refuse(int times, uint8_t status, uint8_t opcode, uint64_t from_lba = 0) {
    refusal_ = status;
    opcode_ = opcode;
    from_lba_ = from_lba;
    refused_.store(0);
    refusals_.store(times);
  }
  int refused() const { return refused_.load(); }  // since refuse()

  void command(CommandHandle cmd) override {
    const auto cdb = cmd.request().cdb;
    if (cdb[0] == opcode_ && cdb.size() >= 10 && scsi::get_be64(&cdb[2]) >= from_lba_ &&
        take_refusal()) {
      refused_.fetch_add(1);
      return std::move(cmd).complete_status(refusal_);
    }
    lu_->command(std::move(cmd));
  }
  scstu_tmf_response task_management(const TaskManagementRequest& req) override {
    return lu_->task_management(req);
  }
  void session_attached(const SessionInfo& s) override { lu_->session_attached(s); }
  void session_detached(const SessionInfo& s) override { lu_->session_detached(s); }
  bool reported_luns_changed(const SessionInfo& s) override {
    return lu_->reported_luns_changed(s);
  }
  void reported_luns_read(const SessionInfo& s) override { lu_->reported_luns_read(s); }
  bool descriptor_sense() const override { return lu_->descriptor_sense(); }

 private:
  bool take_refusal() {
    int n = refusals_.load();
    while (n != 0) {
      if (n < 0 || refusals_.compare_exchange_weak(n, n - 1)) return true;
    }
    return false;
  }

  std::shared_ptr<scsi::LogicalUnit> lu_;
  std::atomic<int> refusals_{0};
  std::atomic<int> refused_{0};
  uint8_t refusal_ = status::kBusy;
  uint8_t opcode_ = 0;
  uint64_t from_lba_ = 0;
};

// A disk as the core sees it: a device with its own buffers and handler.
struct Disk {
  Disk(const std::string& name, scsi::LogicalUnitConfig cfg = {}) : ram(kBlocks, kBs) {
    cfg.serial = name;
    lu = std::make_shared<scsi::LogicalUnit>(cfg, &ram);
    front = std::make_shared<RefusingUnit>(lu);
    core::LocalDeviceOptions o;
    o.info.name = name;
    o.info.block_size = kBs;
    device = std::make_shared<core::LocalDevice>(front, o);
  }
  RamDisk ram;
  std::shared_ptr<scsi::LogicalUnit> lu;
  std::shared_ptr<RefusingUnit> front;
  std::shared_ptr<core::LocalDevice> device;
};

// One command through the core, as a transport runs it.
struct Call {
  core::TargetCommand cmd;
  std::atomic<bool> done{false};
  Result result;
  Call(core::Session* s, uint64_t lun, const Bytes& cdb) {
    cmd.session = s;
    cmd.lun = core::encode_lun(lun);
    std::memcpy(cmd.cdb.data(), cdb.data(), cdb.size());
    cmd.cdb_len = static_cast<uint16_t>(cdb.size());
    cmd.done = [this](core::TargetCommand& c) {
      result.done = true;
      result.status = c.status;
      result.transferred = c.transferred;
      result.sense.assign(c.sense.begin(), c.sense.begin() + c.sense_len);
      result.data.clear();
      size_t left = c.transferred;
      for (const iovec& v : c.buffer) {
        const size_t n = std::min(left, v.iov_len);
        auto* p = static_cast<const uint8_t*>(v.iov_base);
        result.data.insert(result.data.end(), p, p + n);
        left -= n;
      }
      done.store(true);
    };
  }
};

// E4h identification CSCD descriptor naming `lu` by its NAA.
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

// COPY ABORTED carries a segment pointer (SPC-4 4.5.2.4.6): SD = 0, so the
// pointer counts from the start of the parameter list.
void segment_pointer(const Result& r, uint16_t field) {
  ASSERT_GE(r.sense.size(), 18u);
  EXPECT_EQ(r.sense[15], 0x80);
  EXPECT_EQ(r.sense[16] << 8 | r.sense[17], field);
}

// SPC-4 6.4.3: a copy target answered a READ (source) or WRITE with
// `target_status` and no sense data: COPY ABORTED, THIRD PARTY DEVICE
// FAILURE, that status byte at the SOURCE / DESTINATION SENSE DATA OFFSET.
void expect_copy_target_status(const Result& r, bool source, uint8_t target_status) {
  expect_check(r, scsi::SenseCode{0x0A, 0x0D, 0x01});
  ASSERT_EQ(r.sense.size(), 19u);
  EXPECT_EQ(r.sense[8], source ? 18 : 0);
  EXPECT_EQ(r.sense[9], source ? 0 : 18);
  EXPECT_EQ(r.sense[18], target_status);
}

class CopyManagerTest : public ::testing::Test {
 protected:
  // LUN 0 = a, LUN 1 = b for every initiator; `c` is registered, unmapped.
  void SetUp() override {
    core_ = std::make_unique<core::TargetCore>(options());
    for (Disk* d : {&a, &b, &c}) ASSERT_TRUE(core_->access().add_device(d->device));
    ASSERT_TRUE(core_->access().add_target(kTarget));
    ASSERT_TRUE(core_->access().add_lun("Default", 0, "xc-a", false));
    ASSERT_TRUE(core_->access().add_lun("Default", 1, "xc-b", false));
    ini_ = open(kIni);
  }
  void TearDown() override {
    for (auto& s : sessions_) core_->close_session(*s);
    EXPECT_EQ(core_->copies().running(), 0u);
    for (Disk* d : {&a, &b, &c}) EXPECT_EQ(d->device->outstanding(), 0u) << "a buffer was kept";
  }
  virtual core::TargetCoreOptions options() const { return {}; }
  core::Session* open(const char* initiator) {
    core::SessionParams p;
    p.target_name = kTarget;
    p.initiator_name = initiator;
    sessions_.push_back(core_->open_session(p));
    return sessions_.back().get();
  }

  // Starts a command; the Call completes now or later (held RAM disks).
  std::unique_ptr<Call> start(core::Session* s, uint64_t lun, const Bytes& cdb,
                              const Bytes& data_out = {}, uint32_t data_in = 0) {
    auto call = std::make_unique<Call>(s, lun, cdb);
    call->cmd.expected_length = data_out.empty() ? data_in : static_cast<uint32_t>(data_out.size());
    call->cmd.expected_direction = data_out.empty()
                                       ? (data_in ? DataDirection::kRead : DataDirection::kNone)
                                       : DataDirection::kWrite;
    if (core_->prepare(call->cmd)) {
      size_t at = 0;
      for (const iovec& v : call->cmd.buffer) {
        const size_t n = std::min(v.iov_len, data_out.size() - at);
        if (n != 0) std::memcpy(v.iov_base, data_out.data() + at, n);
        at += n;
      }
      core_->execute(call->cmd);
    }
    return call;
  }
  // Retries run on the copy manager's own thread: a bounded wait for the end.
  static bool wait_done(const Call& call) {
    const auto give_up = std::chrono::steady_clock::now() + std::chrono::seconds(60);
    while (!call.done.load() && std::chrono::steady_clock::now() < give_up) {
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
    return call.done.load();
  }
  Result finish(std::unique_ptr<Call> call) {
    EXPECT_TRUE(call->done.load()) << "command did not complete";
    core_->release(call->cmd);
    return call->result;
  }
  Result run(core::Session* s, uint64_t lun, const Bytes& cdb, const Bytes& data_out = {},
             uint32_t data_in = 0) {
    return finish(start(s, lun, cdb, data_out, data_in));
  }
  Result xcopy(const Bytes& p, uint64_t lun = 0) {
    return run(ini_, lun, xcopy_cdb(static_cast<uint32_t>(p.size())), p);
  }
  Result rcr(uint8_t sa, uint8_t list_id, uint32_t alloc, core::Session* s = nullptr) {
    return run(s ? s : ini_, 0, rcr_cdb(sa, list_id, alloc), {}, alloc);
  }
  // A command of the initiator's own, after its first unit attention.
  Result run_past_ua(core::Session* s, uint64_t lun, const Bytes& cdb, uint32_t data_in = 0) {
    Result r = run(s, lun, cdb, {}, data_in);
    if (r.status == status::kCheckCondition && (r.sense[2] & 0x0F) == 0x06) {
      r = run(s, lun, cdb, {}, data_in);
    }
    return r;
  }

  Disk a{"xc-a"}, b{"xc-b"}, c{"xc-c"};
  std::unique_ptr<core::TargetCore> core_;
  std::vector<std::shared_ptr<core::Session>> sessions_;
  core::Session* ini_ = nullptr;
};

TEST_F(CopyManagerTest, WithinOneUnit) {
  pattern(a.ram, 0, 3000, 3);
  // 3000 blocks: several chunks of CopyManager::kChunkBytes.
  expect_good(xcopy(parameter_list(1, 0, {target(*a.lu)}, {segment(0, 0, 3000, 0, 5000)})));
  EXPECT_TRUE(same(a.ram, 0, a.ram, 5000, 3000));
  // RECEIVE COPY RESULTS, COPY STATUS: byte for byte.
  Result r = rcr(0x00, 1, 64);
  expect_good(r);
  EXPECT_EQ(r.transferred, 12u);
  Bytes want = {0, 0, 0, 8, 0x01, 0, 1, 0x00, 0, 0, 0, 0};
  put32(want, 8, 3000 * kBs);
  EXPECT_EQ(r.data, want);
  // FAILED SEGMENT DETAILS of a good copy: nothing to report.
  r = rcr(0x04, 1, 64);
  expect_good(r);
  EXPECT_EQ(Bytes(r.data.begin(), r.data.begin() + 4), (Bytes{0, 0, 0, 0}));
}

TEST_F(CopyManagerTest, OverlappingRangesInOneUnitCopyLikeMemmove) {
  pattern(a.ram, 0, 4096, 9);
  Bytes before(a.ram.block(100), a.ram.block(100) + 3000 * kBs);
  expect_good(xcopy(parameter_list(2, 0, {target(*a.lu)}, {segment(0, 0, 3000, 100, 600)})));
  EXPECT_EQ(std::memcmp(a.ram.block(600), before.data(), before.size()), 0);
}

TEST_F(CopyManagerTest, AcrossUnitsOfTheTarget) {
  pattern(a.ram, 10, 300, 5);
  Bytes p = parameter_list(3, 0, {target(*a.lu), target(*b.lu)},
                           {segment(0, 1, 300, 10, 1000), segment(1, 0, 300, 1000, 2000)});
  // Sent to LUN 1 (b): CSCDs are found among all the session's LUNs, and
  // LUN 1's POWER ON unit attention does not stop the copy.
  expect_good(xcopy(p, 1));
  EXPECT_TRUE(same(a.ram, 10, b.ram, 1000, 300));
  EXPECT_TRUE(same(a.ram, 10, a.ram, 2000, 300));
  Result r = run(ini_, 1, rcr_cdb(0x00, 3, 12), {}, 12);
  expect_good(r);
  EXPECT_EQ(r.data[4], 0x01);
  EXPECT_EQ(r.data[6], 2);  // segments processed
  // A device of the target the session's group does not map: not reachable.
  p = parameter_list(4, 0, {target(*a.lu), target(*c.lu)}, {segment(0, 1, 1, 0, 0)});
  Result x = xcopy(p);
  expect_check(x, scsi::kCopyTargetDeviceNotReachable);
  segment_pointer(x, 48);  // the CSCD descriptor
}

TEST_F(CopyManagerTest, ZeroLengthAndHeaderErrors) {
  expect_good(run(ini_, 0, xcopy_cdb(0)));
  Bytes p = parameter_list(1, 0, {target(*a.lu)}, {segment(0, 0, 8, 0, 100)});
  // Truncated target descriptor / segment descriptor / header.
  expect_check(run(ini_, 0, xcopy_cdb(16 + 31), Bytes(p.begin(), p.begin() + 47)),
               scsi::kParameterListLengthError);
  expect_check(
      run(ini_, 0, xcopy_cdb(static_cast<uint32_t>(p.size() - 1)), Bytes(p.begin(), p.end() - 1)),
      scsi::kParameterListLengthError);
  expect_check(run(ini_, 0, xcopy_cdb(8), Bytes(8, 0)), scsi::kParameterListLengthError);
  // LIST ID USAGE 01b is reserved.
  Bytes bad = p;
  bad[1] = 0x08;
  expect_check(xcopy(bad), scsi::kInvalidFieldInParameterList, FieldPointer{false, 1, 4});
  // Inline data is not supported.
  bad = p;
  put32(bad, 12, 4);
  bad.resize(bad.size() + 4);
  expect_check(xcopy(bad), scsi::kInvalidFieldInParameterList, FieldPointer{false, 12, kNoBit});
  // Target list not a multiple of 32.
  bad = parameter_list(1, 0, {Bytes(31, 0)}, {});
  expect_check(xcopy(bad), scsi::kInvalidFieldInParameterList, FieldPointer{false, 2, kNoBit});
}

TEST_F(CopyManagerTest, DescriptorLimitsAsOperatingParametersSay) {
  Result op = rcr(0x03, 0, 256);
  expect_good(op);
  const uint16_t max_targets = static_cast<uint16_t>(op.data[8] << 8 | op.data[9]);
  const uint16_t max_segments = static_cast<uint16_t>(op.data[10] << 8 | op.data[11]);
  const uint32_t max_list =
      static_cast<uint32_t>(op.data[12] << 24 | op.data[13] << 16 | op.data[14] << 8 | op.data[15]);
  std::vector<Bytes> t(max_targets + 1, target(*a.lu));
  expect_check(xcopy(parameter_list(1, 0, t, {segment(0, 0, 1, 0, 1)})),
               scsi::kTooManyTargetDescriptors);
  std::vector<Bytes> s(max_segments + 1, segment(0, 0, 1, 0, 1));
  expect_check(xcopy(parameter_list(1, 0, {target(*a.lu)}, s)), scsi::kTooManySegmentDescriptors);
  // Longer than MAXIMUM DESCRIPTOR LIST LENGTH: a length error first.
  std::vector<Bytes> many(max_list / 28 + 1, segment(0, 0, 1, 0, 1));
  expect_check(xcopy(parameter_list(1, 0, t, many)), scsi::kParameterListLengthError);
}

TEST_F(CopyManagerTest, UnsupportedDescriptorTypes) {
  Bytes t = target(*a.lu);
  t[0] = 0xE0;  // Fibre Channel N_Port_Name
  expect_check(xcopy(parameter_list(1, 0, {t}, {segment(0, 0, 1, 0, 1)})),
               scsi::kUnsupportedTargetDescriptorType, FieldPointer{false, 16, kNoBit});
  t = target(*a.lu);
  t[1] = 0x01;  // a tape
  expect_check(xcopy(parameter_list(1, 0, {t}, {segment(0, 0, 1, 0, 1)})),
               scsi::kUnsupportedTargetDescriptorType, FieldPointer{false, 17, 4});
  Bytes s = segment(0, 0, 1, 0, 1);
  s[0] = 0x00;  // block to stream
  expect_check(xcopy(parameter_list(1, 0, {target(*a.lu)}, {s})),
               scsi::kUnsupportedSegmentDescriptorType, FieldPointer{false, 48, kNoBit});
  s = segment(0, 0, 1, 0, 1);
  put16(s, 2, 20);  // wrong length for 02h
  expect_check(xcopy(parameter_list(1, 0, {target(*a.lu)}, {s})),
               scsi::kInvalidFieldInParameterList, FieldPointer{false, 50, kNoBit});
  // LU ID TYPE is ignored (SPC-4): still copies.
  t = target(*a.lu);
  t[1] = 0xC0;
  expect_good(xcopy(parameter_list(1, 0, {t}, {segment(0, 0, 1, 0, 1)})));
  // A designator nobody has.
  t = target(*a.lu);
  t[8] ^= 0xFF;
  expect_check(xcopy(parameter_list(1, 0, {t}, {segment(0, 0, 1, 0, 1)})),
               scsi::kCopyTargetDeviceNotReachable);
}

TEST_F(CopyManagerTest, SegmentErrorsAbortTheCopy) {
  pattern(a.ram, 0, 16, 1);
  // Destination index beyond the target list.
  Result r = xcopy(parameter_list(7, 0, {target(*a.lu)}, {segment(0, 1, 8, 0, 100)}));
  expect_check(r, scsi::SenseCode{0x0A, 0x08, 0x04});  // UNREACHABLE COPY TARGET
  segment_pointer(r, 54);
  // Beyond the end of the destination: COPY ABORTED, 00/00, the LBA in
  // INFORMATION (fixed format bytes 3-6, VALID set).
  r = xcopy(parameter_list(8, 0, {target(*a.lu)}, {segment(0, 0, 2048, 0, kBlocks - 1)}));
  expect_check(r, scsi::SenseCode{0x0A, 0x00, 0x00});
  ASSERT_GE(r.sense.size(), 18u);
  EXPECT_EQ(r.sense[0], 0xF0);
  EXPECT_EQ((Bytes{r.sense[3], r.sense[4], r.sense[5], r.sense[6]}),
            (Bytes{0, 0, (kBlocks - 1) >> 8, (kBlocks - 1) & 0xFF}));
  // Block length that is not the unit's.
  r = xcopy(parameter_list(9, 0, {target(*a.lu, 4096)}, {segment(0, 0, 1, 0, 1)}));
  expect_check(r, scsi::SenseCode{0x0A, 0x26, 0x00});
  segment_pointer(r, 45);
  // A device error: COPY ABORTED, the source's status and sense at the
  // SOURCE SENSE DATA OFFSET, and FAILED SEGMENT DETAILS has it all.
  a.ram.fail_with = -EIO;
  r = xcopy(
      parameter_list(10, 0, {target(*a.lu)}, {segment(0, 0, 0, 0, 100), segment(0, 0, 4, 0, 100)}));
  a.ram.fail_with = 0;
  expect_check(r, scsi::SenseCode{0x0A, 0x11, 0x00});
  ASSERT_GT(r.sense.size(), 19u);
  EXPECT_EQ(r.sense[8], 18);  // SOURCE SENSE DATA OFFSET
  EXPECT_EQ(r.sense[9], 0);
  EXPECT_EQ(r.sense[10] << 8 | r.sense[11], 1);  // segment 1
  EXPECT_EQ(r.sense[18], status::kCheckCondition);
  EXPECT_EQ(r.sense[19] & 0x7F, 0x70);  // the copy target's own sense
  EXPECT_EQ(r.sense[7] + 8u, r.sense.size());
  Result st = rcr(0x00, 10, 12);
  expect_good(st);
  EXPECT_EQ(st.data[4], 0x02);  // completed with errors
  EXPECT_EQ(st.data[6], 1);     // the empty first segment was processed
  Result fd = rcr(0x04, 10, 200);
  expect_good(fd);
  const uint16_t sense_len = static_cast<uint16_t>(fd.data[58] << 8 | fd.data[59]);
  ASSERT_EQ(sense_len, r.sense.size());
  EXPECT_EQ(fd.data[56], status::kCheckCondition);
  EXPECT_EQ(Bytes(fd.data.begin() + 60, fd.data.end()), r.sense);
  EXPECT_EQ(fd.transferred, 60u + sense_len);
}

TEST_F(CopyManagerTest, WriteProtectedDestination) {
  // Software write protect of the unit (the handler says DATA PROTECT) ...
  scsi::LogicalUnitConfig cfg;
  cfg.read_only = true;
  Disk ro("xc-ro", cfg);
  ASSERT_TRUE(core_->access().add_device(ro.device));
  ASSERT_TRUE(core_->access().add_lun("Default", 2, "xc-ro", false));
  // ... and a READ_ONLY mapping (the core refuses the WRITE itself).
  ASSERT_TRUE(core_->access().add_lun("Default", 3, "xc-c", true));
  expect_good(run(ini_, 0, {0xA0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0}, {}, 256));  // REPORT LUNS
  pattern(a.ram, 0, 4, 2);
  for (Disk* d : {&ro, &c}) {
    expect_check(
        xcopy(parameter_list(11, 0, {target(*a.lu), target(*d->lu)}, {segment(0, 1, 4, 0, 0)})),
        scsi::SenseCode{0x0A, 0x27, 0x00});
    EXPECT_TRUE(d->ram.all(0, 4, 0)) << "nothing written";
  }
  for (auto& s : sessions_) core_->close_session(*s);
  sessions_.clear();
  ASSERT_TRUE(core_->access().remove_lun("Default", 3));
  ASSERT_TRUE(core_->access().remove_lun("Default", 2));
  ASSERT_TRUE(core_->access().remove_device("xc-ro"));  // `ro` goes before the core
}

// SPC-4 5.17.4 / 6.4.3: the destination is reserved by another initiator:
// its WRITE(16) gets RESERVATION CONFLICT, the copy ends COPY ABORTED with
// that status at the DESTINATION SENSE DATA OFFSET, nothing is written.
TEST_F(CopyManagerTest, DestinationReservedByAnotherInitiator) {
  core::Session* other = open(kOther);
  expect_good(run_past_ua(other, 1, {0x16, 0, 0, 0, 0, 0}));  // RESERVE(6) of LUN 1
  pattern(a.ram, 0, 8, 4);
  Result r = xcopy(parameter_list(12, 0, {target(*a.lu), target(*b.lu)}, {segment(0, 1, 8, 0, 0)}));
  expect_copy_target_status(r, false, status::kReservationConflict);
  EXPECT_TRUE(b.ram.all(0, 8, 0));
  // Reading from the reserved unit is refused the same way (SPC-2 RESERVE
  // blocks reads too); once released the copy goes through.
  r = xcopy(parameter_list(13, 0, {target(*a.lu), target(*b.lu)}, {segment(1, 0, 8, 0, 100)}));
  expect_check(r, scsi::SenseCode{0x0A, 0x0D, 0x01});
  EXPECT_EQ(r.sense[8], 18);
  expect_good(run(other, 1, {0x17, 0, 0, 0, 0, 0}));  // RELEASE(6)
  expect_good(
      xcopy(parameter_list(14, 0, {target(*a.lu), target(*b.lu)}, {segment(0, 1, 8, 0, 0)})));
  EXPECT_TRUE(same(a.ram, 0, b.ram, 0, 8));
}

TEST_F(CopyManagerTest, OperatingParametersBytes) {
  Result r = rcr(0x03, 0, 256);
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
  EXPECT_EQ(r.data, want);
  // Truncated to the allocation length.
  r = rcr(0x03, 0, 10);
  expect_good(r);
  EXPECT_EQ(r.transferred, 10u);
}

TEST_F(CopyManagerTest, UnknownListAndServiceAction) {
  expect_check(rcr(0x00, 5, 64), scsi::kInvalidFieldInCdb, FieldPointer{true, 2, kNoBit});
  expect_check(rcr(0x04, 5, 64), scsi::kInvalidFieldInCdb, FieldPointer{true, 2, kNoBit});
  // RECEIVE DATA: no held data, not implemented (the device answers it).
  expect_check(run_past_ua(ini_, 0, rcr_cdb(0x01, 5, 64), 64), scsi::kInvalidCommandOperationCode);
  // LIST ID USAGE 10b / 11b: nothing is held.
  expect_good(xcopy(parameter_list(6, 2, {target(*a.lu)}, {segment(0, 0, 1, 0, 1)})));
  expect_check(rcr(0x00, 6, 64), scsi::kInvalidFieldInCdb);
  // Results are per I_T nexus.
  expect_good(xcopy(parameter_list(6, 0, {target(*a.lu)}, {segment(0, 0, 1, 0, 1)})));
  core::Session* other = open(kOther);
  expect_check(rcr(0x00, 6, 64, other), scsi::kInvalidFieldInCdb);
  expect_good(rcr(0x00, 6, 64));
}

TEST_F(CopyManagerTest, ListIdInUseByARunningCopy) {
  pattern(a.ram, 0, 8, 6);
  a.ram.hold = true;
  Bytes p = parameter_list(4, 0, {target(*a.lu)}, {segment(0, 0, 8, 0, 100)});
  auto first = start(ini_, 0, xcopy_cdb(static_cast<uint32_t>(p.size())), p);
  EXPECT_FALSE(first->done.load());
  expect_check(xcopy(p), scsi::SenseCode{0x05, 0x00, 0x16});
  Result st = rcr(0x00, 4, 12);
  expect_good(st);
  EXPECT_EQ(st.data[4], 0x00);  // in progress
  a.ram.hold = false;
  while (a.ram.pump()) {
  }
  expect_good(finish(std::move(first)));
  EXPECT_TRUE(same(a.ram, 0, a.ram, 100, 8));
}

// Task management of a running copy (ABORT TASK of it, LUN RESET of its
// LUN from another initiator, TARGET RESET): it stops after the chunks in
// flight, ends not GOOD (TASK ABORTED), and the TMF is answered only then.
struct TmfCase {
  const char* name;
  scstu_tmf_function function;
  bool from_other_initiator;
  bool two_units;     // a -> b, else a -> a at LBA 6100
  uint64_t copy_lun;  // the LUN the EXTENDED COPY is sent to
};

class CopyTmfTest : public CopyManagerTest, public ::testing::WithParamInterface<TmfCase> {};

TEST_P(CopyTmfTest, StopsTheCopy) {
  const TmfCase& tc = GetParam();
  pattern(a.ram, 0, 6000, 8);
  a.ram.hold = true;
  const Bytes p =
      tc.two_units
          ? parameter_list(5, 0, {target(*a.lu), target(*b.lu)}, {segment(0, 1, 6000, 0, 0)})
          : parameter_list(5, 0, {target(*a.lu)}, {segment(0, 0, 6000, 0, 6100)});
  auto copy = start(ini_, tc.copy_lun, xcopy_cdb(static_cast<uint32_t>(p.size())), p);
  ASSERT_FALSE(copy->done.load());
  // 6000 blocks: three chunks, all READ at once.
  EXPECT_EQ(a.ram.held(), 3u);
  core::TargetTmf tmf;
  tmf.function = tc.function;
  tmf.session = tc.from_other_initiator ? open(kOther) : ini_;
  tmf.lun = core::encode_lun(0);
  if (tc.function == SCSTU_TMF_ABORT_TASK) tmf.ref = &copy->cmd;
  std::atomic<int> answered{-1};
  tmf.done = [&](scstu_tmf_response r) { answered.store(r); };
  core_->task_management(tmf);
  EXPECT_EQ(answered.load(), -1) << "answered before the copy ended";
  a.ram.hold = false;
  while (a.ram.pump()) {
  }
  ASSERT_TRUE(copy->done.load());
  EXPECT_EQ(copy->result.status, status::kTaskAborted);
  EXPECT_EQ(answered.load(), SCSTU_TMF_COMPLETE);
  finish(std::move(copy));
  if (tc.two_units) {
    EXPECT_TRUE(b.ram.all(0, 6000, 0)) << "a WRITE started after the abort";
  } else {
    EXPECT_TRUE(a.ram.all(6100, 6000, 0)) << "a WRITE started after the abort";
  }
}

INSTANTIATE_TEST_SUITE_P(
    Tmf, CopyTmfTest,
    ::testing::Values(TmfCase{"AbortTask", SCSTU_TMF_ABORT_TASK, false, true, 0},
                      TmfCase{"LunResetFromAnotherInitiator", SCSTU_TMF_LUN_RESET, true, false, 0},
                      TmfCase{"TargetReset", SCSTU_TMF_TARGET_RESET, false, true, 1}),
    [](const ::testing::TestParamInfo<TmfCase>& i) { return std::string(i.param.name); });

// Up to CopyJob::kChunksInFlight READs of a segment are outstanding at once;
// the data arrives whole and in place.
TEST_F(CopyManagerTest, SeveralChunksInFlight) {
  constexpr uint32_t kChunkBlocks = core::CopyManager::kChunkBytes / kBs;
  constexpr uint16_t kCopy = 5 * kChunkBlocks + 100;  // six chunks, the last short
  pattern(a.ram, 0, kCopy, 9);
  a.ram.hold = true;
  const Bytes p =
      parameter_list(15, 0, {target(*a.lu), target(*b.lu)}, {segment(0, 1, kCopy, 0, 10)});
  auto copy = start(ini_, 0, xcopy_cdb(static_cast<uint32_t>(p.size())), p);
  EXPECT_EQ(a.ram.held(), core::CopyJob::kChunksInFlight);
  while (a.ram.pump()) EXPECT_LE(a.ram.held(), core::CopyJob::kChunksInFlight);
  expect_good(finish(std::move(copy)));
  EXPECT_TRUE(same(a.ram, 0, b.ram, 10, kCopy));
  Result st = rcr(0x00, 15, 12);
  ASSERT_EQ(st.data.size(), 12u);
  EXPECT_EQ(scsi::get_be32(&st.data[8]), uint32_t{kCopy} * kBs);
}

// Chunks beyond each copy's first come from one budget shared by all copies:
// many copies at once hold about one chunk each, as before chunks in flight.
TEST_F(CopyManagerTest, ExtraChunksAreSharedByAllCopies) {
  constexpr uint16_t kCopy = 6000;  // three chunks each
  a.ram.hold = true;
  std::vector<std::unique_ptr<Call>> running;
  for (uint16_t i = 0; i < scsi::kMaxConcurrentCopies; ++i) {
    const Bytes p = parameter_list(static_cast<uint8_t>(30 + i), 0, {target(*a.lu), target(*b.lu)},
                                   {segment(0, 1, kCopy, 0, 0)});
    running.push_back(start(ini_, 0, xcopy_cdb(static_cast<uint32_t>(p.size())), p));
  }
  // Held READs of the copies: each copy's own, plus the whole shared budget.
  EXPECT_EQ(a.ram.held(),
            scsi::kMaxConcurrentCopies + size_t{core::CopyManager::kSharedExtraChunks});
  while (a.ram.pump()) {
    EXPECT_LE(a.ram.held(),
              scsi::kMaxConcurrentCopies + size_t{core::CopyManager::kSharedExtraChunks});
  }
  for (auto& call : running) expect_good(finish(std::move(call)));
  // All returned: one copy alone gets its chunks in flight again.
  a.ram.hold = true;
  const Bytes p =
      parameter_list(50, 0, {target(*a.lu), target(*b.lu)}, {segment(0, 1, 4 * 2048, 0, 0)});
  auto copy = start(ini_, 0, xcopy_cdb(static_cast<uint32_t>(p.size())), p);
  EXPECT_EQ(a.ram.held(), core::CopyJob::kChunksInFlight);
  a.ram.hold = false;
  while (a.ram.pump()) {
  }
  expect_good(finish(std::move(copy)));
}

// Overlapping ranges of one unit move one chunk at a time (memmove).
TEST_F(CopyManagerTest, OverlappingCopyMovesOneChunkAtATime) {
  pattern(a.ram, 0, 6000, 10);
  std::vector<uint8_t> before(a.ram.block(0), a.ram.block(0) + 6000 * kBs);
  a.ram.hold = true;
  const Bytes p = parameter_list(16, 0, {target(*a.lu)}, {segment(0, 0, 6000, 0, 1000)});
  auto copy = start(ini_, 0, xcopy_cdb(static_cast<uint32_t>(p.size())), p);
  EXPECT_EQ(a.ram.held(), 1u);
  while (a.ram.pump()) EXPECT_LE(a.ram.held(), 1u);
  expect_good(finish(std::move(copy)));
  EXPECT_EQ(std::memcmp(a.ram.block(1000), before.data(), before.size()), 0);
}

// A chunk fails while later ones are in flight: no further READ starts, the
// WRITEs in flight end before the status, and the result is the one a copy
// moving one chunk at a time reports: the failed WRITE's sense at the
// DESTINATION SENSE DATA OFFSET, the bytes of the chunk before it.
TEST_F(CopyManagerTest, FailureWithChunksInFlight) {
  constexpr uint32_t kChunkBlocks = core::CopyManager::kChunkBytes / kBs;
  constexpr uint16_t kCopy = 6 * kChunkBlocks;
  pattern(a.ram, 0, kCopy, 11);
  a.ram.hold = true;
  b.ram.hold = true;
  const Bytes p =
      parameter_list(17, 0, {target(*a.lu), target(*b.lu)}, {segment(0, 1, kCopy, 0, 0)});
  auto copy = start(ini_, 0, xcopy_cdb(static_cast<uint32_t>(p.size())), p);
  for (size_t i = 0; i < core::CopyJob::kChunksInFlight; ++i) ASSERT_TRUE(a.ram.pump());
  ASSERT_EQ(b.ram.held(), core::CopyJob::kChunksInFlight);  // chunks 0-3 writing
  ASSERT_TRUE(b.ram.pump());                                // chunk 0 written
  ASSERT_EQ(a.ram.held(), 1u);                              // chunk 4 reading
  b.ram.fail_with = -EIO;
  ASSERT_TRUE(b.ram.pump());  // chunk 1 fails
  b.ram.fail_with = 0;
  EXPECT_FALSE(copy->done.load()) << "ended with WRITEs still in flight";
  a.ram.hold = false;
  while (a.ram.pump() || b.ram.pump()) {
  }
  EXPECT_EQ(a.ram.held() + b.ram.held(), 0u);
  Result r = finish(std::move(copy));
  expect_check(r, scsi::SenseCode{0x0A, 0x0C, 0x00});  // COPY ABORTED, write error
  EXPECT_EQ(r.sense[8], 0);
  EXPECT_EQ(r.sense[9], 18);  // DESTINATION SENSE DATA OFFSET
  EXPECT_TRUE(same(a.ram, 0, b.ram, 0, kChunkBlocks));
  EXPECT_TRUE(b.ram.all(4 * kChunkBlocks, 2 * kChunkBlocks, 0)) << "chunk 4/5 written";
  Result st = rcr(0x00, 17, 12);
  ASSERT_EQ(st.data.size(), 12u);
  EXPECT_EQ(st.data[4], 0x02);  // completed with errors
  EXPECT_EQ(scsi::get_be32(&st.data[8]), kChunkBlocks * kBs);
}

// SAM-5 5.3: BUSY and TASK SET FULL from a copy target mean "later": the
// READ or WRITE is sent again after a pause and the copy ends GOOD, its
// data whole and in place, whether the source or the destination refused.
TEST_F(CopyManagerTest, BusyAndTaskSetFullOfACopyTargetAreRetried) {
  uint8_t list_id = 60;
  for (const uint8_t refusal : {status::kBusy, status::kTaskSetFull}) {
    for (const bool source : {true, false}) {
      SCOPED_TRACE(std::string(refusal == status::kBusy ? "BUSY" : "TASK SET FULL") +
                   (source ? " from the source's READ" : " from the destination's WRITE"));
      RefusingUnit& refuser = source ? *a.front : *b.front;
      refuser.refuse(5, refusal, source ? 0x88 : 0x8A);
      b.ram.fill(0, 6000, 0);
      pattern(a.ram, 0, 6000, list_id);
      // 6000 blocks: three chunks in flight, the refusals spread over them.
      const Bytes p =
          parameter_list(list_id, 0, {target(*a.lu), target(*b.lu)}, {segment(0, 1, 6000, 0, 0)});
      auto copy = start(ini_, 0, xcopy_cdb(static_cast<uint32_t>(p.size())), p);
      ASSERT_TRUE(wait_done(*copy));
      expect_good(finish(std::move(copy)));
      EXPECT_EQ(refuser.refused(), 5);
      EXPECT_TRUE(same(a.ram, 0, b.ram, 0, 6000));
      Result st = rcr(0x00, list_id, 12);
      ASSERT_EQ(st.data.size(), 12u);
      EXPECT_EQ(st.data[4], 0x01);  // completed without errors
      EXPECT_EQ(scsi::get_be32(&st.data[8]), 6000u * kBs);
      refuser.refuse(0, refusal, 0);
      ++list_id;
    }
  }
}

// Past CopyManagerOptions::busy_retry_limit the copy ends as for any other
// error of a copy target (SPC-4 6.4.3): COPY ABORTED, THIRD PARTY DEVICE
// FAILURE, the target's status at the SOURCE / DESTINATION SENSE DATA OFFSET.
class CopyBusyLimitTest : public CopyManagerTest {
 protected:
  core::TargetCoreOptions options() const override {
    core::TargetCoreOptions o;
    o.copies.busy_max_delay = std::chrono::milliseconds(5);
    o.copies.busy_retry_limit = std::chrono::milliseconds(40);
    return o;
  }
};

TEST_F(CopyBusyLimitTest, ACopyTargetThatStaysBusyEndsTheCopy) {
  pattern(a.ram, 0, 8, 12);
  b.front->refuse(-1, status::kTaskSetFull, 0x8A);
  Bytes p = parameter_list(70, 0, {target(*a.lu), target(*b.lu)}, {segment(0, 1, 8, 0, 0)});
  auto copy = start(ini_, 0, xcopy_cdb(static_cast<uint32_t>(p.size())), p);
  ASSERT_TRUE(wait_done(*copy));
  expect_copy_target_status(finish(std::move(copy)), false, status::kTaskSetFull);
  EXPECT_GT(b.front->refused(), 1) << "never sent again";
  EXPECT_TRUE(b.ram.all(0, 8, 0));
  Result st = rcr(0x00, 70, 12);
  ASSERT_EQ(st.data.size(), 12u);
  EXPECT_EQ(st.data[4], 0x02);  // completed with errors
  EXPECT_EQ(scsi::get_be32(&st.data[8]), 0u);

  // The source's READ: its BUSY at the SOURCE SENSE DATA OFFSET.
  b.front->refuse(0, status::kGood, 0);
  a.front->refuse(-1, status::kBusy, 0x88);
  p = parameter_list(71, 0, {target(*a.lu), target(*b.lu)}, {segment(0, 1, 8, 0, 0)});
  copy = start(ini_, 0, xcopy_cdb(static_cast<uint32_t>(p.size())), p);
  ASSERT_TRUE(wait_done(*copy));
  expect_copy_target_status(finish(std::move(copy)), true, status::kBusy);
  a.front->refuse(0, status::kGood, 0);
  expect_good(
      xcopy(parameter_list(72, 0, {target(*a.lu), target(*b.lu)}, {segment(0, 1, 8, 0, 0)})));
  EXPECT_TRUE(same(a.ram, 0, b.ram, 0, 8));
}

// Pauses after BUSY far longer than wait_done() waits: what ends a copy
// that waits for a retry ends it without waiting out the pause.
//
// A copy whose WRITEs wait for their retry is aborted (ABORT TASK): it ends
// TASK ABORTED, nothing is written.
class CopyLongBusyPauseTest : public CopyManagerTest {
 protected:
  core::TargetCoreOptions options() const override {
    core::TargetCoreOptions o;
    o.copies.busy_first_delay = std::chrono::minutes(10);  // longer than wait_done waits
    o.copies.busy_max_delay = std::chrono::minutes(10);
    o.copies.busy_retry_limit = std::chrono::hours(1);
    return o;
  }
};

TEST_F(CopyLongBusyPauseTest, AbortEndsTheWaitForARetry) {
  pattern(a.ram, 0, 6000, 13);
  b.front->refuse(-1, status::kBusy, 0x8A);
  const Bytes p =
      parameter_list(73, 0, {target(*a.lu), target(*b.lu)}, {segment(0, 1, 6000, 0, 0)});
  auto copy = start(ini_, 0, xcopy_cdb(static_cast<uint32_t>(p.size())), p);
  // The RAM disks answer at once: all three chunks' WRITEs were refused.
  ASSERT_EQ(b.front->refused(), 3);
  ASSERT_FALSE(copy->done.load());
  core::TargetTmf tmf;
  tmf.function = SCSTU_TMF_ABORT_TASK;
  tmf.session = ini_;
  tmf.lun = core::encode_lun(0);
  tmf.ref = &copy->cmd;
  std::atomic<int> answered{-1};
  tmf.done = [&](scstu_tmf_response r) { answered.store(r); };
  core_->task_management(tmf);
  ASSERT_TRUE(wait_done(*copy));
  EXPECT_EQ(copy->result.status, status::kTaskAborted);
  EXPECT_EQ(answered.load(), SCSTU_TMF_COMPLETE);
  finish(std::move(copy));
  EXPECT_EQ(b.front->refused(), 3) << "sent again after the abort";
  EXPECT_TRUE(b.ram.all(0, 6000, 0));
}

// Chunk 1's WRITE is refused BUSY (and would be forever) while chunk 0's
// fails: no longer needed, chunk 1 is not sent again and the copy ends with
// chunk 0's error, as a copy moving one chunk at a time would.
TEST_F(CopyLongBusyPauseTest, NoRetryForAChunkAfterAFailedOne) {
  constexpr uint32_t kChunkBlocks = core::CopyManager::kChunkBytes / kBs;
  pattern(a.ram, 0, 4 * kChunkBlocks, 15);
  a.ram.hold = true;
  b.ram.hold = true;
  b.front->refuse(-1, status::kBusy, 0x8A, kChunkBlocks);
  const Bytes p = parameter_list(75, 0, {target(*a.lu), target(*b.lu)},
                                 {segment(0, 1, 4 * kChunkBlocks, 0, 0)});
  auto copy = start(ini_, 0, xcopy_cdb(static_cast<uint32_t>(p.size())), p);
  ASSERT_TRUE(a.ram.pump());  // chunk 0 read: its WRITE is held by b
  ASSERT_EQ(b.ram.held(), 1u);
  ASSERT_TRUE(a.ram.pump());  // chunk 1 read: its WRITE refused
  ASSERT_GE(b.front->refused(), 1);
  b.ram.fail_with = -EIO;
  ASSERT_TRUE(b.ram.pump());  // chunk 0's WRITE fails
  a.ram.hold = false;
  while (a.ram.pump()) {
  }
  ASSERT_TRUE(wait_done(*copy));
  b.ram.fail_with = 0;
  Result r = finish(std::move(copy));
  expect_check(r, scsi::SenseCode{0x0A, 0x0C, 0x00});  // COPY ABORTED, write error
  EXPECT_EQ(r.sense[9], 18);                           // DESTINATION SENSE DATA OFFSET
  EXPECT_TRUE(b.ram.all(0, 4 * kChunkBlocks, 0));
  b.front->refuse(0, status::kGood, 0);
}

// The core's own queue-depth limit (core/flow_control.h) refuses the copy's
// READs while another initiator's command holds the device's last slot; the
// copy waits for it instead of failing.
class CopyQueueDepthTest : public CopyManagerTest {
 protected:
  core::TargetCoreOptions options() const override {
    core::TargetCoreOptions o;
    o.limits.per_device = 2;  // the EXTENDED COPY itself holds one of LUN 0's
    return o;
  }
};

TEST_F(CopyQueueDepthTest, ACopyWaitsForTheDevicesQueue) {
  core::Session* other = open(kOther);
  expect_good(run_past_ua(other, 0, {0x00, 0, 0, 0, 0, 0}));  // TEST UNIT READY
  pattern(a.ram, 0, 6000, 14);
  a.ram.hold = true;
  Bytes read16(16, 0);
  read16[0] = 0x88;
  put32(read16, 10, 8);
  auto held = start(other, 0, read16, {}, 8 * kBs);
  ASSERT_EQ(a.ram.held(), 1u);
  const Bytes p =
      parameter_list(74, 0, {target(*a.lu), target(*b.lu)}, {segment(0, 1, 6000, 0, 0)});
  auto copy = start(ini_, 0, xcopy_cdb(static_cast<uint32_t>(p.size())), p);
  EXPECT_FALSE(copy->done.load()) << "the refused READ ended the copy";
  EXPECT_EQ(a.ram.held(), 1u) << "a READ of the copy got past the limit";
  a.ram.hold = false;
  ASSERT_TRUE(a.ram.pump());
  expect_good(finish(std::move(held)));
  ASSERT_TRUE(wait_done(*copy));
  expect_good(finish(std::move(copy)));
  EXPECT_TRUE(same(a.ram, 0, b.ram, 0, 6000));
}

// TOTAL CONCURRENT COPIES (VPD 8Fh, OPERATING PARAMETERS) is enforced:
// memory stays bounded whatever the initiators send.
TEST_F(CopyManagerTest, AtMostMaxConcurrentCopies) {
  a.ram.hold = true;
  std::vector<std::unique_ptr<Call>> running;
  for (uint16_t i = 0; i < scsi::kMaxConcurrentCopies; ++i) {
    Bytes p = parameter_list(static_cast<uint8_t>(20 + i), 0, {target(*a.lu)},
                             {segment(0, 0, 1, 0, 100 + i)});
    running.push_back(start(ini_, 0, xcopy_cdb(static_cast<uint32_t>(p.size())), p));
    ASSERT_FALSE(running.back()->done.load());
  }
  EXPECT_EQ(core_->copies().running(), scsi::kMaxConcurrentCopies);
  expect_check(xcopy(parameter_list(99, 0, {target(*a.lu)}, {segment(0, 0, 1, 0, 1)})),
               scsi::kInsufficientResources);
  a.ram.hold = false;
  while (a.ram.pump()) {
  }
  for (auto& call : running) expect_good(finish(std::move(call)));
  expect_good(xcopy(parameter_list(99, 0, {target(*a.lu)}, {segment(0, 0, 1, 0, 1)})));
}

// The unit advertises the copy manager (3PC, VPD 8Fh) only when one fronts
// it; without, it refuses EXTENDED COPY itself.
TEST(ThirdPartyCopyVpd, PageBytes) {
  RamDisk disk(kBlocks, kBs);
  scsi::LogicalUnit lu(scsi::LogicalUnitConfig{}, &disk);
  const Bytes page = scsi::third_party_copy_vpd_page(lu);
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

  Initiator with(lu);
  Result std_inq = with.run({0x12, 0, 0, 0, 96, 0}, {}, 96);
  expect_good(std_inq);
  EXPECT_EQ(std_inq.data[5] & 0x08, 0x08);  // 3PC
  expect_good(with.run({0x12, 1, 0x8F, 1, 0, 0}, {}, 256));
}

TEST(ThirdPartyCopyVpd, NotAdvertisedWithoutACopyManager) {
  RamDisk disk(kBlocks, kBs);
  scsi::LogicalUnitConfig cfg;
  cfg.third_party_copy = false;  // e.g. behind the kernel shim
  scsi::LogicalUnit lu(cfg, &disk);
  Initiator ini(lu);
  Result std_inq = ini.run({0x12, 0, 0, 0, 96, 0}, {}, 96);
  expect_good(std_inq);
  EXPECT_EQ(std_inq.data[5] & 0x08, 0);
  Result pages = ini.run({0x12, 1, 0x00, 0, 64, 0}, {}, 64);
  expect_good(pages);
  const Bytes list(pages.data.begin() + 4, pages.data.begin() + 4 + pages.data[3]);
  EXPECT_EQ(std::count(list.begin(), list.end(), 0x8F), 0);
  expect_check(ini.run({0x12, 1, 0x8F, 1, 0, 0}, {}, 256), scsi::kInvalidFieldInCdb);
  Bytes p(16, 0);
  Bytes cdb = xcopy_cdb(16);
  expect_check(ini.run(cdb, p), scsi::kInvalidCommandOperationCode);
}

}  // namespace
}  // namespace scstu::testing
