// server.h - the user-space iSCSI target (RFC 7143) over a core::TargetCore.
//
//   core::TargetCore core;                     // targets, devices, groups
//   core.access().add_target("iqn.2026-11.org.example:disk0");
//   ...
//   iscsi::ServerOptions opts;
//   opts.portals = {{"127.0.0.1", 3260}};
//   opts.target_auth["iqn.2026-11.org.example:disk0"].incoming = {{"alice", "secret1234567"}};
//   iscsi::Server server(core, opts);
//   if (!server.start(&error)) ...;            // binds, then serves in its own threads
//   ...
//   server.stop();                             // asks initiators to log out, then drops them
//
// Which targets exist and which LUNs an initiator sees is the core's business
// (AccessControl); the server adds the iSCSI side: portals, authentication,
// the login and full feature phases. One thread accepts; each connection runs
// in its own thread, which also sends the completions devices hand back from
// their threads. The design, the negotiated values and the limits are in
// libscstuser/iscsi/README.md and connection.h.
#pragma once

#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "iscsi/chap.h"
#include "iscsi/session_params.h"

namespace scstu::core {
class TargetCore;
}

namespace scstu::iscsi {

struct PortalAddress {
  // IPv4 or IPv6 address to bind ("::1" or "[::1]"; an IPv6 portal takes
  // IPv6 connections only). portals() reports it without brackets.
  std::string host = "127.0.0.1";
  uint16_t port = 3260;  // 0: the OS picks; portals() tells which

  // "host:port", an IPv6 host in brackets ("[::1]:3260", RFC 3986 3.2.2).
  std::string to_string() const;
};

struct ServerOptions {
  std::vector<PortalAddress> portals{PortalAddress{}};
  // All portals form one portal group (RFC 7143 13.9); it is also the SCSI
  // relative target port identifier of the sessions.
  uint16_t portal_group_tag = 1;
  // CHAP per target (by target name) and for discovery sessions. A target
  // without an entry, or with no incoming credentials, needs no authentication.
  std::map<std::string, AuthConfig> target_auth;
  AuthConfig discovery_auth;
  std::map<std::string, std::string> target_alias;
  // Negotiation limits (MaxRecvDataSegmentLength, MaxBurstLength, ...).
  TargetLimits limits;
  // Connections per session (RFC 7143 13.2 MaxConnections) we agree to at
  // most; the initiator's offer may lower it. 1 turns MC/S off.
  // check_max_connections() says what a user may set.
  uint32_t max_connections = 8;
  // A CmdSN gap between connections of a session (a command still on its
  // way on another connection) is waited for at most this long, then skipped.
  std::chrono::milliseconds cmdsn_gap_timeout{5000};
  // Commands outstanding per session: the CmdSN window. Capped by the core's
  // FlowLimits::per_session.
  uint32_t queue_depth = 128;
  // Keepalive: a NOP-In ping after this much silence, and the connection is
  // dropped when nothing arrives for `nop_timeout` after it. 0 disables.
  std::chrono::milliseconds nop_interval{10000};
  std::chrono::milliseconds nop_timeout{15000};
  // A login that does not complete in this time is dropped.
  std::chrono::milliseconds login_timeout{15000};
  // stop(): how long initiators get to log out after the Asynchronous
  // Message asking them to.
  std::chrono::milliseconds logout_grace{2000};
  // Log lines (connection drops, login failures) go to stderr when set.
  bool log = true;
};

// The bounds of the session options a user sets (fileio_tgt's command line,
// the daemon's configuration): "" or why `value` is refused; the caller
// names the option. MaxConnections: 1..64 (RFC 7143 13.2 allows 65535, but
// each connection is a thread with a 512 KiB receive buffer and its own task
// pool). CmdSN gap timeout: 1..600000 ms (a gap is a command lost on another
// connection; the initiator's own command timeout is far shorter than 10 min).
inline constexpr uint32_t kMaxConnectionsLimit = 64;
inline constexpr uint32_t kMaxCmdsnGapTimeoutMs = 600000;
std::string check_max_connections(uint64_t value);
std::string check_cmdsn_gap_timeout_ms(uint64_t value);

// How far the accepted connections got, and where the accepting thread is:
// tells a connection that was accepted but never served (its thread not
// created, created but not running, running but not reading) from one that
// is stuck inside the protocol. Counts since start().
struct ConnectionCounters {
  uint64_t accepted = 0;         // sockets accepted (a Connection made for each)
  uint64_t threads_started = 0;  // their threads created (std::thread returned)
  uint64_t runs_entered = 0;     // threads that began to run the connection
  uint64_t runs_finished = 0;    // ... and finished it (socket shut down, tasks released)
  uint64_t reaped = 0;           // joined and destroyed (socket closed)
  uint64_t thread_failures = 0;  // no thread could be created: the socket was closed
  uint64_t accept_failures = 0;  // accept() failed although poll() said a portal was ready
  int last_accept_errno = 0;     // ... and why, the last time
  // The acceptor's current step ("polling", "reaping", "accepting",
  // "constructing", "starting thread", "stopped") and how long it has been in it.
  std::string acceptor_step;
  std::chrono::milliseconds acceptor_step_for{0};
  // The longest poll() of the acceptor (its timeout is 1 s: longer means the
  // thread was not run when it expired) and the longest of its other steps.
  std::chrono::milliseconds acceptor_longest_poll{0};
  std::chrono::milliseconds acceptor_longest_work{0};
};

class ServerImpl;

class Server {
 public:
  Server(core::TargetCore& core, ServerOptions options);
  ~Server();  // stop()
  Server(const Server&) = delete;
  Server& operator=(const Server&) = delete;

  // Bind every portal and start serving. False (with `error` naming the
  // portal and the cause) if a portal cannot be bound; nothing runs then.
  bool start(std::string* error = nullptr);
  // Ask initiators to log out (Asynchronous Message), wait logout_grace, drop
  // the rest, close every session in the core. Idempotent.
  void stop();

  // The bound portals (port 0 resolved to the port the OS picked).
  std::vector<PortalAddress> portals() const;
  // Normal sessions in full feature phase now.
  size_t session_count() const;
  // Replace one target's CHAP settings (ServerOptions::target_auth) for
  // logins that start from now on; sessions already logged in keep going.
  // No incoming credentials: no authentication. Thread-safe.
  void set_target_auth(const std::string& target, const AuthConfig& auth);
  // A snapshot of the connection counters (any thread, lock free).
  ConnectionCounters connection_counters() const;

 private:
  std::unique_ptr<ServerImpl> impl_;
};

}  // namespace scstu::iscsi
