// target_daemon.h - the scstu-target daemon: the target core, its iSCSI
// portals, devices (RingDevices that handler processes attach to over the
// handler socket, or files served in-process), and the admin socket that
// scstuadmin talks to. Every configuration change made through the admin
// socket is written back to the configuration file (atomically).
#pragma once

#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>

#include "cdrom_drive.h"
#include "config.pb.h"
#include "core/local_device.h"
#include "core/target_core.h"
#include "disk_unit.h"
#include "transport/ring_device.h"
#include "transport/unix_listener.h"

namespace scstu::tools {

class PortalSet;  // the iSCSI side (portal_set.h)

// A handler device's RingDevice settings from its config (0 = the default):
// "" or what is wrong (the caller names the device).
std::string handler_ring_config(const config::HandlerBackend& h, transport::RingDeviceConfig* out);

class TargetDaemon {
 public:
  // Loads nothing itself: `config` comes from load_config(config_path).
  // Throws std::runtime_error naming the object and the cause.
  TargetDaemon(std::string config_path, config::Config config);
  ~TargetDaemon();

  // Starts the handler socket, devices, access control, portals and the admin
  // socket. Throws std::runtime_error on failure.
  void start();
  // One admin request (also used by tests, without a socket).
  config::AdminResponse handle(const config::AdminRequest& request);
  // The configuration as it stands (what is saved).
  config::Config current_config() const;

  core::TargetCore& core() { return core_; }
  // Bound portal addresses ("127.0.0.1:13260"), e.g. after port 0.
  std::vector<std::string> portal_addresses() const;

 private:
  struct DeviceEntry {
    config::Device config;
    std::shared_ptr<transport::RingDevice> ring;
    std::unique_ptr<fileio::DiskUnit> unit;  // file backend
    std::unique_ptr<CdromDrive> cdrom;       // file backend, cdrom: a changeable medium
    std::shared_ptr<core::LocalDevice> local;
    uint32_t local_slots = 0;  // its queue depth
  };

  std::string add_device_locked(const config::Device& device);  // "" or the error
  std::string remove_device_locked(const std::string& name);
  std::string add_target_locked(const config::Target& target);
  std::string remove_target_locked(const std::string& name);
  std::string set_chap_locked(const config::SetChap& request);
  std::string change_medium_locked(const config::ChangeMedium& request, std::string* message);
  std::string statistics_locked(const config::StatisticsRequest& request,
                                config::AdminResponse* response);
  void list_devices_locked(config::AdminResponse* response);
  void admin_loop();
  void serve_admin_connection(int fd);

  std::string config_path_;
  config::Config config_;  // portals, sockets, discovery CHAP: as loaded
  core::TargetCore core_;  // access() is non-const: current_config() casts
  std::unique_ptr<transport::UnixListener> listener_;
  mutable std::mutex mutex_;  // devices_, targets_, and every admin change
  std::map<std::string, DeviceEntry> devices_;
  std::map<std::string, config::Target> targets_;
  std::unique_ptr<PortalSet> portals_;
  int admin_fd_ = -1;
  int admin_stop_fd_ = -1;
  std::thread admin_thread_;
};

}  // namespace scstu::tools
