// pdu.h - iSCSI PDUs (RFC 7143 11): the 48-byte Basic Header Segment of every
// opcode, Additional Header Segments, and the bounds every length obeys.
//
// Each PDU type is a plain struct with decode() from and encode() into a BHS,
// both driven by one table of its fields (pdu.cpp); the opcodes themselves
// are described by one table too (opcode_info()). decode() never fails: it
// only reads fixed offsets of 48 bytes. What a field
// may contain is checked where the PDU is used (connection.cpp, login.cpp);
// the lengths that size allocations are checked here (check_lengths()).
#pragma once

#include <array>
#include <cstdint>
#include <span>
#include <string>

namespace scstu::iscsi {

inline constexpr size_t kBhsSize = 48;
inline constexpr size_t kDigestSize = 4;
// RFC 7143 13.12: MaxRecvDataSegmentLength is at most 2^24 - 1.
inline constexpr uint32_t kMaxDataSegment = (1u << 24) - 1;
// TotalAHSLength is one byte of 4-byte words.
inline constexpr size_t kMaxAhsBytes = size_t{255} * 4;
inline constexpr uint32_t kReservedTag = 0xFFFFFFFFu;

enum class Opcode : uint8_t {
  // initiator -> target
  kNopOut = 0x00,
  kScsiCommand = 0x01,
  kTaskManagementRequest = 0x02,
  kLoginRequest = 0x03,
  kTextRequest = 0x04,
  kDataOut = 0x05,
  kLogoutRequest = 0x06,
  kSnackRequest = 0x10,
  // target -> initiator
  kNopIn = 0x20,
  kScsiResponse = 0x21,
  kTaskManagementResponse = 0x22,
  kLoginResponse = 0x23,
  kTextResponse = 0x24,
  kDataIn = 0x25,
  kLogoutResponse = 0x26,
  kR2T = 0x31,
  kAsyncMessage = 0x32,
  kReject = 0x3F,
};

// RFC 7143 11.2.1.2: what the code asks of an opcode, one table row each
// (pdu.cpp). nullptr: not an opcode of RFC 7143.
struct OpcodeInfo {
  Opcode op;
  const char* name;
  bool takes_ahs;  // 11.2.2: may carry Additional Header Segments
  bool numbered;   // carries a CmdSN that takes its turn unless immediate
                   // (4.2.2.1; a NOP-Out only with an ITT, 11.18)
};
const OpcodeInfo* opcode_info(Opcode op);
const char* opcode_name(Opcode op);

// Big-endian field access into a header.
inline uint16_t get16(const uint8_t* p) { return static_cast<uint16_t>(p[0] << 8 | p[1]); }
inline uint32_t get24(const uint8_t* p) { return uint32_t{p[0]} << 16 | p[1] << 8 | p[2]; }
inline uint32_t get32(const uint8_t* p) {
  return uint32_t{p[0]} << 24 | uint32_t{p[1]} << 16 | uint32_t{p[2]} << 8 | p[3];
}
inline uint64_t get64(const uint8_t* p) { return uint64_t{get32(p)} << 32 | get32(p + 4); }
inline void put16(uint8_t* p, uint16_t v) {
  p[0] = static_cast<uint8_t>(v >> 8);
  p[1] = static_cast<uint8_t>(v);
}
inline void put24(uint8_t* p, uint32_t v) {
  p[0] = static_cast<uint8_t>(v >> 16);
  p[1] = static_cast<uint8_t>(v >> 8);
  p[2] = static_cast<uint8_t>(v);
}
inline void put32(uint8_t* p, uint32_t v) {
  put16(p, static_cast<uint16_t>(v >> 16));
  put16(p + 2, static_cast<uint16_t>(v));
}
inline void put64(uint8_t* p, uint64_t v) {
  put32(p, static_cast<uint32_t>(v >> 32));
  put32(p + 4, static_cast<uint32_t>(v));
}

// RFC 7143 11.2: the Basic Header Segment and the fields common to all PDUs.
struct Bhs {
  std::array<uint8_t, kBhsSize> b{};

