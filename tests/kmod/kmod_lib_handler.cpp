// kmod_lib_handler.cpp - the library's path into the kernel shim, for the
// kmod QEMU test: an image file as a disk (scsi::LogicalUnit over a
// SimpleBlockDevice) served by scstu::serve() attached to /dev/scstu/NAME.
// Until fileio_tgt can attach to the kernel's char device, this is how the
// harness runs a handler built on libscstuser.
//
//   kmod_lib_handler /dev/scstu/disk1 IMAGE VENDOR PRODUCT SERIAL
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <string>

#include "handler/block_device.h"
#include "handler/serve.h"
#include "scsi/logical_unit.h"

namespace {

class ImageDisk : public scstu::SimpleBlockDevice {
 public:
  ImageDisk(int fd, uint64_t bytes) : fd_(fd), bytes_(bytes) {}
  scstu::BlockGeometry geometry() const override { return {512, bytes_ / 512}; }
  int read(uint64_t offset, std::span<const iovec> iov) override {
    return transfer(offset, iov, false);
  }
  int write(uint64_t offset, std::span<const iovec> iov, bool fua) override {
    int err = transfer(offset, iov, true);
    return err == 0 && fua ? flush() : err;
  }
  int flush() override { return fdatasync(fd_) == 0 ? 0 : -errno; }

 private:
  int transfer(uint64_t offset, std::span<const iovec> iov, bool write) {
    size_t want = 0;
    for (const iovec& v : iov) want += v.iov_len;
    ssize_t n = write ? pwritev(fd_, iov.data(), static_cast<int>(iov.size()), offset)
                      : preadv(fd_, iov.data(), static_cast<int>(iov.size()), offset);
    if (n < 0) return -errno;
    return static_cast<size_t>(n) == want ? 0 : -EIO;
  }
  int fd_;
  uint64_t bytes_;
};

}  // namespace

int main(int argc, char** argv) {
  if (argc != 6) {
    std::fprintf(stderr, "usage: %s /dev/scstu/NAME IMAGE VENDOR PRODUCT SERIAL\n", argv[0]);
    return 2;
  }
  int fd = open(argv[2], O_RDWR | O_CLOEXEC);
  struct stat st;
  if (fd < 0 || fstat(fd, &st) != 0) {
    std::fprintf(stderr, "kmod_lib_handler: open %s: %s\n", argv[2], std::strerror(errno));
    return 1;
  }
  ImageDisk disk(fd, static_cast<uint64_t>(st.st_size));
  scstu::scsi::LogicalUnitConfig cfg;
  cfg.vendor = argv[3];
  cfg.product = argv[4];
  cfg.serial = argv[5];
  cfg.max_transfer_bytes = 256 * 1024;  // the device's max_io_bytes
  scstu::scsi::LogicalUnit lu(cfg, &disk);

  scstu::HandlerOptions opt;
  opt.device_path = argv[1];
  opt.device_type = 0;
  std::string error;
  int rc = scstu::serve(opt, lu, &error);
  std::fprintf(stderr, "kmod_lib_handler: serve returned %d: %s\n", rc, error.c_str());
  return rc == 0 ? 0 : 1;
}
