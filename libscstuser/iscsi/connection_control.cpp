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

// ---------------------------------------------------------------- PDUs

bool Connection::handle_pdu() {
  Bhs h;
  std::memcpy(h.b.data(), rx_.data() + rpos_, kBhsSize);
  size_t ahs = h.ahs_bytes();
  if (params_.header_digest) {
    uint32_t expect = crc32c(rx_.data() + rpos_, kBhsSize + ahs);
    if (get_le32(rx_.data() + rpos_ + kBhsSize + ahs) != expect) {
      // RFC 7143 7.8: the header cannot be trusted, not even its lengths.
      log("header digest error, dropping the connection");
      return false;
    }
  }
  if (const char* err = check_lengths(h, params_.target_max_recv_data_segment_length)) {
    log("%s: %s, dropping the connection", opcode_name(h.opcode()), err);
    return false;
  }
  // CmdSN order across the session's connections (session.h). Nothing of
  // the PDU is consumed before its turn; once it has it, the next number
  // waits until this one is handed on (delivered(), on every return path).
  struct TurnEnd {
    Session* s = nullptr;
    ~TurnEnd() {
      if (s) s->delivered();
    }
  } turn;
  cmdsn_ok_ = covered_ = false;
  if (sequenced(h)) {
    uint32_t cmdsn = get32(&h.b[24]);
    // A connection that went away while its PDU waited does not deliver it.
    if (held_ && peer_closed()) {
      log("connection closed while CmdSN %u waited for a gap to fill", cmdsn);
      return false;
    }
    auto now = Clock::now();
    // The gap bound counts from when the PDU started waiting for a gap, not
    // for a fence (a PDU before it may be behind the same fence).
    bool skip_gap =
        held_ && !held_fence_ && now - held_since_ >= server_.options().cmdsn_gap_timeout;
    uint64_t lun = h.lun();
    Session::Order o =
        sess_->order(cmdsn, this, skip_gap, h.opcode() == Opcode::kScsiCommand ? &lun : nullptr);
    if (o == Session::Order::kFenced) {
      held_ = held_fence_ = true;
      return true;
    }
    if (o == Session::Order::kHold) {
      if (!held_ || held_fence_) held_since_ = now;
      held_ = true;
      held_fence_ = false;
      return true;
    }
    if (skip_gap && o == Session::Order::kDeliver)
      log("CmdSN gap before %u open for %lld ms: skipped", cmdsn,
          static_cast<long long>(server_.options().cmdsn_gap_timeout.count()));
    held_ = held_fence_ = false;
    if (o == Session::Order::kDeliver || o == Session::Order::kCovered) {
      cmdsn_ok_ = true;
      covered_ = o == Session::Order::kCovered;
      turn.s = sess_.get();
    } else {
      // 4.2.2.1: outside [ExpCmdSN, MaxCmdSN] the PDU is silently ignored.
      log("%s CmdSN %u outside the window (ExpCmdSN %u), ignored", opcode_name(h.opcode()), cmdsn,
          exp_cmdsn());
    }
  } else if (h.opcode() == Opcode::kScsiCommand) {
    // An immediate command takes no turn but waits for a fence all the same.
    held_ = held_fence_ = sess_->fenced(h.lun(), this);
    if (held_) return true;
  }
  AhsInfo ahs_info;
  std::array<uint8_t, kMaxAhsBytes> ahs_copy;
  if (ahs) {
    std::memcpy(ahs_copy.data(), rx_.data() + rpos_ + kBhsSize, ahs);
    if (const char* err = parse_ahs(std::span<const uint8_t>(ahs_copy.data(), ahs), ahs_info)) {
      rpos_ += kBhsSize + ahs + (params_.header_digest ? 4 : 0);
      if (!skip_payload(h.data_length())) return false;
      return reject(h, RejectReason::kInvalidPduField, err);
    }
  }
  rpos_ += kBhsSize + ahs + (params_.header_digest ? 4 : 0);
  if (!ahs_info.extended_cdb.empty()) {
    if (ahs_info.extended_cdb.size() > SCSTU_CDB_LONG_MAX - 16) {
      if (!skip_payload(h.data_length())) return false;
      return reject(h, RejectReason::kInvalidPduField, "extended CDB too long");
    }
    ext_cdb_len_ = ahs_info.extended_cdb.size();
    std::memcpy(ext_cdb_.data(), ahs_info.extended_cdb.data(), ext_cdb_len_);
  } else {
    ext_cdb_len_ = 0;
  }
  return (this->*handler(h.opcode()))(h);
}

