// sanitize.h - the sanitize operation of one logical unit (SBC-4 4.11, 5.30),
// which outlives the SANITIZE command that starts it.
//
// SANITIZE validates its CDB and parameter list and starts the operation:
// with IMMED = 1 it completes GOOD at once, with IMMED = 0 when the operation
// ends. While the operation runs, every command but INQUIRY, REPORT LUNS,
// REQUEST SENSE and LOG SENSE ends CHECK CONDITION, NOT READY / LOGICAL UNIT
// NOT READY, SANITIZE IN PROGRESS (04/1B) with the progress indication in the
// sense-key specific bytes (SPC-4 4.5.2.4.3); REQUEST SENSE returns the same
// as its parameter data. Task management does not stop it (SBC-4 4.11.1: a
// sanitize continues across resets and I_T nexus loss): an aborted IMMED = 0
// command is let go at once and the operation goes on.
//
// If the operation fails, the unit is in sanitize failure mode (SBC-4 4.11.4):
// medium access commands end MEDIUM ERROR / SANITIZE COMMAND FAILED (31/03)
// until a sanitize completes without error, or, when the failed one was
// started with AUSE = 1, until EXIT FAILURE MODE.
//
// Across a restart of the handler (SBC-4 4.11.2: a power on suspends the
// operation, which resumes after the logical unit reset that follows), when
// the unit has a state file (LogicalUnitConfig::sanitize_state_file,
// scsi/sanitize_state_file.h): SANITIZE completes only once "in progress" is
// durable there; a restarted unit finds it and runs the operation again from
// its last checkpoint (overwriting again is harmless), answering 04/1B
// meanwhile; a failure is recorded, so failure mode (31/03) survives the
// restart too. Every checkpoint_bytes (1 GiB) the operation flushes the
// device and records how far it got, and a resumed one begins there.
// Without a state file the state lives in memory only.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "scsi/sanitize_state_file.h"
#include "scsi/sbc_advanced_job.h"

namespace scstu::scsi {

class CommandContext;
class LogicalUnit;

// SBC-4 table 81 (31/03).
inline constexpr SenseCode kSanitizeCommandFailed{0x03, 0x31, 0x03};

class SanitizeOperation {
 public:
  struct Plan {
    // One block-sized pattern per overwrite pass; empty for an erase.
    std::vector<std::vector<uint8_t>> passes;
    bool deallocate = false;  // erase by deallocating (thin, reads back zeroes)
    bool ause = false;        // AUSE: EXIT FAILURE MODE may leave a failure
    // Where to begin: a resumed operation's checkpoint (pass, first LBA).
    uint32_t start_pass = 0;
    uint64_t start_lba = 0;
  };

  // How often a running operation records a checkpoint (after a flush of
  // the device's cache): every this many bytes written or deallocated.
  void set_checkpoint_bytes(uint64_t bytes) { checkpoint_bytes_ = bytes; }

  // `state_file`: where the state is kept across restarts; empty: nowhere.
  explicit SanitizeOperation(LogicalUnit& lu, std::string state_file = {})
      : lu_(lu), state_file_(std::move(state_file)) {}
  // Calls shutdown().
  ~SanitizeOperation();
  SanitizeOperation(const SanitizeOperation&) = delete;
  SanitizeOperation& operator=(const SanitizeOperation&) = delete;

  // Per command, before anything else but unit attentions: true to go on,
  // false when the command was completed (sanitize in progress, or failed).
  bool admit(CommandContext& ctx) {
    if (!busy_.load(std::memory_order_acquire)) return true;
    return admit_slow(ctx);
  }
  bool in_progress() const { return in_progress_.load(std::memory_order_acquire); }
  bool failed() const;
  // SPC-4 4.5.2.4.3: 0..65535 of the work done.
  uint16_t progress() const;
  // What REQUEST SENSE reports for the operation, if anything.
  std::optional<SenseData> sense(SenseFormat format) const;

  enum class StartResult : uint8_t {
    kStarted,
    kAuseRefused,  // SBC-4 5.30 AUSE: INVALID FIELD IN CDB
    kNotRecorded,  // the state file could not be written: nothing started
  };

  // Once, after the unit is built: picks up the state file's operation (runs
  // it again) or failure. Returns "" or an error naming the file; a file that
  // cannot be read leaves the unit in failure mode (AUSE = 0): whether its
  // data was erased is unknown.
  std::string restore();

  // SANITIZE, once validated. `waiter`: the IMMED = 0 command, completed when
  // the operation ends (or let go if aborted); nullptr for IMMED = 1. The
  // operation runs on a thread of its own, so IMMED = 1 returns at once
  // whatever the BlockDevice does. Starts nothing when a failed operation
  // with AUSE = 0 forbids `plan.ause`, or the state file cannot be written.
  StartResult start(Plan plan, CommandContext* waiter);
  // EXIT FAILURE MODE: false when the failure may not be left that way.
  bool exit_failure_mode();
  // After a task management function: an IMMED = 0 SANITIZE that it aborted
  // completes now (the task set discards its reply); the operation goes on.
  void release_aborted_waiter();
  // The unit is going away: stop issuing I/O after the request in flight,
  // fail a waiting command, join the thread. The state file keeps the
  // operation in progress (suspended, SBC-4 4.11.2).
  void shutdown();
  // shutdown()'s first half: ask the thread to stop, without waiting.
  void stop() { stop_.store(true, std::memory_order_release); }

 private:
  bool admit_slow(CommandContext& ctx);
  void run(Plan plan);  // the operation's thread
  int io(BlockOp op, uint64_t lba, uint64_t blocks, std::span<const iovec> iov);
  void finished(int error);
  // A checkpoint at (pass, lba): flush, then record it. False on an I/O error.
  bool checkpoint(uint32_t pass, uint64_t lba, int* error);
  // The state file, with mutex_ held. "" or the error (logged by callers).
  std::string record(SanitizeState::Phase phase);
  std::string forget();

  LogicalUnit& lu_;
  const std::string state_file_;
  std::atomic<bool> busy_{false};  // in progress or failed: admit() must look
  std::atomic<bool> in_progress_{false};
  std::atomic<bool> stop_{false};
  std::atomic<uint64_t> total_{0};
  std::atomic<uint64_t> done_{0};
  mutable std::mutex mutex_;
  bool failed_ = false;
  bool failed_ause_ = false;
  bool running_ause_ = false;
  SanitizeState running_;  // what the state file says while it runs
  uint64_t checkpoint_bytes_ = uint64_t{1} << 30;
  CommandContext* waiter_ = nullptr;
  std::thread thread_;
  // One request in flight at a time, waited for by run().
  std::mutex io_mutex_;
  std::condition_variable io_cv_;
  bool io_done_ = false;
  int io_error_ = 0;
  BlockRequest request_{};
  bool granted_ = false;  // the whole-medium range hold, when it had to wait
};

}  // namespace scstu::scsi
