#include "target_daemon.h"

#include <google/protobuf/stubs/common.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdio>
#include <stdexcept>

#include "admin_wire.h"
#include "config_file.h"
#include "core/log_level.h"
#include "portal_set.h"
#include "ring/ring_abi.h"

#ifndef SCSTU_VERSION
#error "SCSTU_VERSION comes from the project version (tools/CMakeLists.txt)"
#endif

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

// The seed's vdisk flags and the I/O engine of a file device; "" or the error.
std::string file_options(const config::FileBackend& f, io::FileDeviceOptions* out) {
  io::FileDeviceOptions& o = *out;
  o.block_size = f.block_size() ? f.block_size() : 512;
  o.write_through = f.write_through();
  o.read_only = f.read_only();
  o.direct = f.o_direct();
  o.nullio = f.nullio();
  o.nv_cache = f.nv_cache();
  o.removable = f.removable();
  o.thin = f.thin();
  o.cdrom = f.cdrom();
  if (f.io_engine().empty() || f.io_engine() == "auto") {
    o.engine.kind = io::IoEngineKind::kAuto;
  } else if (f.io_engine() == "uring") {
    o.engine.kind = io::IoEngineKind::kUring;
  } else if (f.io_engine() == "threads") {
    o.engine.kind = io::IoEngineKind::kThreads;
  } else {
    return "io_engine '" + f.io_engine() + "': expected auto, uring or threads";
  }
  // The same bounds as fileio_tgt --queue-depth / --threads.
  if (f.io_queue_depth() > 4096) return "io_queue_depth must be 1..4096 (0: 128)";
  if (f.io_threads() > 256) return "io_threads must be 1..256 (0: 4)";
  if (f.io_queue_depth()) o.engine.queue_depth = f.io_queue_depth();
  if (f.io_threads()) o.engine.threads = f.io_threads();
  return {};
}

void fill_class(config::ClassStatistics* out, const core::ClassStatistics& c,
                core::CommandClass kind) {
  out->set_name(core::command_class_name(kind));
  out->set_commands(c.commands);
  out->set_bytes(c.bytes);
  out->set_errors(c.errors);
  out->set_latency_total_ns(c.latency_total_ns);
  out->set_mean_latency_ns(c.mean_latency_ns());
  out->set_p50_latency_ns(c.latency_percentile_ns(0.5));
  out->set_p99_latency_ns(c.latency_percentile_ns(0.99));
  // Up to the last non-empty bucket: the rest is implied zero.
  size_t used = c.latency.size();
  while (used > 0 && c.latency[used - 1] == 0) --used;
  for (size_t b = 0; b < used; ++b) out->add_latency_histogram(c.latency[b]);
}

void fill_statistics(config::DeviceStatistics* out, const core::DeviceStatistics& s) {
  out->set_device(s.device);
  out->set_commands(s.commands());
  out->set_errors(s.errors());
  out->set_read_bytes(s.bytes_read());
  out->set_write_bytes(s.bytes_written());
  out->set_task_set_full(s.task_set_full);
  out->set_busy(s.busy);
  for (size_t i = 0; i < core::kCommandClasses; ++i) {
    if (s.classes[i].commands == 0) continue;
    fill_class(out->add_classes(), s.classes[i], static_cast<core::CommandClass>(i));
  }
}

