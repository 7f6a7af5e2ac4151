// fileio_kernel_mode_test.cpp - fileio_tgt --kernel on a host without the
// module: the region header's identity and type rules, the device-node
// checks, and the command line (the QEMU test runs it against the module).
#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <cstring>
#include <fstream>
#include <string>

#include "kernel_device.h"

namespace scstu::fileio {
namespace {

scstu_region_header header(uint8_t type) {
  scstu_region_header h{};
  h.magic = SCSTU_REGION_MAGIC;
  h.abi_major = SCSTU_ABI_MAJOR;
  h.abi_minor = 1;
  h.device_type = type;
  h.max_io_bytes = 256 * 1024;
  std::strcpy(h.vendor, "ACME");
  std::strcpy(h.product, "KMODDISK");
  std::strcpy(h.revision, "0042");
  std::strcpy(h.serial, "SN-4711");
  return h;
}

TEST(KernelIdentity, TakesTheCreatedIdentityAndMaxIo) {
  UnitIdentity id;
  uint32_t max = 0;
  std::string error;
  ASSERT_TRUE(identity_from_kernel_header(header(0), "/dev/scstu/d", 0, 0, &id, &max, &error))
      << error;
  EXPECT_EQ(id.vendor, "ACME");
  EXPECT_EQ(id.product, "KMODDISK");
  EXPECT_EQ(id.revision, "0042");
  EXPECT_EQ(id.serial, "SN-4711");
  EXPECT_EQ(max, 256u * 1024);
  EXPECT_FALSE(id.third_party_copy) << "no copy manager behind the kernel shim";
  // --max-transfer below the device's limit is kept, above it is capped.
  ASSERT_TRUE(identity_from_kernel_header(header(0), "d", 0, 65536, &id, &max, &error));
  EXPECT_EQ(max, 65536u);
  ASSERT_TRUE(identity_from_kernel_header(header(0), "d", 0, 8u << 20, &id, &max, &error));
  EXPECT_EQ(max, 256u * 1024);
}

TEST(KernelIdentity, AbiMinorZeroLeavesTheDefaults) {
  scstu_region_header h = header(0);
  h.abi_minor = 0;
  UnitIdentity id{"x", "y", "z", "w"};
  uint32_t max = 0;
  std::string error;
  ASSERT_TRUE(identity_from_kernel_header(h, "d", 0, 0, &id, &max, &error)) << error;
  EXPECT_TRUE(id.vendor.empty() && id.product.empty() && id.revision.empty() && id.serial.empty());
}

TEST(KernelIdentity, RefusesAnotherDeviceType) {
  UnitIdentity id;
  uint32_t max = 0;
  std::string error;
  EXPECT_FALSE(identity_from_kernel_header(header(1), "/dev/scstu/tape0", 0, 0, &id, &max, &error));
  EXPECT_NE(error.find("/dev/scstu/tape0"), std::string::npos) << error;
  EXPECT_NE(error.find("device type 1 (tape)"), std::string::npos) << error;
  EXPECT_FALSE(identity_from_kernel_header(header(5), "d", 0, 0, &id, &max, &error));
  EXPECT_NE(error.find("--cdrom"), std::string::npos) << error;
  EXPECT_TRUE(identity_from_kernel_header(header(5), "d", 5, 0, &id, &max, &error)) << error;
}

TEST(KernelIdentity, RefusesMalformedStrings) {
  UnitIdentity id;
  uint32_t max = 0;
  std::string error;
  scstu_region_header h = header(0);
  std::memset(h.product, 'A', sizeof(h.product));  // no NUL
  EXPECT_FALSE(identity_from_kernel_header(h, "d", 0, 0, &id, &max, &error));
  EXPECT_NE(error.find("product is not NUL-terminated"), std::string::npos) << error;
  h = header(0);
  h.serial[2] = '\x01';
  EXPECT_FALSE(identity_from_kernel_header(h, "d", 0, 0, &id, &max, &error));
  EXPECT_NE(error.find("serial holds a non-printable byte"), std::string::npos) << error;
  h = header(0);
  h.max_io_bytes = 0;
  EXPECT_FALSE(identity_from_kernel_header(h, "d", 0, 0, &id, &max, &error));
}

TEST(KernelDeviceNode, MissingNodeSaysLoadTheModule) {
  scstu_region_header h;
  std::string error;
  EXPECT_FALSE(read_kernel_header("/dev/scstu/no-such-device", &h, &error));
  EXPECT_NE(error.find("/dev/scstu/no-such-device: No such file or directory"), std::string::npos)
      << error;
  EXPECT_NE(error.find("load the scstu module"), std::string::npos) << error;
}

TEST(KernelDeviceNode, RegularFileIsNotADevice) {
  const std::string path = ::testing::TempDir() + "kattach_regular_file";
  std::ofstream(path) << "not a device";
  scstu_region_header h;
  std::string error;
  EXPECT_FALSE(read_kernel_header(path, &h, &error));
  EXPECT_NE(error.find("not a character device"), std::string::npos) << error;
  unlink(path.c_str());
}

TEST(KernelDeviceNode, CharDeviceWithoutScstuRegionIsRefused) {
  // /dev/zero maps as zeroes: a char device whose header has no magic.
  scstu_region_header h;
  std::string error;
  EXPECT_FALSE(read_kernel_header("/dev/zero", &h, &error));
  EXPECT_NE(error.find("/dev/zero: not an scstu region (bad magic)"), std::string::npos) << error;
}

// The binary: exit codes and messages of --kernel on this host.
std::string run(const std::string& args, int* status) {
  const std::string cmd = std::string(FILEIO_TGT_PATH) + " " + args + " 2>&1";
  FILE* f = popen(cmd.c_str(), "r");
  std::string out;
  char buf[512];
  while (f && fgets(buf, sizeof(buf), f)) out += buf;
  const int st = f ? pclose(f) : -1;
  *status = WIFEXITED(st) ? WEXITSTATUS(st) : -1;
  return out;
}

TEST(FileioTgtKernelMode, MissingDeviceExitsWithAClearError) {
  const std::string img = ::testing::TempDir() + "kattach.img";
  std::ofstream(img).close();
  truncate(img.c_str(), 1 << 20);
  int status = 0;
  std::string out = run("--kernel scstu-kattach-none " + img, &status);
  EXPECT_EQ(status, 1) << out;
  EXPECT_NE(out.find("/dev/scstu/scstu-kattach-none: No such file or directory"), std::string::npos)
      << out;
  unlink(img.c_str());
}

TEST(FileioTgtKernelMode, CommandLineIsValidated) {
  int status = 0;
  std::string out = run("--kernel --iscsi 127.0.0.1:0 d x.img", &status);
  EXPECT_EQ(status, 2);
  EXPECT_NE(out.find("exclude each other"), std::string::npos) << out;
  out = run("--kernel --no-reconnect d x.img", &status);
  EXPECT_EQ(status, 2);
  EXPECT_NE(out.find("--no-reconnect applies to --attach only"), std::string::npos) << out;
  out = run("--kernel d", &status);
  EXPECT_EQ(status, 2);
  EXPECT_NE(out.find("expected NAME PATH pairs"), std::string::npos) << out;
  out = run("--kernel ../x x.img", &status);  // would escape /dev/scstu/
  EXPECT_EQ(status, 2);
  EXPECT_NE(out.find("device name '../x'"), std::string::npos) << out;
  out = run("--help", &status);
  EXPECT_EQ(status, 0);
  EXPECT_NE(out.find("fileio_tgt --kernel disk0 disk0.img"), std::string::npos) << out;
}

}  // namespace
}  // namespace scstu::fileio
