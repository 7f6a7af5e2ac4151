#include <poll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <climits>
#include <cstdarg>
#include <cstring>

#include "core/session.h"
#include "core/target_core.h"
#include "iscsi/connection.h"
#include "iscsi/connection_internal.h"
#include "iscsi/crc32c.h"
#include "iscsi/server_impl.h"
#include "iscsi/text_keys.h"

namespace scstu::iscsi {

// ---------------------------------------------------------------- completions

void Connection::task_done(Task& task) {
  if (tls_connection == this) {
    local_done_.push_back(&task);
    return;
  }
  Task* head = done_stack_.load(std::memory_order_relaxed);
  do {
    task.next_done = head;
  } while (!done_stack_.compare_exchange_weak(head, &task, std::memory_order_seq_cst,
                                              std::memory_order_relaxed));
  if (sleeping_.load(std::memory_order_seq_cst)) {
    uint64_t one = 1;
    (void)!write(event_fd_, &one, sizeof(one));
  }
}

void Connection::tmf_done(PendingTmf& tmf) {
  PendingTmf* head = tmf_stack_.load(std::memory_order_relaxed);
  do {
    tmf.next_done = head;
  } while (!tmf_stack_.compare_exchange_weak(head, &tmf, std::memory_order_seq_cst,
                                             std::memory_order_relaxed));
  if (tls_connection != this && sleeping_.load(std::memory_order_seq_cst)) {
    uint64_t one = 1;
    (void)!write(event_fd_, &one, sizeof(one));
  }
}

void Connection::drain_completions() {
  apply_abort_marks();  // before completions: a marked task sends nothing
  while (!local_done_.empty()) {
    drain_.swap(local_done_);
    for (Task* t : drain_) complete_task(t);
    drain_.clear();
  }
  Task* list = done_stack_.exchange(nullptr, std::memory_order_acquire);
  Task* fifo = nullptr;  // the stack is LIFO; completions go out in order
  while (list) {
    Task* next = list->next_done;
    list->next_done = fifo;
    fifo = list;
    list = next;
  }
  while (fifo) {
    Task* next = fifo->next_done;
    complete_task(fifo);
    fifo = next;
  }
  PendingTmf* tl = tmf_stack_.exchange(nullptr, std::memory_order_acquire);
  while (tl) {
    PendingTmf* next = tl->next_done;
    finish_tmf(tl);
    tl = next;
  }
  // Completions that happened inside the calls above.
  while (!local_done_.empty()) {
    drain_.swap(local_done_);
    for (Task* t : drain_) complete_task(t);
    drain_.clear();
  }
}

void Connection::complete_task(Task* t) {
  t->completed = true;
  if (t->aborted) {
    if (!t->responded) {
      t->responded = true;
      remove_itt(t);
      push_release(t);
    }
    return;
  }
  // A command the core refused in prepare() completes at once; its
  // unsolicited Data-Out is still to be read and dropped before the response.
  if (t->unsol_open || t->r2t_count || t->r2t_next < t->write_len) return;
  send_response(t);
}

// ---------------------------------------------------------------- tasks

Task* Connection::alloc_task() {
  if (free_tasks_.empty()) return nullptr;
  Task* t = free_tasks_.back();
  free_tasks_.pop_back();
  t->in_use = true;
  t->immediate = t->prepared = t->executed = t->completed = t->aborted = t->responded = false;
  t->write_len = t->unsol_end = t->unsol_next = t->unsol_datasn = 0;
  t->unsol_open = false;
  t->r2t_next = t->r2tsn = t->datain_pdus = t->r2t_count = 0;
  for (auto& r : t->r2t) r.length = 0;
  t->next_done = nullptr;
  ++tasks_live_;
  return t;
}

void Connection::free_task(Task* t) {
  remove_itt(t);
  if (t->cmd.session) server_.core().release(t->cmd);
  t->cmd.session = nullptr;
  if (!t->immediate) {
    --active_;
    sess_->release_slot();
  }
  t->in_use = false;
  --tasks_live_;
  free_tasks_.push_back(t);
}

Task* Connection::find_task(uint32_t itt) { return itt_.find(itt); }

void Connection::remove_itt(Task* t) {
  if (itt_.erase(t->itt, t) && sess_ && sess_->tracks_itts()) sess_->release_itt(t->itt, t);
}

uint32_t Connection::max_cmdsn() { return sess_->max_cmdsn(); }

bool Connection::on_scsi_command(const Bhs& h) {
  ScsiCommandPdu c = ScsiCommandPdu::decode(h);
  uint32_t imm = h.data_length();
  if (discovery_) {
    if (!skip_payload(imm)) return false;
    return reject(h, RejectReason::kProtocolError, "SCSI command in a discovery session");
  }
  if (!check_cmdsn(h, c.cmdsn, c.immediate)) return skip_payload(imm);
  if (covered_) {
    // RFC 7143 11.5.1: numbered before a TMF in progress on its LUN, it is
    // one of the tasks that TMF terminates: never executed, no response.
    log("SCSI Command CmdSN %u (ITT 0x%08x) came after a TMF numbered later: terminated", c.cmdsn,
        c.itt);
    return skip_payload(imm);
  }
  // RFC 7143 11.2.1.8: a tag names one task of the session. Like SCST's
  // iscsi-scst, a duplicate is refused with Reject "Task in progress"; the
  // task already holding the tag goes on, and so does the connection. Unless
  // unsolicited Data-Out is to follow on this connection (F clear): it could
  // not be told from the live task's, so the connection goes (7.2, ERL 0).
  if (find_task(c.itt)) {
    if (!c.final) return protocol_error(h, "ITT in use, and Data-Out for it would follow");
    if (!skip_payload(imm)) return false;
    return reject(h, RejectReason::kTaskInProgress, "ITT already in use on this connection");
  }
  if (imm > 0 && !c.write) return protocol_error(h, "immediate data without the W bit");
  if (imm > 0 && !params_.immediate_data) return protocol_error(h, "ImmediateData=No");
  if (imm > params_.first_burst_length || imm > c.expected_length)
    return protocol_error(h, "immediate data beyond FirstBurstLength or the expected length");
  if (!c.final && (!c.write || params_.initial_r2t))
    return protocol_error(h, "unsolicited Data-Out announced where none may follow");
  uint32_t unsol_end = c.final ? imm : std::min(params_.first_burst_length, c.expected_length);
  if (!c.final && imm >= unsol_end)
    return protocol_error(h, "F bit clear although the first burst is complete");
  if (c.immediate && (tasks_live_ - active_) >= kImmediateTasks) {
    if (!skip_payload(imm)) return false;
    return reject(h, RejectReason::kImmediateCommandReject, "too many immediate commands");
  }
  // The window is the session's (4.2.2.1), shared by its connections.
  if (!c.immediate && !sess_->take_slot()) {
    if (!skip_payload(imm)) return false;
    return reject(h, RejectReason::kLongOperationReject, "command window full");
  }
  Task* t = alloc_task();
  if (!t) {
    if (!c.immediate) sess_->release_slot();
    if (!skip_payload(imm)) return false;
    return reject(h, RejectReason::kImmediateCommandReject, "no free task");
  }
  t->immediate = c.immediate;
  if (!c.immediate) ++active_;
  t->itt = c.itt;
  if (sess_->tracks_itts()) {
    // MC/S: another connection of the session may hold the tag.
    auto claim = sess_->claim_itt(t->itt, t);
    if (claim != IttTable<Task>::Insert::kDone) {
      free_task(t);
      if (!skip_payload(imm)) return false;
      if (claim == IttTable<Task>::Insert::kFull)
        return reject(h, RejectReason::kImmediateCommandReject, "no free task in the session");
      return reject(h, RejectReason::kTaskInProgress,
                    "ITT in use on another connection of the session");
    }
  }
  itt_.insert(t->itt, t);  // room: the table has slots for the whole task pool
  t->edtl = c.expected_length;
  core::TargetCommand& cmd = t->cmd;
  std::memcpy(cmd.cdb.data(), c.cdb.data(), 16);
  if (ext_cdb_len_) std::memcpy(cmd.cdb.data() + 16, ext_cdb_.data(), ext_cdb_len_);
  cmd.cdb_len = static_cast<uint16_t>(16 + ext_cdb_len_);
  cmd.lun = c.lun;
  cmd.session = session_.get();
  cmd.task_attr = task_attribute(c.attr);
  cmd.expected_length = c.expected_length;
  cmd.expected_direction = c.read && c.write ? DataDirection::kBidi
                           : c.write         ? DataDirection::kWrite
                           : c.read          ? DataDirection::kRead
                                             : DataDirection::kNone;
  t->prepared = server_.core().prepare(cmd);
  if (t->prepared) {
    if (cmd.direction == DataDirection::kWrite) t->write_len = cmd.data_length;
    if (cmd.direction == DataDirection::kBidi)
      t->write_len = cmd.data_length - cmd.bidi_read_length;
  }
  if (c.write) {
    t->unsol_end = unsol_end;
    uint32_t into = std::min(imm, t->write_len);
    if (!read_payload(cmd.buffer, 0, into, imm)) return false;
    t->unsol_next = imm;
    t->unsol_open = !c.final;
    t->r2t_next = unsol_end;
  } else if (!skip_payload(imm)) {
    return false;
  }
  if (t->prepared) send_r2ts(t);
  data_phase_check(t);
  return true;
}

void Connection::send_r2ts(Task* t) {
  uint32_t limit = std::min<uint32_t>(params_.max_outstanding_r2t, kMaxR2TPerTask);
  while (t->r2t_count < limit && t->r2t_next < t->write_len && !t->aborted) {
    OutstandingR2T* slot = nullptr;
    for (auto& r : t->r2t)
      if (r.length == 0) {
        slot = &r;
        break;
      }
    if (!slot) return;
    uint32_t len = std::min(params_.max_burst_length, t->write_len - t->r2t_next);
    if (next_ttt_ == kReservedTag) next_ttt_ = 1;
    *slot = OutstandingR2T{next_ttt_++, t->r2t_next, len, 0, 0};
    R2TPdu r;
    r.lun = t->cmd.lun;
    r.itt = t->itt;
    r.ttt = slot->ttt;
    r.statsn = statsn_;  // 11.8.3: StatSN is not advanced by an R2T
    r.expcmdsn = exp_cmdsn();
    r.maxcmdsn = max_cmdsn();
    r.r2tsn = t->r2tsn++;
    r.buffer_offset = slot->offset;
    r.desired_length = len;
    Bhs h;
    r.encode(h);
    push_pdu(h, nullptr, 0);
    t->r2t_next += len;
    ++t->r2t_count;
  }
}

void Connection::data_phase_check(Task* t) {
  if (t->unsol_open || t->r2t_count || t->r2t_next < t->write_len) return;
  if (t->aborted) return;
  if (t->prepared && !t->executed) {
    t->executed = true;
    server_.core().execute(t->cmd);
  } else if (t->completed && !t->responded) {
    send_response(t);
  }
}

bool Connection::on_data_out(const Bhs& h) {
  DataOutPdu d = DataOutPdu::decode(h);
  uint32_t len = h.data_length();
  Task* t = find_task(d.itt);
  if (!t || t->responded || t->aborted) {
    // The task was aborted or refused: its data is dropped (RFC 7143 4.2.3.3).
    return skip_payload(len);
  }
  uint32_t offset = d.buffer_offset;
  OutstandingR2T* r = nullptr;
  // Sequence errors fail the command, not the connection: the PDU lengths
  // are intact, so the stream stays in step (SBC/SAM: ABORTED COMMAND, DATA
  // OFFSET ERROR / DATA PHASE ERROR; RFC 7143 7.1.4 lets the target end a
  // command early with its status).
  if (d.ttt == kReservedTag) {
    if (!t->unsol_open) return fail_data_phase(t, h, 0x00, "unsolicited Data-Out not expected");
    if (d.datasn != t->unsol_datasn)
      return fail_data_phase(t, h, 0x00, "unsolicited Data-Out with wrong DataSN");
    if (offset != t->unsol_next) return fail_data_phase(t, h, 0x05, "unsolicited Data-Out offset");
    if (len > t->unsol_end - t->unsol_next)
      return fail_data_phase(t, h, 0x02, "unsolicited Data-Out beyond FirstBurstLength");
  } else {
    for (auto& s : t->r2t)
      if (s.length && s.ttt == d.ttt) r = &s;
    if (!r) return fail_data_phase(t, h, 0x01, "Data-Out for an unknown Target Transfer Tag");
    if (d.datasn != r->datasn) return fail_data_phase(t, h, 0x00, "Data-Out with wrong DataSN");
    if (offset != r->offset + r->received)
      return fail_data_phase(t, h, 0x05, "solicited Data-Out offset");
    if (len > r->length - r->received)
      return fail_data_phase(t, h, 0x02, "Data-Out beyond the R2T's Desired Data Transfer Length");
  }
  uint32_t into = offset < t->write_len ? std::min(len, t->write_len - offset) : 0;
  if (!read_payload(t->cmd.buffer, offset, into, len)) return false;
  if (!r) {
    t->unsol_next += len;
    ++t->unsol_datasn;
    if (d.final) {
      if (t->unsol_next != t->unsol_end)
        return fail_data_phase(t, h, 0x00, "unsolicited burst ends short of FirstBurstLength");
      t->unsol_open = false;
    }
  } else {
    r->received += len;
    ++r->datasn;
    if (d.final) {
      if (r->received != r->length)
        return fail_data_phase(t, h, 0x00, "Data-Out sequence ends short of the R2T's length");
      r->length = 0;
      --t->r2t_count;
      send_r2ts(t);
    }
  }
  data_phase_check(t);
  return true;
}

bool Connection::fail_data_phase(Task* t, const Bhs& h, uint8_t ascq, const char* why) {
  log("%s (ITT 0x%08x): %s; failing the command", opcode_name(h.opcode()), h.itt(), why);
  // The payload was not consumed yet when the check failed.
  if (h.opcode() == Opcode::kDataOut && !skip_payload(h.data_length())) return false;
  t->unsol_open = false;
  t->r2t_count = 0;
  t->r2t_next = t->write_len;
  for (auto& r : t->r2t) r.length = 0;
  if (t->responded || t->aborted) return true;
  if (t->prepared && !t->executed) {
    // Never executed: the core still has it prepared; answer it here.
    core::TargetCommand& cmd = t->cmd;
    cmd.status = status::kCheckCondition;
    cmd.transferred = 0;
    cmd.residual = core::Residual::kNone;
    cmd.residual_count = 0;
    cmd.sense.fill(0);
    cmd.sense[0] = 0x70;  // SPC-4 4.5.3 fixed format, current
    cmd.sense[2] = 0x0B;  // ABORTED COMMAND
    cmd.sense[7] = 10;
    cmd.sense[12] = 0x4B;  // DATA PHASE ERROR family (0x4B/ascq)
    cmd.sense[13] = ascq;
    cmd.sense_len = 18;
    t->executed = true;  // never to be executed now
    t->completed = true;
  }
  if (t->completed) send_response(t);
  return true;
}

void Connection::send_response(Task* t) {
  t->responded = true;
  remove_itt(t);
  core::TargetCommand& cmd = t->cmd;
  uint32_t total = cmd.transferred;
  bool read = cmd.direction == DataDirection::kRead || cmd.direction == DataDirection::kBidi;
  bool good = cmd.status == status::kGood || cmd.status == status::kConditionMet;
  // 11.7.2 / 11.4.5: status phase collapse only for good status without
  // sense; a bidirectional command reports two residuals in a SCSI Response.
  bool collapse =
      read && total > 0 && good && cmd.sense_len == 0 && cmd.direction != DataDirection::kBidi;
  if (read && total > 0) {
    size_t base =
        cmd.direction == DataDirection::kBidi ? cmd.data_length - cmd.bidi_read_length : 0;
    uint32_t mrdsl = params_.initiator_max_recv_data_segment_length;
    uint32_t burst = params_.max_burst_length;
    uint32_t offset = 0, burst_left = burst;
    while (offset < total) {
      uint32_t len = std::min({mrdsl, burst_left, total - offset});
      bool last = offset + len == total;
      burst_left -= len;
      DataInPdu d;
      // 11.7.1: F ends each sequence of MaxBurstLength bytes, and the last.
      d.final = last || burst_left == 0;
      if (burst_left == 0) burst_left = burst;
      d.lun = cmd.lun;
      d.itt = t->itt;
      d.expcmdsn = exp_cmdsn();
      d.maxcmdsn = max_cmdsn();
      d.datasn = t->datain_pdus++;
      d.buffer_offset = offset;
      if (last && collapse) {
        d.has_status = true;
        d.status = cmd.status;
        d.statsn = statsn_++;
        d.underflow = cmd.residual == core::Residual::kUnderflow;
        d.overflow = cmd.residual == core::Residual::kOverflow;
        d.residual = cmd.residual_count;
      }
      Bhs h;
      d.encode(h, len);
      push_pdu(h, cmd.buffer, base + offset, len);
      offset += len;
    }
    if (collapse) {
      push_release(t);
      return;
    }
  }
  ScsiResponsePdu r;
  r.status = cmd.status;
  r.itt = t->itt;
  r.statsn = statsn_++;
  r.expcmdsn = exp_cmdsn();
  r.maxcmdsn = max_cmdsn();
  r.expdatasn = t->datain_pdus + t->r2tsn;  // 11.4.6: Data-In and R2T PDUs sent
  r.underflow = cmd.residual == core::Residual::kUnderflow;
  r.overflow = cmd.residual == core::Residual::kOverflow;
  r.residual = (r.underflow || r.overflow) ? cmd.residual_count : 0;
  uint8_t sense[2 + SCSTU_SENSE_MAX];
  uint32_t sense_len = std::min<uint32_t>(cmd.sense_len, SCSTU_SENSE_MAX);
  uint32_t data_len = 0;
  if (sense_len) {
    // 11.4.7.2: SenseLength, then the sense data.
    put16(sense, static_cast<uint16_t>(sense_len));
    std::memcpy(sense + 2, cmd.sense.data(), sense_len);
    data_len = 2 + sense_len;
  }
  Bhs h;
  r.encode(h, data_len);
  push_pdu(h, sense, data_len);
  push_release(t);
}

}  // namespace scstu::iscsi
