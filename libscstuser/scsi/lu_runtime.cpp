#include "scsi/lu_runtime.h"

#include "scsi/sanitize.h"

namespace scstu::scsi {

LuRuntime::LuRuntime(core::PersistentReservations::Options pr_options, core::TaskSet::Hooks hooks)
    : persistent(unit_attentions, std::move(pr_options)), tasks(std::move(hooks)) {}

LuRuntime::~LuRuntime() = default;

void NexusTable::attach(uint64_t nexus) {
  std::lock_guard lock(mutex_);
  prevent_.try_emplace(nexus, false);
}

void NexusTable::detach(uint64_t nexus) {
  std::lock_guard lock(mutex_);
  prevent_.erase(nexus);
}

void NexusTable::set_prevent(uint64_t nexus, bool prevent) {
  std::lock_guard lock(mutex_);
  prevent_[nexus] = prevent;
}

bool NexusTable::removal_prevented() const {
  std::lock_guard lock(mutex_);
  for (const auto& [nexus, prevent] : prevent_)
    if (prevent) return true;
  return false;
}

void NexusTable::clear_prevent() {
  std::lock_guard lock(mutex_);
  for (auto& [nexus, prevent] : prevent_) prevent = false;
}

size_t NexusTable::size() const {
  std::lock_guard lock(mutex_);
  return prevent_.size();
}

void BackgroundWork::begin() {
  std::lock_guard lock(mutex_);
  ++running_;
}

void BackgroundWork::end() {
  std::lock_guard lock(mutex_);
  if (--running_ == 0) idle_.notify_all();
}

void BackgroundWork::wait_idle() {
  std::unique_lock lock(mutex_);
  idle_.wait(lock, [&] { return running_ == 0; });
}

void DeferredErrors::add(uint64_t nexus, SenseCode code) {
  std::lock_guard lock(mutex_);
  pending_.try_emplace(nexus, code);  // the first error is the one reported
  any_.store(true, std::memory_order_release);
}

std::optional<SenseCode> DeferredErrors::take_slow(uint64_t nexus) {
  std::lock_guard lock(mutex_);
  auto it = pending_.find(nexus);
  if (it == pending_.end()) return std::nullopt;
  const SenseCode code = it->second;
  pending_.erase(it);
  if (pending_.empty()) any_.store(false, std::memory_order_release);
  return code;
}

void DeferredErrors::drop(uint64_t nexus) {
  std::lock_guard lock(mutex_);
  pending_.erase(nexus);
  if (pending_.empty()) any_.store(false, std::memory_order_release);
}

}  // namespace scstu::scsi
