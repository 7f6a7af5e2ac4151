#include "io/blocking_io.h"

#include <fcntl.h>
#include <linux/falloc.h>
#include <sys/uio.h>
#include <unistd.h>

#include <cerrno>
#include <climits>

namespace scstu::io {

static int transfer(IoOp& op) {
  for (;;) {
    const int iovcnt = static_cast<int>(std::min<size_t>(op.iov.size(), IOV_MAX));
    ssize_t n =
        op.kind == IoKind::kRead
            ? preadv2(op.fd, op.iov.data(), iovcnt, static_cast<off_t>(op.offset), op.rw_flags)
            : pwritev2(op.fd, op.iov.data(), iovcnt, static_cast<off_t>(op.offset), op.rw_flags);
    if (n < 0) {
      if (errno == EINTR || errno == EAGAIN) continue;
      return -errno;
    }
    // A read of 0 bytes is end of file: the file shrank under the device
    // (resync_size not yet run). A write of 0 bytes cannot make progress.
    if (n == 0) return -EIO;
    if (!advance_after_short_transfer(op, static_cast<uint64_t>(n))) return 0;
  }
}

int run_blocking(IoOp& op) {
  switch (op.kind) {
    case IoKind::kRead:
    case IoKind::kWrite:
      if (op.length == 0) return 0;
      return transfer(op);
    case IoKind::kSync:
      while (fdatasync(op.fd) != 0) {
        if (errno != EINTR) return -errno;
      }
      return 0;
    case IoKind::kPunchHole:
      while (fallocate(op.fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE,
                       static_cast<off_t>(op.offset), static_cast<off_t>(op.length)) != 0) {
        if (errno != EINTR) return -errno;
      }
      return 0;
  }
  return -EINVAL;
}

}  // namespace scstu::io