// One handler per opcode an initiator sends (RFC 7143 11); anything else is
// answered by on_unknown().
Connection::PduHandler Connection::handler(Opcode op) {
  switch (op) {
    case Opcode::kScsiCommand:
      return &Connection::on_scsi_command;
    case Opcode::kDataOut:
      return &Connection::on_data_out;
    case Opcode::kNopOut:
      return &Connection::on_nop_out;
    case Opcode::kTaskManagementRequest:
      return &Connection::on_tmf;
    case Opcode::kTextRequest:
      return &Connection::on_text;
    case Opcode::kLogoutRequest:
      return &Connection::on_logout;
    case Opcode::kSnackRequest:
      return &Connection::on_snack;
    case Opcode::kLoginRequest:
      return &Connection::on_login_in_full_feature;
    default:
      return &Connection::on_unknown;
  }
}

bool Connection::on_snack(const Bhs& h) {
  // ErrorRecoveryLevel 0: SNACK is not supported (RFC 7143 11.16).
  if (!skip_payload(h.data_length())) return false;
  return reject(h, RejectReason::kProtocolError, "SNACK at ErrorRecoveryLevel 0");
}

bool Connection::on_login_in_full_feature(const Bhs& h) {
  skip_payload(h.data_length());
  return protocol_error(h, "Login Request in full feature phase");
}

bool Connection::on_unknown(const Bhs& h) {
  if (!skip_payload(h.data_length())) return false;
  return reject(h, RejectReason::kCommandNotSupported, "unknown opcode");
}

bool Connection::reject(const Bhs& h, RejectReason reason, const char* why) {
  log("reject %s (ITT 0x%08x): %s", opcode_name(h.opcode()), h.itt(), why);
  RejectPdu r;
  r.reason = static_cast<uint8_t>(reason);
  r.statsn = statsn_++;
  r.expcmdsn = exp_cmdsn();
  r.maxcmdsn = max_cmdsn();
  Bhs out;
  r.encode(out);
  push_pdu(out, h.b.data(), kBhsSize);
  return true;
}

bool Connection::protocol_error(const Bhs& h, const char* why) {
  // ErrorRecoveryLevel 0: send the Reject for the log on the other side,
  // then drop the connection (RFC 7143 7.2).
  reject(h, RejectReason::kProtocolError, why);
  flush(true);
  log("protocol error, dropping the connection");
  return false;
}

bool Connection::sequenced(const Bhs& h) const {
  // RFC 7143 4.2.2.1: non-immediate PDUs that carry a CmdSN take their turn
  // in the session's numbering; a NOP-Out answering our ping does not.
  if (h.immediate()) return false;
  const OpcodeInfo* o = opcode_info(h.opcode());
  if (!o || !o->numbered) return false;
  return h.opcode() != Opcode::kNopOut || h.itt() != kReservedTag;
}

bool Connection::peer_closed() const {
  pollfd p{fd_, POLLRDHUP, 0};
  return poll(&p, 1, 0) > 0 && (p.revents & (POLLRDHUP | POLLHUP | POLLERR));
}

bool Connection::check_cmdsn(const Bhs&, uint32_t, bool immediate) {
  // RFC 7143 4.2.2.1: immediate PDUs do not advance CmdSN; the others were
  // put in order by handle_pdu().
  return immediate || cmdsn_ok_;
}

bool Connection::on_nop_out(const Bhs& h) {
  NopPdu n = NopPdu::decode(h);
  uint32_t len = h.data_length();
  if (n.itt == kReservedTag) {
    // The answer to our ping (11.18): nothing to send back.
    ping_outstanding_ = false;
    return skip_payload(len);
  }
  if (!check_cmdsn(h, n.sn, n.immediate)) return skip_payload(len);
  if (!read_small_payload(len, small_payload_)) return false;
  NopPdu r;
  r.lun = n.lun;
  r.itt = n.itt;
  r.ttt = kReservedTag;
  r.sn = statsn_++;
  r.expsn = exp_cmdsn();
  r.maxcmdsn = max_cmdsn();
  uint32_t echo = std::min(len, params_.initiator_max_recv_data_segment_length);
  Bhs out;
  r.encode(out, Opcode::kNopIn, echo);
  push_pdu(out, small_payload_.data(), echo);
  return true;
}

