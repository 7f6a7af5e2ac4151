// The io_uring engine's own paths: registered (fixed) buffers and the
// advance-after-short-transfer arithmetic.
#include "io/uring_engine.h"

#include <gtest/gtest.h>

#include <cstdlib>
#include <memory>

#include "io/file_device.h"
#include "io/io_op.h"
#include "test_file.h"

namespace scstu::io {
namespace {

using testing::one_iov;
using testing::random_bytes;
using testing::ScratchFile;
using testing::SyncRequest;

// A 1 MiB page-aligned "data area", as the ring's would be.
struct DataArea {
  DataArea() {
    void* p = nullptr;
    if (posix_memalign(&p, 4096, kSize) == 0) base = static_cast<uint8_t*>(p);
  }
  ~DataArea() { free(base); }
  static constexpr size_t kSize = 1 << 20;
  uint8_t* base = nullptr;
};

TEST(UringEngine, FixedIndexFindsTheRegisteredBuffer) {
  std::string error;
  auto engine = UringEngine::create(32, &error);
  ASSERT_TRUE(engine) << error;
  DataArea area;
  iovec region{area.base, DataArea::kSize};
  ASSERT_EQ(engine->register_buffers(std::span<const iovec>(&region, 1)), 0);
  EXPECT_EQ(engine->fixed_index(area.base, 4096), 0);
  EXPECT_EQ(engine->fixed_index(area.base + DataArea::kSize - 4096, 4096), 0);
  EXPECT_EQ(engine->fixed_index(area.base + DataArea::kSize - 4096, 8192), -1);
  EXPECT_EQ(engine->fixed_index(area.base - 1, 16), -1);
  int other = 0;
  EXPECT_EQ(engine->fixed_index(&other, sizeof other), -1);
}

class FixedBuffers : public ::testing::TestWithParam<bool> {};

TEST_P(FixedBuffers, RoundTripThroughRegisteredDataArea) {
  ScratchFile file(4 << 20);
  FileDeviceOptions o;
  o.engine.kind = IoEngineKind::kUring;
  o.direct = GetParam();
  o.inline_io = false;
  std::unique_ptr<FileDevice> dev;
  try {
    dev = FileDevice::open(file.path(), o);
  } catch (const FileDeviceError& e) {
    GTEST_SKIP() << e.what();
  }
  DataArea area;
  iovec region{area.base, DataArea::kSize};
  ASSERT_EQ(dev->register_buffers(std::span<const iovec>(&region, 1)), 0);

  auto data = random_bytes(64 * 1024, 20);
  uint8_t* slot = area.base + 128 * 1024;
  std::memcpy(slot, data.data(), data.size());
  ASSERT_EQ(SyncRequest::run(*dev, BlockOp::kWrite, 2048, 128, one_iov(slot, data.size())), 0);
  EXPECT_EQ(file.read_back(2048 * 512, data.size()), data);
  std::memset(slot, 0, data.size());
  ASSERT_EQ(SyncRequest::run(*dev, BlockOp::kRead, 2048, 128, one_iov(slot, data.size())), 0);
  EXPECT_EQ(std::memcmp(slot, data.data(), data.size()), 0);
  IoEngineStats stats = dev->io_stats();
  EXPECT_EQ(stats.fixed_writes, 1u);
  EXPECT_EQ(stats.fixed_reads, 1u);
  EXPECT_EQ(stats.vectored_reads + stats.vectored_writes, 0u);

  // Memory outside the registered area goes vectored; re-registering an
  // empty table drops the fixed path.
  auto outside = random_bytes(4096, 21);
  void* aligned = nullptr;
  ASSERT_EQ(posix_memalign(&aligned, 4096, 4096), 0);
  std::memcpy(aligned, outside.data(), outside.size());
  ASSERT_EQ(SyncRequest::run(*dev, BlockOp::kWrite, 0, 8, one_iov(aligned, 4096)), 0);
  free(aligned);
  EXPECT_EQ(dev->io_stats().vectored_writes, 1u);
  ASSERT_EQ(dev->register_buffers({}), 0);
  ASSERT_EQ(SyncRequest::run(*dev, BlockOp::kRead, 2048, 128, one_iov(slot, data.size())), 0);
  EXPECT_EQ(dev->io_stats().fixed_reads, 1u);
  EXPECT_EQ(dev->io_stats().vectored_reads, 1u);
}

INSTANTIATE_TEST_SUITE_P(Direct, FixedBuffers, ::testing::Values(false, true),
                         [](const auto& info) { return info.param ? "o_direct" : "buffered"; });

TEST(IoOp, AdvanceAfterShortTransferSplitsSegments) {
  uint8_t buf[300];
  iovec iov[3] = {{buf, 100}, {buf + 100, 100}, {buf + 200, 100}};
  IoOp op;
  op.offset = 1000;
  op.length = 300;
  op.iov = iov;
  EXPECT_TRUE(advance_after_short_transfer(op, 150));
  EXPECT_EQ(op.offset, 1150u);
  ASSERT_EQ(op.iov.size(), 2u);
  EXPECT_EQ(op.iov[0].iov_base, buf + 150);
  EXPECT_EQ(op.iov[0].iov_len, 50u);
  EXPECT_EQ(op.iov[1].iov_base, buf + 200);
  EXPECT_TRUE(advance_after_short_transfer(op, 50));
  ASSERT_EQ(op.iov.size(), 1u);
  EXPECT_EQ(op.iov[0].iov_base, buf + 200);
  EXPECT_FALSE(advance_after_short_transfer(op, 100));
  EXPECT_EQ(op.done_bytes, 300u);
}

}  // namespace
}  // namespace scstu::io
