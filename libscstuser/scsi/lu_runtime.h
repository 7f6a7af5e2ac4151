// lu_runtime.h - the per-LU state LogicalUnit keeps beside its mode pages:
// unit attentions, reservations and the task set (core/, per SAM-5/SPC-4),
// and the I_T nexus table with each nexus' PREVENT ALLOW MEDIUM REMOVAL state.
#pragma once

#include <cstdint>
#include <memory>
#include <mutex>
#include <unordered_map>

#include "core/persistent_reservations.h"
#include "core/reservations.h"
#include "core/task_set.h"
#include "core/unit_attentions.h"

namespace scstu::scsi {

struct SbcAdvancedState;  // scsi/sbc_advanced_job.h

// I_T nexuses the LU knows. SBC-3 5.12 / SPC-4: medium removal is prevented
// while any nexus holds a PREVENT; a nexus loss or a reset clears its hold.
class NexusTable {
 public:
  void attach(uint64_t nexus);
  void detach(uint64_t nexus);
  void set_prevent(uint64_t nexus, bool prevent);
  bool removal_prevented() const;
  void clear_prevent();
  size_t size() const;

 private:
  mutable std::mutex mutex_;
  std::unordered_map<uint64_t, bool> prevent_;  // nexus -> holds PREVENT
};

struct LuRuntime {
  LuRuntime(core::PersistentReservations::Options pr_options, core::TaskSet::Hooks hooks)
      : persistent(unit_attentions, std::move(pr_options)), tasks(std::move(hooks)) {}

  core::UnitAttentions unit_attentions;
  core::Reservations reservations;
  core::PersistentReservations persistent;
  core::TaskSet tasks;
  // The advanced SBC commands' state (LBA range lock, copy results), owned
  // here and created by sbc_advanced_state() from the LogicalUnit's
  // constructor; `sbc` lets the WRITE path reach the range lock directly.
  std::shared_ptr<SbcAdvancedState> sbc_storage;
  SbcAdvancedState* sbc = nullptr;
};

}  // namespace scstu::scsi
