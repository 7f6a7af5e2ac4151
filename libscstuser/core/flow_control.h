// flow_control.h - queue-depth limits: how many commands may be outstanding
// per device (all sessions) and per session (all LUNs), and what an initiator
// is told past them (the SCST README's QUEUE_FULL discussion: "just SCSI flow
// control in action").
//
// SAM-5 5.3.1: TASK SET FULL is returned when the logical unit lacks the
// resources to enter a command in the task set while the I_T nexus has at
// least one other command in it; with none from that I_T nexus, BUSY should
// be returned instead. So a refused command gets TASK SET FULL if its I_T_L
// nexus has commands outstanding (the initiator learns its queue depth from
// it, e.g. Linux's scsi_track_queue_full) and BUSY if it has none (nothing of
// its own will complete to free a slot: retry later).
#pragma once

#include <atomic>
#include <cstdint>

#include "handler/command.h"

namespace scstu::core {

struct FlowLimits {
  // 0 = unlimited. Defaults: SCST's per-nexus default was 48; a device here
  // serves many nexuses, and the iSCSI layer should not open a CmdSN window
  // (MaxCmdSN - ExpCmdSN + 1) wider than per_session.
  uint32_t per_device = 256;
  uint32_t per_session = 128;
};

enum class Admission : uint8_t { kAdmitted, kTaskSetFull, kBusy };

// The counters one command is admitted against. admit() increments all or
// none; finish() undoes an admitted command. Lock-free.
struct FlowCounters {
  std::atomic<uint32_t>* device = nullptr;
  std::atomic<uint32_t>* session = nullptr;
  std::atomic<uint32_t>* nexus = nullptr;  // I_T_L: this session on this LU
};

Admission admit(const FlowLimits& limits, const FlowCounters& counters);
void finish(const FlowCounters& counters);
// The status for a command refused with `a` (SAM-5 5.3.1, see above).
uint8_t refusal_status(Admission a);
// The status for a command refused for lack of device buffers, given how many
// commands its I_T_L nexus has outstanding besides it.
uint8_t no_resources_status(uint32_t nexus_outstanding);

}  // namespace scstu::core
