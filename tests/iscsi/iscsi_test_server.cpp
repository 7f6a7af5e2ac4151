// iscsi_test_server - a small iSCSI target for the end-to-end tests: a
// TargetCore with RAM disks (scsi::LogicalUnit over a RAM BlockDevice, each
// in a core::LocalDevice) behind an iscsi::Server on 127.0.0.1.
//
//   iscsi_test_server [--port N] [--target IQN] [--size-mb N] [--disks N]
//                     [--chap USER:SECRET] [--mutual USER:SECRET]
//                     [--discovery-chap USER:SECRET] [--seed-example]
//                     [--nop-interval-ms N] [--nop-timeout-ms N] [--extra-targets N]
//                     [--max-connections N] [--ipv6] [--gate-lba N]
//
// Prints "PORT <n>" once listening, serves until SIGINT/SIGTERM.
// --seed-example builds the access control example of the SCST README: the
// target exports dev1 as LUN 0 and dev2 as LUN 1 to everybody (group
// Default_<target>), while initiator "...spec_ini.xyz" sees only dev2, as LUN 0.
// --extra-targets N adds N more targets with long names, each exporting dev1
// as LUN 0 (a SendTargets answer longer than one PDU). --ipv6 listens on ::1
// only (and prints "PORT <n>" for it). --gate-lba N keeps READs of block N
// running at the device until a WRITE reaches block N + 1 (see Gate).
#include <signal.h>

#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "core/local_device.h"
#include "core/target_core.h"
#include "handler/block_device.h"
#include "iscsi/server.h"
#include "scsi/logical_unit.h"

namespace {

using namespace scstu;

class RamDisk final : public SimpleBlockDevice {
 public:
  explicit RamDisk(uint64_t bytes) : data_(bytes) {}
  BlockGeometry geometry() const override { return {512, data_.size() / 512}; }
  BlockCapabilities capabilities() const override {
    BlockCapabilities c;
    c.unmap = true;
    return c;
  }
  int read(uint64_t offset, std::span<const iovec> iov) override {
    for (const iovec& v : iov) {
      if (offset + v.iov_len > data_.size()) return -5;
      std::memcpy(v.iov_base, data_.data() + offset, v.iov_len);
      offset += v.iov_len;
    }
    return 0;
  }
  int write(uint64_t offset, std::span<const iovec> iov, bool) override {
    for (const iovec& v : iov) {
      if (offset + v.iov_len > data_.size()) return -5;
      std::memcpy(data_.data() + offset, v.iov_base, v.iov_len);
      offset += v.iov_len;
    }
    return 0;
  }
  int unmap(uint64_t offset, uint64_t length) override {
    if (offset + length > data_.size()) return -5;
    std::memset(data_.data() + offset, 0, length);
    return 0;
  }

 private:
  std::vector<uint8_t> data_;
};

// --gate-lba N: a READ of block N, on any disk, stays running at the device
// until a WRITE reaches block N + 1 (on any disk), or 20 s pass: a command a
// test can keep in the device's task set while it races a TMF against it.
class Gate {
 public:
  explicit Gate(uint64_t lba) : lba_(lba) {}
  ~Gate() {
    open();
    for (auto& t : waiting_) t.join();
  }
  bool holds(const BlockRequest& r) const {
    return r.op == BlockOp::kRead && r.lba <= lba_ && lba_ < r.lba + r.blocks;
  }
  bool opens(const BlockRequest& r) const {
    return r.op == BlockOp::kWrite && r.lba <= lba_ + 1 && lba_ + 1 < r.lba + r.blocks;
  }
  // Runs `then` once the gate is open, on a thread of its own.
  void wait(std::function<void()> then) {
    std::lock_guard lock(mutex_);
    waiting_.emplace_back([this, then = std::move(then)] {
      {
        std::unique_lock lock(mutex_);
        opened_.wait_for(lock, std::chrono::seconds(20), [this] { return open_; });
      }
      then();
    });
  }
  void open() {
    std::lock_guard lock(mutex_);
    open_ = true;
    opened_.notify_all();
  }

 private:
  const uint64_t lba_;
  std::mutex mutex_;
  std::condition_variable opened_;
  bool open_ = false;
  std::vector<std::thread> waiting_;
};

// A RAM disk behind the gate (when there is one).
class GatedDisk final : public BlockDevice {
 public:
  GatedDisk(std::unique_ptr<RamDisk> ram, Gate* gate) : ram_(std::move(ram)), gate_(gate) {}
  BlockGeometry geometry() const override { return ram_->geometry(); }
  BlockCapabilities capabilities() const override { return ram_->capabilities(); }
  void submit(BlockRequest& req) override {
    if (gate_ && gate_->holds(req)) {
      gate_->wait([this, &req] { ram_->submit(req); });
      return;
    }
    ram_->submit(req);
    if (gate_ && gate_->opens(req)) gate_->open();
  }

 private:
  std::unique_ptr<RamDisk> ram_;
  Gate* gate_;
};

struct Disk {
  std::unique_ptr<GatedDisk> ram;
  std::shared_ptr<scsi::LogicalUnit> lu;
};

iscsi::ChapCredentials credentials(const char* arg) {
  const char* colon = std::strchr(arg, ':');
  if (!colon) {
    std::fprintf(stderr, "credentials '%s': expected USER:SECRET\n", arg);
    std::exit(2);
  }
  return {std::string(arg, colon), std::string(colon + 1)};
}

void usage() {
  std::puts(
      "usage: iscsi_test_server [--port N] [--target IQN] [--size-mb N] [--disks N]\n"
      "         [--chap USER:SECRET] [--mutual USER:SECRET] [--discovery-chap USER:SECRET]\n"
      "         [--seed-example] [--nop-interval-ms N] [--nop-timeout-ms N]\n"
      "         [--extra-targets N] [--max-connections N] [--ipv6] [--gate-lba N]\n"
      "example: iscsi_test_server --port 0 --target iqn.2026-11.test:disk --size-mb 64");
}

}  // namespace

