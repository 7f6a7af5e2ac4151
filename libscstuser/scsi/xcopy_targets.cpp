#include "scsi/xcopy_targets.h"

#include <algorithm>
#include <cstring>
#include <utility>

#include "scsi/cdb.h"
#include "scsi/identity.h"
#include "scsi/logical_unit.h"

namespace scstu::scsi {

CopyTargets& CopyTargets::process() {
  static CopyTargets targets;
  return targets;
}

CopyTargets::Registration::Registration(Registration&& other) noexcept
    : owner_(std::exchange(other.owner_, nullptr)), lu_(std::exchange(other.lu_, nullptr)) {}

CopyTargets::Registration& CopyTargets::Registration::operator=(Registration&& other) noexcept {
  if (this != &other) {
    if (owner_ != nullptr) owner_->remove(lu_);
    owner_ = std::exchange(other.owner_, nullptr);
    lu_ = std::exchange(other.lu_, nullptr);
  }
  return *this;
}

CopyTargets::Registration::~Registration() {
  if (owner_ != nullptr) owner_->remove(lu_);
}

CopyTargets::Lease::Lease(Lease&& other) noexcept
    : owner_(std::exchange(other.owner_, nullptr)), lu_(std::exchange(other.lu_, nullptr)) {}

CopyTargets::Lease& CopyTargets::Lease::operator=(Lease&& other) noexcept {
  if (this != &other) {
    if (owner_ != nullptr) owner_->release(lu_);
    owner_ = std::exchange(other.owner_, nullptr);
    lu_ = std::exchange(other.lu_, nullptr);
  }
  return *this;
}

CopyTargets::Lease::~Lease() {
  if (owner_ != nullptr) owner_->release(lu_);
}

CopyTargets::Registration CopyTargets::add(LogicalUnit& lu) {
  std::lock_guard lock(mutex_);
  entries_.push_back({&lu, 0});
  return Registration(this, &lu);
}

void CopyTargets::remove(LogicalUnit* lu) {
  std::unique_lock lock(mutex_);
  auto it =
      std::find_if(entries_.begin(), entries_.end(), [&](const Entry& e) { return e.lu == lu; });
  if (it == entries_.end()) return;
  // No new lease can be taken once we are waiting: find() skips nothing,
  // but the owner is tearing the unit down, so wait for the copies using it.
  released_.wait(lock, [&] {
    auto e =
        std::find_if(entries_.begin(), entries_.end(), [&](const Entry& x) { return x.lu == lu; });
    return e == entries_.end() || e->leases == 0;
  });
  entries_.erase(
      std::find_if(entries_.begin(), entries_.end(), [&](const Entry& e) { return e.lu == lu; }));
}

void CopyTargets::release(LogicalUnit* lu) {
  if (lu == nullptr) return;
  std::lock_guard lock(mutex_);
  for (Entry& e : entries_) {
    if (e.lu == lu && e.leases > 0 && --e.leases == 0) released_.notify_all();
  }
}

bool CopyTargets::designates(std::span<const uint8_t> d, const LogicalUnit& lu) {
  // SPC-4 7.8.6.1: byte 0 CODE SET (3:0); byte 1 ASSOCIATION (5:4),
  // DESIGNATOR TYPE (3:0); byte 3 DESIGNATOR LENGTH; then the designator.
  if (d.size() < 4) return false;
  const uint8_t code_set = d[0] & 0x0F;
  const uint8_t association = (d[1] >> 4) & 0x03;
  const uint8_t type = d[1] & 0x0F;
  const size_t length = d[3];
  if (code_set != 0x01 || association != 0 || d.size() < 4 + length) return false;
  const uint8_t* value = d.data() + 4;
  if (type == 0x03) {  // NAA
    const LuIdentity id = make_identity(lu.config());
    return length == id.naa.size() && std::memcmp(value, id.naa.data(), length) == 0;
  }
  if (type == 0x02 && lu.config().eui64) {  // EUI-64
    uint8_t eui[8];
    put_be64(eui, *lu.config().eui64);
    return length == 8 && std::memcmp(value, eui, 8) == 0;
  }
  return false;
}

CopyTargets::Lease CopyTargets::find(std::span<const uint8_t> designation, LogicalUnit& self) {
  std::lock_guard lock(mutex_);
  // Self first: reachable even when not registered. A registered self is
  // leased like any other unit.
  for (Entry& e : entries_) {
    if (e.lu == &self && designates(designation, self)) {
      ++e.leases;
      return Lease(this, &self);
    }
  }
  if (designates(designation, self)) return Lease(nullptr, &self);
  for (Entry& e : entries_) {
    if (designates(designation, *e.lu)) {
      ++e.leases;
      return Lease(this, e.lu);
    }
  }
  return Lease();
}

}  // namespace scstu::scsi
