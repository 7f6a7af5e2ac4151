// CSCD descriptors (SPC-4 6.4.5.3, identification E4h) to LUNs of the
// initiator's session: each block device the session sees is asked for its
// VPD 83h designators, the addressed LUN first, stopping once every
// descriptor is found (never cached: a device re-attached with another
// identity must not receive a copy meant for the old one). Then READ
// CAPACITY(16) of each gives its block length and size.
#include <algorithm>

#include "core/copy_job.h"
#include "core/copy_manager.h"
#include "core/exported_device.h"
#include "core/iovec_copy.h"
#include "core/lun.h"
#include "core/session.h"
#include "scsi/cdb.h"

namespace scstu::core {

namespace {
constexpr uint32_t kVpd83Allocation = 1024;
constexpr scsi::SenseCode kCopyAbortedInvalidField{0x0A, 0x26, 0x00};
}  // namespace

// The session's LUNs of block devices, the addressed one first.
void CopyJob::order_candidates() {
  for (const auto& r : table_->routes) {
    if (r->exported()->device().info().device_type != 0x00) continue;
    if (r->lun() == own_lun_) {
      candidates_.insert(candidates_.begin(), r.get());
    } else {
      candidates_.push_back(r.get());
    }
  }
  pages_.resize(candidates_.size());
  asked_.resize(candidates_.size(), false);
}

// Looks for the designator of CSCD `targets_.size()` among the candidates
// whose VPD 83h is known; asks the next unknown one.
bool CopyJob::resolve_next() {
  while (targets_.size() < list_.targets.size()) {
    const scsi::CopyTargetDescriptor& d = list_.targets[targets_.size()];
    bool found = false;
    for (size_t i = 0; i < candidates_.size() && !found; ++i) {
      if (!asked_[i]) {
        asked_[i] = true;
        candidate_ = i;
        const uint8_t cdb[6] = {0x12, 0x01, 0x83, kVpd83Allocation >> 8, kVpd83Allocation & 0xFF,
                                0};
        issue(probe_, candidates_[i], cdb, kVpd83Allocation, DataDirection::kRead);
        return false;
      }
      if (scsi::designation_matches(d.designation, pages_[i])) {
        Target t;
        t.route = candidates_[i];
        targets_.push_back(t);
        found = true;
      }
    }
    if (!found) {
      return fail(scsi::SenseBuilder(scsi::SenseFormat::kFixed, scsi::kCopyTargetDeviceNotReachable)
                      .parameter_field(d.offset));
    }
  }
  phase_ = Phase::kCapacity;
  capacity_of_ = 0;
  return ask_capacity();
}

bool CopyJob::resolved_candidate() {
  // A device that went away (lost_target) designates nothing.
  if (probe_.good()) pages_[candidate_] = gather(probe_.cmd.buffer, probe_.cmd.transferred);
  release(probe_);
  return resolve_next();
}

bool CopyJob::ask_capacity() {
  if (capacity_of_ == targets_.size()) {
    phase_ = Phase::kSegments;
    return start_segment();
  }
  const uint8_t cdb[16] = {0x9E, 0x10, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 32, 0, 0};
  issue(probe_, targets_[capacity_of_].route, cdb, 32, DataDirection::kRead);
  return false;
}

bool CopyJob::capacity_known() {
  if (!probe_.good() || probe_.cmd.transferred < 12) return fail_from(probe_, true);
  const std::vector<uint8_t> d = gather(probe_.cmd.buffer, 12);
  release(probe_);
  Target& t = targets_[capacity_of_];
  const scsi::CopyTargetDescriptor& desc = list_.targets[capacity_of_];
  t.blocks = scsi::get_be64(&d[0]) + 1;
  t.block_size = scsi::get_be32(&d[8]);
  if (t.block_size == 0 || t.block_size != desc.block_size) {
    return fail(scsi::SenseBuilder(scsi::SenseFormat::kFixed, kCopyAbortedInvalidField)
                    .parameter_field(static_cast<uint16_t>(desc.offset + 29)));
  }
  const uint32_t max = t.route->exported()->device().info().max_transfer_bytes;
  const uint32_t chunk = std::min(CopyManager::kChunkBytes, max ? max : CopyManager::kChunkBytes);
  t.max_chunk_blocks = std::max<uint32_t>(1, chunk / t.block_size);
  ++capacity_of_;
  return ask_capacity();
}

}  // namespace scstu::core
