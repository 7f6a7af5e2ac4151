// disk_unit.h - one exported image: the file (io::FileDevice) and the SCSI
// device server over it (scsi::LogicalUnit), configured from the seed's vdisk
// flags.
#pragma once

#include <memory>
#include <string>

#include "io/file_device.h"
#include "scsi/logical_unit.h"

namespace scstu::fileio {

// INQUIRY identity overrides (fileio_tgt --kernel: what the kernel device was
// created with). Empty fields keep the defaults (SCSTU / VDISK / 0001 / NAME).
struct UnitIdentity {
  std::string vendor, product, revision, serial;
  // 3PC / VPD 8Fh: a producer-side copy manager runs EXTENDED COPY (the
  // iSCSI target's core does; the kernel shim has none).
  bool third_party_copy = true;
};

struct DiskUnit {
  std::string name;
  std::unique_ptr<io::FileDevice> file;
  std::shared_ptr<scsi::LogicalUnit> lu;

  // Opens `path`; throws io::FileDeviceError naming the file and the cause.
  // `state_dir`: where the unit keeps state across restarts (NAME.sanitize,
  // NAME.pr, NAME.modes); empty: in memory only.
  static DiskUnit open(const std::string& name, const std::string& path,
                       const io::FileDeviceOptions& options, uint32_t max_transfer_bytes,
                       const UnitIdentity& identity = {}, const std::string& state_dir = {});

  // The seed's resync_size: re-read the size; when it changed, the LU raises
  // CAPACITY DATA HAS CHANGED. Returns a line for the log.
  std::string resync_size();
};

// [A-Za-z0-9_-]{1,31}: what the ring and scstuadmin accept as a device name.
bool valid_device_name(const std::string& name);

}  // namespace scstu::fileio
