#include "core/copy_job.h"

#include <algorithm>
#include <cstring>

#include "core/copy_manager.h"
#include "core/exported_device.h"
#include "core/iovec_copy.h"
#include "core/lun.h"
#include "core/session.h"
#include "core/target_core.h"

namespace scstu::core {

namespace {

constexpr int kUnitAttentionRetries = 8;
constexpr uint8_t kFixedSenseBytes = 18;

constexpr scsi::SenseCode kCopyAbortedNoAdditionalSense{0x0A, 0x00, 0x00};
constexpr scsi::SenseCode kCopyAbortedWriteProtected{0x0A, 0x27, 0x00};
constexpr scsi::SenseCode kCopyAbortedReadError{0x0A, 0x11, 0x00};
constexpr scsi::SenseCode kCopyAbortedWriteError{0x0A, 0x0C, 0x00};
// A copy target answered with an error that is neither of the above
// (RESERVATION CONFLICT, BUSY, TASK ABORTED, NOT READY, ...).
constexpr scsi::SenseCode kThirdPartyDeviceFailure{0x0A, 0x0D, 0x01};

}  // namespace

void complete_command(TargetCommand& cmd, uint8_t st, std::span<const uint8_t> sense,
                      uint32_t transferred) {
  cmd.status = st;
  cmd.sense_len = static_cast<uint8_t>(std::min<size_t>(sense.size(), SCSTU_SENSE_MAX));
  if (cmd.sense_len) std::memcpy(cmd.sense.data(), sense.data(), cmd.sense_len);
  cmd.transferred = transferred;
  cmd.done(cmd);
}

CopyJob::CopyJob(CopyManager& manager, TargetCommand& cmd, scsi::CopyParameterList list,
                 std::optional<CopyResultRecords::Key> key)
    : manager_(manager),
      cmd_(cmd),
      session_(cmd.session),
      device_(cmd.route->exported()),
      own_lun_(cmd.route->lun()),
      list_(std::move(list)),
      key_(key),
      table_(cmd.session->table()) {
  auto arm = [this](InternalCommand& c) {
    c.cmd.done = [this, &c](TargetCommand&) { post_completion(c); };
  };
  arm(probe_);
  for (Chunk& k : chunks_) {
    arm(k.read);
    arm(k.write);
  }
}

// One event (the start, or an internal command finished) per call.
// Completions may come inside prepare()/execute() on this thread or on a
// device's thread: whoever finds the job idle runs its steps, others only
// count the event, so steps never nest or overlap. A step looks at the
// `completed` flags, so one step may handle several completions and a later
// one none.
void CopyJob::kick() {
  if (events_.fetch_add(1, std::memory_order_acq_rel) != 0) return;
  for (;;) {
    if (step()) {
      // events_ stays above 0: later kicks return at once.
      manager_.retire(this);
      return drop_hold();  // the job's own; may delete this
    }
    if (events_.fetch_sub(1, std::memory_order_acq_rel) == 1) return;
  }
}

// A command completed (on any thread). Once `completed` is set another
// thread's step may end the job, before this thread's kick(): the hold keeps
// the object alive until then.
void CopyJob::post_completion(InternalCommand& c) {
  holds_.fetch_add(1, std::memory_order_acq_rel);
  c.completed.store(true, std::memory_order_release);
  kick();
  drop_hold();
}

void CopyJob::drop_hold() {
  if (holds_.fetch_sub(1, std::memory_order_acq_rel) == 1) delete this;
}

// True once the EXTENDED COPY has been completed.
bool CopyJob::step() {
  switch (phase_) {
    case Phase::kStart:
      if (aborted_.load(std::memory_order_acquire)) return finish_aborted();
      order_candidates();
      phase_ = Phase::kResolve;
      return resolve_next();
    case Phase::kResolve:
      if (!take(probe_)) return false;
      if (aborted_.load(std::memory_order_acquire)) return finish_aborted();
      return resolved_candidate();
    case Phase::kCapacity:
      if (!take(probe_)) return false;
      if (aborted_.load(std::memory_order_acquire)) return finish_aborted();
      return capacity_known();
    case Phase::kSegments:
      return segment_events();
  }
  return false;
}

// ---- internal commands ----

void CopyJob::issue(InternalCommand& c, const CommandRoute* route, std::span<const uint8_t> cdb,
                    uint32_t expected, DataDirection dir, const InternalCommand* data_from) {
  c.route = route;
  std::copy(cdb.begin(), cdb.end(), c.cdb.begin());
  c.cdb_len = static_cast<uint8_t>(cdb.size());
  c.expected = expected;
  c.direction = dir;
  c.data_from = data_from;
  c.unit_attentions = 0;
  c.busy_answers = 0;
  send(c);
}

void CopyJob::send(InternalCommand& c) {
  TargetCommand& t = c.cmd;
  c.lost_target = false;
  c.completed.store(false, std::memory_order_relaxed);
  t.session = session_;
  t.lun = encode_lun(c.route->lun());
  t.cdb.fill(0);
  std::memcpy(t.cdb.data(), c.cdb.data(), c.cdb_len);
  t.cdb_len = c.cdb_len;
  t.task_attr = TaskAttribute::kSimple;
  t.expected_length = c.expected;
  t.expected_direction = c.direction;
  c.prepared = true;
  TargetCore& core = manager_.core_;
  if (!core.prepare(t)) return;  // done() ran: an answer of the core's
  // The LUN was resolved on an earlier inventory: never write to another
  // device that took its number since.
  if (t.route.get() != c.route && (!t.route || t.route->exported() != c.route->exported())) {
    c.lost_target = true;
    core.release(t);
    c.prepared = false;
    post_completion(c);
    return;
  }
  if (c.data_from) copy_between(c.data_from->cmd.buffer, t.buffer, t.data_length);
  core.execute(t);
}

void CopyJob::release(InternalCommand& c) {
  if (!c.prepared) return;
  manager_.core_.release(c.cmd);
  c.prepared = false;
}

// True when `c` has completed with its final answer. SAM-5 5.14: a copy
// target's UNIT ATTENTION is the copy manager's to take; the command is sent
// again (false: an event will follow). SAM-5 5.3: BUSY and TASK SET FULL
// mean "later"; the command is sent again after a pause (retry_later).
bool CopyJob::take(InternalCommand& c) {
  if (!c.completed.exchange(false, std::memory_order_acq_rel)) return false;
  if (c.lost_target) return true;
  const TargetCommand& t = c.cmd;
  if (t.status == status::kBusy || t.status == status::kTaskSetFull) return !retry_later(c);
  c.busy_answers = 0;
  if (t.status != status::kCheckCondition || t.sense_len < 3) return true;
  const scsi::ParsedSense s = scsi::parse_sense({t.sense.data(), t.sense_len});
  if (!s.valid || s.code.sense_key() != scsi::SenseKey::kUnitAttention) return true;
  if (++c.unit_attentions > kUnitAttentionRetries) return true;
  release(c);
  send(c);
  return false;
}

// True when `c` will be sent again after a pause; false when the copy was
// aborted, `c` is no longer needed, or it has been refused for the options' busy_retry_limit (its
// BUSY / TASK SET FULL is then its final answer). Until then the command
// counts as in flight: its chunk keeps its place (and buffers) and the copy
// does not end without it.
bool CopyJob::retry_later(InternalCommand& c) {
  if (aborted_.load(std::memory_order_acquire) || !needed(c)) return false;
  const CopyManagerOptions& o = manager_.options_;
  const auto now = DelayedCalls::Clock::now();
  if (c.busy_answers == 0) c.busy_since = now;
  if (now - c.busy_since >= o.busy_retry_limit) return false;
  const int doublings = std::min(c.busy_answers, 20);
  const auto delay = std::min(o.busy_first_delay * (int64_t{1} << doublings), o.busy_max_delay);
  ++c.busy_answers;
  release(c);
  manager_.retries_.at(now + delay, this, [this, &c] { resend(c); });
  // An abort() that came after the check above hurried nothing of ours yet.
  if (aborted_.load(std::memory_order_acquire)) manager_.retries_.hurry(this);
  return true;
}

// On the retry thread. `c` is not complete, so the job is still alive; it
// may end (and be deleted) inside send() or kick(): nothing after them.
void CopyJob::resend(InternalCommand& c) {
  if (!aborted_.load(std::memory_order_acquire)) return send(c);
  // Aborted while waiting: the BUSY / TASK SET FULL stays its answer.
  post_completion(c);
}

void CopyJob::abort() {
  aborted_.store(true, std::memory_order_release);
  manager_.retries_.hurry(this);
}

// ---- the end ----

bool CopyJob::finish_good() {
  release(probe_);
  end(status::kGood, {});
  return true;
}

bool CopyJob::finish_aborted() {
  release(probe_);
  // SAM-5 5.6: the task was aborted; the transport answers it (or not).
  end(status::kTaskAborted, {});
  return true;
}

bool CopyJob::fail(const scsi::SenseBuilder& b) {
  // SPC-4 6.4.3: COMMAND-SPECIFIC INFORMATION names the failed segment.
  const scsi::SenseData sense = scsi::SenseBuilder(b).command_specific(segment_).build();
  release(probe_);
  end(status::kCheckCondition, sense.span());
  return true;
}

// A copy target's failure: COPY ABORTED with its status and sense data at
// the SOURCE / DESTINATION SENSE DATA OFFSET (COMMAND-SPECIFIC INFORMATION
// bytes 0 and 1, SPC-4 6.4.3).
scsi::SenseData CopyJob::failure_sense(const InternalCommand& ic, bool source) const {
  const TargetCommand& c = ic.cmd;
  scsi::SenseCode code = kThirdPartyDeviceFailure;
  std::optional<uint64_t> information;
  if (ic.lost_target) {
    code = scsi::kCopyTargetDeviceNotReachable;
  } else if (c.status == status::kCheckCondition) {
    const scsi::ParsedSense t = scsi::parse_sense({c.sense.data(), c.sense_len});
    if (t.code.sense_key() == scsi::SenseKey::kDataProtect) {
      code = kCopyAbortedWriteProtected;
    } else if (t.code.sense_key() == scsi::SenseKey::kMediumError ||
               t.code.sense_key() == scsi::SenseKey::kHardwareError) {
      code = source ? kCopyAbortedReadError : kCopyAbortedWriteError;
    } else if (t.code == scsi::kLbaOutOfRange) {
      code = kCopyAbortedNoAdditionalSense;
    }
    information = t.information;
  }
  const uint8_t offset = ic.lost_target ? 0 : kFixedSenseBytes;
  const uint32_t csi = (uint32_t{source ? offset : uint8_t{0}} << 24) |
                       (uint32_t{source ? uint8_t{0} : offset} << 16) |
                       static_cast<uint16_t>(segment_);
  scsi::SenseBuilder b(scsi::SenseFormat::kFixed, code);
  b.command_specific(csi);
  if (information) b.information(*information);
  scsi::SenseData sense = b.build();
  if (!ic.lost_target) {
    // Status byte, then as much of the target's sense as fits.
    sense.bytes[sense.length++] = c.status;
    const size_t room = sense.bytes.size() - sense.length;
    const size_t n = std::min<size_t>(room, c.sense_len);
    std::memcpy(&sense.bytes[sense.length], c.sense.data(), n);
    sense.length = static_cast<uint8_t>(sense.length + n);
    sense.bytes[7] = static_cast<uint8_t>(sense.length - 8);  // ADDITIONAL SENSE LENGTH
  }
  return sense;
}

bool CopyJob::fail_from(const InternalCommand& c, bool source) {
  const scsi::SenseData sense = failure_sense(c, source);
  release(probe_);
  end(status::kCheckCondition, sense.span());
  return true;
}

void CopyJob::end(uint8_t st, std::span<const uint8_t> sense) {
  if (key_) {
    scsi::CopyResult r;
    r.done = true;
    r.status = st;
    r.segments_processed = static_cast<uint16_t>(segment_);
    r.bytes = bytes_;
    r.sense.assign(sense.begin(), sense.end());
    manager_.records_.finish(*key_, r);
  }
  complete_command(cmd_, st, sense, 0);
}

}  // namespace scstu::core
