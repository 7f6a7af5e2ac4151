// thread_pool_engine.h - the io_uring-less engine: worker threads running
// blocking system calls. Selected with IoEngineKind::kThreads, or by kAuto
// when io_uring_queue_init fails (old kernel, seccomp, io_uring disabled).
#pragma once

#include <condition_variable>
#include <deque>
#include <mutex>
#include <thread>
#include <vector>

#include "io/io_engine.h"

namespace scstu::io {

class ThreadPoolEngine final : public IoEngine {
 public:
  explicit ThreadPoolEngine(unsigned threads);
  ~ThreadPoolEngine() override;

  IoEngineKind kind() const override { return IoEngineKind::kThreads; }
  void submit(IoOp& op) override;
  int register_buffers(std::span<const iovec>) override { return 0; }
  int fixed_index(const void*, size_t) const override { return -1; }

 private:
  void work();

  std::mutex mutex_;
  std::condition_variable wake_;
  std::deque<IoOp*> queue_;
  bool stopping_ = false;
  std::vector<std::thread> workers_;
};

}  // namespace scstu::io