void Connection::send_nop_ping() {
  NopPdu p;
  p.itt = kReservedTag;
  if (next_ttt_ == kReservedTag) next_ttt_ = 1;
  p.ttt = next_ttt_++;
  p.sn = statsn_;  // 11.19: a ping does not advance StatSN
  p.expsn = exp_cmdsn();
  p.maxcmdsn = max_cmdsn();
  Bhs h;
  p.encode(h, Opcode::kNopIn, 0);
  push_pdu(h, nullptr, 0);
  ping_outstanding_ = true;
  ping_sent_ = Clock::now();
}

void Connection::send_async_logout() {
  logout_sent_ = true;
  if (discovery_) {
    closing_ = true;
    return;
  }
  AsyncMessagePdu a;
  a.event = 1;  // 11.9.1: the target requests Logout
  a.statsn = statsn_++;
  a.expcmdsn = exp_cmdsn();
  a.maxcmdsn = max_cmdsn();
  a.parameter3 =
      static_cast<uint16_t>(std::max<int64_t>(1, server_.options().logout_grace.count() / 1000));
  Bhs h;
  a.encode(h, 0);
  push_pdu(h, nullptr, 0);
}

bool Connection::on_logout(const Bhs& h) {
  LogoutRequestPdu l = LogoutRequestPdu::decode(h);
  if (!skip_payload(h.data_length())) return false;
  if (!check_cmdsn(h, l.cmdsn, l.immediate)) return true;
  LogoutResponsePdu r;
  bool close_this = l.reason == 0 || (l.reason == 1 && l.cid == cid_);
  if (l.reason == 2) {
    r.response = 2;  // 11.15.1: connection recovery not supported (ERL 0)
  } else if (l.reason > 2) {
    return reject(h, RejectReason::kInvalidPduField, "logout reason code");
  } else if (l.reason == 1 && l.cid != cid_) {
    // 11.14.1: closing another connection of the session (one the initiator
    // lost, typically): it is dropped and its tasks aborted (ERL 0).
    if (!server_.close_connection(*sess_, l.cid)) r.response = 1;  // CID not found
  } else if (l.reason == 0) {
    // 11.14.1: the whole session: every other connection closes too.
    server_.close_other_connections(*sess_, this);
  }
  r.itt = l.itt;
  r.statsn = statsn_++;
  r.expcmdsn = exp_cmdsn();
  r.maxcmdsn = max_cmdsn();
  r.time2wait = params_.default_time2wait;
  r.time2retain = params_.default_time2retain;
  Bhs out;
  r.encode(out);
  push_pdu(out, nullptr, 0);
  if (r.response == 0 && close_this) closing_ = true;
  return true;
}

