// lu_runtime.h - the per-LU state LogicalUnit keeps beside its mode pages:
// unit attentions, reservations and the task set (core/, per SAM-5/SPC-4),
// and the I_T nexus table with each nexus' PREVENT ALLOW MEDIUM REMOVAL state.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <unordered_map>

#include "core/persistent_reservations.h"
#include "core/reservations.h"
#include "core/task_set.h"
#include "core/unit_attentions.h"
#include "scsi/sense.h"

namespace scstu::scsi {

struct SbcAdvancedState;  // scsi/sbc_advanced_job.h
class SanitizeOperation;  // scsi/sanitize.h

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

// Work a command started and completed before it ended (SYNCHRONIZE CACHE
// with IMMED = 1): the LogicalUnit waits for it before it goes away.
class BackgroundWork {
 public:
  void begin();
  void end();
  void wait_idle();

 private:
  std::mutex mutex_;
  std::condition_variable idle_;
  size_t running_ = 0;
};

// SPC-4 4.5.1 deferred errors: the failure of such work, reported (sense
// 71h/73h) to the next command of the I_T nexus that started it.
class DeferredErrors {
 public:
  void add(uint64_t nexus, SenseCode code);
  // One relaxed load while none is pending.
  std::optional<SenseCode> take(uint64_t nexus) {
    if (!any_.load(std::memory_order_acquire)) return std::nullopt;
    return take_slow(nexus);
  }
  void drop(uint64_t nexus);

 private:
  std::optional<SenseCode> take_slow(uint64_t nexus);
  std::atomic<bool> any_{false};
  std::mutex mutex_;
  std::unordered_map<uint64_t, SenseCode> pending_;
};

struct LuRuntime {
  LuRuntime(core::PersistentReservations::Options pr_options, core::TaskSet::Hooks hooks);
  ~LuRuntime();

  core::UnitAttentions unit_attentions;
  core::Reservations reservations;
  core::PersistentReservations persistent;
  core::TaskSet tasks;
  // The advanced SBC commands' state (LBA range lock, copy results), owned
  // here and created by sbc_advanced_state() from the LogicalUnit's
  // constructor; `sbc` lets the WRITE path reach the range lock directly.
  std::shared_ptr<SbcAdvancedState> sbc_storage;
  SbcAdvancedState* sbc = nullptr;
  // SANITIZE's operation (scsi/sanitize.h), created by the LogicalUnit.
  std::unique_ptr<SanitizeOperation> sanitize;
  BackgroundWork background;
  DeferredErrors deferred;
};

}  // namespace scstu::scsi
