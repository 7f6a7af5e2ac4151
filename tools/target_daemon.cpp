#include "target_daemon.h"

#include <poll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstdio>
#include <stdexcept>

#include "admin_wire.h"
#include "config_file.h"
#include "portal_set.h"

namespace scstu::tools {

namespace {

config::AdminResponse failure(std::string message) {
  config::AdminResponse r;
  r.set_ok(false);
  r.set_error(std::move(message));
  return r;
}

config::AdminResponse success(std::string message = {}) {
  config::AdminResponse r;
  r.set_ok(true);
  r.set_message(std::move(message));
  return r;
}

io::FileDeviceOptions file_options(const config::FileBackend& f) {
  io::FileDeviceOptions o;
  o.block_size = f.block_size() ? f.block_size() : 512;
  o.write_through = f.write_through();
  o.read_only = f.read_only();
  o.direct = f.o_direct();
  o.nullio = f.nullio();
  o.nv_cache = f.nv_cache();
  o.removable = f.removable();
  o.thin = f.thin();
  o.cdrom = f.cdrom();
  return o;
}

core::AccessConfig access_config(const config::Config& c) {
  core::AccessConfig a;
  for (const auto& t : c.targets()) a.targets.push_back(t.name());
  for (const auto& g : c.groups()) {
    core::GroupConfig group;
    group.name = g.name();
    group.initiators.assign(g.initiators().begin(), g.initiators().end());
    for (const auto& l : g.luns()) group.luns.push_back({l.lun(), l.device(), l.read_only()});
    a.groups.push_back(std::move(group));
  }
  return a;
}

void fill_group(config::Group* out, const core::GroupConfig& g) {
  out->set_name(g.name);
  for (const auto& n : g.initiators) out->add_initiators(n);
  for (const auto& l : g.luns) {
    auto* lun = out->add_luns();
    lun->set_lun(l.lun);
    lun->set_device(l.device);
    lun->set_read_only(l.read_only);
  }
}

}  // namespace

TargetDaemon::TargetDaemon(std::string config_path, config::Config config)
    : config_path_(std::move(config_path)), config_(std::move(config)) {}

TargetDaemon::~TargetDaemon() {
  if (admin_thread_.joinable()) {
    const uint64_t one = 1;
    ssize_t n = write(admin_stop_fd_, &one, sizeof one);
    (void)n;
    admin_thread_.join();
  }
  if (admin_fd_ >= 0) {
    close(admin_fd_);
    unlink(config_.admin_socket().c_str());
  }
  if (admin_stop_fd_ >= 0) close(admin_stop_fd_);
  portals_.reset();  // no new commands
  listener_.reset();
}

void TargetDaemon::start() {
  std::lock_guard lock(mutex_);
  std::string error;
  if (!config_.handler_socket().empty()) {
    listener_ = transport::UnixListener::create(config_.handler_socket(), &error);
    if (!listener_) throw std::runtime_error("handler socket: " + error);
  }
  for (const auto& t : config_.targets()) {
    if (std::string e = add_target_locked(t); !e.empty()) throw std::runtime_error(e);
  }
  for (const auto& d : config_.devices()) {
    if (std::string e = add_device_locked(d); !e.empty()) throw std::runtime_error(e);
  }
  if (core::ConfigStatus s = core_.access().apply(access_config(config_)); !s) {
    throw std::runtime_error(config_path_ + ": " + s.message());
  }
  portals_ = std::make_unique<PortalSet>(core_);
  for (const auto& t : targets_) portals_->set_target(t.second);
  if (config_.has_discovery_chap()) portals_->set_discovery_chap(config_.discovery_chap());
  for (const std::string& p : config_.portals()) {
    if (std::string e = portals_->add_portal(p); !e.empty()) throw std::runtime_error(e);
  }
  if (std::string e = portals_->start(); !e.empty()) throw std::runtime_error(e);
  if (!config_.admin_socket().empty()) {
    admin_fd_ = listen_unix(config_.admin_socket(), &error);
    if (admin_fd_ < 0) throw std::runtime_error("admin socket: " + error);
    admin_stop_fd_ = eventfd(0, EFD_CLOEXEC);
    admin_thread_ = std::thread([this] { admin_loop(); });
  }
}

std::vector<std::string> TargetDaemon::portal_addresses() const {
  return portals_ ? portals_->addresses() : std::vector<std::string>{};
}

std::string TargetDaemon::add_target_locked(const config::Target& target) {
  if (target.name().empty()) return "target: empty name";
  if (portals_ && portals_->started() &&
      (!target.chap().user().empty() || !target.mutual_chap().user().empty())) {
    // iscsi::Server takes authentication settings when it starts.
    return "target " + target.name() +
           ": CHAP cannot be set on a running daemon; add the target with its chap to the "
           "configuration file and restart scstu-target";
  }
  if (targets_.count(target.name())) return "target " + target.name() + ": already exists";
  if (core::ConfigStatus s = core_.access().add_target(target.name()); !s) return s.message();
  targets_[target.name()] = target;
  if (portals_) portals_->set_target(target);
  return {};
}

std::string TargetDaemon::remove_target_locked(const std::string& name) {
  if (!targets_.count(name)) return "target " + name + ": no such target";
  if (core::ConfigStatus s = core_.access().remove_target(name); !s) return s.message();
  targets_.erase(name);
  return {};
}

std::string TargetDaemon::add_device_locked(const config::Device& device) {
  const std::string& name = device.name();
  if (!fileio::valid_device_name(name)) {
    return "device '" + name + "': use 1-31 characters of A-Z a-z 0-9 _ -";
  }
  if (devices_.count(name)) return "device " + name + ": already exists";
  DeviceEntry entry;
  entry.config = device;
  std::shared_ptr<core::Device> dev;
  if (device.has_file()) {
    const uint32_t max_transfer = 8u << 20;
    try {
      entry.unit = std::make_unique<fileio::DiskUnit>(fileio::DiskUnit::open(
          name, device.file().path(), file_options(device.file()), max_transfer));
    } catch (const std::exception& e) {
      return "device " + name + ": " + e.what();
    }
    core::LocalDeviceOptions lo;
    lo.info.name = name;
    lo.info.device_type = entry.unit->file->device_type();
    lo.info.block_size = entry.unit->file->geometry().block_size;
    lo.info.max_transfer_bytes = max_transfer;
    lo.max_io_bytes = max_transfer;
    entry.local = std::make_shared<core::LocalDevice>(entry.unit->lu, lo);
    dev = entry.local;
  } else {
    if (!listener_) return "device " + name + ": handler devices need handler_socket in the config";
    const config::HandlerBackend& h = device.handler();
    transport::RingDeviceConfig rc;
    rc.name = name;
    if (h.queues()) rc.nr_queues = h.queues();
    if (h.queue_depth()) rc.queue_depth = h.queue_depth();
    if (h.data_size()) rc.data_size = h.data_size();
    if (h.max_io_bytes()) rc.max_io_bytes = h.max_io_bytes();
    rc.device_type = static_cast<int>(h.device_type());
    std::string error;
    entry.ring = transport::RingDevice::create(rc, &error);
    if (!entry.ring) return "device " + name + ": " + error;
    dev = entry.ring;
  }
  if (core::ConfigStatus s = core_.access().add_device(dev); !s) return s.message();
  if (entry.ring) listener_->add_device(entry.ring);
  devices_.emplace(name, std::move(entry));
  return {};
}

std::string TargetDaemon::remove_device_locked(const std::string& name) {
  auto it = devices_.find(name);
  if (it == devices_.end()) return "device " + name + ": no such device";
  // Refused (with the group named) while a group maps it, as the seed's "close".
  if (core::ConfigStatus s = core_.access().remove_device(name); !s) return s.message();
  if (it->second.ring && listener_) listener_->remove_device(name);
  devices_.erase(it);
  return {};
}

config::Config TargetDaemon::current_config() const {
  std::lock_guard lock(mutex_);
  config::Config c = config_;
  c.clear_targets();
  c.clear_devices();
  c.clear_groups();
  for (const auto& [name, t] : targets_) *c.add_targets() = t;
  for (const auto& [name, d] : devices_) *c.add_devices() = d.config;
  for (const auto& g : const_cast<core::TargetCore&>(core_).access().config().groups)
    fill_group(c.add_groups(), g);
  return c;
}

config::AdminResponse TargetDaemon::handle(const config::AdminRequest& req) {
  using Op = config::AdminRequest::OpCase;
  const std::string& group = req.group();
  std::string error;
  bool changed = true;
  config::AdminResponse resp = success();
  {
    std::lock_guard lock(mutex_);
    auto& access = core_.access();
    auto status = [&](core::ConfigStatus s) {
      if (!s) error = s.message();
    };
    switch (req.op_case()) {
      case Op::kListTargets:
        changed = false;
        for (const auto& [name, t] : targets_) {
          auto* out = resp.add_targets();
          out->set_name(name);
          // Never hand secrets out over the admin socket.
          if (!t.chap().user().empty()) out->mutable_chap()->set_user(t.chap().user());
          if (!t.mutual_chap().user().empty()) {
            out->mutable_mutual_chap()->set_user(t.mutual_chap().user());
          }
        }
        break;
      case Op::kListDevices:
        changed = false;
        for (const auto& [name, d] : devices_) {
          auto* out = resp.add_devices();
          *out->mutable_device() = d.config;
          if (d.ring) {
            out->set_attached(d.ring->ready());
            out->set_last_drop_reason(d.ring->last_drop_reason());
          } else {
            out->set_attached(true);
            out->set_blocks(d.unit->file->geometry().blocks);
          }
          if (auto st = core_.statistics(name)) {
            out->set_commands(st->commands());
            out->set_read_bytes(st->bytes_read());
            out->set_write_bytes(st->bytes_written());
          }
        }
        break;
      case Op::kListSessions:
        changed = false;
        for (const auto& s : core_.sessions()) {
          auto* out = resp.add_sessions();
          out->set_id(s->id());
          out->set_target(s->target_name());
          out->set_initiator(s->initiator_name());
          out->set_group(s->group());
          for (const auto& m : s->luns()) {
            auto* lun = out->add_luns();
            lun->set_lun(m.lun);
            lun->set_device(m.device ? m.device->name() : "");
            lun->set_read_only(m.read_only);
          }
        }
        break;
      case Op::kListGroups:
        changed = false;
        for (const auto& g : access.config().groups) fill_group(resp.add_groups(), g);
        break;
      case Op::kShowConfig:
        changed = false;
        break;
      case Op::kAddGroup:
        status(access.add_group(req.add_group()));
        break;
      case Op::kDelGroup:
        status(access.remove_group(req.del_group()));
        break;
      case Op::kAddLun:
        status(access.add_lun(group, req.add_lun().lun(), req.add_lun().device(),
                              req.add_lun().read_only()));
        break;
      case Op::kDelLun:
        status(req.del_lun().device().empty()
                   ? access.remove_lun(group, req.del_lun().lun())
                   : access.remove_device_from_group(group, req.del_lun().device()));
        break;
      case Op::kClearLuns:
        status(access.clear_luns(group));
        break;
      case Op::kAddInitiator:
        status(access.add_initiator(group, req.add_initiator()));
        break;
      case Op::kDelInitiator:
        status(access.remove_initiator(group, req.del_initiator()));
        break;
      case Op::kClearInitiators:
        status(access.clear_initiators(group));
        break;
      case Op::kAddDevice:
        error = add_device_locked(req.add_device());
        break;
      case Op::kDelDevice:
        error = remove_device_locked(req.del_device());
        break;
      case Op::kResyncSize: {
        changed = false;
        auto it = devices_.find(req.resync_size());
        if (it == devices_.end()) {
          error = "device " + req.resync_size() + ": no such device";
        } else if (!it->second.unit) {
          error = "device " + req.resync_size() +
                  ": served by a handler process, which owns its size: send that process "
                  "SIGUSR1 (fileio_tgt re-reads every device's size)";
        } else {
          resp.set_message(it->second.unit->resync_size());
        }
        break;
      }
      case Op::kAddTarget:
        error = add_target_locked(req.add_target());
        break;
      case Op::kDelTarget:
        error = remove_target_locked(req.del_target());
        break;
      case Op::OP_NOT_SET:
        changed = false;
        error = "empty request (scstuadmin and scstu-target of different versions?)";
        break;
    }
  }
  if (!error.empty()) return failure(error);
  config::Config now = current_config();
  if (req.op_case() == Op::kShowConfig) *resp.mutable_config() = now;
  if (changed) {
    try {
      save_config(config_path_, now);
    } catch (const std::exception& e) {
      return failure(std::string("applied, but not saved: ") + e.what());
    }
  }
  return resp;
}

void TargetDaemon::admin_loop() {
  for (;;) {
    pollfd fds[2] = {{admin_fd_, POLLIN, 0}, {admin_stop_fd_, POLLIN, 0}};
    if (poll(fds, 2, -1) < 0) continue;
    if (fds[1].revents) return;
    if (!(fds[0].revents & POLLIN)) continue;
    int fd = accept4(admin_fd_, nullptr, nullptr, SOCK_CLOEXEC);
    if (fd < 0) continue;
    serve_admin_connection(fd);
    close(fd);
  }
}

void TargetDaemon::serve_admin_connection(int fd) {
  // Only root or the daemon's own user may administer it.
  ucred cred{};
  socklen_t len = sizeof cred;
  if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) != 0 ||
      (cred.uid != 0 && cred.uid != getuid())) {
    std::string ignored;
    send_message(fd,
                 failure("permission denied: uid " + std::to_string(cred.uid) +
                         " may not administer this daemon"),
                 &ignored);
    return;
  }
  // One client at a time; a stuck client must not wedge the daemon.
  timeval tv{5, 0};
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
  for (;;) {
    config::AdminRequest req;
    std::string error;
    if (!receive_message(fd, &req, &error)) return;
    config::AdminResponse resp = handle(req);
    if (!send_message(fd, resp, &error)) return;
  }
}

}  // namespace scstu::tools
