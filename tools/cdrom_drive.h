// cdrom_drive.h - a virtual CD-ROM drive served in the daemon whose medium
// scstuadmin can change or eject at runtime (the seed's vcdrom
// "change NAME [PATH]"): a scsi::LogicalUnit over a MediumTray.
//
// Ejecting makes medium commands fail NOT READY, MEDIUM NOT PRESENT; loading
// re-reads the capacity and gives every I_T nexus NOT READY TO READY CHANGE,
// MEDIUM MAY HAVE CHANGED. Like the seed, a change is refused while an
// initiator holds PREVENT ALLOW MEDIUM REMOVAL.
#pragma once

#include <memory>
#include <string>

#include "io/file_device.h"
#include "medium_tray.h"
#include "scsi/logical_unit.h"

namespace scstu::tools {

class CdromDrive {
 public:
  // `path` empty: a drive with no medium. Throws io::FileDeviceError naming
  // the image and the cause. options.cdrom is implied.
  CdromDrive(const std::string& name, const std::string& path, io::FileDeviceOptions options,
             uint32_t max_transfer_bytes);
  ~CdromDrive();

  // Replaces the medium with the image at `path` ("" ejects). Returns "" and
  // fills *message, or the error (the drive then keeps its old medium).
  std::string change(const std::string& path, std::string* message);

  const std::shared_ptr<scsi::LogicalUnit>& lu() const { return lu_; }
  const io::FileDevice* medium() const { return tray_->medium(); }
  uint64_t blocks() const { return tray_->geometry().blocks; }

 private:
  std::string name_;
  io::FileDeviceOptions options_;
  std::unique_ptr<MediumTray> tray_;  // outlives lu_
  std::shared_ptr<scsi::LogicalUnit> lu_;
};

}  // namespace scstu::tools
