#include "iscsi/session_params.h"

#include <algorithm>
#include <array>

#include "iscsi/text_keys.h"

namespace scstu::iscsi {
namespace {

constexpr uint32_t kMinSegment = 512;
constexpr uint32_t kMaxSegment = (1u << 24) - 1;

std::optional<bool> parse_bool(std::string_view v) {
  if (v == "Yes") return true;
  if (v == "No") return false;
  return std::nullopt;
}
const char* bool_str(bool b) { return b ? "Yes" : "No"; }

// Digest lists: the first of the initiator's choices we support (13.1).
KeyAnswer negotiate_digest(std::string_view value, bool allowed, bool& out) {
  for (std::string_view choice : split_list(value)) {
    if (choice == "CRC32C" && allowed) {
      out = true;
      return {"CRC32C"};
    }
    if (choice == "None") {
      out = false;
      return {"None"};
    }
  }
  return {"Reject"};
}

KeyAnswer numeric_min(std::string_view value, uint64_t lo, uint64_t hi, uint32_t ours,
                      uint32_t& out) {
  auto n = parse_number(value, hi);
  if (!n || *n < lo) return {"Reject"};
  out = static_cast<uint32_t>(std::min<uint64_t>(*n, ours));
  return {std::to_string(out)};
}

constexpr std::array<std::string_view, 18> kOperationalKeys = {"HeaderDigest",
                                                               "DataDigest",
                                                               "MaxConnections",
                                                               "InitialR2T",
                                                               "ImmediateData",
                                                               "MaxRecvDataSegmentLength",
                                                               "MaxBurstLength",
                                                               "FirstBurstLength",
                                                               "DefaultTime2Wait",
                                                               "DefaultTime2Retain",
                                                               "MaxOutstandingR2T",
                                                               "DataPDUInOrder",
                                                               "DataSequenceInOrder",
                                                               "ErrorRecoveryLevel",
                                                               "OFMarker",
                                                               "IFMarker",
                                                               "OFMarkInt",
                                                               "IFMarkInt"};

}  // namespace

bool is_operational_key(std::string_view key) {
  return std::find(kOperationalKeys.begin(), kOperationalKeys.end(), key) !=
             kOperationalKeys.end() ||
         key == "iSCSIProtocolLevel" || key == "TaskReporting";
}

bool is_leading_only_key(std::string_view key) {
  return key == "MaxConnections" || key == "InitialR2T" || key == "ImmediateData" ||
         key == "MaxBurstLength" || key == "FirstBurstLength" || key == "DefaultTime2Wait" ||
         key == "DefaultTime2Retain" || key == "MaxOutstandingR2T" || key == "DataPDUInOrder" ||
         key == "DataSequenceInOrder" || key == "ErrorRecoveryLevel";
}

KeyAnswer negotiate_operational_key(std::string_view key, std::string_view value,
                                    const TargetLimits& limits, bool discovery, SessionParams& p) {
  if (key == "HeaderDigest")
    return negotiate_digest(value, limits.header_digest_allowed, p.header_digest);
  if (key == "DataDigest")
    return negotiate_digest(value, limits.data_digest_allowed, p.data_digest);
  if (key == "MaxRecvDataSegmentLength") {
    // Declarative (13.12): the initiator's receive limit for our PDUs.
    auto n = parse_number(value, kMaxSegment);
    if (!n || *n < kMinSegment) return {"Reject"};
    p.initiator_max_recv_data_segment_length = static_cast<uint32_t>(*n);
    return {"", false};
  }
  // 13.2 ff.: in a discovery session only the keys above matter.
  bool session_wide = key == "MaxConnections" || key == "InitialR2T" || key == "ImmediateData" ||
                      key == "MaxBurstLength" || key == "FirstBurstLength" ||
                      key == "MaxOutstandingR2T" || key == "DataPDUInOrder" ||
                      key == "DataSequenceInOrder";
  if (discovery && session_wide) return {"Irrelevant"};
  if (key == "MaxConnections") {
    // 13.2: min of the offer and what we accept (ServerOptions::max_connections).
    uint32_t out = 1;
    KeyAnswer a =
        numeric_min(value, 1, 65535, std::clamp<uint32_t>(limits.max_connections, 1, 65535), out);
    p.max_connections = out;
    return a;
  }
  if (key == "InitialR2T") {  // 13.10: result function OR
    auto b = parse_bool(value);
    if (!b) return {"Reject"};
    p.initial_r2t = *b || limits.initial_r2t;
    return {bool_str(p.initial_r2t)};
  }
  if (key == "ImmediateData") {  // 13.11: AND
    auto b = parse_bool(value);
    if (!b) return {"Reject"};
    p.immediate_data = *b && limits.immediate_data;
    return {bool_str(p.immediate_data)};
  }
  if (key == "MaxBurstLength")
    return numeric_min(value, kMinSegment, kMaxSegment, limits.max_burst_length,
                       p.max_burst_length);
  if (key == "FirstBurstLength")
    return numeric_min(value, kMinSegment, kMaxSegment, limits.first_burst_length,
                       p.first_burst_length);
  if (key == "DefaultTime2Wait") {  // 13.15: max
    auto n = parse_number(value, 3600);
    if (!n) return {"Reject"};
    p.default_time2wait = static_cast<uint16_t>(std::max<uint64_t>(*n, limits.default_time2wait));
    return {std::to_string(p.default_time2wait)};
  }
  if (key == "DefaultTime2Retain") {  // 13.16: min
    auto n = parse_number(value, 3600);
    if (!n) return {"Reject"};
    p.default_time2retain =
        static_cast<uint16_t>(std::min<uint64_t>(*n, limits.default_time2retain));
    return {std::to_string(p.default_time2retain)};
  }
  if (key == "MaxOutstandingR2T")
    return numeric_min(value, 1, 65535, limits.max_outstanding_r2t, p.max_outstanding_r2t);
  if (key == "DataPDUInOrder" || key == "DataSequenceInOrder") {
    // 13.18/13.19: OR; we want in-order delivery, so the answer is Yes.
    if (!parse_bool(value)) return {"Reject"};
    (key == "DataPDUInOrder" ? p.data_pdu_in_order : p.data_sequence_in_order) = true;
    return {"Yes"};
  }
  if (key == "ErrorRecoveryLevel") {  // 13.20: min; we implement level 0
    auto n = parse_number(value, 2);
    if (!n) return {"Reject"};
    p.error_recovery_level = 0;
    return {"0"};
  }
  // RFC 3720 markers, removed by RFC 7143 but still offered by old initiators.
  if (key == "OFMarker" || key == "IFMarker") return {"No"};
  if (key == "OFMarkInt" || key == "IFMarkInt") return {"Irrelevant"};
  if (key == "iSCSIProtocolLevel") {  // RFC 7144 13.24: min; we claim RFC 7143 (1)
    auto n = parse_number(value, 31);
    if (!n) return {"Reject"};
    return {std::to_string(std::min<uint64_t>(*n, 1))};
  }
  if (key == "TaskReporting") return {"RFC3720"};
  return {"NotUnderstood"};
}

void finish_negotiation(SessionParams& p) {
  if (p.first_burst_length > p.max_burst_length) p.first_burst_length = p.max_burst_length;
}

}  // namespace scstu::iscsi