void apply_log_level(const std::string& text) {
  if (auto l = core::parse_log_level(text)) core::set_log_level(*l);
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

std::string handler_ring_config(const config::HandlerBackend& h, transport::RingDeviceConfig* out) {
  transport::RingDeviceConfig& rc = *out;
  if (h.queues()) rc.nr_queues = h.queues();
  if (h.queue_depth()) rc.queue_depth = h.queue_depth();
  if (h.data_size()) rc.data_size = h.data_size();
  if (h.max_io_bytes()) rc.max_io_bytes = h.max_io_bytes();
  rc.device_type = static_cast<int>(h.device_type());
  // Shorter than a busy handler's answer would drop healthy handlers; longer
  // than an hour holds an initiator's TMF (and its recovery) for nothing.
  if (h.tmf_timeout_ms() != 0 && (h.tmf_timeout_ms() < 100 || h.tmf_timeout_ms() > 3600000)) {
    return "tmf_timeout_ms " + std::to_string(h.tmf_timeout_ms()) +
           " out of range: 100..3600000 (0: 30000)";
  }
  if (h.tmf_timeout_ms()) rc.tmf_timeout_ms = h.tmf_timeout_ms();
  return {};
}

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
  if (!config_.log_level().empty()) {
    if (!core::parse_log_level(config_.log_level())) {
      throw std::runtime_error(config_path_ + ": log_level '" + config_.log_level() +
                               "': expected error, warning, info or debug");
    }
    apply_log_level(config_.log_level());
  }
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
  if (std::string e = portals_->set_session_limits(config_); !e.empty()) {
    throw std::runtime_error(config_path_ + ": " + e);
  }
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
    io::FileDeviceOptions options;
    if (std::string e = file_options(device.file(), &options); !e.empty()) {
      return "device " + name + ": " + e;
    }
    if (device.file().path().empty() && !device.file().cdrom()) {
      return "device " + name + ": no file (only a CD-ROM may start without a medium)";
    }
    const std::string& state_dir = device.file().state_dir();
    struct stat st {};
    if (!state_dir.empty() && (::stat(state_dir.c_str(), &st) != 0 || !S_ISDIR(st.st_mode))) {
      return "device " + name + ": state_dir " + state_dir + ": not a directory (create it first)";
    }
    std::shared_ptr<scsi::LogicalUnit> lu;
    try {
      if (device.file().cdrom()) {
        entry.cdrom =
            std::make_unique<CdromDrive>(name, device.file().path(), options, max_transfer);
        lu = entry.cdrom->lu();
      } else {
        entry.unit = std::make_unique<fileio::DiskUnit>(fileio::DiskUnit::open(
            name, device.file().path(), options, max_transfer, {}, state_dir));
        lu = entry.unit->lu;
      }
    } catch (const std::exception& e) {
      return "device " + name + ": " + e.what();
    }
    core::LocalDeviceOptions lo;
    lo.info.name = name;
    lo.info.device_type = lu->device_type();
    lo.info.block_size = lu->block_size();
    lo.info.max_transfer_bytes = max_transfer;
    lo.max_io_bytes = max_transfer;
    entry.local = std::make_shared<core::LocalDevice>(lu, lo);
    entry.local_slots = lo.queue_depth;
    dev = entry.local;
  } else {
    if (!listener_) return "device " + name + ": handler devices need handler_socket in the config";
    transport::RingDeviceConfig rc;
    rc.name = name;
    if (std::string e = handler_ring_config(device.handler(), &rc); !e.empty()) {
      return "device " + name + ": " + e;
    }
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

void TargetDaemon::list_devices_locked(config::AdminResponse* resp) {
  for (const auto& [name, d] : devices_) {
    auto* out = resp->add_devices();
    *out->mutable_device() = d.config;
    if (d.ring) {
      out->set_attached(d.ring->ready());
      out->set_last_drop_reason(d.ring->last_drop_reason());
    } else {
      out->set_attached(true);
      const io::FileDevice* file = d.cdrom ? d.cdrom->medium() : d.unit->file.get();
      out->set_medium_present(file != nullptr);
      if (file != nullptr) {
        out->set_blocks(file->geometry().blocks);
        out->set_io_engine(io::to_string(file->engine_kind()));
        out->set_io_engine_note(file->engine_note());
      }
    }
    if (auto st = core_.statistics(name)) {
      out->set_commands(st->commands());
      out->set_read_bytes(st->bytes_read());
      out->set_write_bytes(st->bytes_written());
    }
  }
}

std::string TargetDaemon::statistics_locked(const config::StatisticsRequest& req,
                                            config::AdminResponse* resp) {
  std::vector<const std::string*> names;
  if (req.device().empty()) {
    for (const auto& [name, d] : devices_) names.push_back(&name);
  } else if (auto it = devices_.find(req.device()); it != devices_.end()) {
    names.push_back(&it->first);
  } else {
    return "device " + req.device() + ": no such device";
  }
  for (const std::string* name : names) {
    const DeviceEntry& d = devices_.at(*name);
    auto st = core_.statistics(*name);
    if (!st) continue;
    auto* out = resp->add_statistics();
    fill_statistics(out, *st);
    auto* buffers = out->mutable_buffers();
    if (d.ring) {
      const transport::RingDevice::DataAreaUsage u = d.ring->data_area_usage();
      buffers->set_kind("ring data area");
      buffers->set_total_bytes(u.total_bytes);
      buffers->set_free_bytes(u.free_bytes);
      buffers->set_slots(u.slots);
      buffers->set_outstanding(u.outstanding);
    } else {
      buffers->set_kind("command slots");
      buffers->set_slots(d.local_slots);
      buffers->set_outstanding(d.local->outstanding());
    }
    if (req.clear()) core_.reset_statistics(*name);
  }
  return {};
}

std::string TargetDaemon::change_medium_locked(const config::ChangeMedium& req,
                                               std::string* message) {
  auto it = devices_.find(req.device());
  if (it == devices_.end()) return "device " + req.device() + ": no such device";
  DeviceEntry& d = it->second;
  if (d.ring) {
    return "device " + req.device() +
           ": served by a handler process, which owns its medium: change it there (restart "
           "the handler with the new image)";
  }
  if (!d.cdrom) return "device " + req.device() + ": not a CD-ROM (add-device ... --cdrom)";
  if (std::string e = d.cdrom->change(req.path(), message); !e.empty()) return e;
  d.config.mutable_file()->set_path(req.path());
  return {};
}

std::string TargetDaemon::set_chap_locked(const config::SetChap& req) {
  auto it = targets_.find(req.target());
  if (it == targets_.end()) return "target " + req.target() + ": no such target";
  if (req.chap().user().empty() != req.chap().secret().empty() ||
      req.mutual_chap().user().empty() != req.mutual_chap().secret().empty()) {
    return "target " + req.target() + ": a CHAP user needs its secret and a secret its user";
  }
  if (!req.mutual_chap().user().empty() && req.chap().user().empty()) {
    return "target " + req.target() +
           ": mutual CHAP needs the initiator to authenticate first (set --chap-user too)";
  }
  config::Target t = it->second;
  *t.mutable_chap() = req.chap();
  *t.mutable_mutual_chap() = req.mutual_chap();
  if (t.chap().user().empty()) t.clear_chap();
  if (t.mutual_chap().user().empty()) t.clear_mutual_chap();
  if (portals_) portals_->set_target(t);
  it->second = t;
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
  // The operation's field name; never the request itself (CHAP secrets).
  const auto* field = config::AdminRequest::descriptor()->FindFieldByNumber(req.op_case());
  const std::string op = field ? field->name() : "(no operation)";
  if (core::log_enabled(core::LogLevel::kDebug)) {
    std::fprintf(stderr, "scstu-target: admin: %s %s\n", op.c_str(), req.group().c_str());
  }
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
        list_devices_locked(&resp);
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
        } else if (it->second.cdrom) {
          error = "device " + req.resync_size() +
                  ": a CD-ROM's size is its medium's: scstuadmin change " + req.resync_size() +
                  " PATH";
        } else if (!it->second.unit) {
          error = "device " + req.resync_size() +
                  ": served by a handler process, which owns its size: send that process "
                  "SIGUSR1 (fileio_tgt re-reads every device's size)";
        } else {
          resp.set_message(it->second.unit->resync_size());
        }
        break;
      }
      case Op::kStatistics:
        changed = false;
        error = statistics_locked(req.statistics(), &resp);
        break;
      case Op::kVersion: {
        changed = false;
        auto* v = resp.mutable_version();
        v->set_daemon(SCSTU_VERSION);
        v->set_library(SCSTU_VERSION);  // libscstuser is built with the daemon, statically
        v->set_ring_abi_major(SCSTU_ABI_MAJOR);
        v->set_ring_abi_minor(SCSTU_ABI_MINOR);
        v->set_admin_protocol(kAdminProtocol);
        v->set_protobuf(google::protobuf::internal::VersionString(GOOGLE_PROTOBUF_VERSION));
        break;
      }
      case Op::kLogLevel:
        if (req.log_level().empty()) {
          changed = false;
        } else if (!core::parse_log_level(req.log_level())) {
          error = "log level '" + req.log_level() + "': expected error, warning, info or debug";
        } else {
          config_.set_log_level(req.log_level());
          apply_log_level(req.log_level());
        }
        resp.set_log_level(core::to_string(core::log_level()));
        break;
      case Op::kChangeMedium: {
        std::string message;
        error = change_medium_locked(req.change_medium(), &message);
        resp.set_message(message);
        break;
      }
      case Op::kSetChap:
        error = set_chap_locked(req.set_chap());
        break;
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
  if (!error.empty()) {
    if (core::log_enabled(core::LogLevel::kInfo)) {
      std::fprintf(stderr, "scstu-target: admin: %s refused: %s\n", op.c_str(), error.c_str());
    }
    return failure(error);
  }
  config::Config now = current_config();
  if (req.op_case() == Op::kShowConfig) *resp.mutable_config() = now;
  if (changed) {
    try {
      save_config(config_path_, now);
    } catch (const std::exception& e) {
      std::fprintf(stderr, "scstu-target: admin: %s applied, but not saved: %s\n", op.c_str(),
                   e.what());
      return failure(std::string("applied, but not saved: ") + e.what());
    }
    if (core::log_enabled(core::LogLevel::kInfo)) {
      std::fprintf(stderr, "scstu-target: admin: %s applied%s%s, saved to %s\n", op.c_str(),
                   resp.message().empty() ? "" : ": ", resp.message().c_str(),
                   config_path_.c_str());
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
