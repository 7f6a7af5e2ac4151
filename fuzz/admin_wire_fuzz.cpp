// Fuzz target: the admin protocol as the daemon reads it from its Unix
// socket (a trust boundary even though local): the framing
// (tools/admin_wire.*: 4-byte big-endian length, then a protobuf
// AdminRequest), then each request through TargetDaemon::handle(), the code
// behind every scstuadmin operation. The input is the byte stream a client
// sends. Invariants: a frame is refused or parsed, never over-read; handle()
// answers every request with ok or an error message, never crashes; the
// configuration it saves after a change parses back.
// One daemon is kept across inputs (state accumulates). What would touch the
// machine is redirected: its portal is 127.0.0.1 on a port the OS picks,
// file devices use one scratch image, and at most 4 devices exist at once.
#include <sys/socket.h>
#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>

#include "admin_wire.h"
#include "config_file.h"
#include "core/log_level.h"
#include "target_daemon.h"

using namespace scstu;
using namespace scstu::tools;

namespace {

std::string scratch(const char* what) {
  return "/dev/shm/scstu-fuzz-" + std::to_string(getpid()) + "-" + what;
}

TargetDaemon& daemon_instance() {
  static TargetDaemon* d = [] {
    const std::string image = scratch("image");
    FILE* f = std::fopen(image.c_str(), "wb");
    if (f == nullptr || ftruncate(fileno(f), 1 << 20) != 0) std::abort();
    std::fclose(f);
    std::atexit([] {
      for (const char* n : {"image", "config"}) std::remove(scratch(n).c_str());
    });
    config::Config cfg;
    cfg.add_portals("127.0.0.1:0");
    cfg.set_log_level("error");
    auto* t = cfg.add_targets();
    t->set_name("iqn.2026-11.fuzz:t");
    auto* dev = cfg.add_devices();
    dev->set_name("disk0");
    dev->mutable_file()->set_path(image);
    auto* g = cfg.add_groups();
    g->set_name("Default_iqn.2026-11.fuzz:t");
    auto* lun = g->add_luns();
    lun->set_lun(0);
    lun->set_device("disk0");
    auto* daemon = new TargetDaemon(scratch("config"), cfg);  // never destroyed
    daemon->start();
    return daemon;
  }();
  return *d;
}

size_t device_count(TargetDaemon& d) {
  config::AdminRequest list;
  list.mutable_list_devices();
  return static_cast<size_t>(d.handle(list).devices_size());
}

// Keeps a request from touching the machine beyond the scratch files.
bool sanitize(config::AdminRequest& req, TargetDaemon& d) {
  if (req.has_log_level() && !req.log_level().empty() && core::parse_log_level(req.log_level())) {
    req.set_log_level("error");  // a valid level: stay quiet
  }
  if (req.has_add_device()) {
    if (device_count(d) >= 4) return false;
    auto* dev = req.mutable_add_device();
    if (dev->has_file()) {
      if (!dev->file().path().empty()) dev->mutable_file()->set_path(scratch("image"));
      dev->mutable_file()->set_o_direct(false);
    }
  }
  if (req.has_change_medium() && !req.change_medium().path().empty()) {
    req.mutable_change_medium()->set_path(scratch("image"));
  }
  return true;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size > 64 * 1024) return 0;  // fits the socket buffer: no writer thread
  TargetDaemon& daemon = daemon_instance();
  int sv[2];
  if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) != 0) std::abort();
  if (size != 0 && send(sv[0], data, size, MSG_NOSIGNAL) != static_cast<ssize_t>(size)) {
    std::abort();
  }
  shutdown(sv[0], SHUT_WR);  // the client is done: a short frame ends in "closed"
  for (int requests = 0; requests < 32; ++requests) {
    config::AdminRequest req;
    std::string error;
    if (!receive_message(sv[1], &req, &error)) {
      if (error.empty()) std::abort();
      break;
    }
    if (!sanitize(req, daemon)) continue;
    const config::AdminResponse resp = daemon.handle(req);
    if (!resp.ok() && resp.error().empty()) std::abort();
    if (resp.ok() && !resp.error().empty()) std::abort();
    std::string wire;
    if (!resp.SerializeToString(&wire)) std::abort();
  }
  close(sv[0]);
  close(sv[1]);
  // The saved configuration loads back.
  try {
    (void)load_config(scratch("config"));
  } catch (const ConfigFileError& e) {
    if (std::string(e.what()).find("open ") != 0) std::abort();  // nothing saved yet
  }
  return 0;
}
