#include "core/flow_control.h"

namespace scstu::core {

namespace {

// Takes one unit of `counter` if that keeps it <= limit (0 = unlimited).
bool take(std::atomic<uint32_t>* counter, uint32_t limit) {
  if (!counter) return true;
  if (limit == 0) {
    counter->fetch_add(1, std::memory_order_relaxed);
    return true;
  }
  uint32_t cur = counter->load(std::memory_order_relaxed);
  do {
    if (cur >= limit) return false;
  } while (!counter->compare_exchange_weak(cur, cur + 1, std::memory_order_relaxed));
  return true;
}

void give(std::atomic<uint32_t>* counter) {
  if (counter) counter->fetch_sub(1, std::memory_order_relaxed);
}

}  // namespace

Admission admit(const FlowLimits& limits, const FlowCounters& counters) {
  // The nexus count has no limit of its own; it only chooses the status.
  const uint32_t nexus_before =
      counters.nexus ? counters.nexus->load(std::memory_order_relaxed) : 0;
  if (!take(counters.session, limits.per_session)) {
    return nexus_before ? Admission::kTaskSetFull : Admission::kBusy;
  }
  if (!take(counters.device, limits.per_device)) {
    give(counters.session);
    return nexus_before ? Admission::kTaskSetFull : Admission::kBusy;
  }
  take(counters.nexus, 0);
  return Admission::kAdmitted;
}

void finish(const FlowCounters& counters) {
  give(counters.nexus);
  give(counters.device);
  give(counters.session);
}

uint8_t refusal_status(Admission a) {
  return a == Admission::kBusy ? status::kBusy : status::kTaskSetFull;
}

uint8_t no_resources_status(uint32_t nexus_outstanding) {
  return nexus_outstanding ? status::kTaskSetFull : status::kBusy;
}

}  // namespace scstu::core
