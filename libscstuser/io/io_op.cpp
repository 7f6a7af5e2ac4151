#include "io/io_op.h"

namespace scstu::io {

bool advance_after_short_transfer(IoOp& op, uint64_t n) {
  op.done_bytes += n;
  op.offset += n;
  if (op.done_bytes >= op.length) return false;
  // Rebuild the remaining segments; op.iov may already point into op.rest, so
  // build a fresh vector first.
  std::vector<iovec> remaining;
  uint64_t skip = n;
  for (const iovec& seg : op.iov) {
    if (skip >= seg.iov_len) {
      skip -= seg.iov_len;
      continue;
    }
    remaining.push_back(iovec{static_cast<char*>(seg.iov_base) + skip, seg.iov_len - skip});
    skip = 0;
  }
  op.rest = std::move(remaining);
  op.iov = op.rest;
  return !op.rest.empty();
}

}  // namespace scstu::io
