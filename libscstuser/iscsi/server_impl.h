// server_impl.h - the server's shared state, as connections see it: the core,
// options, the login configuration, and the registry of normal sessions used
// for TSIH allocation and session reinstatement (RFC 7143 6.3.5).
#pragma once

#include <array>
#include <atomic>
#include <condition_variable>
#include <cstdarg>
#include <list>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <tuple>
#include <vector>

#include "iscsi/login.h"
#include "iscsi/server.h"

namespace scstu::iscsi {

class Connection;

// RFC 7143 4.4.3: a session is identified by initiator name, ISID and target.
struct SessionKey {
  std::string initiator;
  std::array<uint8_t, 6> isid{};
  std::string target;
  bool operator<(const SessionKey& o) const {
    return std::tie(initiator, isid, target) < std::tie(o.initiator, o.isid, o.target);
  }
};

class ServerImpl {
 public:
  ServerImpl(core::TargetCore& core, ServerOptions options);
  ~ServerImpl();

  bool start(std::string* error);
  void stop();
  std::vector<PortalAddress> portals() const;
  size_t session_count() const;

  // ---- for connections ----
  core::TargetCore& core() { return core_; }
  const ServerOptions& options() const { return options_; }
  const LoginConfig& login_config() const { return login_config_; }
  uint32_t window() const { return window_; }
  bool stopping() const { return stopping_.load(std::memory_order_acquire); }
  void log(const char* fmt, ...) __attribute__((format(printf, 2, 3)));

  // A normal session is about to enter full feature phase: an older session
  // with the same key is reinstated (its connection is dropped and its tasks
  // aborted; this waits until that is done). Returns the new TSIH, 0 if none
  // is free.
  uint16_t register_session(Connection* conn, const SessionKey& key);
  void unregister_session(Connection* conn);
  // SendTargets (RFC 7143 Appendix C): targets `initiator` may see; `which`
  // is "All" or one target name.
  std::string send_targets(std::string_view initiator, std::string_view which) const;

 private:
  struct Running {
    std::unique_ptr<Connection> conn;
    std::thread thread;
    std::atomic<bool> finished{false};
  };
  struct Registered {
    Connection* conn;
    uint16_t tsih;
  };

  void accept_loop();
  void reap(bool all);

  core::TargetCore& core_;
  ServerOptions options_;
  LoginConfig login_config_;
  uint32_t window_ = 128;
  std::vector<int> listen_fds_;
  std::vector<PortalAddress> bound_;
  int wake_fd_ = -1;
  std::thread acceptor_;
  std::atomic<bool> started_{false};
  std::atomic<bool> stopping_{false};

  mutable std::mutex mutex_;  // guards everything below
  std::condition_variable changed_;
  std::list<Running> running_;
  std::map<SessionKey, Registered> sessions_;
  uint16_t next_tsih_ = 1;
};

}  // namespace scstu::iscsi
