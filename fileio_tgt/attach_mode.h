// attach_mode.h - split mode: each device attaches over the ring to a
// scstu-target daemon's Unix socket (handler/serve.h) and serves its
// commands. When the daemon goes away the device re-attaches once it is back
// (unless reconnect is off). Kernel mode (--kernel) is the same loop on the
// kernel shim's /dev/scstu/NAME; it exits instead of re-attaching.
#pragma once

#include <span>
#include <vector>

#include "disk_unit.h"
#include "fileio_options.h"
#include "signals.h"

namespace scstu::fileio {

// Runs until a signal stops it. Returns the process exit code. Kernel mode:
// kernel_fds[i] is units[i]'s /dev/scstu/NAME, open already (read_kernel_header).
//
// Each attach registers the ring's data area as the unit's io_uring fixed
// buffers (HandlerOptions::on_data_area), so READ/WRITE buffers there go
// READ_FIXED/WRITE_FIXED; a registration the kernel refuses (RLIMIT_MEMLOCK,
// memory it cannot pin) is logged once and I/O goes vectored.
int run_attached(const FileioOptions& options, std::vector<DiskUnit>& units, SignalWatch& signals,
                 std::span<const int> kernel_fds = {});

}  // namespace scstu::fileio
