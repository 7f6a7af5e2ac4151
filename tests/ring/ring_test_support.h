// Shared pieces of the ring end-to-end tests: a pattern-checking handler,
// command patterns, a producer-side command driver, handler processes and
// threads.
#pragma once

#include <gtest/gtest.h>
#include <sys/eventfd.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <csignal>
#include <cstdlib>
#include <cstring>
#include <deque>
#include <mutex>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "core/device.h"
#include "handler/serve.h"
#include "transport/ring_device.h"
#include "transport/unix_listener.h"

namespace scstu::ring_test {

// Test CDB opcodes (the handler below is not a SCSI device, just a checker).
inline constexpr uint8_t kOpRead = 0x28;    // fill pattern(seed)
inline constexpr uint8_t kOpWrite = 0x2A;   // verify pattern(seed)
inline constexpr uint8_t kOpHold = 0xED;    // keep the handle (TMF tests)
inline constexpr uint8_t kOpDie = 0xEE;     // handler process exits at once
inline constexpr uint8_t kOpWhoAmI = 0x12;  // return the session's initiator name

inline uint64_t mix(uint64_t x) {
  x += 0x9e3779b97f4a7c15ull;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
  return x ^ (x >> 31);
}
inline uint8_t pattern_byte(uint64_t seed, size_t i) {
  return static_cast<uint8_t>(mix(seed ^ (i / 8)) >> (8 * (i % 8)));
}
// Walks the buffer byte by byte with the pattern byte for each position
// (one mix() per 8 bytes).
template <typename Fn>
inline bool walk_pattern(const DataBuffer& buf, uint64_t seed, Fn fn) {
  size_t at = 0;
  uint64_t word = 0;
  for (const iovec& v : buf.segments()) {
    uint8_t* p = static_cast<uint8_t*>(v.iov_base);
    for (size_t i = 0; i < v.iov_len; ++i, ++at) {
      if (at % 8 == 0 || i == 0) word = mix(seed ^ (at / 8));
      if (!fn(p[i], static_cast<uint8_t>(word >> (8 * (at % 8))))) return false;
    }
  }
  return true;
}
inline void fill_pattern(const DataBuffer& buf, uint64_t seed) {
  walk_pattern(buf, seed, [](uint8_t& b, uint8_t want) {
    b = want;
    return true;
  });
}
inline bool check_pattern(const DataBuffer& buf, uint64_t seed) {
  return walk_pattern(buf, seed, [](uint8_t& b, uint8_t want) { return b == want; });
}
inline uint64_t cdb_seed(std::span<const uint8_t> cdb) {
  uint64_t s = 0;
  if (cdb.size() >= 10) std::memcpy(&s, cdb.data() + 2, 8);
  return s;
}

// SPC-4 fixed sense: MISCOMPARE (0Eh), MISCOMPARE DURING VERIFY (1Dh/00h).
inline constexpr uint8_t kMiscompare[18] = {0x70, 0, 0x0E, 0, 0, 0, 0, 10, 0, 0, 0, 0, 0x1D, 0};

class PatternHandler : public LowLevelHandler {
 public:
  ~PatternHandler() override {
    // Commands a test left held still get their one reply.
    for (CommandHandle& h : held) std::move(h).complete_status(status::kBusy);
  }
  void command(CommandHandle cmd) override {
    const CommandRequest& r = cmd.request();
    commands.fetch_add(1, std::memory_order_relaxed);
    switch (r.cdb[0]) {
      case kOpRead:
        fill_pattern(r.data, cdb_seed(r.cdb));
        std::move(cmd).complete_good(r.data_length);
        return;
      case kOpWrite:
        if (check_pattern(r.data, cdb_seed(r.cdb)))
          std::move(cmd).complete_good(r.data_length);
        else
          std::move(cmd).complete_check_condition(kMiscompare);
        return;
      case kOpDie:
        _exit(3);
      case kOpHold: {
        std::lock_guard lock(mu);
        held.push_back(std::move(cmd));
        cv.notify_all();
        return;
      }
      case kOpWhoAmI: {
        const std::string& n = r.session->initiator_name;
        size_t k = r.data.copy_from(0, {reinterpret_cast<const uint8_t*>(n.data()), n.size()});
        std::move(cmd).complete_good(static_cast<uint32_t>(k));
        return;
      }
      default:
        std::move(cmd).complete_good(0);
    }
  }
  scstu_tmf_response task_management(const TaskManagementRequest& req) override {
    std::lock_guard lock(mu);
    tmfs.push_back(req.function);
    cv.notify_all();
    return SCSTU_TMF_COMPLETE;
  }
  void session_attached(const SessionInfo& s) override {
    std::lock_guard lock(mu);
    attached.push_back(s.initiator_name);
    cv.notify_all();
  }
  void session_detached(const SessionInfo& s) override {
    std::lock_guard lock(mu);
    detached.push_back(s.initiator_name);
    cv.notify_all();
  }
  template <typename Pred>
  bool wait(Pred pred) {
    std::unique_lock lock(mu);
    return cv.wait_for(lock, std::chrono::seconds(10), pred);
  }

