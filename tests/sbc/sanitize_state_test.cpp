// A sanitize operation across a restart of the handler (SBC-4 4.11.2,
// 4.11.4): the state file a unit keeps (scsi/sanitize_state_file.h), and a
// new unit over the same medium picking it up: an interrupted operation runs
// again (NOT READY / SANITIZE IN PROGRESS meanwhile), a failure stays.
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstdio>
#include <fstream>
#include <sstream>
#include <string>
#include <thread>

#include "sbc_harness.h"
#include "scsi/lu_runtime.h"
#include "scsi/sanitize.h"
#include "scsi/sanitize_state_file.h"

namespace scstu::testing {
namespace {

constexpr uint32_t kBs = 512;
constexpr uint64_t kBlocks = 64;
const Bytes kTur = {0x00, 0, 0, 0, 0, 0};
const Bytes kRead10 = {0x28, 0, 0, 0, 0, 0, 0, 0, 1, 0};

Bytes sanitize(uint8_t byte1, uint16_t len) {
  Bytes c(10, 0);
  c[0] = 0x48;
  c[1] = byte1;
  put16(c, 7, len);
  return c;
}

std::string read_file(const std::string& path) {
  std::ifstream in(path);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

void write_file(const std::string& path, const std::string& text) { std::ofstream(path) << text; }

bool exists(const std::string& path) { return ::access(path.c_str(), F_OK) == 0; }

// A directory for one test's state file, removed at the end.
struct StateDir {
  StateDir() {
    char tmpl[] = "/tmp/scstu-sanitize-XXXXXX";
    dir = ::mkdtemp(tmpl);
    file = dir + "/disk.sanitize";
  }
  ~StateDir() {
    std::remove(file.c_str());
    std::remove((file + ".tmp").c_str());
    ::rmdir(dir.c_str());
  }
  std::string dir, file;
};

// One start of the handler: a unit over `disk` with the state file.
struct Start {
  Start(RamDisk& disk, const std::string& state_file) : lu(config(state_file), &disk), ini(lu) {}
  static scsi::LogicalUnitConfig config(const std::string& state_file) {
    scsi::LogicalUnitConfig c;
    c.serial = "sanitize-state";
    c.thin = true;
    c.sanitize_state_file = state_file;
    return c;
  }
  scsi::LogicalUnit lu;
  Initiator ini;
};

// Pumps the disk until TEST UNIT READY is no longer 04/1B. Bounded.
void run_to_end(RamDisk& disk, Initiator& ini) {
  disk.hold = false;
  for (int i = 0; i < 100000; ++i) {
    disk.pump();
    const Result r = ini.run(kTur);
    if (r.status != status::kCheckCondition || r.code() != scsi::kNotReadySanitizeInProgress) {
      return;
    }
    std::this_thread::yield();
  }
  FAIL() << "the sanitize never ended";
}

TEST(SanitizeStateFile, RoundTrip) {
  scsi::SanitizeState s;
  s.phase = scsi::SanitizeState::Phase::kInProgress;
  s.ause = true;
  s.passes = {Bytes(8, 0xA5), Bytes(8, 0x5A)};
  scsi::SanitizeState back;
  ASSERT_EQ(scsi::parse_sanitize_state(scsi::format_sanitize_state(s), 8, &back), "");
  EXPECT_EQ(back.phase, s.phase);
  EXPECT_TRUE(back.ause);
  EXPECT_FALSE(back.deallocate);
  EXPECT_EQ(back.passes, s.passes);

  s.done_pass = 1;
  s.done_lba = 12345;
  ASSERT_EQ(scsi::parse_sanitize_state(scsi::format_sanitize_state(s), 8, &back), "");
  EXPECT_EQ(back.done_pass, 1u);
  EXPECT_EQ(back.done_lba, 12345u);

  s = {};
  s.phase = scsi::SanitizeState::Phase::kFailed;
  s.deallocate = true;
  ASSERT_EQ(scsi::parse_sanitize_state(scsi::format_sanitize_state(s), 8, &back), "");
  EXPECT_EQ(back.phase, scsi::SanitizeState::Phase::kFailed);
  EXPECT_FALSE(back.ause);
  EXPECT_TRUE(back.deallocate);
  EXPECT_TRUE(back.passes.empty());
}

TEST(SanitizeStateFile, RejectsWhatItDidNotWrite) {
  scsi::SanitizeState out;
  const std::string head = "scstu-sanitize-state 1\nstate in-progress\nause 0\n";
  EXPECT_NE(scsi::parse_sanitize_state("", 8, &out), "");
  EXPECT_NE(scsi::parse_sanitize_state("scstu-sanitize-state 2\n", 8, &out), "");
  EXPECT_NE(scsi::parse_sanitize_state(head, 8, &out), "");                         // no method
  EXPECT_NE(scsi::parse_sanitize_state(head + "method overwrite\n", 8, &out), "");  // no pass
  EXPECT_NE(scsi::parse_sanitize_state(head + "method overwrite\npass a5a5\n", 8, &out), "");
  EXPECT_NE(scsi::parse_sanitize_state(head + "method overwrite\npass a5a5a5a5a5a5a5zz\n", 8, &out),
            "");
  EXPECT_NE(scsi::parse_sanitize_state(head + "method erase\npass a5a5a5a5a5a5a5a5\n", 8, &out),
            "");
  EXPECT_NE(scsi::parse_sanitize_state(head + "method erase\nstate failed\n", 8, &out), "");
  EXPECT_NE(scsi::parse_sanitize_state(head + "method erase extra\n", 8, &out), "");
  std::string many = head + "method overwrite\n";
  for (int i = 0; i < 32; ++i) many += "pass 0000000000000000\n";
  EXPECT_NE(scsi::parse_sanitize_state(many, 8, &out), "");
  EXPECT_NE(scsi::parse_sanitize_state(head + "method erase\ndone 1 0\n", 8, &out),
            "");  // no pass 1
  EXPECT_NE(scsi::parse_sanitize_state(head + "method erase\ndone 0\n", 8, &out), "");
  EXPECT_NE(scsi::parse_sanitize_state(head + "method erase\ndone x 5\n", 8, &out), "");
  EXPECT_NE(scsi::parse_sanitize_state(head + "method erase\ndone 0 5 6\n", 8, &out), "");
  EXPECT_EQ(scsi::parse_sanitize_state(head + "method erase\ndone 0 5\n", 8, &out), "");
  EXPECT_EQ(out.done_lba, 5u);
  EXPECT_EQ(scsi::parse_sanitize_state(head + "method erase\n", 8, &out), "");
}

// SANITIZE (IMMED = 1) records the operation before it completes; the
// handler dies with the operation unfinished (the file as it was then); the
// next start runs it again: 04/1B until it ends, the pattern on every block,
// the file gone.
TEST(SanitizeAcrossRestart, InterruptedOperationResumes) {
  StateDir state;
  RamDisk disk(kBlocks, kBs);
  std::string crash_image;
  {
    Start first(disk, state.file);
    disk.fill(0, kBlocks, 0xEE);
    disk.hold = true;
    expect_good(first.ini.run(sanitize(0x80 | 0x01, 5), Bytes{0x01, 0, 0, 1, 0xA5}));
    ASSERT_TRUE(exists(state.file));
    crash_image = read_file(state.file);
    EXPECT_NE(crash_image.find("state in-progress"), std::string::npos);
    run_to_end(disk, first.ini);
    EXPECT_FALSE(exists(state.file));  // success forgets it
  }
  // As a crash would have left it: the old data, the file in progress.
  disk.fill(0, kBlocks, 0xEE);
  write_file(state.file, crash_image);
  disk.hold = true;
  Start second(disk, state.file);
  const Result r = second.ini.run(kTur);
  expect_check(r, scsi::kNotReadySanitizeInProgress);
  EXPECT_TRUE(r.parsed().progress.has_value());
  expect_check(second.ini.run(kRead10, {}, kBs), scsi::kNotReadySanitizeInProgress);
  EXPECT_TRUE(exists(state.file));
  run_to_end(disk, second.ini);
  expect_good(second.ini.run(kTur));
  EXPECT_TRUE(disk.all(0, kBlocks, 0xA5));
  EXPECT_FALSE(exists(state.file));
}

// The unit going away mid-operation (fileio_tgt's SIGTERM) suspends it: the
// file stays "in progress", not "failed", and the next start resumes it.
TEST(SanitizeAcrossRestart, ShutdownSuspendsTheOperation) {
  StateDir state;
  constexpr uint64_t kBig = 8 * (1u << 20) / kBs;  // 8 writes of 1 MiB per pass
  RamDisk disk(kBig, kBs);
  {
    Start first(disk, state.file);
    disk.hold = true;
    expect_good(first.ini.run(sanitize(0x80 | 0x01, 5), Bytes{0x01, 0, 0, 1, 0x3C}));
    for (int i = 0; i < 100000 && disk.held() == 0; ++i) std::this_thread::yield();
    ASSERT_EQ(disk.held(), 1u);
    first.lu.runtime().sanitize->stop();  // what the destructor does first
    disk.hold = false;
    disk.pump();  // the request in flight ends; no other is issued
  }
  EXPECT_NE(read_file(state.file).find("state in-progress"), std::string::npos);
  EXPECT_FALSE(disk.all(0, kBig, 0x3C));
  Start second(disk, state.file);
  run_to_end(disk, second.ini);
  EXPECT_TRUE(disk.all(0, kBig, 0x3C));
  EXPECT_FALSE(exists(state.file));
}

// Every checkpoint_bytes the operation flushes the device and records how
// far it got; a restart runs it again from there, not from block 0.
TEST(SanitizeAcrossRestart, ResumesFromItsCheckpoint) {
  StateDir state;
  constexpr uint64_t kBig = 8 * (1u << 20) / kBs;  // 8 writes of 1 MiB
  constexpr uint64_t kMiB = (1u << 20) / kBs;
  RamDisk disk(kBig, kBs);
  disk.fill(0, kBig, 0xEE);
  {
    Start first(disk, state.file);
    first.lu.runtime().sanitize->set_checkpoint_bytes(2u << 20);
    disk.hold = true;
    expect_good(first.ini.run(sanitize(0x80 | 0x01, 5), Bytes{0x01, 0, 0, 1, 0x77}));
    // Two writes, then the flush of the checkpoint, then a third write.
    for (int i = 0; i < 3; ++i) {
      for (int k = 0; k < 100000 && disk.held() == 0; ++k) std::this_thread::yield();
      ASSERT_TRUE(disk.pump());
    }
    for (int k = 0; k < 100000 && disk.held() == 0; ++k) std::this_thread::yield();
    EXPECT_EQ(disk.submitted[BlockOp::kFlush], 1);
    EXPECT_NE(read_file(state.file).find("done 0 " + std::to_string(2 * kMiB)), std::string::npos)
        << read_file(state.file);
    first.lu.runtime().sanitize->stop();  // the handler goes away
    disk.hold = false;
    disk.pump();
  }
  // As a crash after the checkpoint would leave it: blocks before it
  // written, the rest old (here: back to 0xEE, so a restart from block 0
  // would show).
  disk.fill(2 * kMiB, kBig - 2 * kMiB, 0xEE);
  disk.fill(0, 2 * kMiB, 0x11);  // marks what the resumed operation must not rewrite
  Start second(disk, state.file);
  run_to_end(disk, second.ini);
  EXPECT_TRUE(disk.all(0, 2 * kMiB, 0x11));
  EXPECT_TRUE(disk.all(2 * kMiB, kBig - 2 * kMiB, 0x77));
  EXPECT_FALSE(exists(state.file));
}

// SBC-4 4.11.4: a failure survives the restart: medium access 31/03, EXIT
// FAILURE MODE refused after AUSE = 0, a successful sanitize clears it (and
// the file).
TEST(SanitizeAcrossRestart, FailureModeSurvives) {
  StateDir state;
  RamDisk disk(kBlocks, kBs);
  {
    Start first(disk, state.file);
    disk.fail_with = -EIO;
    expect_check(first.ini.run_wait(sanitize(0x01, 5), Bytes{0x01, 0, 0, 1, 0x11}),
                 scsi::kSanitizeCommandFailed);
    disk.fail_with = 0;
  }
  EXPECT_NE(read_file(state.file).find("state failed"), std::string::npos);
  {
    Start second(disk, state.file);
    expect_check(second.ini.run(kRead10, {}, kBs), scsi::kSanitizeCommandFailed);
    expect_check(second.ini.run(sanitize(0x1F, 0)), scsi::kInvalidFieldInCdb);
    expect_good(second.ini.run_wait(sanitize(0x02, 0)));
    expect_good(second.ini.run(kRead10, {}, kBs));
  }
  EXPECT_FALSE(exists(state.file));

  // AUSE = 1: EXIT FAILURE MODE after the restart clears it.
  {
    Start third(disk, state.file);
    disk.fail_with = -EIO;
    expect_check(third.ini.run_wait(sanitize(0x20 | 0x02, 0)), scsi::kSanitizeCommandFailed);
    disk.fail_with = 0;
  }
  Start fourth(disk, state.file);
  expect_check(fourth.ini.run(kRead10, {}, kBs), scsi::kSanitizeCommandFailed);
  expect_good(fourth.ini.run(sanitize(0x1F, 0)));
  expect_good(fourth.ini.run(kRead10, {}, kBs));
  EXPECT_FALSE(exists(state.file));
}

// A state file that cannot be parsed: unknown whether the medium was being
// erased, so the unit keeps its data from use (restricted failure mode).
TEST(SanitizeAcrossRestart, UnreadableStateIsFailureMode) {
  StateDir state;
  RamDisk disk(kBlocks, kBs);
  write_file(state.file, "garbage\n");
  Start unit(disk, state.file);
  expect_check(unit.ini.run(kRead10, {}, kBs), scsi::kSanitizeCommandFailed);
  expect_check(unit.ini.run(sanitize(0x1F, 0)), scsi::kInvalidFieldInCdb);
  expect_good(unit.ini.run_wait(sanitize(0x02, 0)));
  expect_good(unit.ini.run(kRead10, {}, kBs));
  EXPECT_FALSE(exists(state.file));
}

// An interrupted operation that cannot be resumed (its state file cannot be
// rewritten) is not forgotten: failure mode.
TEST(SanitizeAcrossRestart, UnresumableOperationIsFailureMode) {
  StateDir state;
  RamDisk disk(kBlocks, kBs);
  write_file(state.file, "scstu-sanitize-state 1\nstate in-progress\nause 1\nmethod erase\n");
  ASSERT_EQ(::mkdir((state.file + ".tmp").c_str(), 0700), 0);  // the rewrite fails
  Start unit(disk, state.file);
  expect_check(unit.ini.run(kRead10, {}, kBs), scsi::kSanitizeCommandFailed);
  expect_check(unit.ini.run(sanitize(0x1F, 0)), scsi::kInvalidFieldInCdb);  // restricted
}

// A state file that cannot be written: SANITIZE starts nothing.
TEST(SanitizeAcrossRestart, UnwritableStateRefusesSanitize) {
  RamDisk disk(kBlocks, kBs);
  disk.fill(0, kBlocks, 0xEE);
  Start unit(disk, "/nonexistent-scstu-dir/disk.sanitize");
  expect_check(unit.ini.run(sanitize(0x80 | 0x02, 0)), scsi::kInternalTargetFailure);
  expect_good(unit.ini.run(kRead10, {}, kBs));
  EXPECT_TRUE(disk.all(0, kBlocks, 0xEE));
}

}  // namespace
}  // namespace scstu::testing
