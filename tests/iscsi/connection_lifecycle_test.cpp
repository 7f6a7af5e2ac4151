// Connection lifecycle in the server (iscsi/server.cpp accept_loop, reap):
// many short connections from several threads at once, each ended at a
// different moment (before a byte, mid-header, after a login, after garbage,
// by a reset), every one of them closed by the target once the initiator is
// done, and the connection counters (Server::connection_counters) account
// for each: accepted = thread started = run entered = finished = reaped.
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstring>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "core/target_core.h"
#include "iscsi/pdu.h"
#include "iscsi/server.h"
#include "iscsi/text_keys.h"

namespace scstu::iscsi {
namespace {

constexpr const char* kTarget = "iqn.2026-11.test:lifecycle";

std::string discovery_login() {
  std::string text;
  append_pair(text, "InitiatorName", "iqn.2026-11.test:i");
  append_pair(text, "SessionType", "Discovery");
  append_pair(text, "HeaderDigest", "None");
  append_pair(text, "DataDigest", "None");
  LoginPdu l;
  l.transit = true;
  l.csg = 1;
  l.nsg = 3;
  l.isid = {0x80, 0x00, 0x02, 0x3D, 0x00, 0x01};
  l.itt = 1;
  Bhs h;
  l.encode(h, Opcode::kLoginRequest, static_cast<uint32_t>(text.size()));
  std::string out(reinterpret_cast<const char*>(h.b.data()), kBhsSize);
  out += text;
  out.append(pad4(static_cast<uint32_t>(text.size())), '\0');
  return out;
}

int connect_to(uint16_t port) {
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(port);
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (fd >= 0 && connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0) return fd;
  if (fd >= 0) close(fd);
  return -1;
}

// Reads (and discards) until the target closes; false if it has not after
// `limit` (a hang, not a timing check: the target takes milliseconds).
bool closed_by_target(int fd, std::chrono::seconds limit) {
  auto deadline = std::chrono::steady_clock::now() + limit;
  char buf[4096];
  for (;;) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        deadline - std::chrono::steady_clock::now());
    pollfd p{fd, POLLIN, 0};
    if (left.count() <= 0 || poll(&p, 1, static_cast<int>(left.count())) <= 0) return false;
    ssize_t n = recv(fd, buf, sizeof buf, MSG_DONTWAIT);
    if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR)) return true;
  }
}

TEST(ConnectionLifecycle, ShortConnectionsFromManyThreadsAreAllServedClosedAndReaped) {
  core::TargetCore core;
  ASSERT_TRUE(core.access().add_target(kTarget));
  ServerOptions opts;
  opts.portals = {PortalAddress{"127.0.0.1", 0}};
  opts.nop_interval = std::chrono::milliseconds(0);
  opts.login_timeout = std::chrono::milliseconds(2000);
  opts.log = false;
  Server server(core, opts);
  std::string error;
  ASSERT_TRUE(server.start(&error)) << error;
  const uint16_t port = server.portals().at(0).port;
  const std::string login = discovery_login();

  constexpr int kThreads = 4, kEach = 60;
  std::atomic<int> connected{0}, hung{0};
  std::vector<std::thread> clients;
  for (int t = 0; t < kThreads; ++t) {
    clients.emplace_back([&, t] {
      std::mt19937 rng(static_cast<unsigned>(t) * 7919u + 1);
      for (int i = 0; i < kEach; ++i) {
        int fd = connect_to(port);
        if (fd < 0) continue;
        ++connected;
        switch (rng() % 6) {
          case 0:  // gone before the first byte
            close(fd);
            continue;
          case 1: {  // reset mid-header
            (void)!send(fd, login.data(), 1 + rng() % (kBhsSize - 1), MSG_NOSIGNAL);
            linger l{1, 0};
            setsockopt(fd, SOL_SOCKET, SO_LINGER, &l, sizeof l);
            close(fd);
            continue;
          }
          case 2:  // half a header, then EOF
            (void)!send(fd, login.data(), kBhsSize / 2, MSG_NOSIGNAL);
            break;
          case 3:  // a whole login, then EOF in full feature phase
            (void)!send(fd, login.data(), login.size(), MSG_NOSIGNAL);
            break;
          case 4: {  // garbage: not a Login Request
            std::string junk(kBhsSize * 2, static_cast<char>(rng()));
            (void)!send(fd, junk.data(), junk.size(), MSG_NOSIGNAL);
            break;
          }
          default:  // a login and close at once, answer unread
            (void)!send(fd, login.data(), login.size(), MSG_NOSIGNAL);
            close(fd);
            continue;
        }
        shutdown(fd, SHUT_WR);
        if (!closed_by_target(fd, std::chrono::seconds(30))) ++hung;
        close(fd);
      }
    });
  }
  for (auto& c : clients) c.join();
  EXPECT_EQ(hung.load(), 0) << "connections the target did not close after the initiator's EOF";

  // Every connection ends on its own (EOF, reset, or the login timeout);
  // the acceptor reaps within a second of that. Bounded wait.
  ConnectionCounters c;
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
  do {
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
    c = server.connection_counters();
  } while (c.reaped < static_cast<uint64_t>(connected.load()) &&
           std::chrono::steady_clock::now() < deadline);
  EXPECT_EQ(c.accepted, static_cast<uint64_t>(connected.load()));
  EXPECT_EQ(c.threads_started, c.accepted);
  EXPECT_EQ(c.thread_failures, 0u);
  EXPECT_EQ(c.runs_entered, c.accepted);
  EXPECT_EQ(c.runs_finished, c.accepted);
  EXPECT_EQ(c.reaped, c.accepted);
  EXPECT_TRUE(c.acceptor_step == "polling" || c.acceptor_step == "reaping") << c.acceptor_step;

  server.stop();
  EXPECT_EQ(server.connection_counters().acceptor_step, "stopped");
}

}  // namespace
}  // namespace scstu::iscsi
