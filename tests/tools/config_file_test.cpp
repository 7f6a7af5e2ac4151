// The daemon's configuration file (text format, atomic save) and the admin
// protocol's framing.
#include "config_file.h"

#include <gtest/gtest.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>

#include "admin_wire.h"

namespace scstu::tools {
namespace {

constexpr const char* kSample = R"(
portals: "127.0.0.1:3260"
handler_socket: "/tmp/t.sock"
targets { name: "iqn.2007-05.com.example:storage.disk1.sys1.xyz" chap { user: "u" secret: "s12345678901" } }
devices { name: "dev1" handler { device_type: 0 block_size: 512 } }
devices { name: "dev2" file { path: "/tmp/dev2.img" thin: true } }
groups { name: "Default_iqn.2007-05.com.example:storage.disk1.sys1.xyz"
         luns { lun: 0 device: "dev1" } luns { lun: 1 device: "dev2" } }
groups { name: "spec_ini" initiators: "iqn.2007-05.com.example:storage.disk1.spec_ini.xyz"
         luns { lun: 0 device: "dev2" read_only: true } }
)";

class TempDir {
 public:
  TempDir() {
    char tmpl[] = "/tmp/scstu-tools-XXXXXX";
    path_ = mkdtemp(tmpl);
  }
  ~TempDir() { std::filesystem::remove_all(path_); }
  std::string file(const char* name) const { return path_ + "/" + name; }
  size_t entries() const {
    return static_cast<size_t>(std::distance(std::filesystem::directory_iterator(path_),
                                             std::filesystem::directory_iterator()));
  }

 private:
  std::string path_;
};

TEST(ConfigFile, SessionLimitsParseAndDefaultToUnset) {
  config::Config c = parse_config(
      "portals: \"127.0.0.1:3260\"\nmax_connections: 4  # MC/S\ncmdsn_gap_timeout_ms: 750\n",
      "limits");
  EXPECT_EQ(c.max_connections(), 4u);
  EXPECT_EQ(c.cmdsn_gap_timeout_ms(), 750u);
  config::Config d = parse_config(kSample, "sample");
  EXPECT_EQ(d.max_connections(), 0u) << "unset: PortalSet keeps the server's default";
  EXPECT_EQ(d.cmdsn_gap_timeout_ms(), 0u);
}

TEST(ConfigFile, ParsesTheSeedsExample) {
  config::Config c = parse_config(kSample, "sample");
  ASSERT_EQ(c.targets_size(), 1);
  EXPECT_EQ(c.targets(0).chap().user(), "u");
  ASSERT_EQ(c.devices_size(), 2);
  EXPECT_TRUE(c.devices(0).has_handler());
  EXPECT_TRUE(c.devices(1).file().thin());
  ASSERT_EQ(c.groups_size(), 2);
  EXPECT_EQ(c.groups(1).initiators(0), "iqn.2007-05.com.example:storage.disk1.spec_ini.xyz");
  EXPECT_TRUE(c.groups(1).luns(0).read_only());
}

TEST(ConfigFile, ParseErrorsNameFileLineAndColumn) {
  try {
    parse_config("portals: \"x\"\ngroups { nme: \"a\" }\n", "scstu.conf");
    FAIL() << "parsed a bad file";
  } catch (const ConfigFileError& e) {
    EXPECT_EQ(std::string(e.what()).rfind("scstu.conf:2:", 0), 0u) << e.what();
    EXPECT_NE(std::string(e.what()).find("nme"), std::string::npos) << e.what();
  }
  EXPECT_THROW(load_config("/nonexistent/scstu.conf"), ConfigFileError);
}

TEST(ConfigFile, SaveIsAtomicAndKeepsPermissions) {
  TempDir dir;
  const std::string path = dir.file("scstu.conf");
  { std::ofstream(path) << "portals: \"old\"\n"; }
  ASSERT_EQ(chmod(path.c_str(), 0640), 0);
  config::Config c = parse_config(kSample, "sample");
  save_config(path, c);
  config::Config back = load_config(path);
  EXPECT_EQ(back.SerializeAsString(), c.SerializeAsString());
  struct stat st {};
  ASSERT_EQ(stat(path.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0640u);
  EXPECT_EQ(dir.entries(), 1u) << "no temporary file left behind";
}

TEST(ConfigFile, SaveIntoAMissingDirectoryFailsClearly) {
  config::Config c;
  try {
    save_config("/nonexistent/dir/scstu.conf", c);
    FAIL();
  } catch (const ConfigFileError& e) {
    EXPECT_NE(std::string(e.what()).find("/nonexistent/dir/scstu.conf"), std::string::npos);
  }
}

TEST(AdminWire, RoundTripAndLimits) {
  int sv[2];
  ASSERT_EQ(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
  config::AdminRequest req;
  req.set_group("spec_ini");
  req.mutable_add_lun()->set_device("dev2");
  std::string error;
  ASSERT_TRUE(send_message(sv[0], req, &error)) << error;
  config::AdminRequest got;
  ASSERT_TRUE(receive_message(sv[1], &got, &error)) << error;
  EXPECT_EQ(got.group(), "spec_ini");
  EXPECT_EQ(got.add_lun().device(), "dev2");

  // A hostile length is refused before anything is allocated.
  const uint8_t huge[4] = {0xFF, 0xFF, 0xFF, 0xFF};
  ASSERT_EQ(write(sv[0], huge, 4), 4);
  EXPECT_FALSE(receive_message(sv[1], &got, &error));
  EXPECT_NE(error.find("limit"), std::string::npos) << error;

  // Garbage of a plausible length does not parse.
  const uint8_t junk[7] = {0, 0, 0, 3, 0xFF, 0xFF, 0xFF};
  ASSERT_EQ(write(sv[0], junk, 7), 7);
  EXPECT_FALSE(receive_message(sv[1], &got, &error));

  close(sv[0]);
  EXPECT_FALSE(receive_message(sv[1], &got, &error));
  EXPECT_EQ(error, "connection closed");
  close(sv[1]);
}

}  // namespace
}  // namespace scstu::tools
