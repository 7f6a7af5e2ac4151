// test_server.h - what the iSCSI end-to-end tests share: iscsi_test_server
// as a child process (port picked by the OS, killed at the end) and a bounded
// command line runner.
#pragma once

#include <gtest/gtest.h>
#include <poll.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <string>
#include <thread>
#include <vector>

namespace scstu::iscsi {

// The test server as a child process; killed (SIGTERM, then SIGKILL) at the end.
class TestServer {
 public:
  explicit TestServer(std::vector<std::string> args) {
    int out[2];
    EXPECT_EQ(pipe(out), 0);
    pid_ = fork();
    if (pid_ == 0) {
      dup2(out[1], STDOUT_FILENO);
      close(out[0]);
      std::vector<char*> argv;
      std::string path = ISCSI_TEST_SERVER;
      argv.push_back(path.data());
      for (auto& a : args) argv.push_back(a.data());
      argv.push_back(nullptr);
      execv(path.c_str(), argv.data());
      _exit(127);
    }
    close(out[1]);
    FILE* f = fdopen(out[0], "r");
    char line[128] = {};
    pollfd p{out[0], POLLIN, 0};
    if (poll(&p, 1, 10000) > 0 && fgets(line, sizeof(line), f)) sscanf(line, "PORT %d", &port_);
    fclose(f);
    EXPECT_GT(port_, 0) << "iscsi_test_server did not start";
  }
  ~TestServer() {
    if (pid_ <= 0) return;
    kill(pid_, SIGTERM);
    for (int i = 0; i < 100; ++i) {
      int st;
      if (waitpid(pid_, &st, WNOHANG) == pid_) {
        EXPECT_TRUE(WIFEXITED(st) && WEXITSTATUS(st) == 0) << "server exit status " << st;
        return;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
    ADD_FAILURE() << "iscsi_test_server did not stop on SIGTERM within 10 s";
    kill(pid_, SIGKILL);
    waitpid(pid_, nullptr, 0);
  }
  int port() const { return port_; }
  void signal(int sig) const { kill(pid_, sig); }
  bool alive() const { return pid_ > 0 && waitpid(pid_, nullptr, WNOHANG) == 0; }
  std::string portal() const { return "127.0.0.1:" + std::to_string(port_); }
  std::string url(const std::string& target, int lun, const std::string& auth = "") const {
    return "iscsi://" + auth + portal() + "/" + target + "/" + std::to_string(lun);
  }

 private:
  pid_t pid_ = -1;
  int port_ = 0;
};

struct CommandResult {
  int status = -1;
  std::string output;
};

// A command line, bounded by `timeout`, stdout and stderr together.
inline CommandResult run(const std::string& cmd) {
  CommandResult r;
  FILE* p = popen(("timeout 30 " + cmd + " 2>&1").c_str(), "r");
  if (!p) return r;
  char buf[4096];
  size_t n;
  while ((n = fread(buf, 1, sizeof(buf), p)) > 0) r.output.append(buf, n);
  int st = pclose(p);
  r.status = WIFEXITED(st) ? WEXITSTATUS(st) : -1;
  return r;
}

}  // namespace scstu::iscsi
