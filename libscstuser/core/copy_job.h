// copy_job.h - one EXTENDED COPY (LID1) as the CopyManager runs it (how and
// why: core/copy_manager.h). A state machine driven by the completions of
// its internal commands, ordinary TargetCommands of the initiator's session:
//
//   copy_job.cpp                 the machine, internal commands (unit
//                                attention and BUSY / TASK SET FULL
//                                retries), how a copy ends
//   copy_target_resolution.cpp   CSCD descriptors to LUNs (VPD 83h), then
//                                READ CAPACITY(16) of each
//   copy_segment_execution.cpp   block-to-block segments in chunks, up to
//                                kChunksInFlight at once
#pragma once

#include <array>
#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <span>
#include <vector>

#include "core/copy_results.h"
#include "core/delayed_calls.h"
#include "core/device.h"
#include "scsi/sense.h"
#include "scsi/xcopy.h"

namespace scstu::core {

class CopyManager;
class CommandRoute;
class ExportedDevice;
class Session;
struct LunTable;

// Ends `cmd` with a status, sense data and a Data-In byte count.
void complete_command(TargetCommand& cmd, uint8_t status, std::span<const uint8_t> sense,
                      uint32_t transferred);

class CopyJob {
 public:
  // READ/WRITE pairs of one segment in flight at once (each holds up to
  // CopyManager::kChunkBytes of the source's and of the destination's buffers).
  static constexpr size_t kChunksInFlight = 4;

  CopyJob(CopyManager& manager, TargetCommand& cmd, scsi::CopyParameterList list,
          std::optional<CopyResultRecords::Key> key);
  CopyJob(const CopyJob&) = delete;
  CopyJob& operator=(const CopyJob&) = delete;

  void start() { kick(); }
  // TMF: stop once the commands in flight are back (those waiting to be
  // sent again after BUSY are not waited for); the copy ends TASK ABORTED.
  // Called with the manager's mutex held.
  void abort();
  TargetCommand& command() const { return cmd_; }
  Session* session() const { return session_; }
  const ExportedDevice* device() const { return device_; }

  // Run by the manager after the job ended (TMFs waiting for it).
  std::vector<std::function<void()>> waiters;

 private:
  enum class Phase { kStart, kResolve, kCapacity, kSegments };

  // One command the copy manager sends on the initiator's session, and what
  // it needs to send it again after a unit attention.
  struct InternalCommand {
    TargetCommand cmd;
    bool prepared = false;
    bool lost_target = false;  // its LUN now names another device than resolved
    std::atomic<bool> completed{false};
    const CommandRoute* route = nullptr;
    std::array<uint8_t, 16> cdb{};
    uint8_t cdb_len = 0;
    uint32_t expected = 0;
    DataDirection direction = DataDirection::kNone;
    const InternalCommand* data_from = nullptr;  // a WRITE's data: that READ's
    int unit_attentions = 0;
    // BUSY / TASK SET FULL answers in a row, and when the first came.
    int busy_answers = 0;
    DelayedCalls::Clock::time_point busy_since;
    bool good() const { return !lost_target && cmd.status == status::kGood; }
  };

  struct Target {
    const CommandRoute* route = nullptr;
    uint32_t block_size = 0;
    uint64_t blocks = 0;
    uint32_t max_chunk_blocks = 0;
  };

  // A READ then WRITE of one chunk of the current segment.
  struct Chunk {
    enum class State { kFree, kReading, kWriting };
    State state = State::kFree;
    InternalCommand read, write;
    uint64_t index = 0;   // in copy order within the segment
    uint32_t offset = 0;  // blocks from the segment's start
    uint32_t blocks = 0;
    bool extra = false;  // holds one of CopyManager's shared extra chunks
  };

  // copy_job.cpp
  void kick();
  bool step();
  void post_completion(InternalCommand& c);
  void drop_hold();
  void issue(InternalCommand& c, const CommandRoute* route, std::span<const uint8_t> cdb,
             uint32_t expected, DataDirection dir, const InternalCommand* data_from = nullptr);
  void send(InternalCommand& c);
  void release(InternalCommand& c);
  bool take(InternalCommand& c);
  bool retry_later(InternalCommand& c);
  void resend(InternalCommand& c);
  bool finish_good();
  bool finish_aborted();
  bool fail(const scsi::SenseBuilder& b);
  scsi::SenseData failure_sense(const InternalCommand& c, bool source) const;
  bool fail_from(const InternalCommand& c, bool source);
  void end(uint8_t st, std::span<const uint8_t> sense);

  // copy_target_resolution.cpp
  void order_candidates();
  bool resolve_next();
  bool resolved_candidate();
  bool ask_capacity();
  bool capacity_known();

  // copy_segment_execution.cpp
  bool start_segment();
  bool segment_valid(const scsi::CopySegment& s);
  bool segment_events();
  void chunk_read(Chunk& k);
  void chunk_written(Chunk& k);
  void chunk_failed(Chunk& k, const InternalCommand& c, bool source);
  void free_chunk(Chunk& k);
  bool issue_chunks();
  bool needed(const InternalCommand& c) const;

  CopyManager& manager_;
  TargetCommand& cmd_;
  Session* session_;
  const ExportedDevice* device_;
  uint64_t own_lun_;
  scsi::CopyParameterList list_;
  std::optional<CopyResultRecords::Key> key_;
  std::shared_ptr<const LunTable> table_;  // keeps the resolved routes alive
  std::atomic<uint32_t> events_{0};
  // The job's own (dropped when it ended) and one per completion being
  // posted: the last drop deletes the job.
  std::atomic<uint32_t> holds_{1};
  std::atomic<bool> aborted_{false};
  Phase phase_ = Phase::kStart;

  // Resolution: INQUIRY (VPD 83h) and READ CAPACITY(16), one at a time.
  InternalCommand probe_;
  std::vector<const CommandRoute*> candidates_;
  std::vector<std::vector<uint8_t>> pages_;  // VPD 83h per candidate, empty: none
  std::vector<bool> asked_;
  size_t candidate_ = 0;
  std::vector<Target> targets_;
  size_t capacity_of_ = 0;

  // Segments.
  size_t segment_ = 0;
  std::array<Chunk, kChunksInFlight> chunks_;
  size_t depth_ = 1;     // chunks allowed in flight for this segment
  uint32_t issued_ = 0;  // blocks of the segment whose READ was sent
  uint64_t written_blocks_ = 0;
  uint64_t next_index_ = 0;  // of the next chunk
  uint32_t chunk_blocks_ = 0;
  bool backwards_ = false;
  // The first failed chunk in copy order, and its sense: what a copy moving
  // one chunk at a time would have reported.
  std::optional<uint64_t> failed_index_;
  scsi::SenseData failed_sense_;
  uint64_t bytes_ = 0;
};

}  // namespace scstu::core
