// target_core.h - the producer-side target core: targets, sessions (I_T
// nexuses), access control and LUN masking (the seed's security groups),
// flow control, and routing of commands to devices.
//
// A transport (iscsi/, or a test's in-process initiator) drives it:
//   1. open_session() at login; nullptr = target unknown / initiator refused.
//   2. per command: prepare() routes the LUN through the session's group,
//      decodes direction and length from the CDB (scsi/cdb), allocates the
//      buffer. If it returns false the command was already completed (done()
//      called: unknown LUN, bad CDB, REPORT LUNS answered by the core...).
//   3. the transport fills the buffer with Data-Out, then execute().
//   4. cmd.done() is called once, from any thread; then release().
//   5. close_session() at logout / connection loss (I_T NEXUS LOSS).
//
// Interface sketch: the implementation (core/) refines it, keeping this shape.
#pragma once

#include <memory>
#include <string>

#include "core/device.h"

namespace scstu::core {

class TargetCore;
}  // namespace scstu::core
