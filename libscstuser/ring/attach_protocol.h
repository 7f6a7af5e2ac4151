// attach_protocol.h - the handshake on a user-space producer's Unix socket
// (SOCK_SEQPACKET). The handler sends an AttachHello; the producer answers
// with an AttachReply carrying, via SCM_RIGHTS, the region's memfd followed by
// nr_queues "submission" eventfds (producer -> handler kicks) and nr_queues
// "completion" eventfds (handler -> producer kicks). After that the socket
// carries nothing; either side's hang-up means the peer is gone.
#pragma once

#include <cstdint>

#include "ring/ring_abi.h"

namespace scstu::ring {

inline constexpr uint32_t kHelloMagic = 0x4c454853u;  // "SHEL"
inline constexpr uint32_t kReplyMagic = 0x59504c52u;  // "RLPY"

struct AttachHello {
  uint32_t magic = kHelloMagic;
  uint16_t abi_major = SCSTU_ABI_MAJOR;
  uint16_t abi_minor = SCSTU_ABI_MINOR;
  char device_name[SCSTU_NAME_MAX] = {};  // NUL-terminated
  uint8_t device_type = 0;                // SPC-4 peripheral device type
  uint8_t reserved[3] = {};
  uint32_t block_size = 512;
};

struct AttachReply {
  uint32_t magic = kReplyMagic;
  int32_t error = 0;         // 0, or a positive errno (then no fds; message says why)
  uint64_t region_size = 0;  // bytes to mmap from the memfd
  uint32_t nr_queues = 0;
  uint32_t nr_fds = 0;  // 1 + 2 * nr_queues
  char message[192] = {};
};

// The most fds one reply carries.
inline constexpr uint32_t kMaxAttachFds = 1 + 2 * SCSTU_MAX_QUEUES;

}  // namespace scstu::ring
