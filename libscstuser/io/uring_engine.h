// uring_engine.h - the io_uring engine. Submitters (the handler's queue
// threads) share one ring under a short lock around the SQ; one reaper thread
// waits for completions, retries short transfers and calls op.finish().
// Registered buffers (the ring's data area) turn reads and writes into
// READ_FIXED/WRITE_FIXED, so pages are not pinned per I/O.
#pragma once

#include <liburing.h>

#include <atomic>
#include <condition_variable>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "io/io_engine.h"

namespace scstu::io {

class UringEngine final : public IoEngine {
 public:
  // nullptr and *error set when io_uring cannot be set up here.
  static std::unique_ptr<UringEngine> create(unsigned queue_depth, std::string* error);
  ~UringEngine() override;

  IoEngineKind kind() const override { return IoEngineKind::kUring; }
  void submit(IoOp& op) override;
  int register_buffers(std::span<const iovec> regions) override;
  int reserve_fixed_buffers(unsigned count) override;
  int set_fixed_buffer(unsigned index, iovec buffer) override;
  int fixed_index(const void* base, size_t len) const override;
  IoEngineStats stats() const override;

 private:
  UringEngine() = default;
  int queue(IoOp& op);  // prepare an SQE for op and submit it; 0 or -errno
  int fixed_index_locked(const void* base, size_t len) const;  // under sq_mutex_
  void reap();
  void retry_pending_submit();
  void complete(IoOp& op, int res);

  io_uring ring_{};
  bool ring_ready_ = false;
  mutable std::mutex sq_mutex_;
  std::thread reaper_;
  std::atomic<uint64_t> in_flight_{0};
  std::atomic<bool> submit_pending_{false};  // SQEs the kernel refused for now (EAGAIN/EBUSY)
  std::mutex idle_mutex_;
  std::condition_variable idle_;
  // Registered buffer table (index = position), under sq_mutex_: queue()
  // looks buffers up there, so re-registering (a handler re-attaching to a
  // new data area) never races with a submission.
  std::vector<iovec> registered_;
  std::atomic<uint64_t> fixed_reads_{0}, fixed_writes_{0}, vectored_reads_{0}, vectored_writes_{0};
};

}  // namespace scstu::io
