// A handler device's ring settings in the daemon's config (HandlerBackend):
// each reaches RingDeviceConfig, 0 keeps the default, and tmf_timeout_ms is
// range-checked with an error that names the device and the field, whether
// it comes from the config file or from scstuadmin add-device.
#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <stdexcept>
#include <string>

#include "target_daemon.h"

namespace scstu::tools {
namespace {

TEST(HandlerConfig, EverySettingReachesTheRingDevice) {
  config::HandlerBackend h;
  h.set_device_type(1);
  h.set_queues(2);
  h.set_queue_depth(64);
  h.set_data_size(8u << 20);
  h.set_max_io_bytes(256u << 10);
  h.set_tmf_timeout_ms(2500);
  transport::RingDeviceConfig rc;
  ASSERT_EQ(handler_ring_config(h, &rc), "");
  EXPECT_EQ(rc.device_type, 1);
  EXPECT_EQ(rc.nr_queues, 2u);
  EXPECT_EQ(rc.queue_depth, 64u);
  EXPECT_EQ(rc.data_size, 8u << 20);
  EXPECT_EQ(rc.max_io_bytes, 256u << 10);
  EXPECT_EQ(rc.tmf_timeout_ms, 2500u);
}

TEST(HandlerConfig, ZeroKeepsTheDefaults) {
  transport::RingDeviceConfig rc, defaults;
  ASSERT_EQ(handler_ring_config(config::HandlerBackend(), &rc), "");
  EXPECT_EQ(rc.nr_queues, defaults.nr_queues);
  EXPECT_EQ(rc.queue_depth, defaults.queue_depth);
  EXPECT_EQ(rc.data_size, defaults.data_size);
  EXPECT_EQ(rc.max_io_bytes, defaults.max_io_bytes);
  EXPECT_EQ(rc.tmf_timeout_ms, 30000u);
}

TEST(HandlerConfig, TmfTimeoutOutOfRangeIsRefused) {
  for (uint32_t ms : {1u, 99u, 3600001u, 0xffffffffu}) {
    config::HandlerBackend h;
    h.set_tmf_timeout_ms(ms);
    transport::RingDeviceConfig rc;
    const std::string e = handler_ring_config(h, &rc);
    EXPECT_NE(e.find("tmf_timeout_ms " + std::to_string(ms)), std::string::npos) << e;
    EXPECT_EQ(rc.tmf_timeout_ms, 30000u) << ms;
  }
  for (uint32_t ms : {100u, 3600000u}) {
    config::HandlerBackend h;
    h.set_tmf_timeout_ms(ms);
    transport::RingDeviceConfig rc;
    EXPECT_EQ(handler_ring_config(h, &rc), "") << ms;
    EXPECT_EQ(rc.tmf_timeout_ms, ms);
  }
}

class DaemonWithHandlerSocket : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/scstu-handler-config-XXXXXX";
    ASSERT_NE(mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
    config_.set_handler_socket(dir_ + "/handlers.sock");
    config_.add_portals("127.0.0.1:0");  // the daemon needs one; the OS picks the port
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }
  std::string path() const { return dir_ + "/scstu.conf"; }
  static config::Device handler_device(const std::string& name, uint32_t tmf_timeout_ms) {
    config::Device d;
    d.set_name(name);
    d.mutable_handler()->set_tmf_timeout_ms(tmf_timeout_ms);
    return d;
  }
  std::string dir_;
  config::Config config_;
};

TEST_F(DaemonWithHandlerSocket, ConfigFileWithABadTimeoutDoesNotStart) {
  *config_.add_devices() = handler_device("disk0", 50);
  TargetDaemon daemon(path(), config_);
  try {
    daemon.start();
    FAIL() << "started with tmf_timeout_ms 50";
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find("device disk0: tmf_timeout_ms 50"), std::string::npos)
        << e.what();
  }
}

TEST_F(DaemonWithHandlerSocket, AddDeviceChecksTheTimeoutAndKeepsIt) {
  TargetDaemon daemon(path(), config_);
  daemon.start();
  config::AdminRequest bad;
  *bad.mutable_add_device() = handler_device("disk0", 7);
  config::AdminResponse r = daemon.handle(bad);
  EXPECT_FALSE(r.ok());
  EXPECT_NE(r.error().find("device disk0: tmf_timeout_ms 7"), std::string::npos) << r.error();

  config::AdminRequest good;
  *good.mutable_add_device() = handler_device("disk0", 1500);
  r = daemon.handle(good);
  ASSERT_TRUE(r.ok()) << r.error();
  // Saved with the device, so a restart applies it again.
  const config::Config now = daemon.current_config();
  ASSERT_EQ(now.devices_size(), 1);
  EXPECT_EQ(now.devices(0).handler().tmf_timeout_ms(), 1500u);
}

}  // namespace
}  // namespace scstu::tools
