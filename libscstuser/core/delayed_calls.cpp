#include "core/delayed_calls.h"

#include <utility>
#include <vector>

namespace scstu::core {

DelayedCalls::~DelayedCalls() {
  {
    std::lock_guard lock(mutex_);
    stopping_ = true;
  }
  changed_.notify_all();
  if (thread_.joinable()) thread_.join();
}

void DelayedCalls::at(Clock::time_point when, const void* owner, std::function<void()> fn) {
  {
    std::lock_guard lock(mutex_);
    if (!thread_.joinable()) thread_ = std::thread([this] { run(); });
    calls_.emplace(when, Call{owner, std::move(fn)});
  }
  changed_.notify_all();
}

void DelayedCalls::hurry(const void* owner) {
  {
    std::lock_guard lock(mutex_);
    std::vector<Call> moved;
    for (auto it = calls_.begin(); it != calls_.end();) {
      if (it->second.owner != owner) {
        ++it;
        continue;
      }
      moved.push_back(std::move(it->second));
      it = calls_.erase(it);
    }
    if (moved.empty()) return;
    const Clock::time_point now = Clock::time_point::min();
    for (Call& c : moved) calls_.emplace(now, std::move(c));
  }
  changed_.notify_all();
}

void DelayedCalls::run() {
  std::unique_lock lock(mutex_);
  while (!stopping_) {
    if (calls_.empty()) {
      changed_.wait(lock);
      continue;
    }
    const auto first = calls_.begin();
    // A copy: hurry() may erase the entry while this waits.
    const Clock::time_point when = first->first;
    if (when > Clock::now()) {
      changed_.wait_until(lock, when);
      continue;
    }
    std::function<void()> fn = std::move(first->second.fn);
    calls_.erase(first);
    lock.unlock();
    fn();
    lock.lock();
  }
}

}  // namespace scstu::core
