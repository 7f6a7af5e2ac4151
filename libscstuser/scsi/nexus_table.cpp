#include "scsi/lu_runtime.h"

namespace scstu::scsi {

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

}  // namespace scstu::scsi
