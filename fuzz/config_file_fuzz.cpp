// Fuzz target: the daemon's configuration file (tools/config_file.*: protobuf
// text format) and the validation scstu-target runs on it at start
// (TargetDaemon::start: names, log level, portals, devices and their file or
// ring parameters, targets, security groups and LUNs). Invariants: a parse
// error is a ConfigFileError naming the file with line:column; an accepted
// file formats and parses back to the same message; start() accepts it or
// throws an error, never crashes.
// What would touch the machine is redirected before start(): portals become
// 127.0.0.1 on a port the OS picks, file devices use one scratch image, the
// sockets live in /dev/shm, the log level stays "error" (when valid).
#include <google/protobuf/util/message_differencer.h>
#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <stdexcept>
#include <string>

#include "config_file.h"
#include "core/log_level.h"
#include "portal_set.h"
#include "target_daemon.h"

using namespace scstu;
using namespace scstu::tools;

namespace {

std::string scratch(const char* what) {
  return "/dev/shm/scstu-fuzz-" + std::to_string(getpid()) + "-" + what;
}

void make_image(const std::string& path) {
  FILE* f = std::fopen(path.c_str(), "wb");
  if (f == nullptr || ftruncate(fileno(f), 1 << 20) != 0) std::abort();
  std::fclose(f);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const std::string image = [] {
    std::string p = scratch("image");
    make_image(p);
    std::atexit([] {
      for (const char* f : {"image", "config", "handlers.sock"}) std::remove(scratch(f).c_str());
    });
    return p;
  }();
  const std::string text(reinterpret_cast<const char*>(data), size);
  config::Config cfg;
  try {
    cfg = parse_config(text, "fuzz.conf");
  } catch (const ConfigFileError& e) {
    if (std::string(e.what()).rfind("fuzz.conf", 0) != 0) std::abort();
    return 0;
  }
  // Written and read back: the same configuration.
  const config::Config again = parse_config(format_config(cfg), "formatted");
  if (!google::protobuf::util::MessageDifferencer::Equals(cfg, again)) std::abort();

  // What start() would do to the machine, redirected.
  bool portals_ok = true;
  for (const std::string& p : cfg.portals()) {
    iscsi::PortalAddress address;
    std::string error;
    if (!parse_portal_address(p, &address, &error)) {
      portals_ok = false;
      if (error.find(p) == std::string::npos) std::abort();
    }
  }
  if (portals_ok) {
    cfg.clear_portals();
    cfg.add_portals("127.0.0.1:0");
  }
  if (core::parse_log_level(cfg.log_level())) cfg.set_log_level("error");
  if (!cfg.handler_socket().empty()) cfg.set_handler_socket(scratch("handlers.sock"));
  cfg.clear_admin_socket();
  if (cfg.devices_size() > 8) return 0;  // each one is an I/O engine or a shared region
  for (auto& d : *cfg.mutable_devices()) {
    if (!d.has_file()) {
      // Bounded shared regions: the sizes are validated, not the memory.
      auto* h = d.mutable_handler();
      if (h->data_size() > (16u << 20)) h->set_data_size(16u << 20);
      continue;
    }
    if (!d.file().path().empty()) d.mutable_file()->set_path(image);
    // O_DIRECT on tmpfs fails at open: a valid error path, but keep the rest reachable.
    d.mutable_file()->set_o_direct(false);
  }
  core::set_log_level(core::LogLevel::kError);
  try {
    TargetDaemon daemon(scratch("config"), cfg);
    daemon.start();
  } catch (const std::runtime_error&) {
  }
  return 0;
}
