// unit_attentions.h - the unit attention conditions a logical unit holds for
// each I_T nexus (SAM-5 5.14, SPC-4 5.14).
//
// A condition is raised for one nexus, for all, or for all but one (the nexus
// whose command caused it). Each command reports at most one, the highest in
// SAM-5 precedence: the reset family (29h) first, then the rest in the order
// they were established. A condition already pending for a nexus is not queued
// twice, so a nexus holds at most one of each kind and raising never
// allocates once the nexus is known.
//
// Thread-safe. The per-command check (pending()) is one relaxed atomic load
// while no condition is pending anywhere on the logical unit.
#pragma once

#include <array>
#include <atomic>
#include <cstdint>
#include <mutex>
#include <optional>
#include <span>
#include <unordered_map>

#include "scsi/sense.h"

namespace scstu::core {

// The conditions this library raises (SPC-4 Annex D codes, sense key 6).
enum class UnitAttention : uint8_t {
  kPowerOnResetOrBusDeviceReset,       // 29/00
  kPowerOnOccurred,                    // 29/01: a new I_T nexus, a restarted handler
  kBusResetOccurred,                   // 29/02
  kBusDeviceResetFunction,             // 29/03: LUN RESET, TARGET RESET
  kDeviceInternalReset,                // 29/04
  kItNexusLossOccurred,                // 29/07
  kModeParametersChanged,              // 2A/01: another nexus changed a shared mode page
  kReservationsPreempted,              // 2A/03
  kReservationsReleased,               // 2A/04
  kRegistrationsPreempted,             // 2A/05
  kAsymmetricAccessStateChanged,       // 2A/06
  kCapacityDataHasChanged,             // 2A/09: the device was resized
  kCommandsClearedByAnotherInitiator,  // 2F/00
  kMicrocodeHasBeenChanged,            // 3F/01
  kInquiryDataHasChanged,              // 3F/03
  kReportedLunsDataHasChanged,         // 3F/0E
  kMediumMayHaveChanged,               // 28/00: a removable medium was inserted
};
inline constexpr size_t kUnitAttentionKinds = 17;

scsi::SenseCode sense_code(UnitAttention ua);

// SAM-5 5.14: a lower rank is reported first.
int precedence(UnitAttention ua);

// How a command meets a pending unit attention (SAM-5 5.14, SPC-4 5.14).
enum class UnitAttentionHandling : uint8_t {
  kReport,         // CHECK CONDITION with the condition; the command is not processed
  kExempt,         // INQUIRY, REPORT LUNS: processed, the condition stays pending
  kReturnAsSense,  // REQUEST SENSE: the condition is its parameter data, and is cleared
};
// The SAM-5 rule for the CDB's opcode. The caller may still decide otherwise.
UnitAttentionHandling unit_attention_handling(std::span<const uint8_t> cdb);

class UnitAttentions {
 public:
  UnitAttentions() = default;
  UnitAttentions(const UnitAttentions&) = delete;
  UnitAttentions& operator=(const UnitAttentions&) = delete;

  // A nexus appeared. It starts with `initial` pending (SAM-5: the first
  // command of a new nexus sees a power on / reset condition).
  void attach(uint64_t nexus, UnitAttention initial = UnitAttention::kPowerOnOccurred);
  // The nexus went away: its pending conditions are dropped.
  void detach(uint64_t nexus);

  void raise(uint64_t nexus, UnitAttention ua);
  void raise_all(UnitAttention ua);
  void raise_all_except(uint64_t except_nexus, UnitAttention ua);

  // True if the nexus has a condition pending. Cheap when nothing is pending.
  bool pending(uint64_t nexus) const;
  // The condition the next command of the nexus reports, without clearing it.
  std::optional<UnitAttention> peek(uint64_t nexus) const;
  // Report and clear the highest-precedence condition (SPC-4 5.14: a condition
  // reported in CHECK CONDITION status or REQUEST SENSE data is cleared).
  std::optional<UnitAttention> take(uint64_t nexus);
  // Clear one kind without reporting it (SPC-4 6.33: REPORT LUNS clears
  // REPORTED LUNS DATA HAS CHANGED for its nexus).
  void clear(uint64_t nexus, UnitAttention ua);
  // Number of conditions pending for the nexus (tests, diagnostics).
  size_t count(uint64_t nexus) const;

 private:
  // Conditions in the order established; at most one of each kind.
  struct Queue {
    std::array<UnitAttention, kUnitAttentionKinds> items{};
    uint8_t size = 0;
  };
  void raise_locked(Queue& q, UnitAttention ua);
  static std::optional<size_t> best_locked(const Queue& q);

  mutable std::mutex mutex_;
  std::unordered_map<uint64_t, Queue> queues_;
  std::atomic<uint32_t> total_pending_{0};
};

}  // namespace scstu::core
