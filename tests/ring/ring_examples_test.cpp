// The example handlers (examples/ram_disk, examples/null_disk) as a user runs
// them: a separate process attached to a producer's socket, answering real
// SCSI commands through scsi::LogicalUnit.
#include "ring_test_support.h"

namespace scstu::ring_test {
namespace {

pid_t spawn(const std::vector<std::string>& args) {
  // argv is built before fork(): the child only calls execv().
  std::vector<char*> argv;
  for (const std::string& a : args) argv.push_back(const_cast<char*>(a.c_str()));
  argv.push_back(nullptr);
  pid_t pid = fork();
  if (pid == 0) {
    execv(argv[0], argv.data());
    _exit(127);
  }
  return pid;
}

// Runs one CDB; retries once past a unit attention (the first command of a
// new I_T nexus reports POWER ON/RESET, SPC-4 6.x).
struct Scsi {
  transport::RingDevice& dev;
  std::unique_ptr<TestCommand> run(std::initializer_list<uint8_t> cdb, uint32_t len,
                                   DataDirection dir, const std::vector<uint8_t>& out = {}) {
    for (int attempt = 0; attempt < 2; ++attempt) {
      auto c = std::make_unique<TestCommand>(0, len, dir);
      std::copy(cdb.begin(), cdb.end(), c->cmd.cdb.begin());
      c->cmd.cdb_len = static_cast<uint16_t>(cdb.size());
      EXPECT_TRUE(dev.alloc_buffer(c->cmd));
      if (!out.empty()) DataBuffer(c->cmd.buffer).copy_from(0, out);
      dev.submit(c->cmd);
      EXPECT_TRUE(c->wait());
      if (c->cmd.status == status::kCheckCondition && (c->cmd.sense[2] & 0xf) == 0x06) {
        dev.release_buffer(c->cmd);
        continue;
      }
      return c;
    }
    return nullptr;
  }
};

TEST(RingExamples, RamDiskStoresDataAndAnswersInquiry) {
  transport::RingDeviceConfig cfg;
  cfg.name = "ram0";
  cfg.device_type = 0;
  Producer p(cfg);
  pid_t child =
      spawn({SCSTU_RAM_DISK_PATH, "--socket", p.path, "--name", "ram0", "--size-mb", "16"});
  ASSERT_TRUE(p.device->wait_ready(10000));
  Scsi scsi{*p.device};

  auto inq = scsi.run({0x12, 0, 0, 0, 96, 0}, 96, DataDirection::kRead);
  ASSERT_TRUE(inq);
  ASSERT_EQ(inq->cmd.status, status::kGood);
  std::string product(static_cast<char*>(inq->cmd.buffer[0].iov_base) + 16, 7);
  EXPECT_EQ(product, "RAMDISK");
  p.device->release_buffer(inq->cmd);

  auto cap = scsi.run({0x25, 0, 0, 0, 0, 0, 0, 0, 0, 0}, 8, DataDirection::kRead);
  ASSERT_TRUE(cap);
  ASSERT_EQ(cap->cmd.status, status::kGood);
  const uint8_t* b = static_cast<uint8_t*>(cap->cmd.buffer[0].iov_base);
  EXPECT_EQ((uint32_t{b[0]} << 24 | b[1] << 16 | b[2] << 8 | b[3]), (16u << 20) / 512 - 1);
  p.device->release_buffer(cap->cmd);

  std::vector<uint8_t> data(8 * 512);
  for (size_t i = 0; i < data.size(); ++i) data[i] = static_cast<uint8_t>(i * 31 + 7);
  auto wr = scsi.run({0x2A, 0, 0, 0, 0, 100, 0, 0, 8, 0}, 4096, DataDirection::kWrite, data);
  ASSERT_TRUE(wr);
  EXPECT_EQ(wr->cmd.status, status::kGood);
  p.device->release_buffer(wr->cmd);
  auto rd = scsi.run({0x28, 0, 0, 0, 0, 100, 0, 0, 8, 0}, 4096, DataDirection::kRead);
  ASSERT_TRUE(rd);
  ASSERT_EQ(rd->cmd.status, status::kGood);
  std::vector<uint8_t> back(4096);
  DataBuffer(rd->cmd.buffer).copy_to(0, back);
  EXPECT_EQ(back, data);
  p.device->release_buffer(rd->cmd);

  p.listener.reset();
  p.device.reset();
  kill(child, SIGTERM);  // ram_disk waits for the producer to come back
  wait_exit(child);
}

TEST(RingExamples, NullDiskReadsZeroes) {
  transport::RingDeviceConfig cfg;
  cfg.name = "null0";
  Producer p(cfg);
  pid_t child = spawn({SCSTU_NULL_DISK_PATH, "--socket", p.path, "--name", "null0"});
  ASSERT_TRUE(p.device->wait_ready(10000));
  Scsi scsi{*p.device};
  auto rd = scsi.run({0x28, 0, 0, 0, 0, 0, 0, 0, 8, 0}, 4096, DataDirection::kRead);
  ASSERT_TRUE(rd);
  ASSERT_EQ(rd->cmd.status, status::kGood);
  std::vector<uint8_t> back(4096, 0xff);
  DataBuffer(rd->cmd.buffer).copy_to(0, back);
  EXPECT_EQ(back, std::vector<uint8_t>(4096, 0));
  p.device->release_buffer(rd->cmd);
  kill(child, SIGTERM);
  wait_exit(child);
}

}  // namespace
}  // namespace scstu::ring_test
