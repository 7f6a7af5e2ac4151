// copy_results.h - the results of EXTENDED COPY commands held for RECEIVE
// COPY RESULTS (SPC-4 6.4.3.2, 6.18): per I_T nexus and list identifier,
// for copies sent with LIST ID USAGE 00b.
#pragma once

#include <cstdint>
#include <map>
#include <mutex>
#include <optional>
#include <utility>

#include "scsi/sense.h"
#include "scsi/xcopy.h"

namespace scstu::core {

class CopyResultRecords {
 public:
  using Key = std::pair<uint64_t, uint8_t>;  // session id, list identifier

  // At most this many held; the oldest finished one makes room.
  static constexpr size_t kMaxHeld = 256;

  // A copy with `key` starts: its record reads "in progress". Refused
  // (ILLEGAL REQUEST / OPERATION IN PROGRESS) while a copy with the same
  // list identifier of the same nexus is still running.
  std::optional<scsi::SenseCode> begin(const Key& key);
  // The copy ended.
  void finish(const Key& key, const scsi::CopyResult& result);
  std::optional<scsi::CopyResult> find(const Key& key) const;

 private:
  mutable std::mutex mutex_;
  std::map<Key, scsi::CopyResult> records_;
};

}  // namespace scstu::core
