#include "iscsi/session.h"

#include <algorithm>

#include "iscsi/connection.h"
#include "iscsi/pdu.h"

namespace scstu::iscsi {

Session::Session(SessionKey key, uint16_t tsih, const SessionParams& leading, uint32_t window,
                 uint32_t first_cmdsn, uint32_t tasks_per_connection)
    : key_(std::move(key)),
      tsih_(tsih),
      params_(leading),
      window_(std::max<uint32_t>(1, window)),
      tracks_itts_(leading.max_connections > 1),
      expcmdsn_(first_cmdsn),
      advertised_(first_cmdsn - 1) {
  // One connection more than MaxConnections: a reinstated connection's
  // predecessor may still hold its tasks while the new one starts.
  if (tracks_itts_) itts_.reset(size_t{tasks_per_connection} * (leading.max_connections + 1));
}

IttTable<Task>::Insert Session::claim_itt(uint32_t itt, Task* task) {
  std::lock_guard lock(itt_mutex_);
  return itts_.insert(itt, task);
}

void Session::release_itt(uint32_t itt, const Task* task) {
  std::lock_guard lock(itt_mutex_);
  itts_.erase(itt, task);
}

void Session::apply_session_wide(SessionParams& p) const {
  // RFC 7143 13 (usage LO): everything but the digests and the declared
  // MaxRecvDataSegmentLength of each side is the session's.
  p.max_connections = params_.max_connections;
  p.initial_r2t = params_.initial_r2t;
  p.immediate_data = params_.immediate_data;
  p.max_burst_length = params_.max_burst_length;
  p.first_burst_length = params_.first_burst_length;
  p.default_time2wait = params_.default_time2wait;
  p.default_time2retain = params_.default_time2retain;
  p.max_outstanding_r2t = params_.max_outstanding_r2t;
  p.data_pdu_in_order = params_.data_pdu_in_order;
  p.data_sequence_in_order = params_.data_sequence_in_order;
  p.error_recovery_level = params_.error_recovery_level;
}

Session::Order Session::order(uint32_t cmdsn, Connection* waiter, bool skip_gap,
                              const uint64_t* command_lun) {
  std::lock_guard lock(mutex_);
  uint32_t exp = expcmdsn_.load(std::memory_order_relaxed);
  uint32_t max = advertised_.load(std::memory_order_relaxed);
  bool in_window = sn_le(exp, cmdsn) && sn_le(cmdsn, max);
  if (!in_window) return Order::kIgnore;
  bool covered = false;
  if (command_lun && !fences_.empty()) {
    bool after = false;
    for (const Fence& f : fences_) {
      if (!f.all_luns && f.lun != *command_lun) continue;
      if (sn_lt(cmdsn, f.cmdsn))
        covered = true;
      else
        after = true;
    }
    if (after && !covered) {
      add_waiter_locked(waiter);
      return Order::kFenced;
    }
  }
  if (!delivering_) {
    bool take = cmdsn == exp;
    // A number held back by a fence is not lost: its gap is not skipped.
    bool may_skip = skip_gap && fences_.empty();
    if (!take && (may_skip || connections.load(std::memory_order_acquire) <= 1)) take = true;
    if (take) {
      delivering_ = true;
      expcmdsn_.store(cmdsn + 1, std::memory_order_release);
      return covered ? Order::kCovered : Order::kDeliver;
    }
  }
  add_waiter_locked(waiter);
  return Order::kHold;
}

void Session::add_waiter_locked(Connection* waiter) {
  if (waiter && std::find(waiters_.begin(), waiters_.end(), waiter) == waiters_.end())
    waiters_.push_back(waiter);
}

bool Session::fence_covers_locked(uint64_t lun) const {
  for (const Fence& f : fences_)
    if (f.all_luns || f.lun == lun) return true;
  return false;
}

void Session::raise_fence(const void* id, uint64_t lun, bool all_luns, uint32_t cmdsn) {
  std::lock_guard lock(mutex_);
  fences_.push_back(Fence{id, lun, all_luns, cmdsn});
  fence_count_.store(static_cast<uint32_t>(fences_.size()), std::memory_order_release);
}

void Session::lower_fence(const void* id) {
  std::lock_guard lock(mutex_);
  fences_.erase(
      std::remove_if(fences_.begin(), fences_.end(), [id](const Fence& f) { return f.id == id; }),
      fences_.end());
  fence_count_.store(static_cast<uint32_t>(fences_.size()), std::memory_order_release);
  for (Connection* c : waiters_) c->wake();
  waiters_.clear();
}

bool Session::fenced(uint64_t lun, Connection* waiter) {
  if (fence_count_.load(std::memory_order_acquire) == 0) return false;
  std::lock_guard lock(mutex_);
  if (!fence_covers_locked(lun)) return false;
  add_waiter_locked(waiter);
  return true;
}

void Session::delivered() {
  std::lock_guard lock(mutex_);
  delivering_ = false;
  for (Connection* c : waiters_) c->wake();
  waiters_.clear();
}

void Session::forget_waiter(Connection* c) {
  std::lock_guard lock(mutex_);
  waiters_.erase(std::remove(waiters_.begin(), waiters_.end(), c), waiters_.end());
}

void Session::wake_waiters() {
  std::lock_guard lock(mutex_);
  for (Connection* c : waiters_) c->wake();
  waiters_.clear();
}

uint32_t Session::max_cmdsn() {
  uint32_t exp = expcmdsn_.load(std::memory_order_acquire);
  uint32_t active = active_.load(std::memory_order_acquire);
  uint32_t now = exp + (window_ - std::min(active, window_)) - 1;
  uint32_t adv = advertised_.load(std::memory_order_acquire);
  while (sn_lt(adv, now)) {
    if (advertised_.compare_exchange_weak(adv, now, std::memory_order_acq_rel)) return now;
  }
  return adv;
}

bool Session::take_slot() {
  uint32_t a = active_.load(std::memory_order_relaxed);
  do {
    if (a >= window_) return false;
  } while (!active_.compare_exchange_weak(a, a + 1, std::memory_order_acq_rel));
  return true;
}

}  // namespace scstu::iscsi
