#include "handler/session_registry.h"

#include <cstring>
#include <string>

namespace scstu {
namespace {

std::string bounded_string(const char* s, size_t max) { return std::string(s, strnlen(s, max)); }

}  // namespace

const SessionInfo* SessionRegistry::insert_locked(std::unique_ptr<SessionInfo> info,
                                                  bool* replaced) {
  SessionInfo* p = info.get();
  all_.push_back(std::move(info));
  auto [it, inserted] = live_.insert_or_assign(p->id, p);
  *replaced = !inserted;
  version_.fetch_add(1, std::memory_order_release);
  return p;
}

const SessionInfo* SessionRegistry::attach(const scstu_session_info& wire) {
  auto info = std::make_unique<SessionInfo>();
  info->id = wire.session_id;
  info->relative_port = wire.relative_port;
  info->protocol_id = wire.protocol_id;
  info->initiator_name = bounded_string(wire.initiator_name, sizeof(wire.initiator_name));
  info->transport_id = bounded_string(wire.transport_id, sizeof(wire.transport_id));
  info->target_name = bounded_string(wire.target_name, sizeof(wire.target_name));
  const SessionInfo* p;
  {
    std::lock_guard lock(mu_);
    bool replaced;
    p = insert_locked(std::move(info), &replaced);
  }
  handler_->session_attached(*p);
  return p;
}

bool SessionRegistry::detach(uint64_t id) {
  SessionInfo* p;
  {
    std::lock_guard lock(mu_);
    auto it = live_.find(id);
    if (it == live_.end()) return false;
    p = it->second;
    live_.erase(it);
    version_.fetch_add(1, std::memory_order_release);
  }
  handler_->session_detached(*p);
  return true;
}

const SessionInfo* SessionRegistry::find(Cache& cache, uint64_t id) {
  uint64_t v = version_.load(std::memory_order_acquire);
  if (v == cache.version && cache.last && cache.last_id == id) return cache.last;
  if (v != cache.version) {
    std::lock_guard lock(mu_);
    cache.map.clear();
    for (auto& [sid, info] : live_) cache.map.emplace(sid, info);
    cache.version = version_.load(std::memory_order_relaxed);
    cache.last = nullptr;
  }
  if (auto it = cache.map.find(id); it != cache.map.end()) {
    cache.last_id = id;
    cache.last = it->second;
    return it->second;
  }
  // Never attached: the producer does not send session events (or it is the
  // kernel shim's single local initiator).
  const SessionInfo* p;
  {
    std::lock_guard lock(mu_);
    if (auto it = live_.find(id); it != live_.end()) {
      cache.map.emplace(id, it->second);
      return it->second;
    }
    auto info = std::make_unique<SessionInfo>();
    info->id = id;
    info->initiator_name = id == 0 ? "local" : "session-" + std::to_string(id);
    bool replaced;
    p = insert_locked(std::move(info), &replaced);
  }
  handler_->session_attached(*p);
  cache.map.emplace(id, p);
  return p;
}

}  // namespace scstu
