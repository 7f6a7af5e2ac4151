// session_registry.h - the I_T nexuses a handler knows about (from session
// attach entries), shared by all queue threads. A SessionInfo stays at one
// address from attach until the registry is destroyed, so commands may point
// at it after a detach raced with them.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <mutex>
#include <unordered_map>
#include <vector>

#include "handler/command.h"

namespace scstu {

class SessionRegistry {
 public:
  // A queue thread's lock-free view, refreshed when the registry changes.
  struct Cache {
    uint64_t version = ~0ull;
    std::unordered_map<uint64_t, const SessionInfo*> map;
    // The last session looked up: consecutive commands mostly share one.
    uint64_t last_id = 0;
    const SessionInfo* last = nullptr;
  };

  explicit SessionRegistry(LowLevelHandler* handler) : handler_(handler) {}

  // Records (or replaces) a session and tells the handler.
  const SessionInfo* attach(const scstu_session_info& wire);
  // Forgets a session and tells the handler. False if unknown.
  bool detach(uint64_t id);
  // The session for a command: cached lookup; an id never attached gets a
  // synthesized SessionInfo ("local" for the kernel shim's id 0) so that
  // CommandRequest::session is never null.
  const SessionInfo* find(Cache& cache, uint64_t id);

 private:
  const SessionInfo* insert_locked(std::unique_ptr<SessionInfo> info, bool* replaced);

  LowLevelHandler* handler_;
  std::mutex mu_;
  std::atomic<uint64_t> version_{0};
  std::unordered_map<uint64_t, SessionInfo*> live_;
  std::vector<std::unique_ptr<SessionInfo>> all_;  // never shrinks while serving
};

}  // namespace scstu
