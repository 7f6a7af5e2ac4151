#include "core/unit_attentions.h"

namespace scstu::core {

scsi::SenseCode sense_code(UnitAttention ua) {
  switch (ua) {
    case UnitAttention::kPowerOnResetOrBusDeviceReset:
      return scsi::kUaPowerOnResetOrBusDeviceReset;
    case UnitAttention::kPowerOnOccurred:
      return scsi::kUaPowerOnOccurred;
    case UnitAttention::kBusResetOccurred:
      return scsi::kUaBusResetOccurred;
    case UnitAttention::kBusDeviceResetFunction:
      return scsi::kUaBusDeviceResetFunctionOccurred;
    case UnitAttention::kDeviceInternalReset:
      return scsi::kUaDeviceInternalReset;
    case UnitAttention::kItNexusLossOccurred:
      return scsi::kUaITNexusLossOccurred;
    case UnitAttention::kModeParametersChanged:
      return scsi::kUaModeParametersChanged;
    case UnitAttention::kReservationsPreempted:
      return scsi::kUaReservationsPreempted;
    case UnitAttention::kReservationsReleased:
      return scsi::kUaReservationsReleased;
    case UnitAttention::kRegistrationsPreempted:
      return scsi::kUaRegistrationsPreempted;
    case UnitAttention::kAsymmetricAccessStateChanged:
      return scsi::kUaAsymmetricAccessStateChanged;
    case UnitAttention::kCapacityDataHasChanged:
      return scsi::kUaCapacityDataHasChanged;
    case UnitAttention::kCommandsClearedByAnotherInitiator:
      return scsi::kUaCommandsClearedByAnotherInitiator;
    case UnitAttention::kMicrocodeHasBeenChanged:
      return scsi::kUaMicrocodeHasBeenChanged;
    case UnitAttention::kInquiryDataHasChanged:
      return scsi::kUaInquiryDataHasChanged;
    case UnitAttention::kReportedLunsDataHasChanged:
      return scsi::kUaReportedLunsDataHasChanged;
    case UnitAttention::kMediumMayHaveChanged:
      return scsi::kUaMediumMayHaveChanged;
  }
  return scsi::kUaPowerOnResetOrBusDeviceReset;
}

// SAM-5 5.14 (unit attention condition precedence), highest first: POWER
// ON, RESET, OR BUS DEVICE RESET OCCURRED; POWER ON OCCURRED or DEVICE
// INTERNAL RESET; SCSI BUS RESET OCCURRED or MICROCODE HAS BEEN CHANGED;
// BUS DEVICE RESET FUNCTION OCCURRED; I_T NEXUS LOSS OCCURRED; every other
// condition after those, oldest first.
int precedence(UnitAttention ua) {
  switch (ua) {
    case UnitAttention::kPowerOnResetOrBusDeviceReset:
      return 0;
    case UnitAttention::kPowerOnOccurred:
    case UnitAttention::kDeviceInternalReset:
      return 1;
    case UnitAttention::kBusResetOccurred:
    case UnitAttention::kMicrocodeHasBeenChanged:
      return 2;
    case UnitAttention::kBusDeviceResetFunction:
      return 3;
    case UnitAttention::kItNexusLossOccurred:
      return 4;
    default:
      return 5;
  }
}

// The power on / reset family (29h): one of these makes older conditions moot.
static bool is_reset(UnitAttention ua) {
  return precedence(ua) < 5 && ua != UnitAttention::kMicrocodeHasBeenChanged;
}

UnitAttentionHandling unit_attention_handling(std::span<const uint8_t> cdb) {
  if (cdb.empty()) return UnitAttentionHandling::kReport;
  switch (cdb[0]) {
    case 0x12:  // INQUIRY
    case 0xA0:  // REPORT LUNS
      return UnitAttentionHandling::kExempt;
    case 0x03:  // REQUEST SENSE
      return UnitAttentionHandling::kReturnAsSense;
    default:
      return UnitAttentionHandling::kReport;
  }
}

void UnitAttentions::attach(uint64_t nexus, UnitAttention initial) {
  std::lock_guard lock(mutex_);
  Queue& q = queues_[nexus];
  total_pending_.fetch_sub(q.size, std::memory_order_relaxed);
  q.size = 0;
  raise_locked(q, initial);
}

void UnitAttentions::detach(uint64_t nexus) {
  std::lock_guard lock(mutex_);
  auto it = queues_.find(nexus);
  if (it == queues_.end()) return;
  total_pending_.fetch_sub(it->second.size, std::memory_order_relaxed);
  queues_.erase(it);
}

void UnitAttentions::raise_locked(Queue& q, UnitAttention ua) {
  // A reset makes every older condition of the logical unit moot: the
  // initiator rediscovers the unit after it (what SCST does too). REPORTED
  // LUNS DATA HAS CHANGED is the target's, not the unit's: a unit reset does
  // not change the LUN inventory, so it stays. A condition is queued once.
  if (is_reset(ua)) {
    uint8_t kept = 0;
    for (uint8_t i = 0; i < q.size; ++i) {
      if (is_reset(q.items[i]) || q.items[i] == UnitAttention::kReportedLunsDataHasChanged) {
        q.items[kept++] = q.items[i];
      }
    }
    total_pending_.fetch_sub(q.size - kept, std::memory_order_relaxed);
    q.size = kept;
  }
  for (uint8_t i = 0; i < q.size; ++i) {
    if (q.items[i] == ua) return;
  }
  q.items[q.size++] = ua;
  total_pending_.fetch_add(1, std::memory_order_release);
}

void UnitAttentions::raise(uint64_t nexus, UnitAttention ua) {
  std::lock_guard lock(mutex_);
  auto it = queues_.find(nexus);
  if (it != queues_.end()) raise_locked(it->second, ua);
}

void UnitAttentions::raise_all(UnitAttention ua) {
  std::lock_guard lock(mutex_);
  for (auto& [nexus, q] : queues_) raise_locked(q, ua);
}

void UnitAttentions::raise_all_except(uint64_t except_nexus, UnitAttention ua) {
  std::lock_guard lock(mutex_);
  for (auto& [nexus, q] : queues_) {
    if (nexus != except_nexus) raise_locked(q, ua);
  }
}

bool UnitAttentions::pending(uint64_t nexus) const {
  if (total_pending_.load(std::memory_order_acquire) == 0) return false;
  std::lock_guard lock(mutex_);
  auto it = queues_.find(nexus);
  return it != queues_.end() && it->second.size > 0;
}

std::optional<size_t> UnitAttentions::best_locked(const Queue& q) {
  std::optional<size_t> best;
  for (size_t i = 0; i < q.size; ++i) {
    if (!best || precedence(q.items[i]) < precedence(q.items[*best])) best = i;
  }
  return best;
}

std::optional<UnitAttention> UnitAttentions::peek(uint64_t nexus) const {
  if (total_pending_.load(std::memory_order_acquire) == 0) return std::nullopt;
  std::lock_guard lock(mutex_);
  auto it = queues_.find(nexus);
  if (it == queues_.end()) return std::nullopt;
  auto best = best_locked(it->second);
  if (!best) return std::nullopt;
  return it->second.items[*best];
}

std::optional<UnitAttention> UnitAttentions::take(uint64_t nexus) {
  if (total_pending_.load(std::memory_order_acquire) == 0) return std::nullopt;
  std::lock_guard lock(mutex_);
  auto it = queues_.find(nexus);
  if (it == queues_.end()) return std::nullopt;
  Queue& q = it->second;
  auto best = best_locked(q);
  if (!best) return std::nullopt;
  UnitAttention ua = q.items[*best];
  for (size_t i = *best + 1; i < q.size; ++i) q.items[i - 1] = q.items[i];
  --q.size;
  total_pending_.fetch_sub(1, std::memory_order_relaxed);
  return ua;
}

void UnitAttentions::clear(uint64_t nexus, UnitAttention ua) {
  std::lock_guard lock(mutex_);
  auto it = queues_.find(nexus);
  if (it == queues_.end()) return;
  Queue& q = it->second;
  for (uint8_t i = 0; i < q.size; ++i) {
    if (q.items[i] != ua) continue;
    for (uint8_t j = i + 1; j < q.size; ++j) q.items[j - 1] = q.items[j];
    --q.size;
    total_pending_.fetch_sub(1, std::memory_order_relaxed);
    return;
  }
}

size_t UnitAttentions::count(uint64_t nexus) const {
  std::lock_guard lock(mutex_);
  auto it = queues_.find(nexus);
  return it == queues_.end() ? 0 : it->second.size;
}

}  // namespace scstu::core
