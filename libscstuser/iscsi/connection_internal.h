// connection_internal.h - what the connection_*.cpp files share: wire
// helpers, limits, and the thread-local "current connection" that tells a
// completion on the connection's own thread from one on a device thread.
#pragma once

#include <array>
#include <chrono>
#include <cstdint>

#include "handler/command.h"

namespace scstu::iscsi {

class Connection;

using Clock = std::chrono::steady_clock;

inline constexpr size_t kRxBuffer = size_t{512} * 1024;
inline constexpr size_t kArenaChunk = size_t{64} * 1024;
inline constexpr uint32_t kImmediateTasks = 16;
inline constexpr uint32_t kMaxPendingTmfs = 32;
// Transmit backlog beyond which no more PDUs are read until some is sent.
inline constexpr size_t kMaxArenaBytes = 32u << 20;
inline constexpr size_t kMaxTxSegments = size_t{64} * 1024;
// Queued response bytes that are sent at once, mid-batch (see full_feature()).
inline constexpr size_t kEarlyFlushBytes = size_t{64} * 1024;
// Login PDUs: RFC 7143 13.12, the default MaxRecvDataSegmentLength is in
// force until negotiation ends.
inline constexpr uint32_t kLoginMaxData = 8192;
inline constexpr uint8_t kZeros[4] = {};

inline thread_local Connection* tls_connection = nullptr;

// Digests travel least significant byte first (RFC 3720 B.4 vectors).
inline void put_le32(uint8_t* p, uint32_t v) {
  p[0] = static_cast<uint8_t>(v);
  p[1] = static_cast<uint8_t>(v >> 8);
  p[2] = static_cast<uint8_t>(v >> 16);
  p[3] = static_cast<uint8_t>(v >> 24);
}
inline uint32_t get_le32(const uint8_t* p) {
  return uint32_t{p[0]} | uint32_t{p[1]} << 8 | uint32_t{p[2]} << 16 | uint32_t{p[3]} << 24;
}

// RFC 7143 11.3.1 ATTR -> SAM-5 task attribute.
inline TaskAttribute task_attribute(uint8_t attr) {
  switch (attr) {
    case 2:
      return TaskAttribute::kOrdered;
    case 3:
      return TaskAttribute::kHeadOfQueue;
    case 4:
      return TaskAttribute::kAca;
    default:
      return TaskAttribute::kSimple;  // 0 untagged, 1 simple
  }
}

inline uint64_t isid_u64(const std::array<uint8_t, 6>& isid) {
  uint64_t v = 0;
  for (uint8_t b : isid) v = v << 8 | b;
  return v;
}

}  // namespace scstu::iscsi
