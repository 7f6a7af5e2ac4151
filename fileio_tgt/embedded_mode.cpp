#include "embedded_mode.h"

#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>

#include "core/local_device.h"
#include "core/target_core.h"
#include "iscsi/server.h"

namespace scstu::fileio {

bool parse_portal(const std::string& text, std::string* host, uint16_t* port, std::string* error) {
  const size_t colon = text.rfind(':');
  if (colon == std::string::npos || colon == 0) {
    *error = "--iscsi " + text + ": expected ADDR:PORT, e.g. 127.0.0.1:3260";
    return false;
  }
  char* end = nullptr;
  const unsigned long p = std::strtoul(text.c_str() + colon + 1, &end, 10);
  if (colon + 1 == text.size() || *end != '\0' || p > 65535) {
    *error = "--iscsi " + text + ": port must be 0..65535 (0: any free port)";
    return false;
  }
  *host = text.substr(0, colon);
  *port = static_cast<uint16_t>(p);
  return true;
}

int run_embedded(const FileioOptions& options, std::vector<DiskUnit>& units, SignalWatch& signals) {
  iscsi::PortalAddress portal;
  std::string error;
  if (!parse_portal(options.iscsi_portal, &portal.host, &portal.port, &error)) {
    std::fprintf(stderr, "fileio_tgt: %s\n", error.c_str());
    return 2;
  }

  core::TargetCore core;
  auto fail = [](const std::string& msg) {
    std::fprintf(stderr, "fileio_tgt: %s\n", msg.c_str());
    return 1;
  };
  if (core::ConfigStatus s = core.access().add_target(options.target); !s) return fail(s.message());
  const std::string group = std::string(core::kTargetDefaultGroupPrefix) + options.target;
  if (core::ConfigStatus s = core.access().add_group(group); !s) return fail(s.message());
  for (size_t lun = 0; lun < units.size(); ++lun) {
    DiskUnit& unit = units[lun];
    core::LocalDeviceOptions lo;
    lo.info.name = unit.name;
    lo.info.device_type = unit.file->device_type();
    lo.info.block_size = unit.file->geometry().block_size;
    lo.info.max_transfer_bytes = options.max_transfer_bytes;
    lo.max_io_bytes = options.max_transfer_bytes;
    lo.queue_depth = std::max<uint32_t>(options.device.engine.queue_depth, 128);
    // Each command slot's buffer becomes an io_uring fixed buffer (the
    // embedded counterpart of the ring's data area, attach_mode.h).
    if (unit.file->engine_kind() == io::IoEngineKind::kUring &&
        unit.file->reserve_fixed_buffers(lo.queue_depth) == 0) {
      io::FileDevice* file = unit.file.get();
      auto warned = std::make_shared<std::atomic<bool>>(false);
      lo.on_slot_buffer = [file, warned, name = unit.name](uint32_t slot,
                                                           std::span<std::byte> buffer) {
        const int rc = file->set_fixed_buffer(slot, buffer);
        if (rc < 0 && !warned->exchange(true)) {
          std::fprintf(stderr,
                       "fileio_tgt: %s: registering a command buffer as an io_uring fixed "
                       "buffer: %s (I/O works, pinning pages per I/O%s)\n",
                       name.c_str(), std::strerror(-rc),
                       rc == -ENOMEM ? "; raise the locked-memory limit, ulimit -l" : "");
        }
      };
    }
    auto device = std::make_shared<core::LocalDevice>(unit.lu, lo);
    if (core::ConfigStatus s = core.access().add_device(device); !s) return fail(s.message());
    if (core::ConfigStatus s = core.access().add_lun(group, lun, unit.name); !s) {
      return fail(s.message());
    }
  }

  iscsi::ServerOptions so;
  so.portals = {portal};
  so.nop_interval = std::chrono::seconds(options.nop_interval_s);  // 0: no pings
  so.max_connections = options.max_connections;
  so.cmdsn_gap_timeout = std::chrono::milliseconds(options.cmdsn_gap_timeout_ms);
  iscsi::Server server(core, so);
  if (!server.start(&error)) return fail(error);
  for (const iscsi::PortalAddress& p : server.portals()) {
    // Scripts read the bound port from this line (--iscsi ADDR:0).
    std::fprintf(stderr, "fileio_tgt: serving %s on %s\n", options.target.c_str(),
                 p.to_string().c_str());
  }
  for (size_t lun = 0; lun < units.size(); ++lun) {
    std::fprintf(stderr, "fileio_tgt:   LUN %zu: %s\n", lun, units[lun].name.c_str());
  }
  signals.run([&] {
    for (DiskUnit& unit : units)
      std::fprintf(stderr, "fileio_tgt: %s\n", unit.resync_size().c_str());
  });
  std::fprintf(stderr, "fileio_tgt: shutting down\n");
  server.stop();
  return 0;
}

}  // namespace scstu::fileio
