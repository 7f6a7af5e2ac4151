// scstu-target: the target daemon of split mode. Runs the iSCSI portals and
// the target core; devices are RingDevices that handler processes
// (`fileio_tgt --attach`) attach to over the handler socket, or files served
// in-process. scstuadmin changes the configuration at runtime through the
// admin socket; changes are saved back to the configuration file.
#include <boost/program_options.hpp>
#include <cstdio>
#include <iostream>

#include "config_file.h"
#include "signals.h"
#include "target_daemon.h"

namespace po = boost::program_options;

static const char* kHelp = R"(Usage: scstu-target --config FILE

FILE is protobuf text format (tools/config.proto, message Config), e.g.:

  portals: "127.0.0.1:3260"
  handler_socket: "/run/scstu/target.sock"
  admin_socket: "/run/scstu/admin.sock"
  targets { name: "iqn.2026-11.org.example:storage" }
  devices { name: "disk0" handler { device_type: 0 block_size: 512 } }
  devices { name: "disk1" file { path: "/srv/disk1.img" thin: true } }
  groups { name: "Default_iqn.2026-11.org.example:storage"
           luns { lun: 0 device: "disk0" } luns { lun: 1 device: "disk1" read_only: true } }
  max_connections: 4          # MC/S: connections per session, 1..64 (default 8)
  cmdsn_gap_timeout_ms: 5000  # a CmdSN gap across connections is skipped after this

Then attach a handler:   fileio_tgt --attach /run/scstu/target.sock disk0 disk0.img
and administer it with:  scstuadmin --socket /run/scstu/admin.sock list devices

SIGINT/SIGTERM stop the daemon (initiators are asked to log out first).
)";

int main(int argc, char** argv) {
  std::string config_path;
  po::options_description opts("Options");
  opts.add_options()("help,h", "show this help")(
      "config,c", po::value(&config_path)->value_name("FILE"), "configuration file");
  po::variables_map vm;
  try {
    po::store(po::parse_command_line(argc, argv, opts), vm);
    po::notify(vm);
  } catch (const po::error& e) {
    std::fprintf(stderr, "scstu-target: %s (see --help)\n", e.what());
    return 2;
  }
  if (vm.count("help")) {
    std::cout << kHelp << "\n" << opts << "\n";
    return 0;
  }
  if (config_path.empty()) {
    std::fprintf(stderr, "scstu-target: --config FILE is required (see --help)\n");
    return 2;
  }
  scstu::fileio::SignalWatch signals;  // before any thread starts
  try {
    scstu::tools::TargetDaemon daemon(config_path, scstu::tools::load_config(config_path));
    daemon.start();
    const auto config = daemon.current_config();
    for (const std::string& p : daemon.portal_addresses()) {
      std::fprintf(stderr, "scstu-target: serving iSCSI on %s\n", p.c_str());
    }
    if (!config.handler_socket().empty()) {
      std::fprintf(stderr, "scstu-target: handlers attach at %s\n",
                   config.handler_socket().c_str());
    }
    if (!config.admin_socket().empty()) {
      std::fprintf(stderr, "scstu-target: admin socket %s\n", config.admin_socket().c_str());
    }
    signals.run([] {});
    std::fprintf(stderr, "scstu-target: shutting down\n");
  } catch (const std::exception& e) {
    std::fprintf(stderr, "scstu-target: %s\n", e.what());
    return 1;
  }
  return 0;
}
