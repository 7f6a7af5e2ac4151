#include "cdrom_drive.h"

#include "scsi/lu_runtime.h"

namespace scstu::tools {

namespace {

constexpr uint32_t kCdBlock = 2048;  // MMC-6: CD logical blocks

// What every medium of the drive reports (io::FileDevice with cdrom): the
// LU reads these once, so they must not depend on the medium.
BlockCapabilities drive_capabilities() {
  BlockCapabilities caps;
  caps.read_only = true;
  caps.removable = true;
  caps.volatile_cache = false;
  return caps;
}

}  // namespace

CdromDrive::CdromDrive(const std::string& name, const std::string& path,
                       io::FileDeviceOptions options, uint32_t max_transfer_bytes)
    : name_(name), options_(std::move(options)) {
  options_.cdrom = true;
  std::unique_ptr<io::FileDevice> medium;
  if (!path.empty()) medium = io::FileDevice::open(path, options_);
  const bool empty = medium == nullptr;
  tray_ = std::make_unique<MediumTray>(std::move(medium), kCdBlock, drive_capabilities());

  scsi::LogicalUnitConfig cfg;
  cfg.device_type = 5;  // SPC-4: CD/DVD device
  cfg.product = "VCDROM";
  cfg.serial = name;
  cfg.read_only = true;
  cfg.removable = true;
  cfg.write_cache = scsi::WriteCacheMode::kWriteThrough;
  cfg.max_transfer_bytes = max_transfer_bytes;
  lu_ = std::make_shared<scsi::LogicalUnit>(cfg, tray_.get());
  if (empty) lu_->medium_changed(false);
}

CdromDrive::~CdromDrive() = default;

std::string CdromDrive::change(const std::string& path, std::string* message) {
  // The seed refuses too (-EBUSY) while removal is prevented (SBC-3 5.12).
  if (lu_->nexuses().removal_prevented()) {
    return "device " + name_ +
           ": an initiator prevents medium removal (PREVENT ALLOW MEDIUM REMOVAL); it must "
           "allow removal first";
  }
  std::unique_ptr<io::FileDevice> medium;
  if (!path.empty()) {
    try {
      medium = io::FileDevice::open(path, options_);
    } catch (const io::FileDeviceError& e) {
      return "device " + name_ + ": " + e.what();
    }
  }
  const bool loading = medium != nullptr;
  // Out first: from here on medium commands fail NOT READY, so none reaches
  // the tray while it swaps (but one already past that check may: the tray
  // waits for it).
  lu_->medium_changed(false);
  tray_->replace(std::move(medium), std::chrono::seconds(10));
  if (loading) {
    lu_->medium_changed(true);
    *message = name_ + ": medium " + path + " loaded, " + std::to_string(blocks()) + " blocks";
  } else {
    *message = name_ + ": medium ejected";
  }
  return {};
}

}  // namespace scstu::tools
