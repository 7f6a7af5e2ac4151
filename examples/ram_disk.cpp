// ram_disk - a RAM-backed SCSI disk: the whole handler is this file.
// The library's scsi::LogicalUnit emulates SBC-3 on top of the four methods below.
#include <sys/mman.h>

#include <boost/program_options.hpp>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <iostream>
#include <thread>

#include "handler/block_device.h"
#include "handler/serve.h"
#include "scsi/logical_unit.h"

namespace po = boost::program_options;

class RamDisk : public scstu::SimpleBlockDevice {
 public:
  explicit RamDisk(uint64_t bytes) : size_(bytes) {
    // Anonymous memory reads as zeroes and is only backed once written.
    void* p = mmap(nullptr, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    mem_ = p == MAP_FAILED ? nullptr : static_cast<uint8_t*>(p);
  }
  ~RamDisk() override {
    if (mem_) munmap(mem_, size_);
  }
  bool ok() const { return mem_ != nullptr; }

  scstu::BlockGeometry geometry() const override { return {512, size_ / 512}; }
  scstu::BlockCapabilities capabilities() const override {
    return {.unmap = true, .volatile_cache = false};
  }
  int read(uint64_t off, std::span<const iovec> iov) override {
    for (const iovec& v : iov) std::memcpy(v.iov_base, mem_ + off, v.iov_len), off += v.iov_len;
    return 0;
  }
  int write(uint64_t off, std::span<const iovec> iov, bool /*fua*/) override {
    for (const iovec& v : iov) std::memcpy(mem_ + off, v.iov_base, v.iov_len), off += v.iov_len;
    return 0;
  }
  int unmap(uint64_t off, uint64_t len) override {
    // Give the pages back; they read as zeroes again (LBPRZ).
    return madvise(mem_ + off, len, MADV_DONTNEED) == 0 ? 0 : -errno;
  }

 private:
  uint64_t size_;
  uint8_t* mem_;
};

int main(int argc, char** argv) {
  scstu::HandlerOptions opt;
  uint64_t size_mb = 0;
  po::options_description desc(
      "ram_disk: a RAM disk served to an scstu producer\n\n"
      "Examples:\n"
      "  ram_disk --socket /tmp/scstu.sock --name ram0 --size-mb 256   # user-space target\n"
      "  ram_disk --device /dev/scstu/ram0 --size-mb 256               # kernel shim\n\n"
      "Options");
  desc.add_options()("help,h", "show this help")("socket", po::value(&opt.socket_path),
                                                 "a user-space producer's Unix socket")(
      "device", po::value(&opt.device_path), "the kernel shim's /dev/scstu/NAME")(
      "name", po::value(&opt.device_name)->default_value("ram0"), "device name at the producer")(
      "size-mb", po::value(&size_mb)->default_value(64), "capacity in MiB");
  po::variables_map vm;
  try {
    po::store(po::parse_command_line(argc, argv, desc), vm);
    po::notify(vm);
  } catch (const po::error& e) {
    std::cerr << "ram_disk: " << e.what() << "\n" << desc;
    return 2;
  }
  if (vm.count("help") || opt.socket_path.empty() == opt.device_path.empty()) {
    std::cout << desc;
    return vm.count("help") ? 0 : 2;
  }
  RamDisk disk(size_mb << 20);
  if (!disk.ok()) return std::perror("ram_disk: mmap"), 1;
  scstu::scsi::LogicalUnitConfig cfg;
  cfg.product = "RAMDISK";
  cfg.serial = opt.device_name;
  cfg.thin = true;
  cfg.write_cache = scstu::scsi::WriteCacheMode::kWriteThrough;
  scstu::scsi::LogicalUnit lu(cfg, &disk);
  // serve() returns when the producer goes away; wait for it to come back.
  int rc;
  while ((rc = scstu::serve(opt, lu)) == -EPIPE)
    std::this_thread::sleep_for(std::chrono::seconds(1));
  return rc == 0 ? 0 : 1;
}
