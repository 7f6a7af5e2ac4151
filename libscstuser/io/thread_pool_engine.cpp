#include "io/thread_pool_engine.h"

#include "io/blocking_io.h"

namespace scstu::io {

ThreadPoolEngine::ThreadPoolEngine(unsigned threads) {
  if (threads == 0) threads = 1;
  workers_.reserve(threads);
  for (unsigned i = 0; i < threads; ++i) workers_.emplace_back([this] { work(); });
}

ThreadPoolEngine::~ThreadPoolEngine() {
  {
    std::lock_guard lock(mutex_);
    stopping_ = true;
  }
  wake_.notify_all();
  for (std::thread& t : workers_) t.join();
}

void ThreadPoolEngine::submit(IoOp& op) {
  op.reset_progress();
  {
    std::lock_guard lock(mutex_);
    queue_.push_back(&op);
  }
  wake_.notify_one();
}

void ThreadPoolEngine::work() {
  std::unique_lock lock(mutex_);
  for (;;) {
    // Drain the queue before honouring a stop, so no op is left unfinished.
    wake_.wait(lock, [this] { return stopping_ || !queue_.empty(); });
    if (queue_.empty()) return;
    IoOp* op = queue_.front();
    queue_.pop_front();
    lock.unlock();
    int result = run_blocking(*op);
    op->finish(op, result);
    lock.lock();
  }
}

}  // namespace scstu::io