int main(int argc, char** argv) {
  uint16_t port = 0;
  std::string target = "iqn.2026-11.org.scstu.test:disk";
  uint64_t size_mb = 64;
  int disks = 1;
  bool seed = false;
  int extra_targets = 0;
  bool ipv6 = false;
  std::optional<uint64_t> gate_lba;
  iscsi::ServerOptions opts;
  std::vector<iscsi::ChapCredentials> chap;
  std::optional<iscsi::ChapCredentials> mutual;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    auto next = [&]() -> const char* {
      if (i + 1 >= argc) {
        std::fprintf(stderr, "%s needs a value\n", a.c_str());
        std::exit(2);
      }
      return argv[++i];
    };
    if (a == "--help" || a == "-h") {
      usage();
      return 0;
    } else if (a == "--port") {
      port = static_cast<uint16_t>(std::atoi(next()));
    } else if (a == "--target") {
      target = next();
    } else if (a == "--size-mb") {
      size_mb = std::strtoull(next(), nullptr, 10);
    } else if (a == "--disks") {
      disks = std::atoi(next());
    } else if (a == "--chap") {
      chap.push_back(credentials(next()));
    } else if (a == "--mutual") {
      mutual = credentials(next());
    } else if (a == "--discovery-chap") {
      opts.discovery_auth.incoming.push_back(credentials(next()));
    } else if (a == "--seed-example") {
      seed = true;
    } else if (a == "--nop-interval-ms") {
      opts.nop_interval = std::chrono::milliseconds(std::atoi(next()));
    } else if (a == "--nop-timeout-ms") {
      opts.nop_timeout = std::chrono::milliseconds(std::atoi(next()));
    } else if (a == "--ipv6") {
      ipv6 = true;
    } else if (a == "--extra-targets") {
      extra_targets = std::atoi(next());
    } else if (a == "--gate-lba") {
      gate_lba = std::strtoull(next(), nullptr, 10);
    } else if (a == "--max-connections") {
      opts.max_connections = static_cast<uint32_t>(std::atoi(next()));
    } else {
      std::fprintf(stderr, "unknown option '%s' (see --help)\n", a.c_str());
      return 2;
    }
  }
  if (seed) {
    target = "iqn.2007-05.com.example:storage.disk1.sys1.xyz";
    disks = 2;
  }

  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGINT);
  sigaddset(&set, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &set, nullptr);

  std::unique_ptr<Gate> gate;
  if (gate_lba) gate = std::make_unique<Gate>(*gate_lba);
  core::TargetCore core;
  auto& acl = core.access();
  std::vector<Disk> store;
  for (int d = 0; d < disks; ++d) {
    std::string name = "dev" + std::to_string(d + 1);
    scsi::LogicalUnitConfig cfg;
    cfg.product = "RAMDISK";
    cfg.serial = name;
    cfg.thin = true;
    Disk disk;
    disk.ram = std::make_unique<GatedDisk>(std::make_unique<RamDisk>(size_mb << 20), gate.get());
    disk.lu = std::make_shared<scsi::LogicalUnit>(cfg, disk.ram.get());
    core::LocalDeviceOptions lo;
    lo.info.name = name;
    lo.info.device_type = 0;
    lo.info.block_size = 512;
    auto dev = std::make_shared<core::LocalDevice>(disk.lu, lo);
    if (auto s = acl.add_device(dev); !s) {
      std::fprintf(stderr, "%s\n", s.message().c_str());
      return 1;
    }
    store.push_back(std::move(disk));
  }
  auto check = [](core::ConfigStatus s) {
    if (!s) {
      std::fprintf(stderr, "configuration: %s\n", s.message().c_str());
      std::exit(1);
    }
  };
  check(acl.add_target(target));
  std::string def = "Default_" + target;
  check(acl.add_group(def));
  for (int d = 0; d < disks; ++d) check(acl.add_lun(def, d, "dev" + std::to_string(d + 1)));
  if (seed) {
    check(acl.add_group("spec_ini"));
    check(acl.add_lun("spec_ini", 0, "dev2"));
    check(acl.add_initiator("spec_ini", "iqn.2007-05.com.example:storage.spec_ini.xyz"));
  }
  for (int i = 0; i < extra_targets; ++i) {
    char name[160];
    std::snprintf(name, sizeof(name),
                  "iqn.2026-11.org.scstu.test:an-extra-target-whose-name-is-long-enough-to-fill-"
                  "text-pdus-quickly-%04d",
                  i);
    check(acl.add_target(name));
    std::string group = std::string("Default_") + name;
    check(acl.add_group(group));
    check(acl.add_lun(group, 0, "dev1"));
  }
  if (!chap.empty()) {
    opts.target_auth[target].incoming = chap;
    opts.target_auth[target].outgoing = mutual;
  }
  opts.portals = {iscsi::PortalAddress{ipv6 ? "::1" : "127.0.0.1", port}};
  iscsi::Server server(core, opts);
  std::string error;
  if (!server.start(&error)) {
    std::fprintf(stderr, "%s\n", error.c_str());
    return 1;
  }
  std::printf("PORT %u\n", server.portals()[0].port);
  std::fflush(stdout);
  int sig = 0;
  sigwait(&set, &sig);
  if (gate) gate->open();  // nothing held back delays the stop
  server.stop();
  return 0;
}
