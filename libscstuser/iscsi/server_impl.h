// server_impl.h - the server's shared state, as connections see it: the core,
// options, the login configuration, and the registry of sessions: TSIH
// allocation, session reinstatement (RFC 7143 6.3.5), connections joining and
// leaving a session (MC/S, 6.3.4) and connection reinstatement by CID.
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
#include "iscsi/session.h"

namespace scstu::iscsi {

class Connection;
struct AbortMark;

// RFC 7143 13.8 TargetAddress of a portal: "host:port,tpgt", an IPv6 host in
// brackets; a wildcard portal is reported as `local_host` (the address the
// initiator reached), which it can connect to, unlike 0.0.0.0.
std::string target_address(const PortalAddress& portal, const std::string& local_host,
                           uint16_t portal_group_tag);

class ServerImpl {
 public:
  ServerImpl(core::TargetCore& core, ServerOptions options);
  ~ServerImpl();

  bool start(std::string* error);
  void stop();
  std::vector<PortalAddress> portals() const;
  size_t session_count() const;
  void set_target_auth(const std::string& target, const AuthConfig& auth);
  ConnectionCounters connection_counters() const;

  // ---- for connections ----
  core::TargetCore& core() { return core_; }
  const ServerOptions& options() const { return options_; }
  const LoginConfig& login_config() const { return login_config_; }
  uint32_t window() const { return window_; }
  bool stopping() const { return stopping_.load(std::memory_order_acquire); }
  void log(const char* fmt, ...) __attribute__((format(printf, 2, 3)));

  // A leading login is about to enter full feature phase: a new session
  // with `conn` as its first connection. An older session with the same key
  // is reinstated (its connections are dropped and their tasks aborted; this
  // waits until that is done). nullptr if no TSIH is free. The caller opens
  // the I_T nexus, then publish_session() lets other connections join.
  std::shared_ptr<Session> create_session(Connection* conn, uint16_t cid, const SessionKey& key,
                                          const SessionParams& params, uint32_t first_cmdsn);
  void publish_session(Session& s, std::shared_ptr<core::Session> nexus);
  // A login with a non-zero TSIH: may it join (checked early in the login)?
  LoginStatus can_join(uint16_t tsih, uint16_t cid, const SessionKey& key) const;
  // Join at the end of the login. A member with the same CID is dropped
  // first (connection reinstatement: its tasks are aborted, ERL 0) and
  // waited for. Success sets *out.
  LoginStatus join_session(Connection* conn, uint16_t cid, const SessionKey& key, uint16_t tsih,
                           std::shared_ptr<Session>* out);
  // `conn` leaves the full feature phase. True if it was the session's last
  // connection: the session has ended and the caller closes the I_T nexus.
  bool leave_session(Connection* conn, Session& s);
  // `conn` has finished its tasks (reinstatements wait for this).
  void connection_finished(Connection* conn, Session& s);
  // Logout: close every other connection of the session (reason 0), or the
  // one with `cid` (reason 1 for another connection; false if none has it).
  void close_other_connections(Session& s, Connection* except);
  bool close_connection(Session& s, uint16_t cid);
  // MC/S TMF: post `mark` to every member of `s` but `from`; how many.
  uint32_t post_abort(Session& s, Connection* from, const AbortMark& mark);
  // SendTargets (RFC 7143 Appendix C): targets `initiator` may see; `which`
  // is "All" or one target name.
  // `local_host`: the address the asking connection arrived on, reported
  // for a wildcard portal (0.0.0.0, ::) instead of the wildcard.
  std::string send_targets(std::string_view initiator, std::string_view which,
                           const std::string& local_host) const;

 private:
  struct Running {
    std::unique_ptr<Connection> conn;
    std::thread thread;
    std::atomic<bool> finished{false};
  };

  // What the acceptor does now (ConnectionCounters::acceptor_step).
  enum class Step : uint8_t { kPolling, kReaping, kAccepting, kConstructing, kStarting, kStopped };

  void accept_loop();
  void serve(int fd, std::string name);  // mutex_ held
  Session* find_tsih(uint16_t tsih) const;  // mutex_ held
  void reap(bool all);
  void set_step(Step s);

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

  // ConnectionCounters: per connection, not per command.
  std::atomic<uint64_t> accepted_{0}, threads_started_{0}, runs_entered_{0}, runs_finished_{0},
      reaped_{0}, thread_failures_{0}, accept_failures_{0};
  std::atomic<int> last_accept_errno_{0};
  std::atomic<Step> step_{Step::kPolling};
  std::atomic<int64_t> step_since_ns_{0};  // steady_clock
  std::atomic<int64_t> longest_poll_ns_{0}, longest_work_ns_{0};

  // Per-target CHAP, replaceable at runtime (set_target_auth): a login keeps
  // the settings it started with alive through LoginTarget::auth_owner.
  mutable std::mutex auth_mutex_;
  std::map<std::string, std::shared_ptr<const AuthConfig>> target_auth_;

  mutable std::mutex mutex_;  // guards everything below
  std::condition_variable changed_;
  std::list<Running> running_;
  std::map<SessionKey, std::shared_ptr<Session>> sessions_;
  uint16_t next_tsih_ = 1;
};

}  // namespace scstu::iscsi
