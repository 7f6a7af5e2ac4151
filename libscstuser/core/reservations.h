// reservations.h - SPC-2 RESERVE/RELEASE (6/10) of a logical unit, the
// outcome type the per-LU state returns to LogicalUnit, and how each command
// is affected by a reservation (SPC-4 5.13.1 table 65, SBC-3 4.17 table 13).
//
// SPC-2 reservations are per I_T nexus (the session id). They are released by
// RELEASE from the holder, LUN RESET, TARGET RESET and loss of the holder's
// nexus. How they meet persistent reservations (SPC-4 5.13.3) is decided by
// the caller with PersistentReservations::spc2_exception() first.
#pragma once

#include <atomic>
#include <cstdint>
#include <mutex>
#include <optional>
#include <span>

#include "handler/command.h"
#include "scsi/sense.h"

namespace scstu::core {

// What a reservation or task-management operation answers: a SAM status, and
// for CHECK CONDITION the sense code and optional field pointer LogicalUnit
// turns into sense data (in the format D_SENSE selects).
struct Outcome {
  uint8_t status = status::kGood;
  scsi::SenseCode sense{};
  std::optional<scsi::FieldPointer> field;

  static Outcome good() { return {}; }
  static Outcome reservation_conflict() { return {status::kReservationConflict, {}, {}}; }
  static Outcome check(scsi::SenseCode code) { return {status::kCheckCondition, code, {}}; }
  static Outcome invalid_cdb_field(uint16_t byte, uint8_t bit = scsi::kNoBit) {
    return {status::kCheckCondition, scsi::kInvalidFieldInCdb, scsi::FieldPointer{true, byte, bit}};
  }
  static Outcome invalid_parameter_field(uint16_t byte, uint8_t bit = scsi::kNoBit) {
    return {status::kCheckCondition, scsi::kInvalidFieldInParameterList,
            scsi::FieldPointer{false, byte, bit}};
  }
  bool ok() const { return status == status::kGood; }
  friend bool operator==(const Outcome& a, const Outcome& b) {
    return a.status == b.status && a.sense == b.sense &&
           a.field.has_value() == b.field.has_value() &&
           (!a.field || (a.field->in_cdb == b.field->in_cdb && a.field->field == b.field->field &&
                         a.field->bit == b.field->bit));
  }
};

// How a command is affected by a reservation held by another I_T nexus.
enum class AccessClass : uint8_t {
  kAllowed,      // never conflicts (INQUIRY, REPORT LUNS, REQUEST SENSE, READ CAPACITY, ...)
  kRead,         // conflicts under Exclusive Access types only (READ, VERIFY, MODE SENSE, ...)
  kWrite,        // conflicts under every type (WRITE, MODE SELECT, SYNCHRONIZE CACHE, ...)
  kReservation,  // RESERVE/RELEASE(6/10), PERSISTENT RESERVE OUT: their own rules
};
// SPC-4 table 65 and SBC-3 table 13 ("allowed" where SPC-4 footnote b lets a
// device choose), for every SPC and SBC opcode; unknown opcodes are kWrite.
AccessClass persistent_access_class(std::span<const uint8_t> cdb);
// SPC-2 5.5.1: the few commands a non-holder may send to a reserved unit.
bool spc2_allowed_to_non_holder(std::span<const uint8_t> cdb);

class Reservations {
 public:
  Reservations() = default;
  Reservations(const Reservations&) = delete;
  Reservations& operator=(const Reservations&) = delete;

  // RESERVE(6) (0x16) or RESERVE(10) (0x56). Third-party and extent
  // reservations are not supported: INVALID FIELD IN CDB.
  Outcome reserve(uint64_t nexus, std::span<const uint8_t> cdb);
  // RELEASE(6)/(10): the holder releases; anyone else gets GOOD and nothing
  // changes (SPC-2 7.17).
  Outcome release(uint64_t nexus, std::span<const uint8_t> cdb);

  // True if the command must end in RESERVATION CONFLICT because another nexus
  // holds the unit. One relaxed atomic load while the unit is not reserved.
  bool conflicts(uint64_t nexus, std::span<const uint8_t> cdb) const;

  bool reserved() const { return reserved_.load(std::memory_order_acquire); }
  std::optional<uint64_t> holder() const;

  // LUN RESET, TARGET RESET, power on (SPC-2 5.5.1).
  void clear();
  // The nexus went away (I_T NEXUS LOSS, logout): its reservation is released.
  void nexus_lost(uint64_t nexus);

 private:
  mutable std::mutex mutex_;
  std::atomic<bool> reserved_{false};
  uint64_t holder_ = 0;
};

}  // namespace scstu::core
