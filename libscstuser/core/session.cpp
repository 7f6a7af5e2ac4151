#include "core/session.h"

#include <algorithm>
#include <cstdio>

namespace scstu::core {

std::string iscsi_transport_id(std::string_view initiator_name, uint64_t isid) {
  char hex[16];
  std::snprintf(hex, sizeof hex, "%012llx",
                static_cast<unsigned long long>(isid & 0xFFFFFFFFFFFFull));
  std::string id(initiator_name);
  id += ",i,0x";
  id += hex;
  return id;
}

const std::shared_ptr<CommandRoute>* LunTable::find(uint64_t lun) const {
  auto it = std::lower_bound(
      routes.begin(), routes.end(), lun,
      [](const std::shared_ptr<CommandRoute>& r, uint64_t l) { return r->lun() < l; });
  if (it == routes.end() || (*it)->lun() != lun) return nullptr;
  return &*it;
}

Session::Session(uint64_t id, const SessionParams& params) : isid_(params.isid) {
  info_.id = id;
  info_.relative_port = params.relative_port;
  info_.protocol_id = params.protocol_id;
  info_.initiator_name = params.initiator_name;
  info_.target_name = params.target_name;
  if (!params.transport_id.empty()) {
    info_.transport_id = params.transport_id;
  } else if (params.protocol_id == kProtocolIscsi) {
    info_.transport_id = iscsi_transport_id(params.initiator_name, params.isid);
  } else {
    info_.transport_id = params.initiator_name;
  }
  set_table(std::make_shared<const LunTable>());
}

std::shared_ptr<const LunTable> Session::table() const {
  std::lock_guard lock(tables_mutex_);
  return tables_.back();
}

void Session::set_table(std::shared_ptr<const LunTable> table) {
  std::lock_guard lock(tables_mutex_);
  tables_.push_back(std::move(table));
  current_.store(tables_.back().get(), std::memory_order_seq_cst);
  if (readers_.load(std::memory_order_seq_cst) == 0) {
    // No command path can still hold an older table: drop them.
    tables_.erase(tables_.begin(), tables_.end() - 1);
  }
}

std::string Session::group() const { return table()->group; }

std::vector<LunMapping> Session::luns() const {
  std::vector<LunMapping> out;
  auto t = table();
  for (const auto& r : t->routes) {
    out.push_back(LunMapping{r->lun(), r->shared_exported(), r->read_only()});
  }
  return out;
}

void Session::raise_luns_changed(const std::vector<uint64_t>& luns) {
  if (luns.empty()) return;
  std::lock_guard lock(ua_mutex_);
  luns_changed_.insert(luns.begin(), luns.end());
  luns_changed_any_.store(true, std::memory_order_release);
}

bool Session::take_luns_changed(uint64_t lun) {
  if (!luns_changed_any_.load(std::memory_order_acquire)) return false;
  std::lock_guard lock(ua_mutex_);
  if (luns_changed_.erase(lun) == 0) return false;
  if (luns_changed_.empty()) luns_changed_any_.store(false, std::memory_order_release);
  return true;
}

void Session::clear_luns_changed() {
  if (!luns_changed_any_.load(std::memory_order_acquire)) return;
  std::lock_guard lock(ua_mutex_);
  luns_changed_.clear();
  luns_changed_any_.store(false, std::memory_order_release);
}

}  // namespace scstu::core
