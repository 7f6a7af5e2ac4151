// xcopy_targets.h - the logical units an EXTENDED COPY issued to one unit
// may read from or write to: every unit of this process that registered,
// found by its designator (SPC-4 6.4.5.1 identification descriptor target
// descriptor, E4h; the designators VPD 83h reports).
//
// The unit that receives the EXTENDED COPY is always reachable, registered
// or not. Another unit is reachable while its owner holds its Registration
// (LogicalUnit's owner, e.g. fileio_tgt, registers each unit it serves). A
// copy holds a Lease on each unit it uses; dropping a Registration waits
// until no copy uses the unit, so a unit never goes away under a copy.
//
// Units in other handler processes are not reachable: that needs the copy
// manager on the producer side (see the report of helper "sbc").
#pragma once

#include <condition_variable>
#include <cstdint>
#include <mutex>
#include <span>
#include <vector>

namespace scstu::scsi {

class LogicalUnit;

class CopyTargets {
 public:
  static CopyTargets& process();

  class Registration {
   public:
    Registration() = default;
    Registration(Registration&& other) noexcept;
    Registration& operator=(Registration&& other) noexcept;
    ~Registration();

   private:
    friend class CopyTargets;
    Registration(CopyTargets* owner, LogicalUnit* lu) : owner_(owner), lu_(lu) {}
    CopyTargets* owner_ = nullptr;
    LogicalUnit* lu_ = nullptr;
  };

  class Lease {
   public:
    Lease() = default;
    Lease(Lease&& other) noexcept;
    Lease& operator=(Lease&& other) noexcept;
    ~Lease();
    LogicalUnit* unit() const { return lu_; }
    explicit operator bool() const { return lu_ != nullptr; }

   private:
    friend class CopyTargets;
    Lease(CopyTargets* owner, LogicalUnit* lu) : owner_(owner), lu_(lu) {}
    CopyTargets* owner_ = nullptr;
    LogicalUnit* lu_ = nullptr;
  };

  [[nodiscard]] Registration add(LogicalUnit& lu);

  // The unit whose designator matches `designation` (a designation
  // descriptor: code set, association/type, length, designator), trying
  // `self` first. Empty when none matches.
  Lease find(std::span<const uint8_t> designation, LogicalUnit& self);

  // True if the designation descriptor names this unit (NAA, or EUI-64 when
  // configured; binary code set, logical unit association).
  static bool designates(std::span<const uint8_t> designation, const LogicalUnit& lu);

 private:
  struct Entry {
    LogicalUnit* lu;
    size_t leases;
  };
  void remove(LogicalUnit* lu);
  void release(LogicalUnit* lu);

  std::mutex mutex_;
  std::condition_variable released_;
  std::vector<Entry> entries_;
};

}  // namespace scstu::scsi
