#include "io/uring_engine.h"

#include <linux/falloc.h>

#include <cerrno>
#include <chrono>
#include <climits>
#include <cstring>
#include <thread>

namespace scstu::io {

// user_data of the NOP that tells the reaper to exit.
static constexpr uint64_t kStopToken = 0;
// user_data of an SQE whose op was failed at submission.
static constexpr uint64_t kIgnoredToken = 1;
// io_uring limits one registered buffer to 1 GiB.
static constexpr size_t kMaxFixedBuffer = size_t{1} << 30;
static constexpr uint8_t kMaxResubmits = 3;
static thread_local bool on_reaper_thread = false;

std::unique_ptr<UringEngine> UringEngine::create(unsigned queue_depth, std::string* error) {
  std::unique_ptr<UringEngine> engine(new UringEngine());
  unsigned entries = 16;
  while (entries < queue_depth && entries < 4096) entries <<= 1;
  io_uring_params params{};
  int rc = io_uring_queue_init_params(entries, &engine->ring_, &params);
  if (rc < 0) {
    if (error) *error = std::string("io_uring_queue_init: ") + std::strerror(-rc);
    return nullptr;
  }
  engine->ring_ready_ = true;
  // Without NODROP a burst beyond the CQ size would lose completions; every
  // kernel since 5.5 has it, older ones get the thread pool.
  if (!(params.features & IORING_FEAT_NODROP)) {
    if (error) *error = "io_uring: kernel lacks IORING_FEAT_NODROP";
    return nullptr;
  }
  engine->reaper_ = std::thread([e = engine.get()] { e->reap(); });
  return engine;
}

UringEngine::~UringEngine() {
  if (!ring_ready_) return;
  if (reaper_.joinable()) {
    // Let every op finish first: their owners are still waiting on them.
    {
      std::unique_lock lock(idle_mutex_);
      idle_.wait(lock, [this] { return in_flight_.load() == 0; });
    }
    {
      std::lock_guard lock(sq_mutex_);
      io_uring_sqe* sqe = io_uring_get_sqe(&ring_);
      while (sqe == nullptr) {
        io_uring_submit(&ring_);
        sqe = io_uring_get_sqe(&ring_);
      }
      io_uring_prep_nop(sqe);
      io_uring_sqe_set_data64(sqe, kStopToken);
      io_uring_submit(&ring_);
    }
    reaper_.join();
  }
  io_uring_queue_exit(&ring_);
}

int UringEngine::register_buffers(std::span<const iovec> regions) {
  std::vector<iovec> table;
  for (const iovec& region : regions) {
    auto* base = static_cast<char*>(region.iov_base);
    for (size_t off = 0; off < region.iov_len; off += kMaxFixedBuffer) {
      table.push_back(iovec{base + off, std::min(kMaxFixedBuffer, region.iov_len - off)});
    }
  }
  std::lock_guard lock(sq_mutex_);
  if (!registered_.empty()) {
    int rc = io_uring_unregister_buffers(&ring_);
    if (rc < 0) return rc;
    registered_.clear();
  }
  if (table.empty()) return 0;
  int rc = io_uring_register_buffers(&ring_, table.data(), static_cast<unsigned>(table.size()));
  if (rc < 0) return rc;
  registered_ = std::move(table);
  return 0;
}

int UringEngine::reserve_fixed_buffers(unsigned count) {
  std::lock_guard lock(sq_mutex_);
  if (!registered_.empty()) {
    int rc = io_uring_unregister_buffers(&ring_);
    if (rc < 0) return rc;
    registered_.clear();
  }
  if (count == 0) return 0;
  int rc = io_uring_register_buffers_sparse(&ring_, count);
  if (rc < 0) return rc;
  registered_.assign(count, iovec{nullptr, 0});
  return 0;
}

int UringEngine::set_fixed_buffer(unsigned index, iovec buffer) {
  if (buffer.iov_len > kMaxFixedBuffer) return -EINVAL;
  if (buffer.iov_len == 0) buffer.iov_base = nullptr;  // clears the entry
  std::lock_guard lock(sq_mutex_);
  if (index >= registered_.size()) return -EINVAL;
  // The entry leaves the lookup first: if the kernel refuses the new buffer
  // the old one must not stay, its memory is about to be freed.
  registered_[index] = iovec{nullptr, 0};
  __u64 tag = 0;
  int rc = io_uring_register_buffers_update_tag(&ring_, index, &buffer, &tag, 1);
  if (rc < 0) {
    // Leave the kernel's entry empty too (it may still hold the old one).
    iovec none{nullptr, 0};
    io_uring_register_buffers_update_tag(&ring_, index, &none, &tag, 1);
    return rc;
  }
  registered_[index] = buffer;
  return 0;
}

int UringEngine::fixed_index(const void* base, size_t len) const {
  std::lock_guard lock(sq_mutex_);
  return fixed_index_locked(base, len);
}

IoEngineStats UringEngine::stats() const {
  IoEngineStats s;
  s.fixed_reads = fixed_reads_.load(std::memory_order_relaxed);
  s.fixed_writes = fixed_writes_.load(std::memory_order_relaxed);
  s.vectored_reads = vectored_reads_.load(std::memory_order_relaxed);
  s.vectored_writes = vectored_writes_.load(std::memory_order_relaxed);
  return s;
}

int UringEngine::fixed_index_locked(const void* base, size_t len) const {
  auto* p = static_cast<const char*>(base);
  for (size_t i = 0; i < registered_.size(); ++i) {
    auto* start = static_cast<const char*>(registered_[i].iov_base);
    if (start != nullptr && p >= start && len <= registered_[i].iov_len &&
        static_cast<size_t>(p - start) <= registered_[i].iov_len - len) {
      return static_cast<int>(i);
    }
  }
  return -1;
}

void UringEngine::submit(IoOp& op) {
  op.reset_progress();
  if ((op.kind == IoKind::kRead || op.kind == IoKind::kWrite) && op.length == 0) {
    op.finish(&op, 0);
    return;
  }
  in_flight_.fetch_add(1, std::memory_order_relaxed);
  if (int rc = queue(op); rc < 0) complete(op, rc);
  // The kernel refused SQEs for now (out of memory, CQ backed up): retry
  // until it takes them, letting the reaper drain completions meanwhile. The
  // reaper itself (a completion callback submitting more) must not wait for
  // itself: its loop retries.
  while (!on_reaper_thread && submit_pending_.load(std::memory_order_acquire)) {
    std::this_thread::sleep_for(std::chrono::microseconds(50));
    retry_pending_submit();
  }
}

void UringEngine::retry_pending_submit() {
  std::lock_guard lock(sq_mutex_);
  if (!submit_pending_.load(std::memory_order_acquire)) return;
  int rc = io_uring_submit(&ring_);
  if (rc != -EAGAIN && rc != -EBUSY) submit_pending_.store(false, std::memory_order_release);
}

int UringEngine::queue(IoOp& op) {
  std::lock_guard lock(sq_mutex_);
  io_uring_sqe* sqe = io_uring_get_sqe(&ring_);
  while (sqe == nullptr) {
    // The SQ holds only what is not yet submitted, so this frees space at once.
    io_uring_submit(&ring_);
    sqe = io_uring_get_sqe(&ring_);
  }
  switch (op.kind) {
    case IoKind::kRead:
    case IoKind::kWrite: {
      const bool read = op.kind == IoKind::kRead;
      // One segment inside a registered buffer (the ring's data area): the
      // pages are pinned already, the kernel skips get_user_pages per I/O.
      const int fixed = op.iov.size() == 1 && op.iov[0].iov_len <= UINT_MAX
                            ? fixed_index_locked(op.iov[0].iov_base, op.iov[0].iov_len)
                            : -1;
      if (fixed >= 0) {
        if (read) {
          io_uring_prep_read_fixed(sqe, op.fd, op.iov[0].iov_base,
                                   static_cast<unsigned>(op.iov[0].iov_len), op.offset, fixed);
        } else {
          io_uring_prep_write_fixed(sqe, op.fd, op.iov[0].iov_base,
                                    static_cast<unsigned>(op.iov[0].iov_len), op.offset, fixed);
        }
        (read ? fixed_reads_ : fixed_writes_).fetch_add(1, std::memory_order_relaxed);
      } else {
        (read ? vectored_reads_ : vectored_writes_).fetch_add(1, std::memory_order_relaxed);
        const unsigned n = static_cast<unsigned>(std::min<size_t>(op.iov.size(), IOV_MAX));
        if (read) {
          io_uring_prep_readv(sqe, op.fd, op.iov.data(), n, op.offset);
        } else {
          io_uring_prep_writev(sqe, op.fd, op.iov.data(), n, op.offset);
        }
      }
      sqe->rw_flags = op.rw_flags;
      break;
    }
    case IoKind::kSync:
      io_uring_prep_fsync(sqe, op.fd, IORING_FSYNC_DATASYNC);
      break;
    case IoKind::kPunchHole:
      io_uring_prep_fallocate(sqe, op.fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE,
                              static_cast<off_t>(op.offset), static_cast<off_t>(op.length));
      break;
  }
  io_uring_sqe_set_data(sqe, &op);
  // The kernel copies the iovec array when it takes the SQE, so op.rest may
  // change on the next short transfer without racing with it.
  int rc;
  do {
    rc = io_uring_submit(&ring_);
  } while (rc == -EINTR);
  // -EAGAIN/-EBUSY: the kernel is short of memory or the CQ is backed up;
  // the SQE stays queued in the SQ. Only a hard error fails the op here.
  if (rc == -EAGAIN || rc == -EBUSY) {
    // Not taken now; the reaper submits it once completions have made room.
    submit_pending_.store(true, std::memory_order_release);
    return 0;
  }
  if (rc < 0) {
    // The kernel did not take the SQE, and only submitters (under this lock)
    // make it take SQEs: turn it into an ignored NOP and fail the op.
    io_uring_prep_nop(sqe);
    io_uring_sqe_set_data64(sqe, kIgnoredToken);
    return rc;
  }
  return 0;
}

void UringEngine::complete(IoOp& op, int res) {
  op.finish(&op, res);
  if (in_flight_.fetch_sub(1, std::memory_order_acq_rel) == 1) {
    std::lock_guard lock(idle_mutex_);
    idle_.notify_all();
  }
}

void UringEngine::reap() {
  on_reaper_thread = true;
  for (;;) {
    io_uring_cqe* cqe = nullptr;
    int rc;
    if (submit_pending_.load(std::memory_order_acquire)) {
      // SQEs wait in the SQ (maybe requeued by this thread, with nothing else
      // in flight to wake it): poll for them.
      __kernel_timespec ts{0, 1000000};
      rc = io_uring_wait_cqe_timeout(&ring_, &cqe, &ts);
      if (rc == -ETIME) {
        retry_pending_submit();
        continue;
      }
    } else {
      rc = io_uring_wait_cqe(&ring_, &cqe);
    }
    if (rc == -EINTR || rc == -EAGAIN || rc == -ETIME) continue;
    if (rc < 0) {
      // Nothing sane can be done with a broken ring; waiting again would spin.
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
      continue;
    }
    const uint64_t token = cqe->user_data;
    const int res = cqe->res;
    io_uring_cqe_seen(&ring_, cqe);
    if (submit_pending_.load(std::memory_order_acquire)) retry_pending_submit();
    if (token == kStopToken) return;
    if (token == kIgnoredToken) continue;
    auto* op = reinterpret_cast<IoOp*>(token);
    // io_uring cancels a task's queued async work when that task exits, and
    // submitters are the caller's threads, which may exit (a connection
    // closing, a handler re-attaching) with I/O still queued. The command is
    // still wanted: queue it again, from this thread, which outlives the ring.
    // Every op here is idempotent, and an initiator does not expect ordering
    // between overlapping commands it has not seen complete (SAM-5 8.6).
    if (res == -ECANCELED && op->resubmits < kMaxResubmits) {
      ++op->resubmits;
      if (int rc = queue(*op); rc < 0) complete(*op, rc);
      continue;
    }
    if (op->kind == IoKind::kRead || op->kind == IoKind::kWrite) {
      if (res == -EAGAIN || res == -EINTR) {
        if (int rc = queue(*op); rc < 0) complete(*op, rc);
        continue;
      }
      if (res == 0) {
        complete(*op, -EIO);  // end of file: the file shrank under the device
        continue;
      }
      if (res > 0 && advance_after_short_transfer(*op, static_cast<uint64_t>(res))) {
        if (int rc = queue(*op); rc < 0) complete(*op, rc);
        continue;
      }
    }
    complete(*op, res < 0 ? res : 0);
  }
}

}  // namespace scstu::io
