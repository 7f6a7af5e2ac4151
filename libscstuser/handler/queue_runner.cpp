#include "handler/queue_runner.h"

#include <poll.h>

#include <cerrno>
#include <cstdio>
#include <cstring>

#include "handler/ring_attachment.h"
#include "ring/descriptor_store.h"
#include "ring/idle_spin.h"

namespace scstu {
namespace {

// SPC-4 4.5.6 fixed-format sense: HARDWARE ERROR, INTERNAL TARGET FAILURE
// (44h/00h): what an initiator gets for a descriptor the producer garbled.
constexpr uint8_t kInternalTargetFailure[18] = {0x70, 0, 0x04, 0, 0, 0,    0,
                                                10,   0, 0,    0, 0, 0x44, 0x00};

// The runner whose queue thread is dispatching a batch right now, if this
// thread is one: its completions join the batch instead of taking the lock.
thread_local const QueueRunner* t_batching = nullptr;

}  // namespace

QueueRunner::QueueRunner(const Context& ctx, uint32_t queue)
    : ctx_(ctx),
      queue_(queue),
      depth_(ctx.attachment->header().queue_depth),
      region_(ctx.attachment->region()),
      sq_(&region_.ctl(queue)->sq, region_.sq_ring(queue), depth_),
      cq_(&region_.ctl(queue)->cq, region_.cq_ring(queue), depth_),
      slots_(depth_),
      tasks_(new TaskRecord[depth_]) {
  const scstu_region_header& h = region_.header();
  limits_ = ring::CmdLimits{h.data_size, h.max_io_bytes, h.features};
  iov_scratch_.resize(SCSTU_MAX_IOV);
  batch_.reserve(depth_);
  for (Slot& s : slots_) s.iov.reserve(SCSTU_INLINE_IOV);
}

int QueueRunner::run(std::string* error) {
  for (;;) {
    if (ctx_.stopping->load(std::memory_order_relaxed)) return 0;
    uint32_t n = sq_.available();
    if (n == ring::RingReader::kCorrupt) {
      *error = "queue " + std::to_string(queue_) + ": producer's submission tail is more than " +
               std::to_string(depth_) + " entries ahead";
      return -EPROTO;
    }
    if (n == 0) {
      if (!wait_for_work()) return 0;
      continue;
    }
    refs_.fetch_add(n, std::memory_order_relaxed);
    t_batching = this;
    for (uint32_t i = 0; i < n; ++i) {
      // Descriptors are written by the other CPU: start fetching a few ahead.
      if (i + kPrefetchAhead < n) prefetch_cmd(sq_.peek(i + kPrefetchAhead));
      // Slots are consumed after the batch: a reply published meanwhile
      // lets the producer reuse only slots already read here.
      if (process(sq_.peek(i), error) != Outcome::kOk) {
        // The rest of the batch never reached the handler: drop their refs.
        drop_refs(n - i);
        t_batching = nullptr;
        flush_batch();
        return -EPROTO;
      }
      // Publish completions in chunks while the batch goes on: a polling
      // producer handles them (and resubmits) while this thread works on the
      // rest, so the two sides overlap instead of taking turns with whole
      // batches. A sleeping one would only be woken more often (on a busy
      // machine each wake-up waits for a CPU): it gets the whole batch.
      if (batch_.size() >= kPublishEvery && !cq_.reader_sleeping()) flush_batch();
    }
    sq_.consume(n);
    t_batching = nullptr;
    flush_batch();
  }
}

void QueueRunner::prefetch_cmd(uint32_t tag) const {
  if (tag >= depth_) return;  // the peer's value: checked before it forms an address
  const char* p = reinterpret_cast<const char*>(&region_.cmds(queue_)[tag]);
  __builtin_prefetch(p);
  __builtin_prefetch(p + 64);
  // Its completion is written soon: the fixed fields' line, in exclusive state.
  ring::prefetch_for_write(&region_.cpls(queue_)[tag]);
}

bool QueueRunner::wait_for_work() {
  if (spin_.spin([&] { return sq_.available() != 0; })) return true;
  if (!sq_.prepare_sleep()) {
    spin_.waited(0);
    return true;
  }
  pollfd fds[2] = {{ctx_.attachment->wait_fd(queue_), POLLIN, 0}, {ctx_.exit_fd, POLLIN, 0}};
  const uint64_t t0 = ring::monotonic_nanos();
  while (poll(fds, 2, -1) < 0 && errno == EINTR) {
  }
  spin_.waited(ring::monotonic_nanos() - t0);
  ctx_.attachment->drain_wait_fd(queue_);
  sq_.end_sleep();
  return fds[1].revents == 0;
}

QueueRunner::Outcome QueueRunner::process(uint32_t tag, std::string* error) {
  if (tag >= depth_) {
    *error = "queue " + std::to_string(queue_) + ": producer submitted tag " + std::to_string(tag) +
             " >= queue depth " + std::to_string(depth_);
    return Outcome::kViolation;
  }
  TaskRecord& task = tasks_[tag];
  if (task.state.load(std::memory_order_acquire) != TaskRecord::kIdle) {
    *error = "queue " + std::to_string(queue_) + ": producer resubmitted outstanding tag " +
             std::to_string(tag);
    return Outcome::kViolation;
  }
  Slot& slot = slots_[tag];
  // Copy first, then validate and use only the copy.
  std::memcpy(&slot.cmd, &region_.cmds(queue_)[tag], sizeof(scstu_cmd));
  const scstu_cmd& cmd = slot.cmd;
  task.seq.store(cmd.seq, std::memory_order_relaxed);
  task.lun.store(cmd.lun, std::memory_order_relaxed);
  task.session_id.store(cmd.session_id, std::memory_order_relaxed);
  task.kind.store(cmd.kind, std::memory_order_relaxed);
  task.state.store(TaskRecord::kOutstanding, std::memory_order_release);

  if (const char* why = ring::validate_cmd(cmd, limits_)) {
    fail_invalid(tag, why);
    return Outcome::kOk;
  }
  std::span<const scstu_iov> iov(cmd.iov, cmd.nr_iov);
  if (cmd.flags & SCSTU_CMD_F_IOV_INDIRECT) {
    std::memcpy(iov_scratch_.data(), region_.data() + cmd.iov[0].offset,
                cmd.nr_iov * sizeof(scstu_iov));
    iov = {iov_scratch_.data(), cmd.nr_iov};
    if (const char* why = ring::validate_iov_list(iov, cmd.data_length, limits_)) {
      fail_invalid(tag, why);
      return Outcome::kOk;
    }
  }
  slot.iov.clear();
  for (const scstu_iov& v : iov) slot.iov.push_back({region_.data() + v.offset, v.len});

  switch (cmd.kind) {
    case SCSTU_KIND_SCSI:
      dispatch_scsi(tag, slot);
      break;
    case SCSTU_KIND_TMF:
      handle_tmf(tag, slot);
      break;
    case SCSTU_KIND_UNIT_EVENT:
      handle_unit_event(tag, slot);
      break;
    default:
      handle_session(tag, slot);
      break;
  }
  return Outcome::kOk;
}

void QueueRunner::dispatch_scsi(uint32_t tag, Slot& slot) {
  const scstu_cmd& cmd = slot.cmd;
  CommandRequest& r = slot.request;
  if (cmd.flags & SCSTU_CMD_F_CDB_IN_DATA) {
    slot.long_cdb.assign(region_.data() + cmd.cdb_offset,
                         region_.data() + cmd.cdb_offset + cmd.cdb_len);
    r.cdb = slot.long_cdb;
  } else {
    r.cdb = {cmd.cdb, cmd.cdb_len};
  }
  r.lun = cmd.lun;
  r.session = ctx_.sessions->find(session_cache_, cmd.session_id);
  r.task_attr = static_cast<TaskAttribute>(cmd.task_attr);
  r.direction = static_cast<DataDirection>(cmd.data_dir);
  r.data_length = cmd.data_length;
  r.expected_length = cmd.expected_length;
  r.bidi_read_length = cmd.data_dir == SCSTU_DIR_BIDI ? cmd.out_length : 0;
  r.read_only = (cmd.flags & SCSTU_CMD_F_READ_ONLY) != 0;
  r.tag = tag;
  r.queue = static_cast<uint16_t>(queue_);
  r.data = DataBuffer(slot.iov);
  ctx_.handler->command(CommandHandle(this, tag, &r));
}

void QueueRunner::handle_tmf(uint32_t tag, Slot& slot) {
  const scstu_tmf_desc& d = slot.cmd.tmf;
  TaskManagementRequest req;
  req.function = static_cast<scstu_tmf_function>(d.function);
  req.lun = slot.cmd.lun;
  req.session = ctx_.sessions->find(session_cache_, slot.cmd.session_id);
  req.ref_queue = static_cast<uint16_t>(d.ref_queue);
  req.ref_tag = d.ref_tag;
  auto& queues = *ctx_.queues;
  scstu_tmf_response response = SCSTU_TMF_COMPLETE;
  bool call_handler = true;
  // SAM-5 7: which tasks each function aborts. Marked before the handler
  // hears of it, so replies racing with the TMF come back as TASK ABORTED.
  switch (req.function) {
    case SCSTU_TMF_ABORT_TASK:
    case SCSTU_TMF_QUERY_TASK: {
      bool found = d.ref_queue < queues.size() && d.ref_tag < depth_ &&
                   (req.function == SCSTU_TMF_ABORT_TASK
                        ? queues[d.ref_queue]->abort_if(d.ref_tag, d.ref_seq)
                        : queues[d.ref_queue]->is_outstanding(d.ref_tag, d.ref_seq));
      if (!found) {
        // SAM-5 7.2 / 7.9: a task that is gone is "function complete".
        call_handler = false;
      } else if (req.function == SCSTU_TMF_QUERY_TASK) {
        response = SCSTU_TMF_SUCCEEDED;
      }
      break;
    }
    case SCSTU_TMF_ABORT_TASK_SET:
      for (auto& q : queues) q->abort_matching(false, req.lun, false, slot.cmd.session_id);
      break;
    case SCSTU_TMF_CLEAR_TASK_SET:
    case SCSTU_TMF_LUN_RESET:
      for (auto& q : queues) q->abort_matching(false, req.lun, true, 0);
      break;
    case SCSTU_TMF_TARGET_RESET:
      for (auto& q : queues) q->abort_matching(true, 0, true, 0);
      break;
    case SCSTU_TMF_I_T_NEXUS_LOSS:
      for (auto& q : queues) q->abort_matching(true, 0, false, slot.cmd.session_id);
      break;
    default:
      break;
  }
  if (call_handler) {
    scstu_tmf_response r = ctx_.handler->task_management(req);
    // A query answered by the library stays answered unless the handler knows better.
    if (!(req.function == SCSTU_TMF_QUERY_TASK && r == SCSTU_TMF_COMPLETE)) response = r;
    // A logical unit reset restores the saved mode pages (D_SENSE among them).
    ctx_.unit_state->publish(*ctx_.handler);
  }
  scstu_cpl cpl{};
  cpl.tmf_response = static_cast<uint8_t>(response);
  post(tag, cpl);
}

void QueueRunner::handle_session(uint32_t tag, Slot& slot) {
  scstu_cpl cpl{};
  if (slot.cmd.kind == SCSTU_KIND_SESS_ATTACH) {
    scstu_session_info wire;
    std::memcpy(&wire, slot.iov[0].iov_base, sizeof(wire));
    ctx_.sessions->attach(wire);
  } else {
    ctx_.sessions->detach(slot.cmd.session_id);
  }
  post(tag, cpl);
}

// ABI 1.2: a condition the producer's target core raised for this unit and
// nexus, kept with the handler's own unit attentions when it keeps any
// (LowLevelHandler::reported_luns_changed); the answer tells the producer
// whether it must report the condition itself.
void QueueRunner::handle_unit_event(uint32_t tag, Slot& slot) {
  const SessionInfo* session = ctx_.sessions->find(session_cache_, slot.cmd.session_id);
  scstu_cpl cpl{};
  cpl.tmf_response = SCSTU_TMF_COMPLETE;
  if (slot.cmd.unit.event == SCSTU_EVENT_REPORTED_LUNS_CHANGED) {
    cpl.tmf_response = ctx_.handler->reported_luns_changed(*session) ? SCSTU_TMF_SUCCEEDED
                                                                     : SCSTU_TMF_NOT_SUPPORTED;
  } else {
    ctx_.handler->reported_luns_read(*session);
  }
  post(tag, cpl);
}

void QueueRunner::fail_invalid(uint32_t tag, const char* why) {
  std::fprintf(stderr, "scstu: queue %u tag %u: invalid descriptor from the producer: %s\n", queue_,
               tag, why);
  scstu_cpl cpl{};
  if (slots_[tag].cmd.kind == SCSTU_KIND_TMF) {
    cpl.tmf_response = SCSTU_TMF_REJECTED;
  } else if (slots_[tag].cmd.kind == SCSTU_KIND_UNIT_EVENT) {
    cpl.tmf_response = SCSTU_TMF_NOT_SUPPORTED;  // not taken: the producer keeps it
  } else {
    cpl.status = status::kCheckCondition;
    cpl.sense_len = sizeof(kInternalTargetFailure);
    std::memcpy(cpl.sense, kInternalTargetFailure, sizeof(kInternalTargetFailure));
  }
  post(tag, cpl);
}

void QueueRunner::complete(uint32_t tag, const CommandReply& reply) {
  // Before the reply is published (ring_abi.h, scstu_handler_state).
  if (UnitStatePublisher::may_change(slots_[tag].cmd)) ctx_.unit_state->publish(*ctx_.handler);
  // Only the fixed fields and sense_len bytes of sense are written (post()):
  // zeroing all 128 bytes was a `rep stos` per command.
  scstu_cpl cpl;
  ring::zero_fill<ring::kCplHeaderBytes>(&cpl);
  cpl.status = reply.status;
  cpl.transferred = std::min(reply.transferred, slots_[tag].cmd.data_length);
  cpl.sense_len = static_cast<uint8_t>(std::min<size_t>(reply.sense.size(), SCSTU_SENSE_MAX));
  if (cpl.sense_len) std::memcpy(cpl.sense, reply.sense.data(), cpl.sense_len);
  post(tag, cpl);
}

// Fills in tag/seq (and TASK ABORTED for an aborted command), writes the
// descriptor and publishes the tag.
void QueueRunner::post(uint32_t tag, scstu_cpl& cpl) {
  TaskRecord& task = tasks_[tag];
  cpl.tag = static_cast<uint16_t>(tag);
  cpl.seq = slots_[tag].cmd.seq;
  if (task.state.exchange(TaskRecord::kIdle, std::memory_order_acq_rel) == TaskRecord::kAborted &&
      slots_[tag].cmd.kind == SCSTU_KIND_SCSI) {
    // command.h: an aborted command's reply is discarded.
    cpl = scstu_cpl{};
    cpl.tag = static_cast<uint16_t>(tag);
    cpl.seq = slots_[tag].cmd.seq;
    cpl.status = status::kTaskAborted;
  }
  // The fixed fields and sense_len bytes of sense (ring_abi.h: the reader
  // looks at no more): one cache line when there is no sense.
  const size_t bytes = ring::kCplHeaderBytes + cpl.sense_len;
  if (t_batching == this) {
    // On the queue thread inside run(): publish with the batch.
    std::memcpy(&region_.cpls(queue_)[tag], &cpl, bytes);
    batch_.push_back(tag);
    return;
  }
  lock();
  if (!dead_) {
    std::memcpy(&region_.cpls(queue_)[tag], &cpl, bytes);
    cq_.push(tag);
    if (cq_.publish()) ctx_.attachment->kick(queue_);
  }
  unlock();
  drop_refs(1);
}

void QueueRunner::flush_batch() {
  if (batch_.empty()) return;
  uint32_t n = static_cast<uint32_t>(batch_.size());
  lock();
  for (uint32_t tag : batch_) cq_.push(tag);
  if (cq_.publish()) ctx_.attachment->kick(queue_);
  unlock();
  batch_.clear();
  drop_refs(n);
}

void QueueRunner::drop_refs(uint32_t n) {
  uint32_t before = refs_.fetch_sub(n, std::memory_order_acq_rel);
  if (before == (kDead | n)) {
    if (ctx_.live_queues->fetch_sub(1, std::memory_order_acq_rel) == 1) ctx_.destroy(ctx_.owner);
  }
}

void QueueRunner::mark_dead() {
  lock();
  dead_ = true;
  unlock();
}

void QueueRunner::release() {
  uint32_t before = refs_.fetch_or(kDead, std::memory_order_acq_rel);
  if (before == 0) {
    if (ctx_.live_queues->fetch_sub(1, std::memory_order_acq_rel) == 1) ctx_.destroy(ctx_.owner);
  }
}

bool QueueRunner::is_outstanding(uint32_t tag, uint32_t seq) const {
  const TaskRecord& t = tasks_[tag];
  return t.state.load(std::memory_order_acquire) == TaskRecord::kOutstanding &&
         t.seq.load(std::memory_order_relaxed) == seq;
}

bool QueueRunner::abort_if(uint32_t tag, uint32_t seq) {
  TaskRecord& t = tasks_[tag];
  if (t.seq.load(std::memory_order_relaxed) != seq) return false;
  uint32_t expected = TaskRecord::kOutstanding;
  return t.state.compare_exchange_strong(expected, TaskRecord::kAborted, std::memory_order_acq_rel);
}

void QueueRunner::abort_matching(bool any_lun, uint64_t lun, bool any_session,
                                 uint64_t session_id) {
  for (uint32_t tag = 0; tag < depth_; ++tag) {
    TaskRecord& t = tasks_[tag];
    if (t.state.load(std::memory_order_acquire) != TaskRecord::kOutstanding) continue;
    if (!any_lun && t.lun.load(std::memory_order_relaxed) != lun) continue;
    if (!any_session && t.session_id.load(std::memory_order_relaxed) != session_id) continue;
    // Only SCSI commands are aborted; the TMF entry itself is outstanding too.
    if (t.kind.load(std::memory_order_relaxed) != SCSTU_KIND_SCSI) continue;
    uint32_t expected = TaskRecord::kOutstanding;
    t.state.compare_exchange_strong(expected, TaskRecord::kAborted, std::memory_order_acq_rel);
  }
}

}  // namespace scstu
