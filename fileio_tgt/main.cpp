// fileio_tgt: image files and block devices as SCSI disks, served by an
// embedded iSCSI target (--iscsi) or attached to a scstu-target daemon
// (--attach), or attached to the kernel shim's /dev/scstu/NAME (--kernel).
// See --help.
#include <unistd.h>

#include <cstdio>
#include <vector>

#include "attach_mode.h"
#include "disk_unit.h"
#include "embedded_mode.h"
#include "fileio_options.h"
#include "kernel_device.h"
#include "signals.h"

int main(int argc, char** argv) {
  using namespace scstu::fileio;
  FileioOptions options;
  switch (parse_options(argc, argv, &options)) {
    case ParseOutcome::kExitOk:
      return 0;
    case ParseOutcome::kExitError:
      return 2;
    case ParseOutcome::kRun:
      break;
  }
  SignalWatch signals;  // before any thread starts: they inherit the blocked mask

  std::vector<DiskUnit> units;
  // Kernel mode: each /dev/scstu/NAME stays open from reading its header to
  // the end, so the shim sees one attach per start.
  struct KernelFds {
    std::vector<int> fds;
    ~KernelFds() {
      for (int fd : fds) close(fd);
    }
  } kernel;
  for (const auto& [name, path] : options.devices) {
    UnitIdentity identity;
    uint32_t max_transfer = options.max_transfer_bytes;
    if (options.kernel) {
      // The kernel device's type and identity rule (kernel_device.h).
      const std::string dev = kernel_device_path(name);
      scstu_region_header header;
      std::string error;
      int fd = -1;
      const bool read = read_kernel_header(dev, &header, &error, &fd);
      if (read) kernel.fds.push_back(fd);
      if (!read || !identity_from_kernel_header(header, dev, options.device.cdrom ? 5 : 0,
                                                options.max_transfer_bytes, &identity,
                                                &max_transfer, &error)) {
        std::fprintf(stderr, "fileio_tgt: %s: %s\n", name.c_str(), error.c_str());
        return 1;
      }
    }
    try {
      units.push_back(
          DiskUnit::open(name, path, options.device, max_transfer, identity, options.state_dir));
    } catch (const std::exception& e) {
      std::fprintf(stderr, "fileio_tgt: %s\n", e.what());
      return 1;
    }
    const DiskUnit& u = units.back();
    const auto geo = u.file->geometry();
    std::fprintf(stderr, "fileio_tgt: %s: %s, %llu blocks of %u bytes, io engine %s%s%s\n",
                 name.c_str(), path.c_str(), static_cast<unsigned long long>(geo.blocks),
                 geo.block_size, scstu::io::to_string(u.file->engine_kind()),
                 u.file->engine_note().empty() ? "" : " (io_uring unavailable: ",
                 u.file->engine_note().empty() ? "" : (u.file->engine_note() + ")").c_str());
  }
  if (!options.attach_socket.empty() || options.kernel) {
    return run_attached(options, units, signals, kernel.fds);
  }
  return run_embedded(options, units, signals);
}
