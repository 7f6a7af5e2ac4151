#include "fileio_options.h"

#include <sys/stat.h>

#include <boost/program_options.hpp>
#include <iostream>

#include "disk_unit.h"
#include "embedded_mode.h"
#include "iscsi/server.h"

namespace po = boost::program_options;

namespace scstu::fileio {

static const char* kUsage =
    "Usage: fileio_tgt (--iscsi ADDR:PORT | --attach SOCKET | --kernel) [options]\n"
    "                  NAME PATH [NAME PATH ...]\n";

static const char* kExamples = R"(
Serves image files or block devices as SCSI disks (the seed's vdisk flags), either
with its own iSCSI portal (embedded mode), attached over the ring to a
scstu-target daemon (split mode), or attached to the scstu kernel module's
/dev/scstu/NAME so the image appears as a local /dev/sdX (kernel mode). LUNs
are numbered in argument order.

Examples:
  truncate -s 1G disk0.img
  fileio_tgt --iscsi 127.0.0.1:3260 --target iqn.2026-11.org.example:disk0 disk0 disk0.img
  iscsi-inq iscsi://127.0.0.1:3260/iqn.2026-11.org.example:disk0/0

  fileio_tgt --iscsi 127.0.0.1:0 --thin --block-size 4096 data data.img logs /dev/sdb
  fileio_tgt --iscsi 127.0.0.1:3260 --cdrom cd0 debian.iso
  fileio_tgt --attach /run/scstu/target.sock disk0 disk0.img    # split mode

  # kernel mode: the device is created first (type, vendor/product/serial,
  # queues; see kmod/README.md); fileio_tgt takes its type and INQUIRY
  # identity from /dev/scstu/disk0 and refuses a type it cannot serve.
  fileio_tgt --kernel disk0 disk0.img
  # After a crash just start it again: the module holds (then requeues) the
  # commands while no handler is attached.

  # a SANITIZE interrupted by a crash or restart resumes when started again
  fileio_tgt --iscsi 127.0.0.1:3260 --state-dir /var/lib/scstu disk0 disk0.img

Signals: SIGUSR1 re-reads every device's size (resync_size; initiators get
CAPACITY DATA HAS CHANGED); SIGINT/SIGTERM shut down cleanly.
)";

