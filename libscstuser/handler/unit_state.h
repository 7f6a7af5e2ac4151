// unit_state.h - the handler's side of ring ABI 1.2 (SCSTU_F_UNIT_STATE):
// the state block it publishes in the producer's header page (its sense
// format, D_SENSE), so sense the producer builds for the unit is in the
// unit's format (SPC-4 4.5.1). Unit events (REPORTED LUNS DATA HAS CHANGED)
// are dispatched by the queue runner; see ring_abi.h for the contract.
//
// Published at attach, after every MODE SELECT (the command that changes
// D_SENSE) and after every task management function (a logical unit reset
// restores the saved mode pages), each time before that command's
// completion is published.
#pragma once

#include <cstdint>
#include <mutex>

#include "handler/command.h"
#include "ring/ring_abi.h"

namespace scstu {

class UnitStatePublisher {
 public:
  // `header_page` is the mapped region's first page; `offered` is
  // hdr.features. Publishes nothing unless the producer offered
  // SCSTU_F_UNIT_STATE and `accept` (HandlerOptions::unit_state).
  UnitStatePublisher(uint8_t* header_page, uint64_t offered, bool accept);

  bool enabled() const { return shared_ != nullptr; }
  // Writes the handler's current sense format; the first call also accepts
  // the feature. Thread-safe: concurrent calls leave the latest value.
  void publish(const LowLevelHandler& handler);

  // Whether a completed command may have changed what publish() writes:
  // MODE SELECT(6) / MODE SELECT(10) (SPC-4 6.11, 6.12).
  static bool may_change(const scstu_cmd& cmd) {
    return cmd.kind == SCSTU_KIND_SCSI && !(cmd.flags & SCSTU_CMD_F_CDB_IN_DATA) &&
           (cmd.cdb[0] == 0x15 || cmd.cdb[0] == 0x55);
  }

 private:
  scstu_handler_state* shared_ = nullptr;
  std::mutex mu_;
  bool accepted_ = false;  // under mu_
};

}  // namespace scstu
