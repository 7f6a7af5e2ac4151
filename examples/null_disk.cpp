// null_disk - a disk that stores nothing: writes are dropped, reads return
// zeroes. The smallest complete handler, and the one for measuring overhead.
#include <boost/program_options.hpp>
#include <cerrno>
#include <cstring>
#include <iostream>
#include <thread>

#include "handler/block_device.h"
#include "handler/serve.h"
#include "scsi/logical_unit.h"

namespace po = boost::program_options;

class NullDisk : public scstu::SimpleBlockDevice {
 public:
  explicit NullDisk(uint64_t bytes) : blocks_(bytes / 512) {}
  scstu::BlockGeometry geometry() const override { return {512, blocks_}; }
  scstu::BlockCapabilities capabilities() const override { return {.volatile_cache = false}; }
  int read(uint64_t, std::span<const iovec> iov) override {
    for (const iovec& v : iov) std::memset(v.iov_base, 0, v.iov_len);
    return 0;
  }
  int write(uint64_t, std::span<const iovec>, bool) override { return 0; }

 private:
  uint64_t blocks_;
};

int main(int argc, char** argv) {
  scstu::HandlerOptions opt;
  uint64_t size_gb = 0;
  po::options_description desc(
      "null_disk: a disk that discards writes and reads zeroes\n\n"
      "Examples:\n"
      "  null_disk --socket /tmp/scstu.sock --name null0 --size-gb 1024\n"
      "  null_disk --device /dev/scstu/null0\n\n"
      "Options");
  desc.add_options()("help,h", "show this help")("socket", po::value(&opt.socket_path),
                                                 "a user-space producer's Unix socket")(
      "device", po::value(&opt.device_path), "the kernel shim's /dev/scstu/NAME")(
      "name", po::value(&opt.device_name)->default_value("null0"), "device name at the producer")(
      "size-gb", po::value(&size_gb)->default_value(1024), "capacity in GiB");
  po::variables_map vm;
  try {
    po::store(po::parse_command_line(argc, argv, desc), vm);
    po::notify(vm);
  } catch (const po::error& e) {
    std::cerr << "null_disk: " << e.what() << "\n" << desc;
    return 2;
  }
  if (vm.count("help") || opt.socket_path.empty() == opt.device_path.empty()) {
    std::cout << desc;
    return vm.count("help") ? 0 : 2;
  }
  NullDisk disk(size_gb << 30);
  scstu::scsi::LogicalUnitConfig cfg;
  cfg.product = "NULLDISK";
  cfg.serial = opt.device_name;
  scstu::scsi::LogicalUnit lu(cfg, &disk);
  // serve() returns when the producer goes away; wait for it to come back.
  int rc;
  while ((rc = scstu::serve(opt, lu)) == -EPIPE)
    std::this_thread::sleep_for(std::chrono::seconds(1));
  return rc == 0 ? 0 : 1;
}
