// io_op.h - one I/O operation on a file descriptor, as FileDevice hands it to
// an IoEngine. Engines retry short transfers themselves, so finish() sees
// either the whole transfer or an error.
#pragma once

#include <sys/uio.h>

#include <cstdint>
#include <span>
#include <vector>

namespace scstu::io {

enum class IoKind : uint8_t {
  kRead,
  kWrite,
  kSync,       // fdatasync
  kPunchHole,  // fallocate(PUNCH_HOLE | KEEP_SIZE)
};

struct IoOp {
  IoKind kind = IoKind::kRead;
  int fd = -1;
  int rw_flags = 0;     // preadv2/pwritev2 flags: RWF_DSYNC for FUA writes
  uint64_t offset = 0;  // bytes
  uint64_t length = 0;  // bytes: kPunchHole's range; for kRead/kWrite the iov total
  std::span<const iovec> iov;

  // Called once by the engine: 0, or a negative errno.
  void (*finish)(IoOp* op, int result) = nullptr;
  void* owner = nullptr;  // the FileDevice's per-request state

  // Progress of a read/write across short transfers. Engines only.
  uint64_t done_bytes = 0;
  uint8_t resubmits = 0;    // io_uring: times re-queued after -ECANCELED
  std::vector<iovec> rest;  // the remaining segments after a short transfer (rare path)

  void reset_progress() {
    done_bytes = 0;
    resubmits = 0;
    rest.clear();
  }
};

// After a transfer of n bytes (n > 0) of what remains of op: returns true if
// more remains, and points op.iov/op.offset at it (copying into op.rest).
bool advance_after_short_transfer(IoOp& op, uint64_t n);

}  // namespace scstu::io
