#include "iscsi/pdu.h"

#include <bit>
#include <cstring>
#include <tuple>

namespace scstu::iscsi {

namespace {

// RFC 7143 11.2.1.2: one row per opcode, everything the code asks of one.
constexpr OpcodeInfo kOpcodes[] = {
    // opcode                          name                         AHS    CmdSN
    {Opcode::kNopOut, "NOP-Out", false, true},
    {Opcode::kScsiCommand, "SCSI Command", true, true},
    {Opcode::kTaskManagementRequest, "Task Management Request", false, true},
    {Opcode::kLoginRequest, "Login Request", false, false},
    {Opcode::kTextRequest, "Text Request", false, true},
    {Opcode::kDataOut, "Data-Out", false, false},
    {Opcode::kLogoutRequest, "Logout Request", false, true},
    {Opcode::kSnackRequest, "SNACK Request", false, false},
    {Opcode::kNopIn, "NOP-In", false, false},
    {Opcode::kScsiResponse, "SCSI Response", false, false},
    {Opcode::kTaskManagementResponse, "Task Management Response", false, false},
    {Opcode::kLoginResponse, "Login Response", false, false},
    {Opcode::kTextResponse, "Text Response", false, false},
    {Opcode::kDataIn, "Data-In", false, false},
    {Opcode::kLogoutResponse, "Logout Response", false, false},
    {Opcode::kR2T, "R2T", false, false},
    {Opcode::kAsyncMessage, "Asynchronous Message", false, false},
    {Opcode::kReject, "Reject", false, false},
};

// The table by opcode value (6 bits).
constexpr std::array<const OpcodeInfo*, 64> index_opcodes() {
  std::array<const OpcodeInfo*, 64> by_value{};
  for (const OpcodeInfo& o : kOpcodes) by_value[static_cast<uint8_t>(o.op)] = &o;
  return by_value;
}
constexpr std::array<const OpcodeInfo*, 64> kByValue = index_opcodes();

}  // namespace

const OpcodeInfo* opcode_info(Opcode op) { return kByValue[static_cast<uint8_t>(op) & 0x3F]; }

const char* opcode_name(Opcode op) {
  const OpcodeInfo* o = opcode_info(op);
  return o ? o->name : "unknown opcode";
}

const char* check_lengths(const Bhs& bhs, uint32_t max_data) {
  if (bhs.data_length() > max_data) return "data segment longer than MaxRecvDataSegmentLength";
  if (bhs.ahs_bytes() != 0) {
    // 11.2.2: only a SCSI Command carries AHS (extended CDB, bidi read length).
    const OpcodeInfo* o = opcode_info(bhs.opcode());
    if (!o || !o->takes_ahs) return "AHS on a PDU that takes none";
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

// ---- the BHS layout of each PDU type ----
//
// Each PDU type has one table of its fields: F<member, byte offset[, mask]>.
// decode() and encode() both run over it, so a field's place is written
// once. Without a mask, an integer member is big-endian over its own size
// (an array member is copied); with one, the member is the masked bits of
// that byte (a flag, ATTR, CSG/NSG). What depends on the direction (fields of
// a response only) or never varies (a fixed F bit) is written by encode().

namespace {

template <class T>
struct MemberOf;
template <class P, class T>
struct MemberOf<T P::*> {
  using type = T;
};

template <auto M, size_t Offset, uint8_t Mask = 0>
struct F {
  using T = typename MemberOf<decltype(M)>::type;
  static_assert(Offset < kBhsSize);
  template <class P>
  static void get(const Bhs& h, P& p) {
    const uint8_t* at = &h.b[Offset];
    if constexpr (Mask != 0) {
      p.*M = static_cast<T>((*at & Mask) >> std::countr_zero(Mask));
    } else if constexpr (requires { std::tuple_size<T>::value; }) {
      std::memcpy((p.*M).data(), at, std::tuple_size<T>::value);
    } else if constexpr (sizeof(T) == 1) {
      p.*M = *at;
    } else if constexpr (sizeof(T) == 2) {
      p.*M = get16(at);
    } else if constexpr (sizeof(T) == 4) {
      p.*M = get32(at);
    } else {
      p.*M = get64(at);
    }
  }
  template <class P>
  static void put(const P& p, Bhs& h) {
    uint8_t* at = &h.b[Offset];
    if constexpr (Mask != 0) {
      *at |= static_cast<uint8_t>((static_cast<unsigned>(p.*M) << std::countr_zero(Mask)) & Mask);
    } else if constexpr (requires { std::tuple_size<T>::value; }) {
      std::memcpy(at, (p.*M).data(), std::tuple_size<T>::value);
    } else if constexpr (sizeof(T) == 1) {
      *at = p.*M;
    } else if constexpr (sizeof(T) == 2) {
      put16(at, p.*M);
    } else if constexpr (sizeof(T) == 4) {
      put32(at, p.*M);
    } else {
      put64(at, p.*M);
    }
  }
};

template <class... Fields>
struct Layout {
  template <class P>
  static P decode(const Bhs& h) {
    P p;
    decode_into(h, p);
    return p;
  }
  template <class P>
  static void decode_into(const Bhs& h, P& p) {
    (Fields::get(h, p), ...);
  }
  // Into a cleared header whose opcode byte is set.
  template <class P>
  static void encode(const P& p, Bhs& h) {
    (Fields::put(p, h), ...);
  }
};

// A cleared header with its opcode (and I bit); byte 1 starts with `flags`.
void start(Bhs& h, Opcode op, bool immediate = false, uint8_t flags = 0) {
  h.b.fill(0);
  h.set_opcode(op, immediate);
  h.b[1] = flags;
}

constexpr uint8_t kFinal = 0x80;  // the F bit of PDUs that are always final

using P1 = ScsiCommandPdu;
using ScsiCommandLayout =
    Layout<F<&P1::immediate, 0, 0x40>, F<&P1::final, 1, 0x80>, F<&P1::read, 1, 0x40>,
           F<&P1::write, 1, 0x20>, F<&P1::attr, 1, 0x07>, F<&P1::lun, 8>, F<&P1::itt, 16>,
           F<&P1::expected_length, 20>, F<&P1::cmdsn, 24>, F<&P1::expstatsn, 28>, F<&P1::cdb, 32>>;

using P2 = ScsiResponsePdu;
using ScsiResponseLayout =
    Layout<F<&P2::bidi_overflow, 1, 0x10>, F<&P2::bidi_underflow, 1, 0x08>,
           F<&P2::overflow, 1, 0x04>, F<&P2::underflow, 1, 0x02>, F<&P2::response, 2>,
           F<&P2::status, 3>, F<&P2::itt, 16>, F<&P2::snack_tag, 20>, F<&P2::statsn, 24>,
           F<&P2::expcmdsn, 28>, F<&P2::maxcmdsn, 32>, F<&P2::expdatasn, 36>,
           F<&P2::bidi_residual, 40>, F<&P2::residual, 44>>;

using P3 = TmfRequestPdu;
using TmfRequestLayout =
    Layout<F<&P3::immediate, 0, 0x40>, F<&P3::function, 1, 0x7F>, F<&P3::lun, 8>, F<&P3::itt, 16>,
           F<&P3::referenced_itt, 20>, F<&P3::cmdsn, 24>, F<&P3::expstatsn, 28>,
           F<&P3::refcmdsn, 32>, F<&P3::expdatasn, 36>>;

using P4 = TmfResponsePdu;
using TmfResponseLayout = Layout<F<&P4::response, 2>, F<&P4::itt, 16>, F<&P4::statsn, 24>,
                                 F<&P4::expcmdsn, 28>, F<&P4::maxcmdsn, 32>>;

using P5 = DataOutPdu;
using DataOutLayout =
    Layout<F<&P5::final, 1, 0x80>, F<&P5::lun, 8>, F<&P5::itt, 16>, F<&P5::ttt, 20>,
           F<&P5::expstatsn, 28>, F<&P5::datasn, 36>, F<&P5::buffer_offset, 40>>;

using P6 = DataInPdu;
using DataInLayout = Layout<F<&P6::final, 1, 0x80>, F<&P6::ack, 1, 0x40>, F<&P6::overflow, 1, 0x04>,
                            F<&P6::underflow, 1, 0x02>, F<&P6::has_status, 1, 0x01>,
                            F<&P6::status, 3>, F<&P6::lun, 8>, F<&P6::itt, 16>, F<&P6::ttt, 20>,
                            F<&P6::statsn, 24>, F<&P6::expcmdsn, 28>, F<&P6::maxcmdsn, 32>,
                            F<&P6::datasn, 36>, F<&P6::buffer_offset, 40>, F<&P6::residual, 44>>;

using P7 = R2TPdu;
using R2TLayout = Layout<F<&P7::lun, 8>, F<&P7::itt, 16>, F<&P7::ttt, 20>, F<&P7::statsn, 24>,
                         F<&P7::expcmdsn, 28>, F<&P7::maxcmdsn, 32>, F<&P7::r2tsn, 36>,
                         F<&P7::buffer_offset, 40>, F<&P7::desired_length, 44>>;

using P8 = AsyncMessagePdu;
using AsyncMessageLayout =
    Layout<F<&P8::lun, 8>, F<&P8::statsn, 24>, F<&P8::expcmdsn, 28>, F<&P8::maxcmdsn, 32>,
           F<&P8::event, 36>, F<&P8::vcode, 37>, F<&P8::parameter1, 38>, F<&P8::parameter2, 40>,
           F<&P8::parameter3, 42>>;

// Request and response share these; the I bit and MaxCmdSN go one way only.
using P9 = TextPdu;
using TextLayout = Layout<F<&P9::final, 1, 0x80>, F<&P9::continue_, 1, 0x40>, F<&P9::lun, 8>,
                          F<&P9::itt, 16>, F<&P9::ttt, 20>, F<&P9::sn, 24>, F<&P9::expsn, 28>>;

using P10 = LoginPdu;
using LoginLayout = Layout<F<&P10::transit, 1, 0x80>, F<&P10::continue_, 1, 0x40>,
                           F<&P10::csg, 1, 0x0C>, F<&P10::nsg, 1, 0x03>, F<&P10::version_max, 2>,
                           F<&P10::version_min, 3>, F<&P10::isid, 8>, F<&P10::tsih, 14>,
                           F<&P10::itt, 16>, F<&P10::sn, 24>, F<&P10::expsn, 28>>;
using LoginRequestOnly = Layout<F<&P10::cid, 20>>;
using LoginResponseOnly =
    Layout<F<&P10::maxcmdsn, 32>, F<&P10::status_class, 36>, F<&P10::status_detail, 37>>;

using P11 = LogoutRequestPdu;
using LogoutRequestLayout =
    Layout<F<&P11::immediate, 0, 0x40>, F<&P11::reason, 1, 0x7F>, F<&P11::itt, 16>,
           F<&P11::cid, 20>, F<&P11::cmdsn, 24>, F<&P11::expstatsn, 28>>;

using P12 = LogoutResponsePdu;
using LogoutResponseLayout =
    Layout<F<&P12::response, 2>, F<&P12::itt, 16>, F<&P12::statsn, 24>, F<&P12::expcmdsn, 28>,
           F<&P12::maxcmdsn, 32>, F<&P12::time2wait, 40>, F<&P12::time2retain, 42>>;

using P13 = SnackPdu;
using SnackLayout =
    Layout<F<&P13::type, 1, 0x0F>, F<&P13::lun, 8>, F<&P13::itt, 16>, F<&P13::ttt, 20>,
           F<&P13::expstatsn, 28>, F<&P13::begrun, 40>, F<&P13::runlength, 44>>;

using P14 = RejectPdu;
using RejectLayout = Layout<F<&P14::reason, 2>, F<&P14::statsn, 24>, F<&P14::expcmdsn, 28>,
                            F<&P14::maxcmdsn, 32>, F<&P14::datasn, 36>>;

// NOP-Out and NOP-In; the I bit and MaxCmdSN go one way only.
using P15 = NopPdu;
using NopLayout = Layout<F<&P15::lun, 8>, F<&P15::itt, 16>, F<&P15::ttt, 20>, F<&P15::sn, 24>,
                         F<&P15::expsn, 28>>;

}  // namespace

ScsiCommandPdu ScsiCommandPdu::decode(const Bhs& h) {
  return ScsiCommandLayout::decode<ScsiCommandPdu>(h);
}
void ScsiCommandPdu::encode(Bhs& h) const {
  start(h, Opcode::kScsiCommand);
  ScsiCommandLayout::encode(*this, h);
}

ScsiResponsePdu ScsiResponsePdu::decode(const Bhs& h) {
  return ScsiResponseLayout::decode<ScsiResponsePdu>(h);
}
void ScsiResponsePdu::encode(Bhs& h, uint32_t data_length) const {
  start(h, Opcode::kScsiResponse, false, kFinal);
  ScsiResponseLayout::encode(*this, h);
  h.set_data_length(data_length);
}

TmfRequestPdu TmfRequestPdu::decode(const Bhs& h) {
  return TmfRequestLayout::decode<TmfRequestPdu>(h);
}
void TmfRequestPdu::encode(Bhs& h) const {
  start(h, Opcode::kTaskManagementRequest, false, kFinal);
  TmfRequestLayout::encode(*this, h);
}

TmfResponsePdu TmfResponsePdu::decode(const Bhs& h) {
  return TmfResponseLayout::decode<TmfResponsePdu>(h);
}
void TmfResponsePdu::encode(Bhs& h) const {
  start(h, Opcode::kTaskManagementResponse, false, kFinal);
  TmfResponseLayout::encode(*this, h);
}

DataOutPdu DataOutPdu::decode(const Bhs& h) { return DataOutLayout::decode<DataOutPdu>(h); }
void DataOutPdu::encode(Bhs& h, uint32_t data_length) const {
  start(h, Opcode::kDataOut);
  DataOutLayout::encode(*this, h);
  h.set_data_length(data_length);
}

DataInPdu DataInPdu::decode(const Bhs& h) { return DataInLayout::decode<DataInPdu>(h); }
void DataInPdu::encode(Bhs& h, uint32_t data_length) const {
  start(h, Opcode::kDataIn);
  DataInLayout::encode(*this, h);
  if (!has_status) {
    // 11.7.3-11.7.5: status, StatSN and the residual are reserved without S.
    h.b[3] = 0;
    put32(&h.b[24], 0);
    put32(&h.b[44], 0);
  }
  h.set_data_length(data_length);
}

R2TPdu R2TPdu::decode(const Bhs& h) { return R2TLayout::decode<R2TPdu>(h); }
void R2TPdu::encode(Bhs& h) const {
  start(h, Opcode::kR2T, false, kFinal);
  R2TLayout::encode(*this, h);
}

AsyncMessagePdu AsyncMessagePdu::decode(const Bhs& h) {
  return AsyncMessageLayout::decode<AsyncMessagePdu>(h);
}
void AsyncMessagePdu::encode(Bhs& h, uint32_t data_length) const {
  start(h, Opcode::kAsyncMessage, false, kFinal);
  AsyncMessageLayout::encode(*this, h);
  put32(&h.b[16], kReservedTag);
  h.set_data_length(data_length);
}

TextPdu TextPdu::decode(const Bhs& h) {
  TextPdu p = TextLayout::decode<TextPdu>(h);
  p.immediate = h.immediate();
  p.maxcmdsn = get32(&h.b[32]);
  return p;
}
void TextPdu::encode(Bhs& h, Opcode op, uint32_t data_length) const {
  start(h, op, op == Opcode::kTextRequest && immediate);
  TextLayout::encode(*this, h);
  if (op == Opcode::kTextResponse) put32(&h.b[32], maxcmdsn);
  h.set_data_length(data_length);
}

LoginPdu LoginPdu::decode(const Bhs& h) {
  LoginPdu p = LoginLayout::decode<LoginPdu>(h);
  LoginRequestOnly::decode_into(h, p);
  LoginResponseOnly::decode_into(h, p);
  return p;
}
void LoginPdu::encode(Bhs& h, Opcode op, uint32_t data_length) const {
  // 11.12: a Login Request always has the I bit set.
  start(h, op, op == Opcode::kLoginRequest);
  LoginLayout::encode(*this, h);
  if (op == Opcode::kLoginRequest) LoginRequestOnly::encode(*this, h);
  if (op == Opcode::kLoginResponse) LoginResponseOnly::encode(*this, h);
  h.set_data_length(data_length);
}

LogoutRequestPdu LogoutRequestPdu::decode(const Bhs& h) {
  return LogoutRequestLayout::decode<LogoutRequestPdu>(h);
}
void LogoutRequestPdu::encode(Bhs& h) const {
  start(h, Opcode::kLogoutRequest, false, kFinal);
  LogoutRequestLayout::encode(*this, h);
}

LogoutResponsePdu LogoutResponsePdu::decode(const Bhs& h) {
  return LogoutResponseLayout::decode<LogoutResponsePdu>(h);
}
void LogoutResponsePdu::encode(Bhs& h) const {
  start(h, Opcode::kLogoutResponse, false, kFinal);
  LogoutResponseLayout::encode(*this, h);
}

SnackPdu SnackPdu::decode(const Bhs& h) { return SnackLayout::decode<SnackPdu>(h); }

RejectPdu RejectPdu::decode(const Bhs& h) { return RejectLayout::decode<RejectPdu>(h); }
void RejectPdu::encode(Bhs& h) const {
  start(h, Opcode::kReject, false, kFinal);
  RejectLayout::encode(*this, h);
  put32(&h.b[16], kReservedTag);
  h.set_data_length(kBhsSize);
}

NopPdu NopPdu::decode(const Bhs& h) {
  NopPdu p = NopLayout::decode<NopPdu>(h);
  p.immediate = h.immediate();
  p.maxcmdsn = get32(&h.b[32]);
  return p;
}
void NopPdu::encode(Bhs& h, Opcode op, uint32_t data_length) const {
  start(h, op, op == Opcode::kNopOut && immediate, kFinal);
  NopLayout::encode(*this, h);
  if (op == Opcode::kNopIn) put32(&h.b[32], maxcmdsn);
  h.set_data_length(data_length);
}

}  // namespace scstu::iscsi