  std::atomic<uint64_t> commands{0};
  std::mutex mu;
  std::condition_variable cv;
  std::deque<CommandHandle> held;
  std::vector<scstu_tmf_function> tmfs;
  std::vector<std::string> attached, detached;
};

inline std::string temp_socket_path() {
  static std::atomic<int> n{0};
  return "/tmp/scstu-ring-test-" + std::to_string(getpid()) + "-" + std::to_string(n++) + ".sock";
}

// A producer: listener + one RingDevice.
struct Producer {
  explicit Producer(transport::RingDeviceConfig cfg = {}) {
    if (cfg.name.empty()) cfg.name = "disk0";
    path = temp_socket_path();
    std::string err;
    listener = transport::UnixListener::create(path, &err);
    EXPECT_TRUE(listener) << err;
    device = transport::RingDevice::create(cfg, &err);
    EXPECT_TRUE(device) << err;
    listener->add_device(device);
  }
  HandlerOptions options() const {
    HandlerOptions o;
    o.socket_path = path;
    o.device_name = device->name();
    return o;
  }
  std::string path;
  std::unique_ptr<transport::UnixListener> listener;
  std::shared_ptr<transport::RingDevice> device;
};

// A handler process running serve() with a PatternHandler. Exit codes:
// 0 = serve() returned -EPIPE (producer went away), 3 = kOpDie.
//
// The child re-executes this test binary (fork() alone is not enough: the
// producer's threads may hold allocator locks, ASan's among them, at the
// moment of the fork). The environment variables below make the new image
// run the handler before main().
inline int run_handler_from_env() {
  HandlerOptions o;
  o.socket_path = std::getenv("SCSTU_TEST_HANDLER_SOCKET");
  o.device_name = std::getenv("SCSTU_TEST_HANDLER_NAME");
  PatternHandler h;
  int rc = serve(o, h);
  return rc == -EPIPE ? 0 : 10 + (-rc & 0xff) % 100;
}
inline const bool kIsHandlerProcess = [] {
  if (std::getenv("SCSTU_TEST_HANDLER_SOCKET") && std::getenv("SCSTU_TEST_HANDLER_NAME"))
    _exit(run_handler_from_env());
  return false;
}();

inline pid_t fork_handler(const HandlerOptions& options) {
  // Everything the child needs is prepared before fork(): it only calls execve().
  std::vector<std::string> env_strings;
  for (char** e = environ; *e; ++e) env_strings.emplace_back(*e);
  env_strings.push_back("SCSTU_TEST_HANDLER_SOCKET=" + options.socket_path);
  env_strings.push_back("SCSTU_TEST_HANDLER_NAME=" + options.device_name);
  std::vector<char*> envp;
  for (std::string& e : env_strings) envp.push_back(e.data());
  envp.push_back(nullptr);
  char self[4096];
  ssize_t n = readlink("/proc/self/exe", self, sizeof(self) - 1);
  if (n <= 0) return -1;
  self[n] = 0;
  char* argv[] = {self, nullptr};
  pid_t pid = fork();
  if (pid == 0) {
    execve(self, argv, envp.data());
    _exit(127);
  }
  return pid;
}

inline int wait_exit(pid_t pid) {
  int status = 0;
  for (int i = 0; i < 1000; ++i) {  // 10 s bound
    if (waitpid(pid, &status, WNOHANG) == pid) return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  kill(pid, SIGKILL);
  waitpid(pid, &status, 0);
  return -2;
}

// serve() in a thread of this process, stoppable.
struct HandlerThread {
  HandlerThread(HandlerOptions o, LowLevelHandler& h) {
    stop_fd = eventfd(0, EFD_CLOEXEC);
    o.stop_fd = stop_fd;
    thread = std::thread([this, o, &h] { rc = serve(o, h, &error); });
  }
  ~HandlerThread() { stop(); }
  int stop() {
    if (thread.joinable()) {
      uint64_t one = 1;
      (void)!write(stop_fd, &one, 8);
      thread.join();
      close(stop_fd);
    }
    return rc;
  }
  int stop_fd;
  std::thread thread;
  std::atomic<int> rc{1};
  std::string error;
};

// One producer-side command with its own completion flag.
struct TestCommand {
  core::TargetCommand cmd;
  std::mutex mu;
  std::condition_variable cv;
  bool done = false;
  TestCommand(uint8_t op, uint32_t len, DataDirection dir, uint64_t seed = 0) {
    cmd.cdb[0] = op;
    std::memcpy(cmd.cdb.data() + 2, &seed, 8);
    cmd.cdb_len = 10;
    cmd.direction = dir;
    cmd.data_length = len;
    cmd.expected_length = len;
    cmd.done = [this](core::TargetCommand&) {
      std::lock_guard lock(mu);
      done = true;
      cv.notify_all();
    };
  }
  bool wait(int ms = 10000) {
    std::unique_lock lock(mu);
    return cv.wait_for(lock, std::chrono::milliseconds(ms), [&] { return done; });
  }
};

// Sense key / ASC / ASCQ of fixed-format sense.
inline std::array<uint8_t, 3> sense_code(const core::TargetCommand& c) {
  return {static_cast<uint8_t>(c.sense[2] & 0xf), c.sense[12], c.sense[13]};
}
inline constexpr std::array<uint8_t, 3> kLuCommFailure = {0x0B, 0x08, 0x00};

}  // namespace scstu::ring_test
