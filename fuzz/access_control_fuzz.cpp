// Fuzz target: access control (core/access_control.*): the DOS wildcard
// matcher on initiator names from the network, checked against a reference
// matcher, and sequences of configuration changes (config file, scstuadmin)
// followed by the per-session lookup. Input: [pattern len][pattern][name len]
// [name], then operations, each [op][args...] with strings as [len][bytes].
// Invariants: the matcher agrees with the reference; after every change a
// group with LUNs has LUN 0 and each LUN and device once; a session's view
// is sorted by LUN and is the group the lookup order names; config() applied
// to a fresh AccessControl gives the same configuration.
#include <cstdint>
#include <cstdlib>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "core/access_control.h"
#include "core/local_device.h"
#include "scsi/logical_unit.h"

using namespace scstu;

namespace {

// Textbook dynamic programming matcher: the oracle.
bool reference_match(std::string_view p, std::string_view n) {
  std::vector<uint8_t> row(n.size() + 1, 0), next(n.size() + 1);
  row[0] = 1;
  for (char c : p) {
    next.assign(n.size() + 1, 0);
    if (c == '*') {
      uint8_t any = 0;
      for (size_t j = 0; j <= n.size(); ++j) next[j] = any = any | row[j];
    } else {
      for (size_t j = 1; j <= n.size(); ++j) next[j] = row[j - 1] && (c == '?' || c == n[j - 1]);
    }
    row.swap(next);
  }
  return row[n.size()];
}

struct Reader {
  const uint8_t* p;
  size_t left;
  bool empty() const { return left == 0; }
  uint8_t byte() {
    if (left == 0) return 0;
    --left;
    return *p++;
  }
  std::string str() {
    size_t n = std::min<size_t>(byte() % 48, left);
    std::string s(reinterpret_cast<const char*>(p), n);
    p += n;
    left -= n;
    return s;
  }
};

const char* kNames[] = {"d0", "d1", "d2"};
const char* kTargets[] = {"iqn.t1", "iqn.t2"};

std::vector<std::shared_ptr<core::Device>>& devices() {
  static auto* d = [] {
    auto* v = new std::vector<std::shared_ptr<core::Device>>;
    for (const char* name : kNames) {
      scsi::LogicalUnitConfig cfg;
      cfg.device_type = 0x01;
      auto lu = std::make_shared<scsi::LogicalUnit>(cfg, nullptr);
      core::LocalDeviceOptions o;
      o.info.name = name;
      o.info.device_type = 0x01;
      v->push_back(std::make_shared<core::LocalDevice>(lu, o));
    }
    return v;
  }();
  return *d;
}

void check(core::AccessControl& acl, const std::string& initiator) {
  const core::AccessConfig cfg = acl.config();
  for (const auto& g : cfg.groups) {
    if (g.luns.empty()) continue;
    bool lun0 = false;
    for (size_t i = 0; i < g.luns.size(); ++i) {
      lun0 |= g.luns[i].lun == 0;
      for (size_t j = i + 1; j < g.luns.size(); ++j) {
        if (g.luns[i].lun == g.luns[j].lun || g.luns[i].device == g.luns[j].device) std::abort();
      }
    }
    if (!lun0) std::abort();
  }
  for (const std::string& t : acl.targets()) {
    auto view = acl.resolve(t, initiator);
    if (!view) std::abort();
    for (size_t i = 1; i < view->luns.size(); ++i) {
      if (view->luns[i - 1].lun >= view->luns[i].lun) std::abort();
    }
    // The group it names is the one the lookup order picks.
    const core::GroupConfig* exact = nullptr;
    const core::GroupConfig* pattern = nullptr;
    const core::GroupConfig* target_default = nullptr;
    for (const auto& g : cfg.groups) {
      for (const auto& p : g.initiators) {
        if (p.find_first_of("*?") == std::string::npos) {
          if (p == initiator && !exact) exact = &g;
        } else if (reference_match(p, initiator) && !pattern) {
          pattern = &g;
        }
      }
      if (g.name == "Default_" + t) target_default = &g;
    }
    const std::string expected = exact            ? exact->name
                                 : pattern        ? pattern->name
                                 : target_default ? target_default->name
                                                  : std::string(core::kDefaultGroup);
    if (view->group != expected) std::abort();
  }
  core::AccessControl fresh;
  for (auto& d : devices()) (void)fresh.add_device(d);
  if (!fresh.apply(cfg)) std::abort();
  const core::AccessConfig round = fresh.config();
  if (round.targets != cfg.targets || round.groups.size() != cfg.groups.size()) std::abort();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  Reader in{data, size};
  const std::string pattern = in.str(), name = in.str();
  if (core::wildcard_match(pattern, name) != reference_match(pattern, name)) std::abort();

  core::AccessControl acl;
  for (auto& d : devices()) {
    if (!acl.add_device(d)) std::abort();
  }
  std::string initiator = name;
  for (int ops = 0; ops < 64 && !in.empty(); ++ops) {
    const uint8_t op = in.byte();
    const std::string group = (op & 0x80) ? "Default_" + std::string(kTargets[op & 1]) : in.str();
    switch (op % 13) {
      case 0:
        (void)acl.add_group(group);
        break;
      case 1:
        (void)acl.remove_group(group);
        break;
      case 2: {
        const uint64_t lun = in.byte() % 4 == 0 ? 0 : in.byte();
        (void)acl.add_lun(group, lun, kNames[in.byte() % 3], in.byte() & 1);
        break;
      }
      case 3:
        (void)acl.remove_lun(group, in.byte() % 4);
        break;
      case 4:
        (void)acl.remove_device_from_group(group, kNames[in.byte() % 3]);
        break;
      case 5:
        (void)acl.clear_luns(group);
        break;
      case 6:
        (void)acl.add_initiator(group, in.str());
        break;
      case 7:
        (void)acl.remove_initiator(group, in.str());
        break;
      case 8:
        (void)acl.clear_initiators(group);
        break;
      case 9:
        (void)acl.add_target(kTargets[in.byte() & 1]);
        break;
      case 10:
        (void)acl.remove_target(kTargets[in.byte() & 1]);
        break;
      case 11:
        initiator = in.str();
        break;
      case 12:
        (void)acl.remove_device(kNames[in.byte() % 3]);
        break;
    }
    check(acl, initiator);
  }
  return 0;
}
