// fileio_options.h - fileio_tgt's command line.
#pragma once

#include <string>
#include <utility>
#include <vector>

#include "io/file_device.h"

namespace scstu::fileio {

struct FileioOptions {
  std::vector<std::pair<std::string, std::string>> devices;  // NAME, PATH in argument order
  io::FileDeviceOptions device;

  // Embedded mode: --iscsi ADDR:PORT [--target IQN]
  std::string iscsi_portal;
  std::string target = "iqn.2026-11.org.scstu:fileio";
  // NOP-In keepalive of the iSCSI portal, in seconds; 0 disables it.
  uint32_t nop_interval_s = 10;
  // Multiple connections per session (MC/S): the most MaxConnections agreed
  // to, and how long a CmdSN gap between connections is waited for.
  uint32_t max_connections = 8;
  uint32_t cmdsn_gap_timeout_ms = 5000;
  // Split mode: --attach SOCKET
  std::string attach_socket;
  bool reconnect = true;
  // Kernel mode: --kernel, each NAME attaches to the kernel shim's /dev/scstu/NAME
  bool kernel = false;

  // --state-dir: per device NAME.sanitize, NAME.pr, NAME.modes; empty: none.
  std::string state_dir;
  uint32_t max_transfer_bytes = 0;  // 0: the mode's default (kernel: the device's max_io_bytes)
};

enum class ParseOutcome { kRun, kExitOk, kExitError };

// Parses argv; prints --help or the error (naming the option and the fix).
ParseOutcome parse_options(int argc, char** argv, FileioOptions* out);

}  // namespace scstu::fileio