ParseOutcome parse_options(int argc, char** argv, FileioOptions* out) {
  FileioOptions& o = *out;
  std::string engine = "auto";
  po::options_description mode("Mode (one of)");
  mode.add_options()("iscsi", po::value(&o.iscsi_portal)->value_name("ADDR:PORT"),
                     "embedded mode: serve iSCSI on ADDR:PORT (port 0: pick one and print it)")(
      "target", po::value(&o.target)->value_name("IQN"),
      "embedded mode: the target name (default iqn.2026-11.org.scstu:fileio)")(
      "nop-interval", po::value(&o.nop_interval_s)->value_name("SECONDS"),
      "embedded mode: NOP-In ping after SECONDS of silence, the connection dropped if the "
      "initiator stays silent 15 s more (default 10; 0: no keepalive)")(
      "max-connections", po::value(&o.max_connections)->value_name("N"),
      "embedded mode: connections per session (MC/S, RFC 7143 MaxConnections) agreed to at "
      "most, 1..64 (default 8; 1: no MC/S)")(
      "cmdsn-gap-timeout", po::value(&o.cmdsn_gap_timeout_ms)->value_name("MS"),
      "embedded mode: how long a command numbered after one still on its way on another "
      "connection of the session waits for it before the gap is skipped, 1..600000 "
      "(default 5000)")(
      "attach", po::value(&o.attach_socket)->value_name("SOCKET"),
      "split mode: attach each device to the scstu-target daemon listening on SOCKET")(
      "no-reconnect", "split mode: exit when the daemon goes away instead of re-attaching")(
      "kernel",
      "kernel mode: attach each NAME to the scstu kernel module's /dev/scstu/NAME "
      "(identity and device type from the device)");
  po::options_description dev("Device options (apply to every device)");
  dev.add_options()("block-size,b", po::value(&o.device.block_size)->value_name("BYTES"),
                    "logical block size: a power of two >= 512 (default 512)")(
      "physical-block-size", po::value(&o.device.physical_block_size)->value_name("BYTES"),
      "physical block size reported in READ CAPACITY(16) and the Block Limits VPD: a power "
      "of two >= the block size (default: a block device's own, else the block size)")(
      "write-through", "WRITE_THROUGH: every write is durable before its status (O_DSYNC)")(
      "read-only", "READ_ONLY: open read-only; writes get DATA PROTECT")(
      "o-direct", "O_DIRECT: bypass the page cache (misaligned requests are bounced)")(
      "nullio", "NULLIO: no I/O; reads return zeroes (performance measurements)")(
      "nv-cache",
      "NV_CACHE: ignore SYNCHRONIZE CACHE and FUA, report write-through "
      "(needs a UPS; overrides --write-through)")("removable",
                                                  "REMOVABLE: report a removable medium")(
      "thin", "thin provisioning: UNMAP and WRITE SAME(UNMAP) punch holes in the file")(
      "cdrom", "an ISO image as a read-only CD-ROM (MMC, 2048-byte blocks, type 5)")(
      "io-engine", po::value(&engine)->value_name("ENGINE"),
      "uring, threads, or auto (io_uring, else threads) (default auto)")(
      "queue-depth", po::value(&o.device.engine.queue_depth)->value_name("N"),
      "I/O requests in flight per device before the slow path (default 128)")(
      "threads", po::value(&o.device.engine.threads)->value_name("N"),
      "worker threads of the threads engine (default 4)")(
      "max-transfer", po::value(&o.max_transfer_bytes)->value_name("BYTES"),
      "largest transfer advertised (VPD Block Limits); default 8 MiB embedded, 1 MiB split, "
      "the device's max_io_bytes in kernel mode")(
      "state-dir", po::value(&o.state_dir)->value_name("DIR"),
      "keep each device's state across restarts in DIR: NAME.sanitize (a SANITIZE in "
      "progress resumes after a restart, a failed one stays failed), NAME.pr (APTPL persistent "
      "reservations), NAME.modes (saved mode pages); default: in memory only");
  po::options_description hidden;
  std::vector<std::string> positional;
  hidden.add_options()("args", po::value(&positional));
  po::positional_options_description pos;
  pos.add("args", -1);
  po::options_description visible("Options");
  visible.add_options()("help,h", "show this help");
  visible.add(mode).add(dev);
  po::options_description all;
  all.add(visible).add(hidden);

  po::variables_map vm;
  try {
    po::store(po::command_line_parser(argc, argv).options(all).positional(pos).run(), vm);
    po::notify(vm);
  } catch (const po::error& e) {
    std::cerr << "fileio_tgt: " << e.what() << "\n" << kUsage << "Try 'fileio_tgt --help'.\n";
    return ParseOutcome::kExitError;
  }
  if (vm.count("help")) {
    std::cout << kUsage << kExamples << "\n" << visible << "\n";
    return ParseOutcome::kExitOk;
  }
  auto fail = [](const std::string& msg) {
    std::cerr << "fileio_tgt: " << msg << "\n";
    return ParseOutcome::kExitError;
  };
  o.device.write_through = vm.count("write-through") > 0;
  o.device.read_only = vm.count("read-only") > 0;
  o.device.direct = vm.count("o-direct") > 0;
  o.device.nullio = vm.count("nullio") > 0;
  o.device.nv_cache = vm.count("nv-cache") > 0;
  o.device.removable = vm.count("removable") > 0;
  o.device.thin = vm.count("thin") > 0;
  o.device.cdrom = vm.count("cdrom") > 0;
  o.reconnect = vm.count("no-reconnect") == 0;
  if (engine == "auto") {
    o.device.engine.kind = io::IoEngineKind::kAuto;
  } else if (engine == "uring") {
    o.device.engine.kind = io::IoEngineKind::kUring;
  } else if (engine == "threads") {
    o.device.engine.kind = io::IoEngineKind::kThreads;
  } else {
    return fail("--io-engine " + engine + ": expected uring, threads or auto");
  }
  if (o.device.cdrom && vm.count("block-size") && o.device.block_size != 2048) {
    return fail("--cdrom uses 2048-byte blocks (MMC); drop --block-size");
  }
  if (o.device.cdrom && o.device.thin) return fail("--cdrom is read-only; --thin does not apply");
  if (vm.count("physical-block-size")) {
    const uint32_t pbs = o.device.physical_block_size;
    const uint32_t bs = o.device.cdrom ? 2048 : o.device.block_size;
    if (pbs < bs || (pbs & (pbs - 1)) != 0 || pbs / bs > (1u << 15)) {
      return fail("--physical-block-size " + std::to_string(pbs) +
                  ": must be a power of two, at least the block size (" + std::to_string(bs) +
                  ") and at most 32768 blocks");
    }
  }
  if (o.device.engine.queue_depth == 0 || o.device.engine.queue_depth > 4096) {
    return fail("--queue-depth must be 1..4096");
  }
  if (o.device.engine.threads == 0 || o.device.engine.threads > 256) {
    return fail("--threads must be 1..256");
  }
  const bool embedded = vm.count("iscsi") > 0;
  const bool split = vm.count("attach") > 0;
  o.kernel = vm.count("kernel") > 0;
  const int modes = int(embedded) + int(split) + int(o.kernel);
  if (modes != 1) {
    return fail(std::string(modes > 1 ? "--iscsi, --attach and --kernel exclude each other"
                                      : "say where to serve: --iscsi ADDR:PORT, --attach SOCKET "
                                        "or --kernel") +
                " (see --help)");
  }
  if (o.kernel && vm.count("no-reconnect")) {
    return fail(
        "--no-reconnect applies to --attach only (in kernel mode fileio_tgt exits when "
        "the device goes away; start it again to re-attach)");
  }
  for (const char* option : {"max-connections", "cmdsn-gap-timeout"}) {
    if (!embedded && vm.count(option)) {
      return fail(std::string("--") + option +
                  " applies to --iscsi (embedded mode) only; in split " +
                  "and kernel mode the daemon or the kernel serves the initiators");
    }
  }
  if (std::string e = iscsi::check_max_connections(o.max_connections); !e.empty()) {
    return fail("--max-connections " + e);
  }
  if (std::string e = iscsi::check_cmdsn_gap_timeout_ms(o.cmdsn_gap_timeout_ms); !e.empty()) {
    return fail("--cmdsn-gap-timeout " + e);
  }
  if (embedded) {
    std::string host, error;
    uint16_t port = 0;
    if (!parse_portal(o.iscsi_portal, &host, &port, &error)) return fail(error);
  }
  if (positional.empty() || positional.size() % 2 != 0) {
    return fail("expected NAME PATH pairs, got " + std::to_string(positional.size()) +
                " argument(s) (see --help)");
  }
  for (size_t i = 0; i < positional.size(); i += 2) {
    const std::string& name = positional[i];
    if (!valid_device_name(name)) {
      return fail("device name '" + name + "': use 1-31 characters of A-Z a-z 0-9 _ -");
    }
    for (const auto& [other, path] : o.devices) {
      if (other == name) return fail("device name '" + name + "' given twice");
    }
    o.devices.emplace_back(name, positional[i + 1]);
  }
  if (!o.state_dir.empty()) {
    struct stat st {};
    if (::stat(o.state_dir.c_str(), &st) != 0 || !S_ISDIR(st.st_mode)) {
      return fail("--state-dir " + o.state_dir + ": not a directory (create it first)");
    }
  }
  if (o.max_transfer_bytes == 0 && !o.kernel) {
    o.max_transfer_bytes = embedded ? (8u << 20) : (1u << 20);
  }
  return ParseOutcome::kRun;
}

}  // namespace scstu::fileio
