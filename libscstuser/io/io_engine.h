// io_engine.h - how FileDevice runs its I/O: io_uring (UringEngine) or a pool
// of threads doing preadv2/pwritev2/fdatasync/fallocate (ThreadPoolEngine),
// for kernels or sandboxes (seccomp) where io_uring is unavailable.
#pragma once

#include <sys/uio.h>

#include <memory>
#include <span>
#include <string>

#include "io/io_op.h"

namespace scstu::io {

enum class IoEngineKind : uint8_t {
  kAuto,  // io_uring, else the thread pool
  kUring,
  kThreads,
};

const char* to_string(IoEngineKind kind);

// What an engine did, for logs and tests: reads and writes submitted as
// io_uring READ_FIXED/WRITE_FIXED (the buffer lay in a registered area) and
// as plain vectored I/O (another buffer, several segments, or no
// registration). Resubmissions after a short transfer count again.
struct IoEngineStats {
  uint64_t fixed_reads = 0;
  uint64_t fixed_writes = 0;
  uint64_t vectored_reads = 0;
  uint64_t vectored_writes = 0;
};

class IoEngine {
 public:
  virtual ~IoEngine() = default;
  virtual IoEngineKind kind() const = 0;
  // Start op; op.finish() is called exactly once, possibly before submit()
  // returns, possibly from another thread.
  virtual void submit(IoOp& op) = 0;
  // Make [regions] usable as fixed buffers (io_uring registered buffers: the
  // pages are pinned once instead of per I/O). Returns 0 or -errno; engines
  // without the notion return 0 and ignore it.
  virtual int register_buffers(std::span<const iovec> regions) = 0;
  // Buffers that come and go one at a time (core::LocalDevice's per-command
  // slots): a table of `count` empty entries, replacing any registration,
  // then set_fixed_buffer() per entry (an empty buffer clears it). Clear or
  // replace an entry before its memory is freed: a registered buffer keeps
  // the pages it pinned, not whatever is mapped at that address later.
  // 0 or -errno; engines without the notion return 0.
  virtual int reserve_fixed_buffers(unsigned /*count*/) { return 0; }
  virtual int set_fixed_buffer(unsigned /*index*/, iovec /*buffer*/) { return 0; }
  // The index of the registered buffer containing [base, base + len), or -1.
  virtual int fixed_index(const void* base, size_t len) const = 0;
  // Counters since the engine started (see IoEngineStats).
  virtual IoEngineStats stats() const { return {}; }
};

struct IoEngineOptions {
  IoEngineKind kind = IoEngineKind::kAuto;
  unsigned queue_depth = 128;  // io_uring entries
  unsigned threads = 4;        // thread-pool workers
};

// Creates the engine; on failure returns nullptr and sets *error. kAuto
// falls back to threads when io_uring_queue_init fails, and then sets *error
// to why (while returning the thread-pool engine).
std::unique_ptr<IoEngine> make_io_engine(const IoEngineOptions& options, std::string* error);

}  // namespace scstu::io