bool Connection::on_text(const Bhs& h) {
  TextPdu p = TextPdu::decode(h);
  uint32_t len = h.data_length();
  if (len > kMaxTextBytes) return protocol_error(h, "Text Request data too long");
  if (!read_small_payload(len, small_payload_)) return false;
  if (!check_cmdsn(h, p.sn, p.immediate)) return true;
  // 11.10.2: a request whose text continues cannot be the final one.
  if (p.continue_ && p.final)
    return reject(h, RejectReason::kInvalidPduField, "Text Request with both C and F");
  if (p.ttt != kReservedTag) {
    // 11.10.4: the initiator continues the exchange we gave this tag to: the
    // rest of its request, or the next part of our long response.
    if (p.ttt != text_ttt_ || p.itt != text_itt_)
      return reject(h, RejectReason::kInvalidPduField, "unknown Target Transfer Tag");
  } else {
    // 11.10.4: TTT 0xffffffff starts a new exchange and resets an older one.
    text_in_.clear();
    text_out_.clear();
    text_pos_ = 0;
    text_ttt_ = kReservedTag;
    text_itt_ = p.itt;
  }
  auto new_ttt = [this] {
    if (next_ttt_ == kReservedTag) next_ttt_ = 1;
    text_ttt_ = next_ttt_++;
    return text_ttt_;
  };
  TextPdu r;
  r.itt = p.itt;
  r.lun = p.lun;
  if (text_pos_ >= text_out_.size()) {
    // Still receiving the request (C bit, 6.1): collect it, bounded like a
    // login's text, and answer each part with an empty response (F=0).
    if (text_in_.size() + len > kMaxTextBytes) {
      text_in_.clear();
      text_ttt_ = kReservedTag;
      return reject(h, RejectReason::kInvalidPduField, "Text Request longer than 64 KiB");
    }
    text_in_.append(reinterpret_cast<const char*>(small_payload_.data()), len);
    if (p.continue_) {
      r.sn = statsn_++;
      r.expsn = exp_cmdsn();
      r.maxcmdsn = max_cmdsn();
      r.final = false;
      r.ttt = new_ttt();
      Bhs out;
      r.encode(out, Opcode::kTextResponse, 0);
      push_pdu(out, nullptr, 0);
      return true;
    }
    std::vector<TextPair> keys;
    const char* err =
        parse_text(std::span<const uint8_t>(reinterpret_cast<const uint8_t*>(text_in_.data()),
                                            text_in_.size()),
                   keys);
    text_in_.clear();
    if (err) {
      text_ttt_ = kReservedTag;
      return reject(h, RejectReason::kInvalidPduField, err);
    }
    text_out_.clear();
    text_pos_ = 0;
    for (const TextPair& kv : keys) {
      if (kv.key == "SendTargets") {
        // Appendix C: in a normal session an empty value means this target.
        std::string which = kv.value;
        if (which.empty() && session_) which = session_->target_name();
        if (discovery_ || which != "All")
          text_out_ += server_.send_targets(initiator_, which, local_host_);
        else
          text_out_ += server_.send_targets(initiator_, session_->target_name(), local_host_);
      } else {
        append_pair(text_out_, kv.key, "NotUnderstood");
      }
    }
  }
  // 11.11: a response longer than the initiator's MaxRecvDataSegmentLength
  // leaves in parts with F=0, C=1 and a TTT; each empty request carrying the
  // TTT fetches the next part.
  size_t chunk = std::min<size_t>(text_out_.size() - text_pos_,
                                  params_.initiator_max_recv_data_segment_length);
  r.sn = statsn_++;
  r.expsn = exp_cmdsn();
  r.maxcmdsn = max_cmdsn();
  bool more = text_pos_ + chunk < text_out_.size();
  r.final = !more;
  r.continue_ = more;
  if (more) {
    r.ttt = new_ttt();
  } else {
    r.ttt = kReservedTag;
    text_ttt_ = kReservedTag;
  }
  Bhs out;
  r.encode(out, Opcode::kTextResponse, static_cast<uint32_t>(chunk));
  push_pdu(out, text_out_.data() + text_pos_, static_cast<uint32_t>(chunk));
  text_pos_ += chunk;
  if (!more) {
    text_out_.clear();
    text_pos_ = 0;
  }
  return true;
}

