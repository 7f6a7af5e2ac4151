// command.h - the low-level, FUSE-style handler API: one SCSI command, seen by
// a handler, completed exactly once.
//
// Like libfuse's fuse_req_t: the handler gets a CommandHandle, may keep it,
// move it to another thread, and later completes it with exactly one reply.
// complete() is &&-qualified, so a second completion is a use-after-move that
// the compiler and clang-tidy flag; in debug builds a double completion aborts
// and a handle destroyed without a reply aborts with the command's tag. In
// release builds a forgotten handle completes with CHECK CONDITION, HARDWARE
// ERROR / INTERNAL TARGET FAILURE, so an initiator never hangs on it.
#pragma once

#include <sys/uio.h>

#include <cstdint>
#include <span>
#include <string>

#include "ring/ring_abi.h"

namespace scstu {

enum class DataDirection : uint8_t {
  kNone = SCSTU_DIR_NONE,
  kWrite = SCSTU_DIR_WRITE,  // initiator -> device
  kRead = SCSTU_DIR_READ,    // device -> initiator
  kBidi = SCSTU_DIR_BIDI,
};

enum class TaskAttribute : uint8_t {
  kSimple = SCSTU_TASK_SIMPLE,
  kOrdered = SCSTU_TASK_ORDERED,
  kHeadOfQueue = SCSTU_TASK_HEAD_OF_QUEUE,
  kAca = SCSTU_TASK_ACA,
};

// SAM-5 status codes.
namespace status {
inline constexpr uint8_t kGood = 0x00;
inline constexpr uint8_t kCheckCondition = 0x02;
inline constexpr uint8_t kConditionMet = 0x04;
inline constexpr uint8_t kBusy = 0x08;
inline constexpr uint8_t kReservationConflict = 0x18;
inline constexpr uint8_t kTaskSetFull = 0x28;
inline constexpr uint8_t kAcaActive = 0x30;
inline constexpr uint8_t kTaskAborted = 0x40;
}  // namespace status

// An I_T nexus as the handler sees it (SCSTU_KIND_SESS_ATTACH).
struct SessionInfo {
  uint64_t id = 0;
  uint16_t relative_port = 1;
  uint16_t protocol_id = 0xF;
  std::string initiator_name;  // iSCSI name; "local" for the kernel shim
  std::string transport_id;
  std::string target_name;
};

// The command's data buffer: a scatter list over memory the handler may read
// and write in place (the ring's data area, or a producer's own memory when the
// device runs in-process). The lengths add up to CommandRequest::data_length.
class DataBuffer {
 public:
  DataBuffer() = default;
  explicit DataBuffer(std::span<const iovec> segments) : segments_(segments) {}

  std::span<const iovec> segments() const { return segments_; }
  size_t size() const;
  // Copy between the buffer (starting at byte `offset`) and flat memory.
  // Return the number of bytes copied (short at the end of the buffer).
  size_t copy_from(size_t offset, std::span<const uint8_t> src) const;
  size_t copy_to(size_t offset, std::span<uint8_t> dst) const;
  // Zero bytes [offset, offset + len) of the buffer.
  void zero(size_t offset, size_t len) const;
  // The whole buffer as one span when it is a single segment, else empty.
  std::span<uint8_t> contiguous() const;

 private:
  std::span<const iovec> segments_;
};

// What the producer sent. Everything here was validated by the library before
// the handler sees it (cdb_len, iov bounds, lengths).
struct CommandRequest {
  std::span<const uint8_t> cdb;
  uint64_t lun = 0;                 // SAM-5 4.6 8-byte LUN, as a big-endian u64
  const SessionInfo* session = nullptr;  // never null for SCSI commands
  TaskAttribute task_attr = TaskAttribute::kSimple;
  DataDirection direction = DataDirection::kNone;
  uint32_t data_length = 0;         // buffer size (authoritative, decoded from the CDB)
  uint32_t expected_length = 0;     // initiator's expectation, for residuals only
  uint32_t bidi_read_length = 0;    // kBidi: bytes of the read part
  bool read_only = false;           // LUN mapped READ_ONLY for this nexus
  uint32_t tag = 0;                 // unique among this queue's outstanding commands
  uint16_t queue = 0;
  DataBuffer data;
};

// The one reply a command gets.
struct CommandReply {
  uint8_t status = status::kGood;
  // Reads: bytes of valid data, every one written by the handler (the target
  // sends these; the buffer may hold an earlier command's data). Writes:
  // bytes consumed.
  uint32_t transferred = 0;
  std::span<const uint8_t> sense;   // <= SCSTU_SENSE_MAX bytes, copied on complete()
};

// Where replies go: the ring consumer (handler process) or an in-process
// producer. Implemented by the library, not by handlers.
class CommandSink {
 public:
  virtual void complete(uint32_t token, const CommandReply& reply) = 0;

