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
  switch (h.opcode()) {
    case Opcode::kScsiCommand:
      return on_scsi_command(h);
    case Opcode::kDataOut:
      return on_data_out(h);
    case Opcode::kNopOut:
      return on_nop_out(h);
    case Opcode::kTaskManagementRequest:
      return on_tmf(h);
    case Opcode::kTextRequest:
      return on_text(h);
    case Opcode::kLogoutRequest:
      return on_logout(h);
    case Opcode::kSnackRequest:
      // ErrorRecoveryLevel 0: SNACK is not supported (RFC 7143 11.16).
      if (!skip_payload(h.data_length())) return false;
      return reject(h, RejectReason::kProtocolError, "SNACK at ErrorRecoveryLevel 0");
    case Opcode::kLoginRequest:
      skip_payload(h.data_length());
      return protocol_error(h, "Login Request in full feature phase");
    default:
      if (!skip_payload(h.data_length())) return false;
      return reject(h, RejectReason::kCommandNotSupported, "unknown opcode");
  }
}

bool Connection::reject(const Bhs& h, RejectReason reason, const char* why) {
  log("reject %s (ITT 0x%08x): %s", opcode_name(h.opcode()), h.itt(), why);
  RejectPdu r;
  r.reason = static_cast<uint8_t>(reason);
  r.statsn = statsn_++;
  r.expcmdsn = expcmdsn_;
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

bool Connection::check_cmdsn(const Bhs& h, uint32_t cmdsn, bool immediate) {
  if (immediate) return true;  // RFC 7143 4.2.2.1: immediate PDUs do not advance CmdSN
  if (cmdsn == expcmdsn_) {
    ++expcmdsn_;
    return true;
  }
  // Only what the initiator was told counts (4.2.2.1): the window it knows.
  uint32_t max = advertised_maxcmdsn_;
  if (sn_lt(expcmdsn_, cmdsn) && sn_le(cmdsn, max)) {
    // One connection per session: a gap means a lost PDU we never saw. Take
    // the command rather than stall the window behind it.
    log("CmdSN %u skips ahead of ExpCmdSN %u", cmdsn, expcmdsn_);
    expcmdsn_ = cmdsn + 1;
    return true;
  }
  // 4.2.2.1: outside [ExpCmdSN, MaxCmdSN] the PDU is silently ignored.
  log("%s CmdSN %u outside the window [%u, %u], ignored", opcode_name(h.opcode()), cmdsn, expcmdsn_,
      max);
  return false;
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
  r.expsn = expcmdsn_;
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
  p.expsn = expcmdsn_;
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
  a.expcmdsn = expcmdsn_;
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
  if (l.reason == 2)
    r.response = 2;  // 11.15.1: connection recovery not supported
  else if (l.reason == 1 && l.cid != cid_)
    r.response = 1;  // CID not found
  else if (l.reason > 2)
    return reject(h, RejectReason::kInvalidPduField, "logout reason code");
  r.itt = l.itt;
  r.statsn = statsn_++;
  r.expcmdsn = expcmdsn_;
  r.maxcmdsn = max_cmdsn();
  r.time2wait = params_.default_time2wait;
  r.time2retain = params_.default_time2retain;
  Bhs out;
  r.encode(out);
  push_pdu(out, nullptr, 0);
  if (r.response == 0) closing_ = true;
  return true;
}

bool Connection::on_text(const Bhs& h) {
  TextPdu p = TextPdu::decode(h);
  uint32_t len = h.data_length();
  if (len > kMaxTextBytes) return protocol_error(h, "Text Request data too long");
  if (!read_small_payload(len, small_payload_)) return false;
  if (!check_cmdsn(h, p.sn, p.immediate)) return true;
  if (p.continue_) return reject(h, RejectReason::kCommandNotSupported, "multi-PDU text request");
  if (p.ttt != kReservedTag) {
    // 11.10.4: the initiator asks for the rest of a long Text Response.
    if (p.ttt != text_ttt_ || text_pos_ >= text_out_.size())
      return reject(h, RejectReason::kInvalidPduField, "unknown Target Transfer Tag");
  } else {
    std::vector<TextPair> keys;
    if (const char* err = parse_text(small_payload_, keys))
      return reject(h, RejectReason::kInvalidPduField, err);
    text_out_.clear();
    text_pos_ = 0;
    for (const TextPair& kv : keys) {
      if (kv.key == "SendTargets") {
        // Appendix C: in a normal session an empty value means this target.
        std::string which = kv.value;
        if (which.empty() && session_) which = session_->target_name();
        if (discovery_ || which != "All")
          text_out_ += server_.send_targets(initiator_, which);
        else
          text_out_ += server_.send_targets(initiator_, session_->target_name());
      } else {
        append_pair(text_out_, kv.key, "NotUnderstood");
      }
    }
  }
  size_t chunk = std::min<size_t>(text_out_.size() - text_pos_,
                                  params_.initiator_max_recv_data_segment_length);
  TextPdu r;
  r.itt = p.itt;
  r.lun = p.lun;
  r.sn = statsn_++;
  r.expsn = expcmdsn_;
  r.maxcmdsn = max_cmdsn();
  bool more = text_pos_ + chunk < text_out_.size();
  r.final = !more;
  r.continue_ = more;
  if (more) {
    if (next_ttt_ == kReservedTag) next_ttt_ = 1;
    text_ttt_ = next_ttt_++;
    r.ttt = text_ttt_;
  } else {
    r.ttt = kReservedTag;
    text_ttt_ = kReservedTag;
  }
  Bhs out;
  r.encode(out, Opcode::kTextResponse, static_cast<uint32_t>(chunk));
  push_pdu(out, text_out_.data() + text_pos_, static_cast<uint32_t>(chunk));
  text_pos_ += chunk;
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
    r.expcmdsn = expcmdsn_;
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
  if (fn == TmfFunction::kAbortTask) {
    ref = find_task(m.referenced_itt);
    if (!ref || ref->cmd.lun != m.lun) {
      // 11.5.1: a task already answered (RefCmdSN below ExpCmdSN) does not
      // exist any more; one not yet received (RefCmdSN in the window) is
      // considered received and aborted: "function complete".
      return respond_now(sn_lt(m.refcmdsn, expcmdsn_) ? TmfResponse::kTaskDoesNotExist
                                                      : TmfResponse::kComplete);
    }
    ref->aborted = true;
  } else if (core_fn != SCSTU_TMF_CLEAR_ACA) {
    // Tasks of this session the function terminates get no response
    // (RFC 7143 4.2.3.3 / SAM-5 7); those of other sessions are the core's.
    bool all = core_fn == SCSTU_TMF_TARGET_RESET;
    for (auto& up : tasks_) {
      Task* t = up.get();
      if (t->in_use && !t->responded && (all || t->cmd.lun == m.lun)) t->aborted = true;
    }
  }
  auto* p = new PendingTmf;
  p->conn = this;
  p->itt = m.itt;
  p->ref = ref;
  p->cold_reset = fn == TmfFunction::kTargetColdReset;
  p->tmf.function = core_fn;
  p->tmf.lun = m.lun;
  p->tmf.session = session_.get();
  p->tmf.ref = ref ? &ref->cmd : nullptr;
  p->tmf.done = [p](scstu_tmf_response r) {
    p->response = r;
    p->conn->tmf_done(*p);
  };
  ++tmfs_pending_;
  server_.core().task_management(p->tmf);
  return true;
}

void Connection::finish_tmf(PendingTmf* p) {
  --tmfs_pending_;
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
  if (!closing_ && !stop_) {
    TmfResponsePdu r;
    r.response = static_cast<uint8_t>(resp);
    r.itt = p->itt;
    r.statsn = statsn_++;
    r.expcmdsn = expcmdsn_;
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
