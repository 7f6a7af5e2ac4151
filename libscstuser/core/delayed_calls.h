// delayed_calls.h - functions to run at a later time, on one thread of their
// own (started at the first call to at()). The copy manager sends an
// internal command again through it after a BUSY or TASK SET FULL
// (core/copy_job.h); that is rare, so a call costs a lock and an allocation.
#pragma once

#include <chrono>
#include <condition_variable>
#include <functional>
#include <map>
#include <mutex>
#include <thread>

namespace scstu::core {

class DelayedCalls {
 public:
  using Clock = std::chrono::steady_clock;

  DelayedCalls() = default;
  // Joins the thread; calls not yet run are dropped (their owners must not be
  // waiting for them by then).
  ~DelayedCalls();
  DelayedCalls(const DelayedCalls&) = delete;
  DelayedCalls& operator=(const DelayedCalls&) = delete;

  // Runs `fn` at `when` (or soon after), without any lock held. `owner`
  // groups calls for hurry().
  void at(Clock::time_point when, const void* owner, std::function<void()> fn);
  // Runs `owner`'s pending calls now, e.g. when it was aborted.
  void hurry(const void* owner);

 private:
  struct Call {
    const void* owner;
    std::function<void()> fn;
  };
  void run();

  std::mutex mutex_;
  std::condition_variable changed_;
  std::multimap<Clock::time_point, Call> calls_;
  bool stopping_ = false;
  std::thread thread_;
};

}  // namespace scstu::core