bool Connection::on_tmf(const Bhs& h) {
  TmfRequestPdu m = TmfRequestPdu::decode(h);
  if (!skip_payload(h.data_length())) return false;
  if (!check_cmdsn(h, m.cmdsn, m.immediate)) return true;
  if (discovery_) return reject(h, RejectReason::kProtocolError, "TMF in a discovery session");
  auto respond_now = [&](TmfResponse resp) {
    TmfResponsePdu r;
    r.response = static_cast<uint8_t>(resp);
    r.itt = m.itt;
    r.statsn = statsn_++;
    r.expcmdsn = exp_cmdsn();
    r.maxcmdsn = max_cmdsn();
    Bhs out;
    r.encode(out);
    push_pdu(out, nullptr, 0);
    return true;
  };
  auto fn = static_cast<TmfFunction>(m.function);
  scstu_tmf_function core_fn;
  switch (fn) {
    case TmfFunction::kAbortTask:
      core_fn = SCSTU_TMF_ABORT_TASK;
      break;
    case TmfFunction::kAbortTaskSet:
      core_fn = SCSTU_TMF_ABORT_TASK_SET;
      break;
    case TmfFunction::kClearAca:
      core_fn = SCSTU_TMF_CLEAR_ACA;
      break;
    case TmfFunction::kClearTaskSet:
      core_fn = SCSTU_TMF_CLEAR_TASK_SET;
      break;
    case TmfFunction::kLogicalUnitReset:
      core_fn = SCSTU_TMF_LUN_RESET;
      break;
    case TmfFunction::kTargetWarmReset:
    case TmfFunction::kTargetColdReset:
      core_fn = SCSTU_TMF_TARGET_RESET;
      break;
    case TmfFunction::kTaskReassign:
      // ErrorRecoveryLevel 0 (11.5.1).
      return respond_now(TmfResponse::kReassignmentNotSupported);
    default:
      return respond_now(TmfResponse::kNotSupported);
  }
  if (tmfs_pending_ >= kMaxPendingTmfs)
    return reject(h, RejectReason::kLongOperationReject, "too many TMFs outstanding");
  Task* ref = nullptr;
  auto* p = new PendingTmf;
  p->conn = this;
  p->itt = m.itt;
  p->cold_reset = fn == TmfFunction::kTargetColdReset;
  p->tmf.function = core_fn;
  p->tmf.lun = m.lun;
  p->tmf.session = session_.get();
  p->tmf.done = [p](scstu_tmf_response r) {
    p->response = r;
    p->conn->tmf_done(*p);
  };
  // Our own acknowledgement, given below once this connection's tasks are
  // marked; other connections of the session add theirs (post_abort).
  p->acks.store(1, std::memory_order_relaxed);
  if (fn == TmfFunction::kAbortTask) {
    ref = find_task(m.referenced_itt);
    if (!ref || ref->cmd.lun != m.lun) {
      // 11.5.1: a task already answered (RefCmdSN below ExpCmdSN) does not
      // exist any more; one not yet received (RefCmdSN in the window) is
      // considered received and aborted: "function complete".
      TmfResponse gone =
          sn_lt(m.refcmdsn, exp_cmdsn()) ? TmfResponse::kTaskDoesNotExist : TmfResponse::kComplete;
      // MC/S: the task may be on another connection of the session; its
      // owner aborts it there (and tells the core), then we answer.
      p->remote_abort = true;
      p->not_found = gone;
      p->acks.store(0, std::memory_order_relaxed);
      ++tmfs_pending_;
      AbortMark mark{p, m.lun, false, true, m.referenced_itt};
      if (server_.post_abort(*sess_, this, mark) == 0) {
        --tmfs_pending_;
        delete p;
        return respond_now(gone);
      }
      return true;
    }
    ref->aborted = true;
    p->ref = ref;
    p->tmf.ref = &ref->cmd;
    ++tmfs_pending_;
    ack_tmf(p);
    return true;
  }
  ++tmfs_pending_;
  if (core_fn != SCSTU_TMF_CLEAR_ACA) {
    // Tasks of this session the function terminates get no response
    // (RFC 7143 4.2.3.3 / SAM-5 7); those of other sessions are the core's.
    // Other connections of the session mark theirs before the core acts.
    bool all = core_fn == SCSTU_TMF_TARGET_RESET;
    // Commands after it wait until the core has acted (Session fences).
    // An immediate TMF's CmdSN is the next number (4.2.2.1); one outside the
    // window says nothing about which commands are older.
    uint32_t sn = m.cmdsn;
    if (!sn_le(exp_cmdsn(), sn) || !sn_le(sn, max_cmdsn() + 1)) sn = exp_cmdsn();
    sess_->raise_fence(p, m.lun, all, sn);
    p->fenced = true;
    for (auto& up : tasks_) {
      Task* t = up.get();
      if (t->in_use && !t->responded && (all || t->cmd.lun == m.lun)) t->aborted = true;
    }
    server_.post_abort(*sess_, this, AbortMark{p, m.lun, all, false, 0});
  }
  ack_tmf(p);
  return true;
}

void Connection::post_abort(const AbortMark& mark) {
  {
    std::lock_guard lock(marks_mutex_);
    marks_.push_back(mark);
  }
  marks_posted_.store(true, std::memory_order_release);
  wake();
}

