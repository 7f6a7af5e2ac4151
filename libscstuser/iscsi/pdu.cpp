#include "iscsi/pdu.h"

#include <cstring>

namespace scstu::iscsi {

const char* opcode_name(Opcode op) {
  switch (op) {
    case Opcode::kNopOut:
      return "NOP-Out";
    case Opcode::kScsiCommand:
      return "SCSI Command";
    case Opcode::kTaskManagementRequest:
      return "Task Management Request";
    case Opcode::kLoginRequest:
      return "Login Request";
    case Opcode::kTextRequest:
      return "Text Request";
    case Opcode::kDataOut:
      return "Data-Out";
    case Opcode::kLogoutRequest:
      return "Logout Request";
    case Opcode::kSnackRequest:
      return "SNACK Request";
    case Opcode::kNopIn:
      return "NOP-In";
    case Opcode::kScsiResponse:
      return "SCSI Response";
    case Opcode::kTaskManagementResponse:
      return "Task Management Response";
    case Opcode::kLoginResponse:
      return "Login Response";
    case Opcode::kTextResponse:
      return "Text Response";
    case Opcode::kDataIn:
      return "Data-In";
    case Opcode::kLogoutResponse:
      return "Logout Response";
    case Opcode::kR2T:
      return "R2T";
    case Opcode::kAsyncMessage:
      return "Asynchronous Message";
    case Opcode::kReject:
      return "Reject";
  }
  return "unknown opcode";
}

const char* check_lengths(const Bhs& bhs, uint32_t max_data) {
  if (bhs.data_length() > max_data) return "data segment longer than MaxRecvDataSegmentLength";
  if (bhs.ahs_bytes() != 0) {
    // Only a SCSI Command carries AHS (11.2.2: extended CDB, bidi read length).
    if (bhs.opcode() != Opcode::kScsiCommand) return "AHS on a PDU that takes none";
  }
  return nullptr;
}

const char* parse_ahs(std::span<const uint8_t> ahs, AhsInfo& out) {
  out = AhsInfo{};
  size_t pos = 0;
  while (pos < ahs.size()) {
    if (ahs.size() - pos < 4) return "truncated AHS";
    uint16_t len = get16(&ahs[pos]);
    uint8_t type = ahs[pos + 2];
    size_t total = 3 + size_t{len};
    total += (4 - (total & 3)) & 3;
    if (len == 0 || total > ahs.size() - pos) return "AHS length beyond TotalAHSLength";
    const uint8_t* body = &ahs[pos + 3];  // first byte is reserved for both known types
    switch (type & 0x3F) {
      case 1:  // Extended CDB
        if (!out.extended_cdb.empty()) return "two extended CDB AHS";
        if (len < 2) return "empty extended CDB AHS";
        out.extended_cdb = std::span<const uint8_t>(body + 1, len - 1);
        break;
      case 2:  // Expected bidirectional read data length
        if (len != 5) return "bidirectional read length AHS is not 5 bytes";
        out.has_bidi_read_length = true;
        out.bidi_read_length = get32(body + 1);
        break;
      default:
        return "unknown AHS type";
    }
    pos += total;
  }
  return nullptr;
}

size_t build_extended_cdb_ahs(std::span<const uint8_t> cdb_tail, std::span<uint8_t> out) {
  size_t len = cdb_tail.size() + 1;
  size_t total = 3 + len;
  total += (4 - (total & 3)) & 3;
  if (cdb_tail.empty() || len > 0xFFFF || out.size() < total) return 0;
  std::memset(out.data(), 0, total);
  put16(&out[0], static_cast<uint16_t>(len));
  out[2] = 1;
  std::memcpy(&out[4], cdb_tail.data(), cdb_tail.size());
  return total;
}

size_t build_bidi_read_length_ahs(uint32_t length, std::span<uint8_t> out) {
  if (out.size() < 8) return 0;
  put16(&out[0], 5);
  out[2] = 2;
  out[3] = 0;
  put32(&out[4], length);
  return 8;
}

namespace {
void clear(Bhs& h) { h.b.fill(0); }
}  // namespace

ScsiCommandPdu ScsiCommandPdu::decode(const Bhs& h) {
  ScsiCommandPdu p;
  p.immediate = h.immediate();
  p.final = h.b[1] & 0x80;
  p.read = h.b[1] & 0x40;
  p.write = h.b[1] & 0x20;
  p.attr = h.b[1] & 0x07;
  p.lun = h.lun();
  p.itt = h.itt();
  p.expected_length = get32(&h.b[20]);
  p.cmdsn = get32(&h.b[24]);
  p.expstatsn = get32(&h.b[28]);
  std::memcpy(p.cdb.data(), &h.b[32], 16);
  return p;
}
void ScsiCommandPdu::encode(Bhs& h) const {
  clear(h);
  h.set_opcode(Opcode::kScsiCommand, immediate);
  h.b[1] = (final ? 0x80 : 0) | (read ? 0x40 : 0) | (write ? 0x20 : 0) | (attr & 7);
  put64(&h.b[8], lun);
  put32(&h.b[16], itt);
  put32(&h.b[20], expected_length);
  put32(&h.b[24], cmdsn);
  put32(&h.b[28], expstatsn);
  std::memcpy(&h.b[32], cdb.data(), 16);
}

ScsiResponsePdu ScsiResponsePdu::decode(const Bhs& h) {
  ScsiResponsePdu p;
  p.bidi_overflow = h.b[1] & 0x10;
  p.bidi_underflow = h.b[1] & 0x08;
  p.overflow = h.b[1] & 0x04;
  p.underflow = h.b[1] & 0x02;
  p.response = h.b[2];
  p.status = h.b[3];
  p.itt = h.itt();
  p.snack_tag = get32(&h.b[20]);
  p.statsn = get32(&h.b[24]);
  p.expcmdsn = get32(&h.b[28]);
  p.maxcmdsn = get32(&h.b[32]);
  p.expdatasn = get32(&h.b[36]);
  p.bidi_residual = get32(&h.b[40]);
  p.residual = get32(&h.b[44]);
  return p;
}
void ScsiResponsePdu::encode(Bhs& h, uint32_t data_length) const {
  clear(h);
  h.set_opcode(Opcode::kScsiResponse);
  h.b[1] = 0x80 | (bidi_overflow ? 0x10 : 0) | (bidi_underflow ? 0x08 : 0) | (overflow ? 0x04 : 0) |
           (underflow ? 0x02 : 0);
  h.b[2] = response;
  h.b[3] = status;
  h.set_data_length(data_length);
  put32(&h.b[16], itt);
  put32(&h.b[20], snack_tag);
  put32(&h.b[24], statsn);
  put32(&h.b[28], expcmdsn);
  put32(&h.b[32], maxcmdsn);
  put32(&h.b[36], expdatasn);
  put32(&h.b[40], bidi_residual);
  put32(&h.b[44], residual);
}

TmfRequestPdu TmfRequestPdu::decode(const Bhs& h) {
  TmfRequestPdu p;
  p.immediate = h.immediate();
  p.function = h.b[1] & 0x7F;
  p.lun = h.lun();
  p.itt = h.itt();
  p.referenced_itt = get32(&h.b[20]);
  p.cmdsn = get32(&h.b[24]);
  p.expstatsn = get32(&h.b[28]);
  p.refcmdsn = get32(&h.b[32]);
  p.expdatasn = get32(&h.b[36]);
  return p;
}
void TmfRequestPdu::encode(Bhs& h) const {
  clear(h);
  h.set_opcode(Opcode::kTaskManagementRequest, immediate);
  h.b[1] = 0x80 | (function & 0x7F);
  put64(&h.b[8], lun);
  put32(&h.b[16], itt);
  put32(&h.b[20], referenced_itt);
  put32(&h.b[24], cmdsn);
  put32(&h.b[28], expstatsn);
  put32(&h.b[32], refcmdsn);
  put32(&h.b[36], expdatasn);
}

TmfResponsePdu TmfResponsePdu::decode(const Bhs& h) {
  TmfResponsePdu p;
  p.response = h.b[2];
  p.itt = h.itt();
  p.statsn = get32(&h.b[24]);
  p.expcmdsn = get32(&h.b[28]);
  p.maxcmdsn = get32(&h.b[32]);
  return p;
}
void TmfResponsePdu::encode(Bhs& h) const {
  clear(h);
  h.set_opcode(Opcode::kTaskManagementResponse);
  h.b[1] = 0x80;
  h.b[2] = response;
  put32(&h.b[16], itt);
  put32(&h.b[24], statsn);
  put32(&h.b[28], expcmdsn);
  put32(&h.b[32], maxcmdsn);
}

DataOutPdu DataOutPdu::decode(const Bhs& h) {
  DataOutPdu p;
  p.final = h.final();
  p.lun = h.lun();
  p.itt = h.itt();
  p.ttt = get32(&h.b[20]);
  p.expstatsn = get32(&h.b[28]);
  p.datasn = get32(&h.b[36]);
  p.buffer_offset = get32(&h.b[40]);
  return p;
}
void DataOutPdu::encode(Bhs& h, uint32_t data_length) const {
  clear(h);
  h.set_opcode(Opcode::kDataOut);
  h.b[1] = final ? 0x80 : 0;
  h.set_data_length(data_length);
  put64(&h.b[8], lun);
  put32(&h.b[16], itt);
  put32(&h.b[20], ttt);
  put32(&h.b[28], expstatsn);
  put32(&h.b[36], datasn);
  put32(&h.b[40], buffer_offset);
}

DataInPdu DataInPdu::decode(const Bhs& h) {
  DataInPdu p;
  p.final = h.final();
  p.ack = h.b[1] & 0x40;
  p.overflow = h.b[1] & 0x04;
  p.underflow = h.b[1] & 0x02;
  p.has_status = h.b[1] & 0x01;
  p.status = h.b[3];
  p.lun = h.lun();
  p.itt = h.itt();
  p.ttt = get32(&h.b[20]);
  p.statsn = get32(&h.b[24]);
  p.expcmdsn = get32(&h.b[28]);
  p.maxcmdsn = get32(&h.b[32]);
  p.datasn = get32(&h.b[36]);
  p.buffer_offset = get32(&h.b[40]);
  p.residual = get32(&h.b[44]);
  return p;
}
void DataInPdu::encode(Bhs& h, uint32_t data_length) const {
  clear(h);
  h.set_opcode(Opcode::kDataIn);
  h.b[1] = (final ? 0x80 : 0) | (ack ? 0x40 : 0) | (overflow ? 0x04 : 0) | (underflow ? 0x02 : 0) |
           (has_status ? 0x01 : 0);
  h.b[3] = has_status ? status : 0;
  h.set_data_length(data_length);
  put64(&h.b[8], lun);
  put32(&h.b[16], itt);
  put32(&h.b[20], ttt);
  put32(&h.b[24], has_status ? statsn : 0);
  put32(&h.b[28], expcmdsn);
  put32(&h.b[32], maxcmdsn);
  put32(&h.b[36], datasn);
  put32(&h.b[40], buffer_offset);
  put32(&h.b[44], has_status ? residual : 0);
}

R2TPdu R2TPdu::decode(const Bhs& h) {
  R2TPdu p;
  p.lun = h.lun();
  p.itt = h.itt();
  p.ttt = get32(&h.b[20]);
  p.statsn = get32(&h.b[24]);
  p.expcmdsn = get32(&h.b[28]);
  p.maxcmdsn = get32(&h.b[32]);
  p.r2tsn = get32(&h.b[36]);
  p.buffer_offset = get32(&h.b[40]);
  p.desired_length = get32(&h.b[44]);
  return p;
}
void R2TPdu::encode(Bhs& h) const {
  clear(h);
  h.set_opcode(Opcode::kR2T);
  h.b[1] = 0x80;
  put64(&h.b[8], lun);
  put32(&h.b[16], itt);
  put32(&h.b[20], ttt);
  put32(&h.b[24], statsn);
  put32(&h.b[28], expcmdsn);
  put32(&h.b[32], maxcmdsn);
  put32(&h.b[36], r2tsn);
  put32(&h.b[40], buffer_offset);
  put32(&h.b[44], desired_length);
}

AsyncMessagePdu AsyncMessagePdu::decode(const Bhs& h) {
  AsyncMessagePdu p;
  p.lun = h.lun();
  p.statsn = get32(&h.b[24]);
  p.expcmdsn = get32(&h.b[28]);
  p.maxcmdsn = get32(&h.b[32]);
  p.event = h.b[36];
  p.vcode = h.b[37];
  p.parameter1 = get16(&h.b[38]);
  p.parameter2 = get16(&h.b[40]);
  p.parameter3 = get16(&h.b[42]);
  return p;
}
void AsyncMessagePdu::encode(Bhs& h, uint32_t data_length) const {
  clear(h);
  h.set_opcode(Opcode::kAsyncMessage);
  h.b[1] = 0x80;
  h.set_data_length(data_length);
  put64(&h.b[8], lun);
  put32(&h.b[16], kReservedTag);
  put32(&h.b[24], statsn);
  put32(&h.b[28], expcmdsn);
  put32(&h.b[32], maxcmdsn);
  h.b[36] = event;
  h.b[37] = vcode;
  put16(&h.b[38], parameter1);
  put16(&h.b[40], parameter2);
  put16(&h.b[42], parameter3);
}

TextPdu TextPdu::decode(const Bhs& h) {
  TextPdu p;
  p.immediate = h.immediate();
  p.final = h.b[1] & 0x80;
  p.continue_ = h.b[1] & 0x40;
  p.lun = h.lun();
  p.itt = h.itt();
  p.ttt = get32(&h.b[20]);
  p.sn = get32(&h.b[24]);
  p.expsn = get32(&h.b[28]);
  p.maxcmdsn = get32(&h.b[32]);
  return p;
}
void TextPdu::encode(Bhs& h, Opcode op, uint32_t data_length) const {
  clear(h);
  h.set_opcode(op, op == Opcode::kTextRequest && immediate);
  h.b[1] = (final ? 0x80 : 0) | (continue_ ? 0x40 : 0);
  h.set_data_length(data_length);
  put64(&h.b[8], lun);
  put32(&h.b[16], itt);
  put32(&h.b[20], ttt);
  put32(&h.b[24], sn);
  put32(&h.b[28], expsn);
  if (op == Opcode::kTextResponse) put32(&h.b[32], maxcmdsn);
}

LoginPdu LoginPdu::decode(const Bhs& h) {
  LoginPdu p;
  p.transit = h.b[1] & 0x80;
  p.continue_ = h.b[1] & 0x40;
  p.csg = (h.b[1] >> 2) & 3;
  p.nsg = h.b[1] & 3;
  p.version_max = h.b[2];
  p.version_min = h.b[3];
  std::memcpy(p.isid.data(), &h.b[8], 6);
  p.tsih = get16(&h.b[14]);
  p.itt = h.itt();
  p.cid = get16(&h.b[20]);
  p.sn = get32(&h.b[24]);
  p.expsn = get32(&h.b[28]);
  p.maxcmdsn = get32(&h.b[32]);
  p.status_class = h.b[36];
  p.status_detail = h.b[37];
  return p;
}
void LoginPdu::encode(Bhs& h, Opcode op, uint32_t data_length) const {
  clear(h);
  // 11.12: a Login Request always has the I bit set.
  h.set_opcode(op, op == Opcode::kLoginRequest);
  h.b[1] = (transit ? 0x80 : 0) | (continue_ ? 0x40 : 0) | (csg & 3) << 2 | (nsg & 3);
  h.b[2] = version_max;
  h.b[3] = version_min;
  h.set_data_length(data_length);
  std::memcpy(&h.b[8], isid.data(), 6);
  put16(&h.b[14], tsih);
  put32(&h.b[16], itt);
  if (op == Opcode::kLoginRequest) put16(&h.b[20], cid);
  put32(&h.b[24], sn);
  put32(&h.b[28], expsn);
  if (op == Opcode::kLoginResponse) {
    put32(&h.b[32], maxcmdsn);
    h.b[36] = status_class;
    h.b[37] = status_detail;
  }
}

LogoutRequestPdu LogoutRequestPdu::decode(const Bhs& h) {
  LogoutRequestPdu p;
  p.immediate = h.immediate();
  p.reason = h.b[1] & 0x7F;
  p.itt = h.itt();
  p.cid = get16(&h.b[20]);
  p.cmdsn = get32(&h.b[24]);
  p.expstatsn = get32(&h.b[28]);
  return p;
}
void LogoutRequestPdu::encode(Bhs& h) const {
  clear(h);
  h.set_opcode(Opcode::kLogoutRequest, immediate);
  h.b[1] = 0x80 | (reason & 0x7F);
  put32(&h.b[16], itt);
  put16(&h.b[20], cid);
  put32(&h.b[24], cmdsn);
  put32(&h.b[28], expstatsn);
}

LogoutResponsePdu LogoutResponsePdu::decode(const Bhs& h) {
  LogoutResponsePdu p;
  p.response = h.b[2];
  p.itt = h.itt();
  p.statsn = get32(&h.b[24]);
  p.expcmdsn = get32(&h.b[28]);
  p.maxcmdsn = get32(&h.b[32]);
  p.time2wait = get16(&h.b[40]);
  p.time2retain = get16(&h.b[42]);
  return p;
}
void LogoutResponsePdu::encode(Bhs& h) const {
  clear(h);
  h.set_opcode(Opcode::kLogoutResponse);
  h.b[1] = 0x80;
  h.b[2] = response;
  put32(&h.b[16], itt);
  put32(&h.b[24], statsn);
  put32(&h.b[28], expcmdsn);
  put32(&h.b[32], maxcmdsn);
  put16(&h.b[40], time2wait);
  put16(&h.b[42], time2retain);
}

SnackPdu SnackPdu::decode(const Bhs& h) {
  SnackPdu p;
  p.type = h.b[1] & 0x0F;
  p.lun = h.lun();
  p.itt = h.itt();
  p.ttt = get32(&h.b[20]);
  p.expstatsn = get32(&h.b[28]);
  p.begrun = get32(&h.b[40]);
  p.runlength = get32(&h.b[44]);
  return p;
}

RejectPdu RejectPdu::decode(const Bhs& h) {
  RejectPdu p;
  p.reason = h.b[2];
  p.statsn = get32(&h.b[24]);
  p.expcmdsn = get32(&h.b[28]);
  p.maxcmdsn = get32(&h.b[32]);
  p.datasn = get32(&h.b[36]);
  return p;
}
void RejectPdu::encode(Bhs& h) const {
  clear(h);
  h.set_opcode(Opcode::kReject);
  h.b[1] = 0x80;
  h.b[2] = reason;
  h.set_data_length(kBhsSize);
  put32(&h.b[16], kReservedTag);
  put32(&h.b[24], statsn);
  put32(&h.b[28], expcmdsn);
  put32(&h.b[32], maxcmdsn);
  put32(&h.b[36], datasn);
}

NopPdu NopPdu::decode(const Bhs& h) {
  NopPdu p;
  p.immediate = h.immediate();
  p.lun = h.lun();
  p.itt = h.itt();
  p.ttt = get32(&h.b[20]);
  p.sn = get32(&h.b[24]);
  p.expsn = get32(&h.b[28]);
  p.maxcmdsn = get32(&h.b[32]);
  return p;
}
void NopPdu::encode(Bhs& h, Opcode op, uint32_t data_length) const {
  clear(h);
  h.set_opcode(op, op == Opcode::kNopOut && immediate);
  h.b[1] = 0x80;
  h.set_data_length(data_length);
  put64(&h.b[8], lun);
  put32(&h.b[16], itt);
  put32(&h.b[20], ttt);
  put32(&h.b[24], sn);
  put32(&h.b[28], expsn);
  if (op == Opcode::kNopIn) put32(&h.b[32], maxcmdsn);
}

}  // namespace scstu::iscsi
