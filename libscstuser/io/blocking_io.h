// blocking_io.h - run one IoOp to completion with plain system calls
// (preadv2/pwritev2/fdatasync/fallocate), retrying short transfers and EINTR.
// Used by the thread-pool engine's workers.
#pragma once

#include "io/io_op.h"

namespace scstu::io {

// Returns 0 or a negative errno. Does not call op.finish().
int run_blocking(IoOp& op);

}  // namespace scstu::io
