// scstuadmin: administer a running scstu-target daemon over its admin socket:
// what the seed's /proc/scsi_tgt interface did (groups, LUNs, initiator name
// patterns, devices, resync_size), with changes persisted by the daemon in
// its configuration file. Errors from the daemon are printed verbatim.
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
  add-device NAME --handler [--type N] [--block-size N]     a handler process attaches
  add-device NAME --file PATH [--block-size N] [vdisk flags] served inside the daemon
  del-device NAME
  resync-size NAME                   re-read a file device's size (CAPACITY DATA HAS CHANGED)
  add-target IQN [--chap-user U --chap-secret S]            del-target IQN

Examples (the seed's access control example):
  scstuadmin add-group Default_iqn.2007-05.com.example:storage.disk1.sys1.xyz
  scstuadmin add-lun Default_iqn.2007-05.com.example:storage.disk1.sys1.xyz dev1 0
  scstuadmin add-lun Default_iqn.2007-05.com.example:storage.disk1.sys1.xyz dev2 1
  scstuadmin add-group spec_ini
  scstuadmin add-initiator spec_ini iqn.2007-05.com.example:storage.disk1.spec_ini.xyz
  scstuadmin add-lun spec_ini dev2 0
  scstuadmin list groups

The socket defaults to $SCSTU_ADMIN_SOCKET, else )";

void print_luns(const google::protobuf::RepeatedPtrField<scstu::config::Lun>& luns,
                const char* indent) {
  for (const auto& lun : luns) {
    std::printf("%sLUN %llu  %s%s\n", indent, static_cast<unsigned long long>(lun.lun()),
                lun.device().c_str(), lun.read_only() ? "  READ_ONLY" : "");
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
      if (dev.has_file()) {
        std::printf("%-20s %-8s %-10s %s, %llu blocks, %llu commands\n", dev.name().c_str(), "file",
                    "open", dev.file().path().c_str(), static_cast<unsigned long long>(d.blocks()),
                    static_cast<unsigned long long>(d.commands()));
      } else {
        std::string detail = std::to_string(d.commands()) + " commands";
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
  std::string file_path, chap_user, chap_secret;
  uint32_t block_size = 0, device_type = 0;
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
      "chap-user", po::value(&chap_user), "add-target: CHAP user")(
      "chap-secret", po::value(&chap_secret), "add-target: CHAP secret");
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
    if (vm.count("handler") == vm.count("file")) {
      return usage_error("add-device needs exactly one of --handler or --file PATH");
    }
    if (vm.count("handler")) {
      dev->mutable_handler()->set_device_type(device_type);
      dev->mutable_handler()->set_block_size(block_size);
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
    }
  } else if (cmd == "del-device" && need(1)) {
    req.set_del_device(args[1]);
  } else if (cmd == "resync-size" && need(1)) {
    req.set_resync_size(args[1]);
  } else if (cmd == "add-target" && need(1)) {
    auto* t = req.mutable_add_target();
    t->set_name(args[1]);
    if (chap_user.empty() != chap_secret.empty()) {
      return usage_error("--chap-user and --chap-secret go together");
    }
    t->mutable_chap()->set_user(chap_user);
    t->mutable_chap()->set_secret(chap_secret);
  } else if (cmd == "del-target" && need(1)) {
    req.set_del_target(args[1]);
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
  print_response(show, resp);
  return 0;
}
