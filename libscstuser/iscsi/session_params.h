// session_params.h - operational parameters (RFC 7143 13) and their
// negotiation: the target's side of each key's result function.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

namespace scstu::iscsi {

// What this target supports / prefers. Values are clamped to RFC ranges.
struct TargetLimits {
  uint32_t max_recv_data_segment_length = 256 * 1024;  // we declare it (13.12)
  uint32_t max_burst_length = 1024 * 1024;
  uint32_t first_burst_length = 256 * 1024;
  uint32_t max_outstanding_r2t = 16;
  bool initial_r2t = false;  // we accept unsolicited data
  bool immediate_data = true;
  bool header_digest_allowed = true;  // CRC32C offered by the initiator is accepted
  bool data_digest_allowed = true;
  uint16_t default_time2wait = 2;
  uint16_t default_time2retain = 0;  // ErrorRecoveryLevel 0: no session state kept
  uint32_t max_connections = 1;      // MC/S: connections per session we accept
};

// The values in force for a session; defaults are RFC 7143's.
struct SessionParams {
  bool header_digest = false;
  bool data_digest = false;
  uint32_t max_connections = 1;
  bool initial_r2t = true;
  bool immediate_data = true;
  // Per direction (13.12, declarative): what the initiator accepts in one PDU
  // from us, and what we declared we accept.
  uint32_t initiator_max_recv_data_segment_length = 8192;
  uint32_t target_max_recv_data_segment_length = 8192;
  uint32_t max_burst_length = 262144;
  uint32_t first_burst_length = 65536;
  uint16_t default_time2wait = 2;
  uint16_t default_time2retain = 20;
  uint32_t max_outstanding_r2t = 1;
  bool data_pdu_in_order = true;
  bool data_sequence_in_order = true;
  uint8_t error_recovery_level = 0;
};

// Answer one operational key offered by the initiator. Updates `params` and
// returns the value to send back: the negotiated value, "Reject" (bad value),
// "Irrelevant", or "NotUnderstood" (unknown key). `declarative` is set when
// no answer is to be sent (the key was a declaration).
struct KeyAnswer {
  std::string value;
  bool send = true;
};
KeyAnswer negotiate_operational_key(std::string_view key, std::string_view value,
                                    const TargetLimits& limits, bool discovery,
                                    SessionParams& params);

// RFC 7143 13 "LO": keys negotiated on the leading connection only; they
// bind the whole session.
bool is_leading_only_key(std::string_view key);

// True for keys negotiated in the operational stage (13.x); login.cpp uses
// it to tell them from security and declarative login keys.
bool is_operational_key(std::string_view key);

// After the exchange: enforce cross-key rules (13.14: FirstBurstLength <=
// MaxBurstLength).
void finish_negotiation(SessionParams& params);

}  // namespace scstu::iscsi
