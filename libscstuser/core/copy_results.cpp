#include "core/copy_results.h"

namespace scstu::core {

namespace {
constexpr scsi::SenseCode kIllegalOperationInProgress{0x05, 0x00, 0x16};
}  // namespace

std::optional<scsi::SenseCode> CopyResultRecords::begin(const Key& key) {
  std::lock_guard lock(mutex_);
  auto it = records_.find(key);
  if (it != records_.end() && !it->second.done) return kIllegalOperationInProgress;
  if (records_.size() >= kMaxHeld) {
    for (auto r = records_.begin(); r != records_.end(); ++r) {
      if (r->second.done) {
        records_.erase(r);
        break;
      }
    }
  }
  records_[key] = scsi::CopyResult{};
  return std::nullopt;
}

void CopyResultRecords::finish(const Key& key, const scsi::CopyResult& result) {
  std::lock_guard lock(mutex_);
  records_[key] = result;
}

std::optional<scsi::CopyResult> CopyResultRecords::find(const Key& key) const {
  std::lock_guard lock(mutex_);
  auto it = records_.find(key);
  if (it == records_.end()) return std::nullopt;
  return it->second;
}

}  // namespace scstu::core
