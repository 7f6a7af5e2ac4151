// copy_manager.h - the target's copy manager (SPC-4 5.17, 6.4, 6.18):
// EXTENDED COPY (LID1) with identification CSCD descriptors (E4h) and block
// to block segments (02h), and RECEIVE COPY RESULTS (COPY STATUS, OPERATING
// PARAMETERS, FAILED SEGMENT DETAILS), executed on the producer side so a copy
// may read from and write to any logical unit of the target the initiator's
// session can see, whichever handler process serves it.
//
// How a copy runs: TargetCore::execute() hands 83h/84h here instead of to the
// addressed device. The parameter list is parsed (scsi/xcopy.h); each CSCD is
// resolved to a LUN of the session's inventory by asking the devices for
// their VPD 83h designators (INQUIRY, through the session); READ CAPACITY(16)
// gives each target's block length and size; then every segment moves in
// chunks of at most kChunkBytes: READ(16) to the source LUN, WRITE(16) to the
// destination LUN. These are ordinary TargetCommands of the initiator's
// session (prepare/execute/release), so the devices apply what they apply to
// the initiator: its reservations, write protection, READ_ONLY mappings,
// flow limits. Buffers come from the devices (alloc_buffer); up to
// CopyJob::kChunksInFlight chunks of a segment are in flight per copy (one
// for a copy within overlapping ranges of one unit), the chunks beyond each
// copy's first drawn from kSharedExtraChunks, and at most
// kMaxConcurrentCopies copies run: at most (kMaxConcurrentCopies +
// kSharedExtraChunks) chunks, each 2 * kChunkBytes of buffers.
//
// Files: copy_job.* (one copy's state machine; copy_target_resolution.cpp,
// copy_segment_execution.cpp), copy_results.* (records for RECEIVE COPY
// RESULTS), delayed_calls.* (the thread that sends refused commands again),
// this file (admission, results, task management).
//
// Errors (SPC-4 6.4.3 / 5.17.4): a copy target's failure ends the copy with
// COPY ABORTED; COMMAND-SPECIFIC INFORMATION holds SOURCE / DESTINATION SENSE
// DATA OFFSET (bytes 8, 9) and the segment number (10-11); at that offset of
// the sense data come the copy target's status byte and its sense data.
// UNIT ATTENTION from a copy target is taken by the copy manager and the
// command re-issued (a few times), as a separate copy manager nexus would
// (the initiator's own nexus thus does not see that attention again). BUSY
// and TASK SET FULL (SAM-5 5.3: try again later) are retried after a growing
// pause, for at most CopyManagerOptions::busy_retry_limit per command, then
// end the copy like any error (core/copy_manager_options.h); a chunk waiting
// for its retry holds its buffers and its place in copy order.
//
// Designators are asked for on every EXTENDED COPY (the addressed LUN first,
// stopping once every CSCD is found), never cached: a device re-attached with
// another identity must not receive a copy meant for the old one. A LUN
// whose device changed between resolution and a READ/WRITE ends the copy
// with COPY TARGET DEVICE NOT REACHABLE.
//
// Task management: ABORT TASK of the copy, ABORT TASK SET / CLEAR TASK SET /
// LUN RESET of its LUN, TARGET RESET stop it after the chunks in flight; the
// TMF's answer waits for the copy to end (done with TASK ABORTED status).
// The copy's ORDERED/HEAD OF QUEUE attribute is not honoured against the
// addressed unit's task set (the unit never sees the command).
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <utility>
#include <vector>

#include "core/copy_manager_options.h"
#include "core/copy_results.h"
#include "core/delayed_calls.h"
#include "core/device.h"
#include "scsi/xcopy.h"

namespace scstu::core {

class TargetCore;
class ExportedDevice;
class CopyJob;

class CopyManager {
 public:
  static constexpr uint32_t kChunkBytes = 1u << 20;
  // Chunks in flight beyond each copy's first, shared by all copies: memory
  // stays bounded near one chunk per copy however many copies run at once
  // (a device's buffers serve its initiators' own commands too).
  static constexpr int kSharedExtraChunks = 8;

  explicit CopyManager(TargetCore& core, CopyManagerOptions options = {});
  ~CopyManager();  // waits for running copies (the transports are gone by then)
  CopyManager(const CopyManager&) = delete;
  CopyManager& operator=(const CopyManager&) = delete;

  // True for the commands submit() takes: EXTENDED COPY(LID1), RECEIVE COPY
  // STATUS / OPERATING PARAMETERS / FAILURE DETAILS (LID1). prepare() has
  // routed and decoded them (a block device's LUN). The other 83h/84h
  // service actions go to the device, which does not implement them.
  static bool handles(const TargetCommand& cmd) {
    const uint8_t action = cmd.cdb[1] & 0x1F;
    if (cmd.cdb[0] == 0x83) return action == 0x00;
    return cmd.cdb[0] == 0x84 && (action == 0x00 || action == 0x03 || action == 0x04);
  }

  // Runs the command; completes it through cmd.done, from this or another
  // thread.
  void submit(TargetCommand& cmd);

  // ABORT TASK / QUERY TASK of a command handles() took.
  void task_management(TargetTmf& tmf);

  // A TMF about to go to `device` (nullptr: TARGET RESET, every device of the
  // session's target): aborts the copies it reaches, and makes tmf.done wait
  // for their end.
  void abort_reached(TargetTmf& tmf, const ExportedDevice* device);

  size_t running() const;

 private:
  friend class CopyJob;

  // A chunk beyond the copy's first: false when the shared budget is used up.
  bool take_extra_chunk();
  void return_extra_chunk() { extra_chunks_.fetch_add(1, std::memory_order_acq_rel); }

  void extended_copy(TargetCommand& cmd);
  void receive_copy_results(TargetCommand& cmd);
  void retire(CopyJob* job);

  TargetCore& core_;
  const CopyManagerOptions options_;
  mutable std::mutex mutex_;
  std::condition_variable idle_;
  std::vector<CopyJob*> jobs_;
  CopyResultRecords records_;
  std::atomic<int> extra_chunks_{kSharedExtraChunks};
  // Retries after BUSY / TASK SET FULL. Destroyed first: its thread is
  // joined before the members its calls use go.
  DelayedCalls retries_;
};

}  // namespace scstu::core
