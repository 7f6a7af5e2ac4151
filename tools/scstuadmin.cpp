// scstuadmin: administer a running scstu-target daemon over its admin socket:
// what the seed's /proc/scsi_tgt interface did (groups, LUNs, initiator name
// patterns, devices, resync_size, vcdrom change, latency statistics,
// trace_level, version, CHAP), with configuration changes persisted by the
// daemon in its configuration file. Errors from the daemon are printed
// verbatim.
#include <google/protobuf/util/json_util.h>
#include <unistd.h>

#include <boost/program_options.hpp>
#include <cstdio>
#include <cstdlib>
#include <iostream>
#include <string>
#include <vector>

#include "admin_wire.h"
#include "config.pb.h"
#include "config_file.h"

namespace po = boost::program_options;
using scstu::config::AdminRequest;
using scstu::config::AdminResponse;

namespace {

const char* kDefaultSocket = "/run/scstu/admin.sock";

const char* kHelp = R"(Usage: scstuadmin [--socket PATH] COMMAND [ARGS...]

Commands (the seed's /proc/scsi_tgt operations):
  list targets|devices|sessions|groups
  show-config                        the daemon's configuration, as saved
  add-group GROUP                    del-group GROUP
  add-lun GROUP DEVICE LUN [--read-only]
  del-lun GROUP DEVICE               clear-luns GROUP
  add-initiator GROUP PATTERN        patterns: '*' any run, '?' one character
  del-initiator GROUP PATTERN        clear-initiators GROUP
  add-device NAME --handler [--type N] [--block-size N] [--queues N] [--queue-depth N]
                                     a handler process attaches over the ring
  add-device NAME --file PATH [--block-size N] [vdisk flags] [--io-engine E]
             [--queue-depth N] [--threads N] [--state-dir DIR]  served inside the daemon
  add-device NAME --cdrom [--file PATH]                       a CD-ROM drive, maybe empty
  del-device NAME
  resync-size NAME                   re-read a file device's size (CAPACITY DATA HAS CHANGED)
  change NAME [PATH]                 put the image PATH in CD-ROM NAME, or eject it (no PATH):
                                     NOT READY while empty, then MEDIUM MAY HAVE CHANGED
  add-target IQN [--chap-user U --chap-secret S] [--mutual-user U --mutual-secret S]
  set-chap IQN [the same options]    new CHAP for logins from now on; no options: none
  del-target IQN
  stats [DEVICE] [--clear] [--json]  commands, bytes, errors, latency by command class,
                                     buffers; --clear starts afresh (the seed's latency file)
  log-level [error|warning|info|debug]   show or set the daemon's log level
  version                            scstuadmin's, the daemon's and the ring ABI's versions

Examples (the seed's access control example):
  scstuadmin add-group Default_iqn.2007-05.com.example:storage.disk1.sys1.xyz
  scstuadmin add-lun Default_iqn.2007-05.com.example:storage.disk1.sys1.xyz dev1 0
  scstuadmin add-lun Default_iqn.2007-05.com.example:storage.disk1.sys1.xyz dev2 1
  scstuadmin add-group spec_ini
  scstuadmin add-initiator spec_ini iqn.2007-05.com.example:storage.disk1.spec_ini.xyz
  scstuadmin add-lun spec_ini dev2 0
  scstuadmin list groups

  scstuadmin add-device cd0 --cdrom --file /srv/install.iso
  scstuadmin change cd0 /srv/rescue.iso
  scstuadmin stats cd0 --json

The socket defaults to $SCSTU_ADMIN_SOCKET, else )";

void print_luns(const google::protobuf::RepeatedPtrField<scstu::config::Lun>& luns,
                const char* indent) {
  for (const auto& lun : luns) {
    std::printf("%sLUN %llu  %s%s\n", indent, static_cast<unsigned long long>(lun.lun()),
                lun.device().c_str(), lun.read_only() ? "  READ_ONLY" : "");
  }
}

std::string nanoseconds(uint64_t ns) {
  char buf[32];
  if (ns == UINT64_MAX) return "-";
  if (ns < 10'000) {
    std::snprintf(buf, sizeof buf, "%llu ns", static_cast<unsigned long long>(ns));
  } else if (ns < 10'000'000) {
    std::snprintf(buf, sizeof buf, "%.1f us", static_cast<double>(ns) / 1e3);
  } else {
    std::snprintf(buf, sizeof buf, "%.1f ms", static_cast<double>(ns) / 1e6);
  }
  return buf;
}

void print_statistics(const scstu::config::DeviceStatistics& s) {
  std::printf(
      "%s: %llu commands, %llu errors, %llu bytes read, %llu bytes written, "
      "%llu task set full, %llu busy\n",
      s.device().c_str(), static_cast<unsigned long long>(s.commands()),
      static_cast<unsigned long long>(s.errors()), static_cast<unsigned long long>(s.read_bytes()),
      static_cast<unsigned long long>(s.write_bytes()),
      static_cast<unsigned long long>(s.task_set_full()),
      static_cast<unsigned long long>(s.busy()));
  if (s.classes_size() > 0) {
    std::printf("  %-9s %10s %8s %14s %10s %10s %10s\n", "class", "commands", "errors", "bytes",
                "mean", "p50 <=", "p99 <=");
  }
  for (const auto& c : s.classes()) {
    std::printf(
        "  %-9s %10llu %8llu %14llu %10s %10s %10s\n", c.name().c_str(),
        static_cast<unsigned long long>(c.commands()), static_cast<unsigned long long>(c.errors()),
        static_cast<unsigned long long>(c.bytes()), nanoseconds(c.mean_latency_ns()).c_str(),
        nanoseconds(c.p50_latency_ns()).c_str(), nanoseconds(c.p99_latency_ns()).c_str());
  }
  const auto& b = s.buffers();
  if (b.total_bytes() > 0) {
    std::printf("  buffers: %s, %llu of %llu bytes free, %u of %u tags in use\n", b.kind().c_str(),
                static_cast<unsigned long long>(b.free_bytes()),
                static_cast<unsigned long long>(b.total_bytes()), b.outstanding(), b.slots());
  } else if (!b.kind().empty()) {
    std::printf("  buffers: %s, %u of %u in use\n", b.kind().c_str(), b.outstanding(), b.slots());
  }
}

void print_response(const std::string& what, const AdminResponse& r) {
  if (what == "targets") {
    for (const auto& t : r.targets()) {
      std::printf("%s%s%s\n", t.name().c_str(), t.chap().user().empty() ? "" : "  CHAP",
                  t.mutual_chap().user().empty() ? "" : " (mutual)");
    }
  } else if (what == "devices") {
    std::printf("%-20s %-8s %-10s %s\n", "NAME", "BACKEND", "STATE", "DETAIL");
    for (const auto& d : r.devices()) {
      const auto& dev = d.device();
      if (dev.has_file() && !d.medium_present()) {
        std::printf("%-20s %-8s %-10s CD-ROM, %llu commands\n", dev.name().c_str(), "file",
                    "no medium", static_cast<unsigned long long>(d.commands()));
      } else if (dev.has_file()) {
        std::string engine = d.io_engine();
        if (engine == "uring") {
          engine += " depth " +
                    std::to_string(dev.file().io_queue_depth() ? dev.file().io_queue_depth() : 128);
        } else if (engine == "threads") {
          engine += " " + std::to_string(dev.file().io_threads() ? dev.file().io_threads() : 4);
        }
        if (!d.io_engine_note().empty()) engine += " (" + d.io_engine_note() + ")";
        std::printf("%-20s %-8s %-10s %s, %llu blocks, %llu commands, io %s\n", dev.name().c_str(),
                    "file", dev.file().cdrom() ? "medium" : "open", dev.file().path().c_str(),
                    static_cast<unsigned long long>(d.blocks()),
                    static_cast<unsigned long long>(d.commands()), engine.c_str());
      } else {
        const auto& h = dev.handler();
        std::string detail = std::to_string(d.commands()) + " commands, ring " +
                             std::to_string(h.queues() ? h.queues() : 1) + " queue(s) of " +
                             std::to_string(h.queue_depth() ? h.queue_depth() : 128);
        if (!d.last_drop_reason().empty()) detail += "; last drop: " + d.last_drop_reason();
        std::printf("%-20s %-8s %-10s %s\n", dev.name().c_str(), "handler",
                    d.attached() ? "attached" : "waiting", detail.c_str());
      }
    }
  } else if (what == "sessions") {
    for (const auto& s : r.sessions()) {
      std::printf("session %llu  %s -> %s  group %s\n", static_cast<unsigned long long>(s.id()),
                  s.initiator().c_str(), s.target().c_str(), s.group().c_str());
      print_luns(s.luns(), "    ");
    }
  } else if (what == "groups") {
    for (const auto& g : r.groups()) {
      std::printf("%s\n", g.name().c_str());
      for (const auto& n : g.initiators()) std::printf("    name %s\n", n.c_str());
      print_luns(g.luns(), "    ");
    }
  } else if (what == "config") {
    std::fputs(scstu::tools::format_config(r.config()).c_str(), stdout);
  } else if (what == "stats") {
    for (const auto& s : r.statistics()) print_statistics(s);
  } else if (what == "version") {
    const auto& v = r.version();
    std::printf("scstuadmin %s (admin protocol %u)\n", SCSTU_VERSION, scstu::tools::kAdminProtocol);
    std::printf("scstu-target %s, libscstuser %s, ring ABI %u.%u, admin protocol %u, protobuf %s\n",
                v.daemon().c_str(), v.library().c_str(), v.ring_abi_major(), v.ring_abi_minor(),
                v.admin_protocol(), v.protobuf().c_str());
  } else if (what == "log-level") {
    std::printf("%s\n", r.log_level().c_str());
  }
  if (!r.message().empty()) std::printf("%s\n", r.message().c_str());
}

int usage_error(const std::string& msg) {
  std::fprintf(stderr, "scstuadmin: %s (see scstuadmin --help)\n", msg.c_str());
  return 2;
}

}  // namespace

int main(int argc, char** argv) {
  std::string socket_path =
      std::getenv("SCSTU_ADMIN_SOCKET") ? std::getenv("SCSTU_ADMIN_SOCKET") : kDefaultSocket;
  std::vector<std::string> args;
  std::string file_path, chap_user, chap_secret, mutual_user, mutual_secret, io_engine;
  std::string state_dir;
  uint32_t block_size = 0, device_type = 0, queues = 0, queue_depth = 0, threads = 0;
  uint32_t tmf_timeout_ms = 0;
  po::options_description opts("Options");
  opts.add_options()("help,h", "show this help")(
      "socket,s", po::value(&socket_path)->value_name("PATH"), "the daemon's admin socket")(
      "read-only", "add-lun: map the LUN READ_ONLY")(
      "handler", "add-device: a handler process attaches over the ring")(
      "file", po::value(&file_path)->value_name("PATH"), "add-device: serve PATH in the daemon")(
      "type", po::value(&device_type)->value_name("N"), "add-device --handler: device type")(
      "block-size", po::value(&block_size)->value_name("N"), "add-device: logical block size")(
      "write-through", "add-device --file: WRITE_THROUGH")(
      "o-direct", "add-device --file: O_DIRECT")("nullio", "add-device --file: NULLIO")(
      "nv-cache", "add-device --file: NV_CACHE")("removable", "add-device --file: REMOVABLE")(
      "thin", "add-device --file: thin provisioning")("cdrom", "add-device --file: CD-ROM")(
      "io-engine", po::value(&io_engine)->value_name("E"),
      "add-device --file: uring, threads or auto (io_uring, else threads; default)")(
      "queue-depth", po::value(&queue_depth)->value_name("N"),
      "add-device: io_uring entries (--file, default 128) or ring queue depth (--handler)")(
      "threads", po::value(&threads)->value_name("N"),
      "add-device --file: workers of the threads engine (default 4)")(
      "state-dir", po::value(&state_dir)->value_name("DIR"),
      "add-device --file: keep NAME.sanitize, NAME.pr, NAME.modes in DIR across restarts")(
      "queues", po::value(&queues)->value_name("N"), "add-device --handler: ring queues")(
      "tmf-timeout-ms", po::value(&tmf_timeout_ms)->value_name("MS"),
      "add-device --handler: drop a handler that leaves a TMF unanswered this long "
      "(100..3600000, default 30000)")("chap-user", po::value(&chap_user),
                                       "add-target, set-chap: CHAP user")(
      "chap-secret", po::value(&chap_secret), "add-target, set-chap: CHAP secret")(
      "mutual-user", po::value(&mutual_user), "add-target, set-chap: mutual CHAP user")(
      "mutual-secret", po::value(&mutual_secret), "add-target, set-chap: mutual CHAP secret")(
      "clear", "stats: reset the statistics after reading them")("json",
                                                                 "stats, version: print JSON");
  po::options_description hidden;
  hidden.add_options()("args", po::value(&args));
  po::positional_options_description pos;
  pos.add("args", -1);
  po::options_description all;
  all.add(opts).add(hidden);
  po::variables_map vm;
  try {
    po::store(po::command_line_parser(argc, argv).options(all).positional(pos).run(), vm);
    po::notify(vm);
  } catch (const po::error& e) {
    return usage_error(e.what());
  }
  if (vm.count("help") || args.empty()) {
    std::cout << kHelp << kDefaultSocket << ".\n\n" << opts << "\n";
    return args.empty() && !vm.count("help") ? 2 : 0;
  }

  const std::string& cmd = args[0];
  auto need = [&](size_t n) { return args.size() == n + 1; };
  AdminRequest req;
  std::string show;
  if (cmd == "list" && need(1)) {
    show = args[1];
    if (show == "targets")
      req.mutable_list_targets();
    else if (show == "devices")
      req.mutable_list_devices();
    else if (show == "sessions")
      req.mutable_list_sessions();
    else if (show == "groups")
      req.mutable_list_groups();
    else
      return usage_error("list what? targets, devices, sessions or groups");
  } else if (cmd == "show-config" && need(0)) {
    show = "config";
    req.mutable_show_config();
  } else if (cmd == "add-group" && need(1)) {
    req.set_add_group(args[1]);
  } else if (cmd == "del-group" && need(1)) {
    req.set_del_group(args[1]);
  } else if (cmd == "add-lun" && need(3)) {
    req.set_group(args[1]);
    auto* lun = req.mutable_add_lun();
    lun->set_device(args[2]);
    char* end = nullptr;
    const unsigned long long n = std::strtoull(args[3].c_str(), &end, 10);
    if (args[3].empty() || *end != '\0')
      return usage_error("LUN '" + args[3] + "' is not a number");
    lun->set_lun(n);
    lun->set_read_only(vm.count("read-only") > 0);
  } else if (cmd == "del-lun" && need(2)) {
    req.set_group(args[1]);
    req.mutable_del_lun()->set_device(args[2]);
  } else if (cmd == "clear-luns" && need(1)) {
    req.set_group(args[1]);
    req.mutable_clear_luns();
  } else if (cmd == "add-initiator" && need(2)) {
    req.set_group(args[1]);
    req.set_add_initiator(args[2]);
  } else if (cmd == "del-initiator" && need(2)) {
    req.set_group(args[1]);
    req.set_del_initiator(args[2]);
  } else if (cmd == "clear-initiators" && need(1)) {
    req.set_group(args[1]);
    req.mutable_clear_initiators();
  } else if (cmd == "add-device" && need(1)) {
    auto* dev = req.mutable_add_device();
    dev->set_name(args[1]);
    const bool file = vm.count("file") || vm.count("cdrom");
    if (vm.count("handler") == file) {
      return usage_error("add-device needs exactly one of --handler or --file PATH (or --cdrom)");
    }
    if (vm.count("handler")) {
      auto* h = dev->mutable_handler();
      h->set_device_type(device_type);
      h->set_block_size(block_size);
      h->set_queues(queues);
      h->set_queue_depth(queue_depth);
      h->set_tmf_timeout_ms(tmf_timeout_ms);
    } else {
      auto* f = dev->mutable_file();
      f->set_path(file_path);
      f->set_block_size(block_size);
      f->set_read_only(vm.count("read-only") > 0);
      f->set_write_through(vm.count("write-through") > 0);
      f->set_o_direct(vm.count("o-direct") > 0);
      f->set_nullio(vm.count("nullio") > 0);
      f->set_nv_cache(vm.count("nv-cache") > 0);
      f->set_removable(vm.count("removable") > 0);
      f->set_thin(vm.count("thin") > 0);
      f->set_cdrom(vm.count("cdrom") > 0);
      f->set_io_engine(io_engine);
      f->set_io_queue_depth(queue_depth);
      f->set_io_threads(threads);
      f->set_state_dir(state_dir);
    }
  } else if (cmd == "del-device" && need(1)) {
    req.set_del_device(args[1]);
  } else if (cmd == "resync-size" && need(1)) {
    req.set_resync_size(args[1]);
  } else if ((cmd == "add-target" || cmd == "set-chap") && need(1)) {
    if (chap_user.empty() != chap_secret.empty() || mutual_user.empty() != mutual_secret.empty()) {
      return usage_error("--chap-user/--chap-secret and --mutual-user/--mutual-secret go in pairs");
    }
    scstu::config::Chap chap, mutual;
    chap.set_user(chap_user);
    chap.set_secret(chap_secret);
    mutual.set_user(mutual_user);
    mutual.set_secret(mutual_secret);
    if (cmd == "add-target") {
      auto* t = req.mutable_add_target();
      t->set_name(args[1]);
      if (!chap_user.empty()) *t->mutable_chap() = chap;
      if (!mutual_user.empty()) *t->mutable_mutual_chap() = mutual;
    } else {
      auto* s = req.mutable_set_chap();
      s->set_target(args[1]);
      *s->mutable_chap() = chap;
      *s->mutable_mutual_chap() = mutual;
    }
  } else if (cmd == "del-target" && need(1)) {
    req.set_del_target(args[1]);
  } else if (cmd == "change" && (need(1) || need(2))) {
    auto* c = req.mutable_change_medium();
    c->set_device(args[1]);
    if (need(2)) {
      if (args[2].empty()) return usage_error("change: empty PATH (leave it out to eject)");
      c->set_path(args[2]);
    }
  } else if (cmd == "stats" && (need(0) || need(1))) {
    show = "stats";
    auto* s = req.mutable_statistics();
    if (need(1)) s->set_device(args[1]);
    s->set_clear(vm.count("clear") > 0);
  } else if (cmd == "version" && need(0)) {
    show = "version";
    req.mutable_version();
  } else if (cmd == "log-level" && (need(0) || need(1))) {
    show = "log-level";
    req.set_log_level(need(1) ? args[1] : "");
    if (need(1) && args[1].empty()) return usage_error("log-level: empty LEVEL");
  } else {
    return usage_error("unknown command or wrong number of arguments: " + cmd);
  }

  std::string error;
  int fd = scstu::tools::connect_unix(socket_path, &error);
  if (fd < 0) {
    std::fprintf(stderr, "scstuadmin: %s (is scstu-target running? --socket PATH)\n",
                 error.c_str());
    return 1;
  }
  AdminResponse resp;
  if (!scstu::tools::send_message(fd, req, &error) ||
      !scstu::tools::receive_message(fd, &resp, &error)) {
    std::fprintf(stderr, "scstuadmin: %s: %s\n", socket_path.c_str(), error.c_str());
    close(fd);
    return 1;
  }
  close(fd);
  if (!resp.ok()) {
    std::fprintf(stderr, "%s\n", resp.error().c_str());  // verbatim
    return 1;
  }
  if (vm.count("json")) {
    google::protobuf::util::JsonPrintOptions json;
    json.add_whitespace = true;
    json.preserve_proto_field_names = true;
    json.always_print_primitive_fields = true;
    std::string text;
    if (!google::protobuf::util::MessageToJsonString(resp, &text, json).ok()) {
      std::fprintf(stderr, "scstuadmin: cannot print the answer as JSON\n");
      return 1;
    }
    std::fputs(text.c_str(), stdout);
    return 0;
  }
  print_response(show, resp);
  return 0;
}
