#include "handler/unit_state.h"

namespace scstu {

UnitStatePublisher::UnitStatePublisher(uint8_t* header_page, uint64_t offered, bool accept) {
  // A producer that did not offer the feature may not expect (or allow)
  // writes to its header page: the kernel shim restores it on attach.
  if (accept && (offered & SCSTU_F_UNIT_STATE))
    shared_ = reinterpret_cast<scstu_handler_state*>(header_page + SCSTU_HANDLER_STATE_OFFSET);
}

void UnitStatePublisher::publish(const LowLevelHandler& handler) {
  if (shared_ == nullptr) return;
  // Under the lock, each call reads the handler's state after the previous
  // one wrote: the last write carries the latest value.
  std::lock_guard lock(mu_);
  const uint32_t flags = handler.descriptor_sense() ? SCSTU_UNIT_F_D_SENSE : 0;
  __atomic_store_n(&shared_->unit_flags, flags, __ATOMIC_RELEASE);
  if (!accepted_) {
    // ring_abi.h: unit_flags first, then features, so a producer that sees
    // the feature accepted also sees a meaningful unit_flags.
    __atomic_store_n(&shared_->features, uint64_t{SCSTU_F_UNIT_STATE}, __ATOMIC_RELEASE);
    accepted_ = true;
  }
}

}  // namespace scstu
