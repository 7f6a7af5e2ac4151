#include "disk_unit.h"

#include <algorithm>

namespace scstu::fileio {

bool valid_device_name(const std::string& name) {
  if (name.empty() || name.size() > 31) return false;
  for (char c : name) {
    const bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                    c == '_' || c == '-';
    if (!ok) return false;
  }
  return true;
}

DiskUnit DiskUnit::open(const std::string& name, const std::string& path,
                        const io::FileDeviceOptions& options, uint32_t max_transfer_bytes,
                        const UnitIdentity& identity, const std::string& state_dir) {
  DiskUnit unit;
  unit.name = name;
  unit.file = io::FileDevice::open(path, options);
  const io::FileDeviceOptions& o = unit.file->options();  // after cdrom/nv_cache adjustments

  scsi::LogicalUnitConfig cfg;
  cfg.device_type = unit.file->device_type();
  cfg.product = o.cdrom ? "VCDROM" : (o.nullio ? "NULLIO" : "VDISK");
  cfg.serial = name;
  if (!identity.vendor.empty()) cfg.vendor = identity.vendor;
  if (!identity.product.empty()) cfg.product = identity.product;
  if (!identity.revision.empty()) cfg.revision = identity.revision;
  if (!identity.serial.empty()) cfg.serial = identity.serial;
  cfg.third_party_copy = identity.third_party_copy;
  cfg.read_only = o.read_only;
  cfg.removable = o.removable;
  cfg.thin = unit.file->capabilities().unmap;
  // The seed: NV_CACHE ignores SYNCHRONIZE CACHE and reports write-through;
  // it overrides WRITE_THROUGH.
  cfg.write_cache = o.nv_cache        ? scsi::WriteCacheMode::kNvCache
                    : o.write_through ? scsi::WriteCacheMode::kWriteThrough
                                      : scsi::WriteCacheMode::kWriteBack;
  cfg.max_transfer_bytes = max_transfer_bytes;
  cfg.physical_block_exponent = unit.file->physical_block_exponent();
  // Advertise the file's granularity so initiators align their I/O with it.
  if (o.thin) {
    cfg.unmap_granularity =
        std::max<uint32_t>({1, 4096 / o.block_size, 1u << cfg.physical_block_exponent});
  }
  if (!state_dir.empty()) {
    cfg.sanitize_state_file = state_dir + "/" + name + ".sanitize";
    cfg.aptpl_file = state_dir + "/" + name + ".pr";
    cfg.mode_file = state_dir + "/" + name + ".modes";
  }
  unit.lu = std::make_shared<scsi::LogicalUnit>(cfg, unit.file.get());
  return unit;
}

std::string DiskUnit::resync_size() {
  const uint64_t before = file->geometry().blocks;
  try {
    if (!file->resync_size()) {
      return name + ": size unchanged (" + std::to_string(before) + " blocks)";
    }
  } catch (const io::FileDeviceError& e) {
    return name + ": resync_size failed: " + e.what();
  }
  lu->capacity_changed();
  return name + ": capacity changed from " + std::to_string(before) + " to " +
         std::to_string(file->geometry().blocks) + " blocks";
}

}  // namespace scstu::fileio
