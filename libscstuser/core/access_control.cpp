#include "core/access_control.h"

#include <algorithm>
#include <set>

namespace scstu::core {

bool wildcard_match(std::string_view pattern, std::string_view name) {
  // Iterative matcher with single-star backtracking: linear space, O(p*n)
  // worst case, no recursion (patterns come from configuration, names from
  // the network).
  size_t p = 0, n = 0;
  size_t star = std::string_view::npos, resume = 0;
  while (n < name.size()) {
    // '*' first: it is a wildcard even where the name has a '*' too (a
    // literal match would use it up and lose the run it stands for).
    if (p < pattern.size() && pattern[p] == '*') {
      star = p++;
      resume = n;
    } else if (p < pattern.size() && (pattern[p] == '?' || pattern[p] == name[n])) {
      ++p;
      ++n;
    } else if (star != std::string_view::npos) {
      p = star + 1;
      n = ++resume;
    } else {
      return false;
    }
  }
  while (p < pattern.size() && pattern[p] == '*') ++p;
  return p == pattern.size();
}

namespace {

bool has_wildcards(std::string_view pattern) {
  return pattern.find_first_of("*?") != std::string_view::npos;
}

// Names travel in config files, scstuadmin requests and logs: refuse the
// characters that would break them.
ConfigStatus check_name(std::string_view what, std::string_view name) {
  if (name.empty()) return ConfigStatus::error(std::string(what) + " name is empty");
  if (name.size() > 255) {
    return ConfigStatus::error(std::string(what) + " name '" + std::string(name.substr(0, 32)) +
                               "...' is longer than 255 characters");
  }
  for (char c : name) {
    if (static_cast<unsigned char>(c) <= ' ' || c == 0x7F) {
      return ConfigStatus::error(std::string(what) + " name '" + std::string(name) +
                                 "' contains a space or control character");
    }
  }
  return ConfigStatus::ok();
}

std::string lun_zero_error(std::string_view group) {
  return "security group '" + std::string(group) +
         "' has LUNs but no LUN 0: map a device as LUN 0 first (LUN numbering must start at 0, "
         "otherwise initiators won't see the group's devices)";
}

}  // namespace

AccessControl::AccessControl() {
  groups_.push_back(Group{std::string(kDefaultGroup), next_created_++, {}, {}});
}

ConfigStatus AccessControl::changed(ConfigStatus status) {
  if (status) {
    std::function<void()> listener;
    {
      std::lock_guard lock(listener_mutex_);
      listener = listener_;
    }
    if (listener) listener();
  }
  return status;
}

void AccessControl::set_change_listener(std::function<void()> listener) {
  std::lock_guard lock(listener_mutex_);
  listener_ = std::move(listener);
}

// ---- targets ---------------------------------------------------------------

ConfigStatus AccessControl::add_target(const std::string& name) {
  if (auto st = check_name("target", name); !st) return st;
  {
    std::lock_guard lock(mutex_);
    if (std::find(targets_.begin(), targets_.end(), name) != targets_.end()) {
      return ConfigStatus::error("target '" + name + "' already exists");
    }
    targets_.push_back(name);
  }
  return changed(ConfigStatus::ok());
}

ConfigStatus AccessControl::remove_target(const std::string& name) {
  {
    std::lock_guard lock(mutex_);
    auto it = std::find(targets_.begin(), targets_.end(), name);
    if (it == targets_.end()) return ConfigStatus::error("target '" + name + "' does not exist");
    targets_.erase(it);
  }
  return changed(ConfigStatus::ok());
}

bool AccessControl::has_target(std::string_view name) const {
  std::lock_guard lock(mutex_);
  return std::find(targets_.begin(), targets_.end(), name) != targets_.end();
}

std::vector<std::string> AccessControl::targets() const {
  std::lock_guard lock(mutex_);
  return targets_;
}

// ---- devices ---------------------------------------------------------------

ConfigStatus AccessControl::add_device(std::shared_ptr<Device> device) {
  if (!device) return ConfigStatus::error("add_device: no device given");
  const std::string name = device->info().name;
  if (auto st = check_name("device", name); !st) return st;
  std::lock_guard lock(mutex_);
  if (devices_.count(name)) {
    return ConfigStatus::error("device '" + name + "' is already registered");
  }
  devices_.emplace(name, std::make_shared<ExportedDevice>(std::move(device)));
  // No listener: an unmapped device changes no session's inventory.
  return ConfigStatus::ok();
}

ConfigStatus AccessControl::remove_device(const std::string& name) {
  std::lock_guard lock(mutex_);
  auto it = devices_.find(name);
  if (it == devices_.end()) return ConfigStatus::error("device '" + name + "' is not registered");
  for (const Group& g : groups_) {
    for (const auto& [lun, m] : g.luns) {
      if (m.device == name) {
        return ConfigStatus::error("device '" + name + "' is still mapped as LUN " +
                                   std::to_string(lun) + " in security group '" + g.name +
                                   "': remove it from the group first");
      }
    }
  }
  devices_.erase(it);
  return ConfigStatus::ok();
}

std::shared_ptr<ExportedDevice> AccessControl::device(std::string_view name) const {
  std::lock_guard lock(mutex_);
  auto it = devices_.find(name);
  return it == devices_.end() ? nullptr : it->second;
}

std::vector<std::shared_ptr<ExportedDevice>> AccessControl::devices() const {
  std::lock_guard lock(mutex_);
  std::vector<std::shared_ptr<ExportedDevice>> out;
  for (const auto& [name, d] : devices_) out.push_back(d);
  return out;
}

// ---- groups ----------------------------------------------------------------

AccessControl::Group* AccessControl::find_group_locked(std::string_view name) {
  for (Group& g : groups_) {
    if (g.name == name) return &g;
  }
  return nullptr;
}

ConfigStatus AccessControl::add_group(const std::string& name) {
  if (auto st = check_name("security group", name); !st) return st;
  {
    std::lock_guard lock(mutex_);
    if (find_group_locked(name)) {
      return ConfigStatus::error("security group '" + name + "' already exists");
    }
    groups_.push_back(Group{name, next_created_++, {}, {}});
  }
  return changed(ConfigStatus::ok());
}

ConfigStatus AccessControl::remove_group(const std::string& name) {
  {
    std::lock_guard lock(mutex_);
    if (name == kDefaultGroup) {
      return ConfigStatus::error("security group 'Default' always exists and cannot be removed");
    }
    auto it = std::find_if(groups_.begin(), groups_.end(),
                           [&](const Group& g) { return g.name == name; });
    if (it == groups_.end()) {
      return ConfigStatus::error("security group '" + name + "' does not exist");
    }
    groups_.erase(it);
  }
  return changed(ConfigStatus::ok());
}

ConfigStatus AccessControl::add_lun(const std::string& group, uint64_t lun,
                                    const std::string& device, bool read_only) {
  {
    std::lock_guard lock(mutex_);
    Group* g = find_group_locked(group);
    if (!g) return ConfigStatus::error("security group '" + group + "' does not exist");
    if (!devices_.count(device)) {
      return ConfigStatus::error("device '" + device + "' is not registered (group '" + group +
                                 "')");
    }
    if (lun > kMaxLun) {
      return ConfigStatus::error("LUN " + std::to_string(lun) + " for device '" + device +
                                 "' in group '" + group + "' is above the maximum " +
                                 std::to_string(kMaxLun));
    }
    if (auto it = g->luns.find(lun); it != g->luns.end()) {
      return ConfigStatus::error("LUN " + std::to_string(lun) + " in security group '" + group +
                                 "' is already mapped to device '" + it->second.device + "'");
    }
    for (const auto& [l, m] : g->luns) {
      if (m.device == device) {
        return ConfigStatus::error("device '" + device + "' is already LUN " + std::to_string(l) +
                                   " in security group '" + group + "'");
      }
    }
    if (lun != 0 && !g->luns.count(0)) return ConfigStatus::error(lun_zero_error(group));
    g->luns.emplace(lun, LunConfig{lun, device, read_only});
  }
  return changed(ConfigStatus::ok());
}

ConfigStatus AccessControl::remove_lun(const std::string& group, uint64_t lun) {
  {
    std::lock_guard lock(mutex_);
    Group* g = find_group_locked(group);
    if (!g) return ConfigStatus::error("security group '" + group + "' does not exist");
    auto it = g->luns.find(lun);
    if (it == g->luns.end()) {
      return ConfigStatus::error("LUN " + std::to_string(lun) +
                                 " is not mapped in security group '" + group + "'");
    }
    if (lun == 0 && g->luns.size() > 1) {
      return ConfigStatus::error("security group '" + group +
                                 "': LUN 0 cannot be removed while other LUNs are mapped "
                                 "(remove them first, or clear the group)");
    }
    g->luns.erase(it);
  }
  return changed(ConfigStatus::ok());
}

ConfigStatus AccessControl::remove_device_from_group(const std::string& group,
                                                     const std::string& device) {
  uint64_t lun = 0;
  {
    std::lock_guard lock(mutex_);
    Group* g = find_group_locked(group);
    if (!g) return ConfigStatus::error("security group '" + group + "' does not exist");
    auto it = std::find_if(g->luns.begin(), g->luns.end(),
                           [&](const auto& e) { return e.second.device == device; });
    if (it == g->luns.end()) {
      return ConfigStatus::error("device '" + device + "' is not in security group '" + group +
                                 "'");
    }
    lun = it->first;
  }
  return remove_lun(group, lun);
}

ConfigStatus AccessControl::clear_luns(const std::string& group) {
  {
    std::lock_guard lock(mutex_);
    Group* g = find_group_locked(group);
    if (!g) return ConfigStatus::error("security group '" + group + "' does not exist");
    g->luns.clear();
  }
  return changed(ConfigStatus::ok());
}

ConfigStatus AccessControl::add_initiator(const std::string& group, const std::string& pattern) {
  if (auto st = check_name("initiator", pattern); !st) return st;
  {
    std::lock_guard lock(mutex_);
    Group* g = find_group_locked(group);
    if (!g) return ConfigStatus::error("security group '" + group + "' does not exist");
    if (std::find(g->initiators.begin(), g->initiators.end(), pattern) != g->initiators.end()) {
      return ConfigStatus::error("initiator '" + pattern + "' is already in security group '" +
                                 group + "'");
    }
    g->initiators.push_back(pattern);
  }
  return changed(ConfigStatus::ok());
}

ConfigStatus AccessControl::remove_initiator(const std::string& group, const std::string& pattern) {
  {
    std::lock_guard lock(mutex_);
    Group* g = find_group_locked(group);
    if (!g) return ConfigStatus::error("security group '" + group + "' does not exist");
    auto it = std::find(g->initiators.begin(), g->initiators.end(), pattern);
    if (it == g->initiators.end()) {
      return ConfigStatus::error("initiator '" + pattern + "' is not in security group '" + group +
                                 "'");
    }
    g->initiators.erase(it);
  }
  return changed(ConfigStatus::ok());
}

ConfigStatus AccessControl::clear_initiators(const std::string& group) {
  {
    std::lock_guard lock(mutex_);
    Group* g = find_group_locked(group);
    if (!g) return ConfigStatus::error("security group '" + group + "' does not exist");
    g->initiators.clear();
  }
  return changed(ConfigStatus::ok());
}

// ---- whole configurations --------------------------------------------------

ConfigStatus AccessControl::validate_group(const Group& g) {
  if (!g.luns.empty() && !g.luns.count(0)) return ConfigStatus::error(lun_zero_error(g.name));
  return ConfigStatus::ok();
}

ConfigStatus AccessControl::apply(const AccessConfig& config) {
  std::vector<std::string> targets;
  std::vector<Group> groups;
  {
    std::lock_guard lock(mutex_);
    std::set<std::string> seen_targets;
    for (const std::string& t : config.targets) {
      if (auto st = check_name("target", t); !st) return st;
      if (!seen_targets.insert(t).second) {
        return ConfigStatus::error("target '" + t + "' is listed twice");
      }
      targets.push_back(t);
    }
    bool has_default = false;
    uint64_t created = next_created_;
    for (const GroupConfig& gc : config.groups) {
      if (auto st = check_name("security group", gc.name); !st) return st;
      for (const Group& g : groups) {
        if (g.name == gc.name) {
          return ConfigStatus::error("security group '" + gc.name + "' is listed twice");
        }
      }
      Group g{gc.name, created++, {}, {}};
      has_default = has_default || gc.name == kDefaultGroup;
      for (const std::string& p : gc.initiators) {
        if (auto st = check_name("initiator", p); !st) return st;
        if (std::find(g.initiators.begin(), g.initiators.end(), p) != g.initiators.end()) {
          return ConfigStatus::error("initiator '" + p + "' is listed twice in security group '" +
                                     gc.name + "'");
        }
        g.initiators.push_back(p);
      }
      std::set<std::string> group_devices;
      for (const LunConfig& l : gc.luns) {
        if (!devices_.count(l.device)) {
          return ConfigStatus::error("device '" + l.device + "' (LUN " + std::to_string(l.lun) +
                                     " of security group '" + gc.name + "') is not registered");
        }
        if (l.lun > kMaxLun) {
          return ConfigStatus::error("LUN " + std::to_string(l.lun) + " of security group '" +
                                     gc.name + "' is above the maximum " + std::to_string(kMaxLun));
        }
        if (!g.luns.emplace(l.lun, l).second) {
          return ConfigStatus::error("LUN " + std::to_string(l.lun) +
                                     " is mapped twice in security group '" + gc.name + "'");
        }
        if (!group_devices.insert(l.device).second) {
          return ConfigStatus::error("device '" + l.device +
                                     "' is mapped twice in security group '" + gc.name + "'");
        }
      }
      if (auto st = validate_group(g); !st) return st;
      groups.push_back(std::move(g));
    }
    if (!has_default) {
      groups.insert(groups.begin(), Group{std::string(kDefaultGroup), created++, {}, {}});
    }
    next_created_ = created;
    targets_ = std::move(targets);
    groups_ = std::move(groups);
  }
  return changed(ConfigStatus::ok());
}

AccessConfig AccessControl::config() const {
  std::lock_guard lock(mutex_);
  AccessConfig out;
  out.targets = targets_;
  for (const Group& g : groups_) {
    GroupConfig gc{g.name, g.initiators, {}};
    for (const auto& [lun, l] : g.luns) gc.luns.push_back(l);
    out.groups.push_back(std::move(gc));
  }
  return out;
}

// ---- lookup ----------------------------------------------------------------

const AccessControl::Group* AccessControl::match_group_locked(std::string_view target,
                                                              std::string_view initiator) const {
  // 1. A group naming the initiator: an exact name wins over a pattern, then
  //    the group created first.
  const Group* by_pattern = nullptr;
  for (const Group& g : groups_) {
    for (const std::string& p : g.initiators) {
      if (!has_wildcards(p)) {
        if (p == initiator) return &g;
      } else if (!by_pattern && wildcard_match(p, initiator)) {
        by_pattern = &g;
      }
    }
  }
  if (by_pattern) return by_pattern;
  // 2. Default_<target name>.
  for (const Group& g : groups_) {
    if (g.name.size() == kTargetDefaultGroupPrefix.size() + target.size() &&
        g.name.starts_with(kTargetDefaultGroupPrefix) &&
        std::string_view(g.name).substr(kTargetDefaultGroupPrefix.size()) == target) {
      return &g;
    }
  }
  // 3. Default.
  for (const Group& g : groups_) {
    if (g.name == kDefaultGroup) return &g;
  }
  return nullptr;
}

std::optional<GroupView> AccessControl::resolve(std::string_view target,
                                                std::string_view initiator) const {
  std::lock_guard lock(mutex_);
  if (std::find(targets_.begin(), targets_.end(), target) == targets_.end()) return std::nullopt;
  GroupView view;
  const Group* g = match_group_locked(target, initiator);
  if (!g) return view;  // unreachable: Default always exists
  view.group = g->name;
  for (const auto& [lun, l] : g->luns) {
    auto it = devices_.find(l.device);
    if (it == devices_.end()) continue;  // cannot happen: mapped devices are not removable
    view.luns.push_back(LunMapping{lun, it->second, l.read_only});
  }
  return view;
}

}  // namespace scstu::core
