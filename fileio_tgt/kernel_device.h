// kernel_device.h - `fileio_tgt --kernel NAME PATH`: the kernel shim's
// /dev/scstu/NAME (kmod/) and the identity it was created with.
//
// The kernel device is created (type, vendor/product/revision/serial, queues)
// by SCSTU_IOC_CREATE before a handler attaches; the region header carries
// that identity since ABI 1.1. fileio_tgt reads it so the LUN answers INQUIRY
// with what the administrator created, and refuses a device whose type it
// cannot serve (a tape or changer is not an image file).
#pragma once

#include <cstdint>
#include <string>

#include "disk_unit.h"
#include "ring/ring_abi.h"

namespace scstu::fileio {

// "/dev/scstu/" + name.
std::string kernel_device_path(const std::string& name);

// Reads the region header of the char device at `path`. The shim attaches a
// handler on open(): with fd_out the descriptor stays open and is returned
// there (the caller closes it), so serve() can attach through it
// (HandlerOptions::device_fd) and the device sees one attach; without it this
// attaches and detaches once. False with *error naming the device and the
// cause (missing node, not a char device, busy, not an scstu region, ABI
// major); nothing is left open then.
bool read_kernel_header(const std::string& path, scstu_region_header* out, std::string* error,
                        int* fd_out = nullptr);

// Checks the header against what this unit serves (device_type: 0 disk,
// 5 cd-rom) and returns the identity to put in its INQUIRY data: the
// header's strings (ABI >= 1.1), empty ones left to fileio_tgt's defaults, and
// no third-party copy (no copy manager fronts a kernel-shim unit).
// max_transfer_bytes: the header's max_io_bytes, or `requested` if smaller
// (0: not given). False with *error on a type mismatch or a malformed string.
bool identity_from_kernel_header(const scstu_region_header& header, const std::string& path,
                                 uint8_t device_type, uint32_t requested_max_transfer,
                                 UnitIdentity* identity, uint32_t* max_transfer_bytes,
                                 std::string* error);

}  // namespace scstu::fileio
