#include <cerrno>

#include "handler/block_device.h"

namespace scstu {

// Runs each request synchronously on the calling (queue) thread.
void SimpleBlockDevice::submit(BlockRequest& req) {
  const uint64_t bs = geometry().block_size;
  int err = 0;
  switch (req.op) {
    case BlockOp::kRead:
      err = read(req.lba * bs, req.iov);
      break;
    case BlockOp::kWrite:
      err = write(req.lba * bs, req.iov, (req.flags & kBlockFua) != 0);
      break;
    case BlockOp::kFlush:
      err = flush();
      break;
    case BlockOp::kUnmap:
      err = unmap(req.lba * bs, req.blocks * bs);
      break;
    case BlockOp::kWriteSame:
      // The library emulates WRITE SAME with kWrite unless capabilities() says
      // otherwise; a simple device never advertises it.
      err = -EOPNOTSUPP;
      break;
  }
  req.complete(err);
}

}  // namespace scstu