 protected:
  ~CommandSink() = default;
};

// Move-only handle to one outstanding command.
class CommandHandle {
 public:
  CommandHandle() = default;
  CommandHandle(CommandSink* sink, uint32_t token, const CommandRequest* request)
      : sink_(sink), token_(token), request_(request) {}
  CommandHandle(CommandHandle&& other) noexcept;
  CommandHandle& operator=(CommandHandle&& other) noexcept;
  CommandHandle(const CommandHandle&) = delete;
  CommandHandle& operator=(const CommandHandle&) = delete;
  ~CommandHandle();

  const CommandRequest& request() const { return *request_; }
  explicit operator bool() const { return sink_ != nullptr; }

  // The replies. Each consumes the handle.
  void complete(const CommandReply& reply) &&;
  void complete_good(uint32_t transferred) && {
    std::move(*this).complete(CommandReply{status::kGood, transferred, {}});
  }
  void complete_check_condition(std::span<const uint8_t> sense) && {
    std::move(*this).complete(CommandReply{status::kCheckCondition, 0, sense});
  }
  void complete_status(uint8_t scsi_status) && {
    std::move(*this).complete(CommandReply{scsi_status, 0, {}});
  }

 private:
  CommandSink* sink_ = nullptr;
  uint32_t token_ = 0;
  const CommandRequest* request_ = nullptr;
};

// A task management request forwarded to the handler (SAM-5 7).
struct TaskManagementRequest {
  scstu_tmf_function function = SCSTU_TMF_ABORT_TASK;
  uint64_t lun = 0;
  const SessionInfo* session = nullptr;
  uint16_t ref_queue = 0;   // ABORT/QUERY TASK: the referenced command
  uint32_t ref_tag = 0;
};

// The low-level handler interface. The library calls these from its queue
// threads (one per ring queue); implementations must be thread-safe across
// queues. Valid replies for command(): any CommandReply, once.
class LowLevelHandler {
 public:
  virtual ~LowLevelHandler() = default;
  virtual void command(CommandHandle cmd) = 0;
  // Return the SAM-5 service response. Called after the library has stopped
  // handing out the affected commands; aborted commands the handler still
  // holds must still be completed (their replies are discarded).
  virtual scstu_tmf_response task_management(const TaskManagementRequest& /*req*/) {
    return SCSTU_TMF_COMPLETE;
  }
  virtual void session_attached(const SessionInfo& /*session*/) {}
  virtual void session_detached(const SessionInfo& /*session*/) {}
  // The target core's part of the logical unit's state, for a handler that
  // keeps it (scsi::LogicalUnit does; the defaults leave it to the core).
  // Embedded mode calls these directly; split mode from the queue threads,
  // for unit events on the ring (ABI 1.2, HandlerOptions::unit_state).
  // REPORTED LUNS DATA HAS CHANGED for this nexus (SPC-4 6.33): true when
  // the handler queues it among its own unit attentions, in their SAM-5
  // precedence; false: the core reports it itself, ahead of the handler's.
  virtual bool reported_luns_changed(const SessionInfo& /*session*/) { return false; }
  // REPORT LUNS was answered for this nexus: that condition is cleared.
  virtual void reported_luns_read(const SessionInfo& /*session*/) {}
  // SPC-4 4.5.1: the sense format the logical unit returns now (the control
  // mode page's D_SENSE), for the sense the core builds on its behalf. Split
  // mode publishes it at attach, before a MODE SELECT's reply and after each
  // TMF: a handler whose format changes otherwise is seen at the next of these.
  virtual bool descriptor_sense() const { return false; }
};

}  // namespace scstu
