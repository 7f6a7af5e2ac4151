// access_control.h - targets, exported devices and security groups: which
// LUNs an initiator sees on a target (LUN masking), as the SCST README's
// "Access and devices visibility management" section describes.
//
// A security group holds devices with LUNs (optionally READ_ONLY) and
// initiator name patterns (DOS wildcards: '*' any run of characters, '?' one
// character). A session (target, initiator) gets, in this order:
//   1. a group whose name patterns match the initiator (exact names before
//      patterns; among equals, the group created first);
//   2. else the group named "Default_<target name>";
//   3. else the group "Default", which always exists and is empty by default.
// Every group that has devices has LUN 0 ("otherwise initiators won't see
// devices"): a change that would leave a group with LUNs but no LUN 0 is
// refused with a message naming the group.
//
// Thread-safe. Every successful change calls the change listener (the
// TargetCore re-evaluates its sessions and raises REPORTED LUNS DATA HAS
// CHANGED where a session's LUN inventory changed).
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/device.h"
#include "core/exported_device.h"

namespace scstu::core {

inline constexpr std::string_view kDefaultGroup = "Default";
inline constexpr std::string_view kTargetDefaultGroupPrefix = "Default_";
// SAM-5 4.7: single level LUNs up to 255 use peripheral device addressing,
// up to 16383 flat space addressing.
inline constexpr uint64_t kMaxLun = 16383;

// DOS-style pattern match: '*' matches any run of characters (also none), '?'
// exactly one. Everything else matches itself, case-sensitively (iSCSI names
// are normalised to lower case by the initiator, RFC 3722).
bool wildcard_match(std::string_view pattern, std::string_view name);

// The outcome of a configuration change: ok, or an error that names the
// object and the cause.
class [[nodiscard]] ConfigStatus {
 public:
  static ConfigStatus ok() { return ConfigStatus(); }
  static ConfigStatus error(std::string message) { return ConfigStatus(std::move(message)); }
  explicit operator bool() const { return message_.empty(); }
  const std::string& message() const { return message_; }

 private:
  ConfigStatus() = default;
  explicit ConfigStatus(std::string message) : message_(std::move(message)) {}
  std::string message_;
};

// Declarative configuration (config files, scstuadmin), applied at once.
struct LunConfig {
  uint64_t lun = 0;
  std::string device;
  bool read_only = false;
};
struct GroupConfig {
  std::string name;
  std::vector<std::string> initiators;  // name patterns
  std::vector<LunConfig> luns;
};
struct AccessConfig {
  std::vector<std::string> targets;
  std::vector<GroupConfig> groups;  // "Default" may be listed; it always exists
};

// One LUN a session sees.
struct LunMapping {
  uint64_t lun = 0;
  std::shared_ptr<ExportedDevice> device;
  bool read_only = false;
};

// What a session (target, initiator) is given: the group and its LUNs,
// sorted by LUN.
struct GroupView {
  std::string group;
  std::vector<LunMapping> luns;
};

class AccessControl {
 public:
  AccessControl();

  // Targets, by name (e.g. an iSCSI target name).
  ConfigStatus add_target(const std::string& name);
  ConfigStatus remove_target(const std::string& name);
  bool has_target(std::string_view name) const;
  std::vector<std::string> targets() const;

  // Devices, by DeviceInfo::name. A device mapped in a group cannot be removed.
  ConfigStatus add_device(std::shared_ptr<Device> device);
  ConfigStatus remove_device(const std::string& name);
  std::shared_ptr<ExportedDevice> device(std::string_view name) const;
  std::vector<std::shared_ptr<ExportedDevice>> devices() const;

  // Security groups ("add_group" / "del_group"). "Default" cannot be removed.
  ConfigStatus add_group(const std::string& name);
  ConfigStatus remove_group(const std::string& name);
  // "add V_NAME lun [READ_ONLY]": a device once per group, a LUN once per group,
  // LUN 0 first.
  ConfigStatus add_lun(const std::string& group, uint64_t lun, const std::string& device,
                       bool read_only = false);
  // "del V_NAME" / by LUN. LUN 0 goes last.
  ConfigStatus remove_device_from_group(const std::string& group, const std::string& device);
  ConfigStatus remove_lun(const std::string& group, uint64_t lun);
  ConfigStatus clear_luns(const std::string& group);
  ConfigStatus add_initiator(const std::string& group, const std::string& pattern);
  ConfigStatus remove_initiator(const std::string& group, const std::string& pattern);
  ConfigStatus clear_initiators(const std::string& group);

  // Replaces targets and groups with `config` after validating all of it
  // (devices are registered separately, with add_device). On error nothing
  // changes.
  ConfigStatus apply(const AccessConfig& config);
  AccessConfig config() const;

  // The group and LUNs for (target, initiator); nullopt if the target is unknown.
  std::optional<GroupView> resolve(std::string_view target, std::string_view initiator) const;

  // Called (without internal locks held) after every successful change.
  void set_change_listener(std::function<void()> listener);

 private:
  struct Group {
    std::string name;
    uint64_t created = 0;  // creation order, for the lookup's tie-break
    std::vector<std::string> initiators;
    std::map<uint64_t, LunConfig> luns;
  };

  ConfigStatus changed(ConfigStatus status);  // runs the listener on success
  Group* find_group_locked(std::string_view name);
  const Group* match_group_locked(std::string_view target, std::string_view initiator) const;
  static ConfigStatus validate_group(const Group& group);

  mutable std::mutex mutex_;
  std::vector<std::string> targets_;
  std::map<std::string, std::shared_ptr<ExportedDevice>, std::less<>> devices_;
  std::vector<Group> groups_;
  uint64_t next_created_ = 0;
  std::function<void()> listener_;
  std::mutex listener_mutex_;
};

}  // namespace scstu::core