void Connection::ack_tmf(PendingTmf* p) {
  if (p->acks.fetch_sub(1, std::memory_order_acq_rel) != 1) return;
  // Every connection has marked its tasks: the TMF may act now.
  if (p->remote_abort) {
    p->response = SCSTU_TMF_COMPLETE;  // finish_tmf() looks at `found`
    p->conn->tmf_done(*p);
  } else {
    server_.core().task_management(p->tmf);
  }
}

void Connection::abort_at_device(Task* t, PendingTmf* parent) {
  auto* p = new PendingTmf;
  p->conn = this;
  p->itt = t->itt;
  p->ref = t;
  p->internal = true;
  p->parent = parent;
  p->tmf.function = SCSTU_TMF_ABORT_TASK;
  p->tmf.lun = t->cmd.lun;
  p->tmf.session = session_.get();
  p->tmf.ref = &t->cmd;
  p->tmf.done = [p](scstu_tmf_response r) {
    p->response = r;
    p->conn->tmf_done(*p);
  };
  ++tmfs_pending_;
  server_.core().task_management(p->tmf);
}

void Connection::apply_abort_marks() {
  if (!marks_posted_.load(std::memory_order_acquire)) return;
  {
    std::lock_guard lock(marks_mutex_);
    marks_taken_.swap(marks_);
    marks_posted_.store(false, std::memory_order_relaxed);
  }
  for (const AbortMark& mark : marks_taken_) {
    auto release_unexecuted = [this](Task* t) {
      // Never reached a device (data phase) or refused: nothing to abort
      // there; it goes now, without a response.
      if (!t->executed && (t->prepared || t->completed)) {
        t->responded = true;
        remove_itt(t);
        push_release(t);
      }
    };
    if (mark.by_itt) {
      Task* t = find_task(mark.itt);
      if (t && !t->responded && !t->aborted && t->cmd.lun == mark.lun) {
        t->aborted = true;
        mark.tmf->found.store(true, std::memory_order_release);
        if (t->executed && !t->completed) {
          abort_at_device(t, mark.tmf);  // acknowledged when the core is done
          continue;
        }
        release_unexecuted(t);
      }
    } else {
      for (auto& up : tasks_) {
        Task* t = up.get();
        if (!t->in_use || t->responded || !(mark.all_luns || t->cmd.lun == mark.lun)) continue;
        t->aborted = true;
        release_unexecuted(t);
      }
    }
    ack_tmf(mark.tmf);
  }
  marks_taken_.clear();
}

void Connection::finish_tmf(PendingTmf* p) {
  --tmfs_pending_;
  // The core has acted: commands held back by the fence may go (after this
  // TMF's response, which is queued below before any of them is read again).
  if (p->fenced) sess_->lower_fence(p);
  if (p->parent) ack_tmf(p->parent);  // the ABORT TASK another connection got
  TmfResponse resp;
  switch (p->response) {
    case SCSTU_TMF_COMPLETE:
    case SCSTU_TMF_SUCCEEDED:
      resp = TmfResponse::kComplete;
      break;
    case SCSTU_TMF_INCORRECT_LUN:
      resp = TmfResponse::kLunDoesNotExist;
      break;
    case SCSTU_TMF_NOT_SUPPORTED:
      resp = TmfResponse::kNotSupported;
      break;
    default:
      resp = TmfResponse::kRejected;
      break;
  }
  // Aborted tasks that never reached a device (still in their data phase,
  // or refused by the core and waiting for their unsolicited data) will not
  // complete by themselves: release them now.
  for (auto& up : tasks_) {
    Task* t = up.get();
    if (t->in_use && t->aborted && !t->responded && !t->executed && (t->prepared || t->completed)) {
      t->responded = true;
      remove_itt(t);
      push_release(t);
    }
  }
  if (p->remote_abort && !p->found.load(std::memory_order_acquire)) resp = p->not_found;
  if (!p->internal && !closing_ && !stop_) {
    TmfResponsePdu r;
    r.response = static_cast<uint8_t>(resp);
    r.itt = p->itt;
    r.statsn = statsn_++;
    r.expcmdsn = exp_cmdsn();
    r.maxcmdsn = max_cmdsn();
    Bhs out;
    r.encode(out);
    push_pdu(out, nullptr, 0);
    // 11.5.1: TARGET COLD RESET also drops the connection.
    if (p->cold_reset) closing_ = true;
  }
  delete p;
}

}  // namespace scstu::iscsi
