#include "core/reservations.h"

namespace scstu::core {

namespace {

uint8_t service_action(std::span<const uint8_t> cdb) {
  return cdb.size() > 1 ? (cdb[1] & 0x1F) : 0;
}

// START STOP UNIT with START = 1 and POWER CONDITION = 0 only makes the unit
// ready: SBC-3 table 13 allows it under every reservation.
bool start_only(std::span<const uint8_t> cdb) {
  return cdb.size() > 4 && (cdb[4] & 0x01) && (cdb[4] & 0xF0) == 0;
}

// PREVENT ALLOW MEDIUM REMOVAL with PREVENT = 0 (allow) is always allowed.
bool allow_removal(std::span<const uint8_t> cdb) { return cdb.size() > 4 && (cdb[4] & 0x03) == 0; }

}  // namespace

AccessClass persistent_access_class(std::span<const uint8_t> cdb) {
  if (cdb.empty()) return AccessClass::kWrite;
  switch (cdb[0]) {
    // SPC-4 table 65: allowed from every nexus.
    case 0x00:  // TEST UNIT READY (footnote b: allowed here)
    case 0x03:  // REQUEST SENSE
    case 0x12:  // INQUIRY
    case 0x25:  // READ CAPACITY(10)
    case 0x4D:  // LOG SENSE
    case 0x5E:  // PERSISTENT RESERVE IN
    case 0x84:  // RECEIVE COPY RESULTS / STATUS / DATA / OPERATING PARAMETERS (footnote b)
    case 0x86:  // ACCESS CONTROL IN
    case 0x87:  // ACCESS CONTROL OUT
    case 0xA0:  // REPORT LUNS
      return AccessClass::kAllowed;
    case 0x1B:  // START STOP UNIT
      return start_only(cdb) ? AccessClass::kAllowed : AccessClass::kWrite;
    case 0x1E:  // PREVENT ALLOW MEDIUM REMOVAL
      return allow_removal(cdb) ? AccessClass::kAllowed : AccessClass::kWrite;
    case 0xAB:  // SERVICE ACTION IN(12): READ MEDIA SERIAL NUMBER
      return service_action(cdb) == 0x01 ? AccessClass::kAllowed : AccessClass::kRead;
    case 0x9E:  // SERVICE ACTION IN(16)
      switch (service_action(cdb)) {
        case 0x10:
          return AccessClass::kAllowed;  // READ CAPACITY(16)
        case 0x12:
          return AccessClass::kRead;  // GET LBA STATUS
        case 0x11:
          return AccessClass::kWrite;  // READ LONG(16)
        default:
          return AccessClass::kRead;
      }
    case 0xA3:  // MAINTENANCE IN
      switch (service_action(cdb)) {
        case 0x05:  // REPORT IDENTIFYING INFORMATION
        case 0x0A:  // REPORT TARGET PORT GROUPS
        case 0x0B:  // REPORT ALIASES
        case 0x0E:  // REPORT PRIORITY
        case 0x0F:  // REPORT TIMESTAMP
          return AccessClass::kAllowed;
        default:  // REPORT SUPPORTED OPERATION CODES / TMF, MANAGEMENT PROTOCOL IN
          return AccessClass::kRead;
      }
    // Reading commands: allowed under Write Exclusive, conflict under
    // Exclusive Access (SPC-4 table 65 footnote b, SBC-3 table 13).
    case 0x08:  // READ(6)
    case 0x1A:  // MODE SENSE(6)
    case 0x1C:  // RECEIVE DIAGNOSTIC RESULTS
    case 0x28:  // READ(10)
    case 0x2F:  // VERIFY(10)
    case 0x34:  // PRE-FETCH(10)
    case 0x37:  // READ DEFECT DATA(10)
    case 0x3C:  // READ BUFFER
    case 0x5A:  // MODE SENSE(10)
    case 0x88:  // READ(16)
    case 0x8C:  // READ ATTRIBUTE
    case 0x8F:  // VERIFY(16)
    case 0x90:  // PRE-FETCH(16)
    case 0xA2:  // SECURITY PROTOCOL IN
    case 0xA8:  // READ(12)
    case 0xAF:  // VERIFY(12)
    case 0xB7:  // READ DEFECT DATA(12)
      return AccessClass::kRead;
    case 0x7F:  // variable length: READ(32), VERIFY(32) read; the rest write
      if (cdb.size() > 9) {
        uint16_t sa = static_cast<uint16_t>(cdb[8] << 8 | cdb[9]);
        if (sa == 0x0009 || sa == 0x000A) return AccessClass::kRead;
      }
      return AccessClass::kWrite;
    case 0x16:  // RESERVE(6)
    case 0x17:  // RELEASE(6)
    case 0x56:  // RESERVE(10)
    case 0x57:  // RELEASE(10)
    case 0x5F:  // PERSISTENT RESERVE OUT
      return AccessClass::kReservation;
    default:  // writes, MODE/LOG SELECT, SYNCHRONIZE CACHE, FORMAT, EXTENDED COPY, ...
      return AccessClass::kWrite;
  }
}

bool spc2_allowed_to_non_holder(std::span<const uint8_t> cdb) {
  if (cdb.empty()) return false;
  switch (cdb[0]) {
    case 0x03:  // REQUEST SENSE
    case 0x12:  // INQUIRY
    case 0x17:  // RELEASE(6): GOOD, nothing released
    case 0x57:  // RELEASE(10)
    case 0x25:  // READ CAPACITY(10) (SBC-2 table B.1)
    case 0x4D:  // LOG SENSE
    case 0xA0:  // REPORT LUNS
      return true;
    case 0x1B:  // START STOP UNIT
      return start_only(cdb);
    case 0x1E:  // PREVENT ALLOW MEDIUM REMOVAL
      return allow_removal(cdb);
    case 0x9E:
      return service_action(cdb) == 0x10;  // READ CAPACITY(16)
    case 0xA3:
      return service_action(cdb) == 0x0A;  // REPORT TARGET PORT GROUPS
    case 0xAB:
      return service_action(cdb) == 0x01;  // READ MEDIA SERIAL NUMBER
    default:
      return false;
  }
}

Outcome Reservations::reserve(uint64_t nexus, std::span<const uint8_t> cdb) {
  if (cdb.empty()) return Outcome::invalid_cdb_field(0);
  if (cdb[0] == 0x16) {
    // SPC-2 7.21: byte 1 bit 4 3RDPTY, bits 3..1 third-party id, bit 0 EXTENT.
    if (cdb.size() < 6) return Outcome::invalid_cdb_field(0);
    if (cdb[1] & 0x10) return Outcome::invalid_cdb_field(1, 4);
    if (cdb[1] & 0x01) return Outcome::invalid_cdb_field(1, 0);
  } else {
    // SPC-2 7.22: byte 1 bit 4 3RDPTY, bit 1 LONGID; no parameter list then.
    if (cdb.size() < 10) return Outcome::invalid_cdb_field(0);
    if (cdb[1] & 0x10) return Outcome::invalid_cdb_field(1, 4);
    if (cdb[1] & 0x02) return Outcome::invalid_cdb_field(1, 1);
  }
  std::lock_guard lock(mutex_);
  if (reserved_.load(std::memory_order_relaxed) && holder_ != nexus) {
    return Outcome::reservation_conflict();
  }
  holder_ = nexus;
  reserved_.store(true, std::memory_order_release);
  return Outcome::good();
}

Outcome Reservations::release(uint64_t nexus, std::span<const uint8_t> cdb) {
  if (cdb.empty()) return Outcome::invalid_cdb_field(0);
  if (cdb[0] == 0x57 && cdb.size() >= 2 && (cdb[1] & 0x10)) return Outcome::invalid_cdb_field(1, 4);
  if (cdb[0] == 0x17 && cdb.size() >= 2 && (cdb[1] & 0x11)) {
    return Outcome::invalid_cdb_field(1, (cdb[1] & 0x10) ? 4 : 0);
  }
  std::lock_guard lock(mutex_);
  if (reserved_.load(std::memory_order_relaxed) && holder_ == nexus) {
    reserved_.store(false, std::memory_order_release);
  }
  return Outcome::good();
}

bool Reservations::conflicts(uint64_t nexus, std::span<const uint8_t> cdb) const {
  if (!reserved_.load(std::memory_order_acquire)) return false;
  std::lock_guard lock(mutex_);
  if (!reserved_.load(std::memory_order_relaxed) || holder_ == nexus) return false;
  return !spc2_allowed_to_non_holder(cdb);
}

std::optional<uint64_t> Reservations::holder() const {
  std::lock_guard lock(mutex_);
  if (!reserved_.load(std::memory_order_relaxed)) return std::nullopt;
  return holder_;
}

void Reservations::clear() {
  std::lock_guard lock(mutex_);
  reserved_.store(false, std::memory_order_release);
}

void Reservations::nexus_lost(uint64_t nexus) {
  std::lock_guard lock(mutex_);
  if (holder_ == nexus) reserved_.store(false, std::memory_order_release);
}

}  // namespace scstu::core
