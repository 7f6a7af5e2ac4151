// embedded_mode.h - `fileio_tgt --iscsi ADDR:PORT --target IQN ...`: the target
// core, the iSCSI portal and the devices in one process (no ring). LUNs are
// numbered in argument order, in the target's default group
// ("Default_<IQN>"), so every initiator sees them.
#pragma once

#include <vector>

#include "disk_unit.h"
#include "fileio_options.h"
#include "signals.h"

namespace scstu::fileio {

// Runs until SIGINT/SIGTERM. Returns the process exit code.
int run_embedded(const FileioOptions& options, std::vector<DiskUnit>& units, SignalWatch& signals);

// "ADDR:PORT" -> host, port. False with *error when malformed.
bool parse_portal(const std::string& text, std::string* host, uint16_t* port, std::string* error);

}  // namespace scstu::fileio