  Opcode opcode() const { return static_cast<Opcode>(b[0] & 0x3F); }
  bool immediate() const { return b[0] & 0x40; }
  bool final() const { return b[1] & 0x80; }
  size_t ahs_bytes() const { return size_t{b[4]} * 4; }
  uint32_t data_length() const { return get24(&b[5]); }
  uint64_t lun() const { return get64(&b[8]); }
  uint32_t itt() const { return get32(&b[16]); }

  void set_opcode(Opcode op, bool immediate = false) {
    b[0] = static_cast<uint8_t>(op) | (immediate ? 0x40 : 0);
  }
  void set_data_length(uint32_t len) { put24(&b[5], len); }
  void set_ahs_bytes(size_t len) { b[4] = static_cast<uint8_t>(len / 4); }
};

// Bytes of padding after a segment of `len` bytes (RFC 7143 11.1: 4-byte units).
inline uint32_t pad4(uint32_t len) { return (4 - (len & 3)) & 3; }

// Validate the lengths of a received header before anything is sized from
// them: the data segment must fit what we declared (MaxRecvDataSegmentLength;
// login/text PDUs are bounded by `max_data`) and the AHS must be a whole
// number of well-formed AHS entries. Returns nullptr or the reason.
const char* check_lengths(const Bhs& bhs, uint32_t max_data);

// RFC 7143 11.2.2: Additional Header Segments the target understands.
struct AhsInfo {
  std::span<const uint8_t> extended_cdb;  // CDB bytes beyond the first 16
  bool has_bidi_read_length = false;
  uint32_t bidi_read_length = 0;
};
// Parse the AHS area (ahs_bytes() long). Returns nullptr or the reason.
const char* parse_ahs(std::span<const uint8_t> ahs, AhsInfo& out);
// Build an extended-CDB AHS for the CDB bytes beyond 16 (initiator side, for
// tests). Returns the bytes written (padded to 4) or 0 if `out` is too small.
size_t build_extended_cdb_ahs(std::span<const uint8_t> cdb_tail, std::span<uint8_t> out);
size_t build_bidi_read_length_ahs(uint32_t length, std::span<uint8_t> out);

// ---- Per-opcode views ----

// 11.3 SCSI Command
struct ScsiCommandPdu {
  bool immediate = false;
  bool final = true;
  bool read = false;   // R
  bool write = false;  // W
  uint8_t attr = 0;    // ATTR (0 untagged, 1 simple, 2 ordered, 3 head of queue, 4 ACA)
  uint64_t lun = 0;
  uint32_t itt = 0;
  uint32_t expected_length = 0;
  uint32_t cmdsn = 0;
  uint32_t expstatsn = 0;
  std::array<uint8_t, 16> cdb{};
  static ScsiCommandPdu decode(const Bhs& h);
  void encode(Bhs& h) const;
};

// 11.4 SCSI Response
struct ScsiResponsePdu {
  bool bidi_overflow = false;   // o
  bool bidi_underflow = false;  // u
  bool overflow = false;        // O
  bool underflow = false;       // U
  uint8_t response = 0;         // 0 command completed at target
  uint8_t status = 0;
  uint32_t itt = 0;
  uint32_t snack_tag = 0;
  uint32_t statsn = 0, expcmdsn = 0, maxcmdsn = 0;
  uint32_t expdatasn = 0;
  uint32_t bidi_residual = 0;
  uint32_t residual = 0;
  static ScsiResponsePdu decode(const Bhs& h);
  void encode(Bhs& h, uint32_t data_length) const;
};

// 11.5 Task Management Function Request
struct TmfRequestPdu {
  bool immediate = false;
  uint8_t function = 0;  // 1 ABORT TASK ... 8 TASK REASSIGN
  uint64_t lun = 0;
  uint32_t itt = 0;
  uint32_t referenced_itt = 0;
  uint32_t cmdsn = 0, expstatsn = 0;
  uint32_t refcmdsn = 0, expdatasn = 0;
  static TmfRequestPdu decode(const Bhs& h);
  void encode(Bhs& h) const;
};

enum class TmfFunction : uint8_t {
  kAbortTask = 1,
  kAbortTaskSet = 2,
  kClearAca = 3,
  kClearTaskSet = 4,
  kLogicalUnitReset = 5,
  kTargetWarmReset = 6,
  kTargetColdReset = 7,
  kTaskReassign = 8,
};

// 11.6.1 TMF response codes.
enum class TmfResponse : uint8_t {
  kComplete = 0,
  kTaskDoesNotExist = 1,
  kLunDoesNotExist = 2,
  kTaskStillAllegiant = 3,
  kReassignmentNotSupported = 4,
  kNotSupported = 5,
  kAuthorizationFailed = 6,
  kRejected = 255,
};

// 11.6 Task Management Function Response
struct TmfResponsePdu {
  uint8_t response = 0;
  uint32_t itt = 0;
  uint32_t statsn = 0, expcmdsn = 0, maxcmdsn = 0;
  static TmfResponsePdu decode(const Bhs& h);
  void encode(Bhs& h) const;
};

// 11.7 SCSI Data-Out
struct DataOutPdu {
  bool final = false;
  uint64_t lun = 0;
  uint32_t itt = 0;
  uint32_t ttt = kReservedTag;
  uint32_t expstatsn = 0;
  uint32_t datasn = 0;
  uint32_t buffer_offset = 0;
  static DataOutPdu decode(const Bhs& h);
  void encode(Bhs& h, uint32_t data_length) const;
};

// 11.7 SCSI Data-In
struct DataInPdu {
  bool final = false;
  bool ack = false;         // A
  bool overflow = false;    // O
  bool underflow = false;   // U
  bool has_status = false;  // S (status phase collapse, 11.7.2)
  uint8_t status = 0;
  uint64_t lun = 0;
  uint32_t itt = 0;
  uint32_t ttt = kReservedTag;
  uint32_t statsn = 0, expcmdsn = 0, maxcmdsn = 0;
  uint32_t datasn = 0;
  uint32_t buffer_offset = 0;
  uint32_t residual = 0;
  static DataInPdu decode(const Bhs& h);
  void encode(Bhs& h, uint32_t data_length) const;
};

// 11.8 Ready To Transfer
struct R2TPdu {
  uint64_t lun = 0;
  uint32_t itt = 0;
  uint32_t ttt = 0;
  uint32_t statsn = 0, expcmdsn = 0, maxcmdsn = 0;
  uint32_t r2tsn = 0;
  uint32_t buffer_offset = 0;
  uint32_t desired_length = 0;
  static R2TPdu decode(const Bhs& h);
  void encode(Bhs& h) const;
};

// 11.9 Asynchronous Message
struct AsyncMessagePdu {
  uint64_t lun = 0;
  uint32_t statsn = 0, expcmdsn = 0, maxcmdsn = 0;
  uint8_t event = 0;  // 1: target requests Logout
  uint8_t vcode = 0;
  uint16_t parameter1 = 0, parameter2 = 0, parameter3 = 0;
  static AsyncMessagePdu decode(const Bhs& h);
  void encode(Bhs& h, uint32_t data_length) const;
};

// 11.10 Text Request / 11.11 Text Response (same layout, different opcode).
struct TextPdu {
  bool immediate = false;
  bool final = true;
  bool continue_ = false;  // C
  uint64_t lun = 0;
  uint32_t itt = 0;
  uint32_t ttt = kReservedTag;
  uint32_t sn = 0;        // CmdSN (request) / StatSN (response)
  uint32_t expsn = 0;     // ExpStatSN (request) / ExpCmdSN (response)
  uint32_t maxcmdsn = 0;  // response only
  static TextPdu decode(const Bhs& h);
  void encode(Bhs& h, Opcode op, uint32_t data_length) const;
};

// 11.12 Login Request / 11.13 Login Response.
enum class LoginStage : uint8_t { kSecurity = 0, kOperational = 1, kFullFeature = 3 };
struct LoginPdu {
  bool transit = false;    // T
  bool continue_ = false;  // C
  uint8_t csg = 0, nsg = 0;
  uint8_t version_max = 0, version_min = 0;  // response: max, active
  std::array<uint8_t, 6> isid{};
  uint16_t tsih = 0;
  uint32_t itt = 0;
  uint16_t cid = 0;                             // request only
  uint32_t sn = 0;                              // CmdSN (request) / StatSN (response)
  uint32_t expsn = 0;                           // ExpStatSN (request) / ExpCmdSN (response)
  uint32_t maxcmdsn = 0;                        // response only
  uint8_t status_class = 0, status_detail = 0;  // response only
  static LoginPdu decode(const Bhs& h);
  void encode(Bhs& h, Opcode op, uint32_t data_length) const;
};

// 11.14 Logout Request / 11.15 Logout Response
struct LogoutRequestPdu {
  bool immediate = false;
  uint8_t reason = 0;  // 0 close session, 1 close connection, 2 remove for recovery
  uint32_t itt = 0;
  uint16_t cid = 0;
  uint32_t cmdsn = 0, expstatsn = 0;
  static LogoutRequestPdu decode(const Bhs& h);
  void encode(Bhs& h) const;
};
struct LogoutResponsePdu {
  uint8_t response = 0;  // 0 closed successfully, 1 CID not found, 2 recovery not supported
  uint32_t itt = 0;
  uint32_t statsn = 0, expcmdsn = 0, maxcmdsn = 0;
  uint16_t time2wait = 0, time2retain = 0;
  static LogoutResponsePdu decode(const Bhs& h);
  void encode(Bhs& h) const;
};

// 11.16 SNACK Request (ErrorRecoveryLevel 0 never needs one; parsed to reject it).
struct SnackPdu {
  uint8_t type = 0;
  uint64_t lun = 0;
  uint32_t itt = 0, ttt = 0, expstatsn = 0, begrun = 0, runlength = 0;
  static SnackPdu decode(const Bhs& h);
};

// 11.17 Reject: the data segment is the offending header.
enum class RejectReason : uint8_t {
  kDataDigestError = 0x02,
  kSnackReject = 0x03,
  kProtocolError = 0x04,
  kCommandNotSupported = 0x05,
  kImmediateCommandReject = 0x06,
  kTaskInProgress = 0x07,
  kInvalidDataAck = 0x08,
  kInvalidPduField = 0x09,
  kLongOperationReject = 0x0A,
  kWaitingForLogout = 0x0C,
};
struct RejectPdu {
  uint8_t reason = 0;
  uint32_t statsn = 0, expcmdsn = 0, maxcmdsn = 0;
  uint32_t datasn = 0;
  static RejectPdu decode(const Bhs& h);
  void encode(Bhs& h) const;  // data length 48
};

// 11.18 NOP-Out / 11.19 NOP-In
struct NopPdu {
  bool immediate = false;
  uint64_t lun = 0;
  uint32_t itt = kReservedTag;
  uint32_t ttt = kReservedTag;
  uint32_t sn = 0;        // CmdSN (out) / StatSN (in)
  uint32_t expsn = 0;     // ExpStatSN (out) / ExpCmdSN (in)
  uint32_t maxcmdsn = 0;  // in only
  static NopPdu decode(const Bhs& h);
  void encode(Bhs& h, Opcode op, uint32_t data_length) const;
};

// Serial number arithmetic (RFC 1982, as RFC 7143 4.2.2.1 requires for the
// 32-bit sequence numbers).
inline bool sn_lt(uint32_t a, uint32_t b) { return a != b && static_cast<int32_t>(a - b) < 0; }
inline bool sn_le(uint32_t a, uint32_t b) { return a == b || sn_lt(a, b); }

}  // namespace scstu::iscsi
