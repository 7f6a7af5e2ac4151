#include "kernel_device.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

namespace scstu::fileio {

namespace {

const char* type_name(uint8_t type) {
  switch (type) {
    case 0:
      return "disk";
    case 1:
      return "tape";
    case 5:
      return "cd-rom";
    case 8:
      return "medium changer";
    default:
      return "other";
  }
}

// A header string field: NUL-terminated within its array, printable ASCII
// (SPC-4 4.4.1: INQUIRY identification fields are ASCII graphic characters).
bool header_string(const char* field, size_t size, const std::string& what, std::string* out,
                   std::string* error) {
  const void* nul = std::memchr(field, 0, size);
  if (nul == nullptr) {
    *error = what + " is not NUL-terminated";
    return false;
  }
  std::string s(field, static_cast<const char*>(nul) - field);
  for (char c : s) {
    if (c < 0x20 || c > 0x7e) {
      *error = what + " holds a non-printable byte";
      return false;
    }
  }
  *out = std::move(s);
  return true;
}

}  // namespace

std::string kernel_device_path(const std::string& name) { return "/dev/scstu/" + name; }

bool read_kernel_header(const std::string& path, scstu_region_header* out, std::string* error,
                        int* fd_out) {
  struct stat st;
  if (stat(path.c_str(), &st) != 0) {
    *error = path + ": " + std::strerror(errno) +
             (errno == ENOENT ? " (load the scstu module and create the device first: "
                                "see kmod/README.md)"
                              : "");
    return false;
  }
  if (!S_ISCHR(st.st_mode)) {
    *error = path + ": not a character device (expected the scstu kernel shim's device node)";
    return false;
  }
  const int fd = open(path.c_str(), O_RDWR | O_CLOEXEC);
  if (fd < 0) {
    const int e = errno;
    *error = path + ": open: " + std::strerror(e) +
             (e == EBUSY ? " (another handler is attached to it)" : "");
    return false;
  }
  void* p = mmap(nullptr, SCSTU_HEADER_BYTES, PROT_READ, MAP_SHARED, fd, 0);
  if (p == MAP_FAILED) {
    *error = path + ": mmap of the region header: " + std::strerror(errno);
    close(fd);
    return false;
  }
  std::memcpy(out, p, sizeof(*out));
  munmap(p, SCSTU_HEADER_BYTES);
  if (out->magic != SCSTU_REGION_MAGIC) {
    *error = path + ": not an scstu region (bad magic)";
    close(fd);
    return false;
  }
  if (out->abi_major != SCSTU_ABI_MAJOR) {
    *error = path + ": ring ABI " + std::to_string(out->abi_major) + "." +
             std::to_string(out->abi_minor) + ", fileio_tgt speaks " +
             std::to_string(SCSTU_ABI_MAJOR) + ".x";
    close(fd);
    return false;
  }
  if (fd_out) {
    *fd_out = fd;
  } else {
    close(fd);
  }
  return true;
}

bool identity_from_kernel_header(const scstu_region_header& h, const std::string& path,
                                 uint8_t device_type, uint32_t requested_max_transfer,
                                 UnitIdentity* identity, uint32_t* max_transfer_bytes,
                                 std::string* error) {
  if (h.device_type != device_type) {
    *error = path + ": the kernel device was created as device type " +
             std::to_string(h.device_type) + " (" + type_name(h.device_type) +
             "), fileio_tgt serves type " + std::to_string(device_type) + " (" +
             type_name(device_type) + ")" +
             (h.device_type == 5 ? ": add --cdrom" : (h.device_type == 0 ? ": drop --cdrom" : "")) +
             "; or create the device with type " + std::to_string(device_type);
    return false;
  }
  UnitIdentity id;
  // No copy manager behind the kernel shim: no 3PC, no VPD 8Fh, and REPORT
  // SUPPORTED OPERATION CODES does not list EXTENDED COPY / RECEIVE COPY
  // RESULTS (the unit refuses them).
  id.third_party_copy = false;
  if (h.abi_minor >= 1) {
    std::string why;
    if (!header_string(h.vendor, sizeof(h.vendor), "vendor", &id.vendor, &why) ||
        !header_string(h.product, sizeof(h.product), "product", &id.product, &why) ||
        !header_string(h.revision, sizeof(h.revision), "revision", &id.revision, &why) ||
        !header_string(h.serial, sizeof(h.serial), "serial", &id.serial, &why)) {
      *error = path + ": region header identity: " + why;
      return false;
    }
  }
  if (h.max_io_bytes == 0) {
    *error = path + ": region header says max_io_bytes 0";
    return false;
  }
  *identity = std::move(id);
  *max_transfer_bytes = requested_max_transfer != 0 && requested_max_transfer < h.max_io_bytes
                            ? requested_max_transfer
                            : h.max_io_bytes;
  return true;
}

}  // namespace scstu::fileio
