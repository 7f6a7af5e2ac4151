// attach_mode.h - split mode: each device attaches over the ring to a
// scstu-target daemon's Unix socket (handler/serve.h) and serves its
// commands. When the daemon goes away the device re-attaches once it is back
// (unless reconnect is off). Kernel mode (--kernel) is the same loop on the
// kernel shim's /dev/scstu/NAME; it exits instead of re-attaching.
#pragma once

#include <vector>

#include "disk_unit.h"
#include "fileio_options.h"
#include "signals.h"

namespace scstu::fileio {

// Runs until a signal stops it. Returns the process exit code.
int run_attached(const FileioOptions& options, std::vector<DiskUnit>& units, SignalWatch& signals);

}  // namespace scstu::fileio
