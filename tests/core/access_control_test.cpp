#include "core/access_control.h"

#include <gtest/gtest.h>

#include "test_devices.h"

namespace scstu::core {
namespace {

using test::RecordingDevice;

constexpr const char* kTarget = "iqn.2007-05.com.example:storage.disk1.sys1.xyz";
constexpr const char* kSpecIni = "iqn.2007-05.com.example:storage.disk1.spec_ini.xyz";

struct WildcardCase {
  const char* pattern;
  const char* name;
  bool match;
};

TEST(Wildcard, Table) {
  const WildcardCase cases[] = {
      {"", "", true},
      {"", "a", false},
      {"*", "", true},
      {"*", "anything", true},
      {"?", "", false},
      {"?", "a", true},
      {"?", "ab", false},
      {"abc", "abc", true},
      {"abc", "abcd", false},
      {"abc", "ab", false},
      {"ABC", "abc", false},  // case-sensitive
      {"a*c", "ac", true},
      {"a*c", "abbbc", true},
      {"a*c", "abbbd", false},
      {"a?c", "abc", true},
      {"a?c", "ac", false},
      {"*.xyz", "iqn.2007-05.com.example:storage.disk1.spec_ini.xyz", true},
      {"iqn.2007-05.com.example:*", "iqn.2007-05.com.example:host1", true},
      {"iqn.2007-05.com.example:*", "iqn.2007-05.com.other:host1", false},
      {"*spec_ini*", kSpecIni, true},
      {"**", "x", true},
      {"*a*a*a*b", "aaaaaaaaaaaaaaaaaaaaaaaaaaaaab", true},
      {"*a*a*a*b", "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", false},
      // The seed's Fibre Channel example: "21:*:e0:?b:83:*".
      {"21:*:e0:?b:83:*", "21:00:00:e0:8b:83:00:01", true},
      {"21:*:e0:?b:83:*", "21:00:00:e0:8c:83:00:01", false},
      {"blah.xxx", "blah.xxx", true},
      {"blah.xxx", "blah.xxy", false},
      // access_control_fuzz: a '*' in the name opposite the pattern's '*'
      // is still matched by the wildcard, which then covers the rest.
      {"iqn.206-11.*", "iqn.206-11.*\x0fiq", true},
      {"a*", "a*b", true},
      {"*b", "*xb", true},
  };
  for (const auto& c : cases) {
    EXPECT_EQ(wildcard_match(c.pattern, c.name), c.match)
        << "pattern '" << c.pattern << "' name '" << c.name << "'";
  }
}

class AccessControlTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(acl.add_device(std::make_shared<RecordingDevice>("dev1")));
    ASSERT_TRUE(acl.add_device(std::make_shared<RecordingDevice>("dev2")));
    ASSERT_TRUE(acl.add_device(std::make_shared<RecordingDevice>("dev3")));
    ASSERT_TRUE(acl.add_target(kTarget));
  }
  // The seed's example, command for command.
  void configure_seed_example() {
    const std::string def = std::string("Default_") + kTarget;
    ASSERT_TRUE(acl.add_group(def));
    ASSERT_TRUE(acl.add_lun(def, 0, "dev1"));
    ASSERT_TRUE(acl.add_lun(def, 1, "dev2"));
    ASSERT_TRUE(acl.add_group("spec_ini"));
    ASSERT_TRUE(acl.add_initiator("spec_ini", kSpecIni));
    ASSERT_TRUE(acl.add_lun("spec_ini", 0, "dev2"));
  }
  static std::vector<std::pair<uint64_t, std::string>> luns_of(const GroupView& v) {
    std::vector<std::pair<uint64_t, std::string>> out;
    for (const auto& m : v.luns) out.emplace_back(m.lun, m.device->name());
    return out;
  }
  AccessControl acl;
};

TEST_F(AccessControlTest, SeedExample) {
  configure_seed_example();
  auto spec = acl.resolve(kTarget, kSpecIni);
  ASSERT_TRUE(spec);
  EXPECT_EQ(spec->group, "spec_ini");
  EXPECT_EQ(luns_of(*spec), (std::vector<std::pair<uint64_t, std::string>>{{0, "dev2"}}));

  for (const char* other : {"iqn.2007-05.com.example:storage.disk1.other.xyz",
                            "iqn.1991-05.com.microsoft:win", "iqn.2007-05.com.example:spec_ini"}) {
    auto v = acl.resolve(kTarget, other);
    ASSERT_TRUE(v);
    EXPECT_EQ(v->group, std::string("Default_") + kTarget) << other;
    EXPECT_EQ(luns_of(*v),
              (std::vector<std::pair<uint64_t, std::string>>{{0, "dev1"}, {1, "dev2"}}))
        << other;
  }
}

TEST_F(AccessControlTest, UnknownTargetResolvesToNothing) {
  EXPECT_FALSE(acl.resolve("iqn.2007-05.com.example:nope", kSpecIni));
}

TEST_F(AccessControlTest, LookupOrder) {
  ASSERT_TRUE(acl.add_target("iqn.t2"));
  // 3. Default, empty by default.
  auto v = acl.resolve(kTarget, "iqn.a");
  ASSERT_TRUE(v);
  EXPECT_EQ(v->group, "Default");
  EXPECT_TRUE(v->luns.empty());
  ASSERT_TRUE(acl.add_lun("Default", 0, "dev3"));
  // 2. Default_<target> beats Default, only for that target.
  ASSERT_TRUE(acl.add_group(std::string("Default_") + kTarget));
  EXPECT_EQ(acl.resolve(kTarget, "iqn.a")->group, std::string("Default_") + kTarget);
  EXPECT_EQ(acl.resolve("iqn.t2", "iqn.a")->group, "Default");
  EXPECT_EQ(luns_of(*acl.resolve("iqn.t2", "iqn.a")),
            (std::vector<std::pair<uint64_t, std::string>>{{0, "dev3"}}));
  // 1. A group naming the initiator beats both, on every target.
  ASSERT_TRUE(acl.add_group("pattern"));
  ASSERT_TRUE(acl.add_initiator("pattern", "iqn.?"));
  EXPECT_EQ(acl.resolve(kTarget, "iqn.a")->group, "pattern");
  EXPECT_EQ(acl.resolve("iqn.t2", "iqn.a")->group, "pattern");
  EXPECT_EQ(acl.resolve(kTarget, "iqn.ab")->group, std::string("Default_") + kTarget);
  // An exact name beats a pattern even in a group created later.
  ASSERT_TRUE(acl.add_group("exact"));
  ASSERT_TRUE(acl.add_initiator("exact", "iqn.a"));
  EXPECT_EQ(acl.resolve(kTarget, "iqn.a")->group, "exact");
  EXPECT_EQ(acl.resolve(kTarget, "iqn.b")->group, "pattern");
  // Between two patterns, the group created first.
  ASSERT_TRUE(acl.add_group("later_pattern"));
  ASSERT_TRUE(acl.add_initiator("later_pattern", "iqn.*"));
  EXPECT_EQ(acl.resolve(kTarget, "iqn.b")->group, "pattern");
  EXPECT_EQ(acl.resolve(kTarget, "iqn.bc")->group, "later_pattern");
  // Removing the naming group falls back again.
  ASSERT_TRUE(acl.remove_initiator("exact", "iqn.a"));
  EXPECT_EQ(acl.resolve(kTarget, "iqn.a")->group, "pattern");
}

TEST_F(AccessControlTest, LunZeroRule) {
  ASSERT_TRUE(acl.add_group("g"));
  ConfigStatus st = acl.add_lun("g", 1, "dev1");
  ASSERT_FALSE(st);
  EXPECT_NE(st.message().find("security group 'g'"), std::string::npos) << st.message();
  EXPECT_NE(st.message().find("LUN 0"), std::string::npos) << st.message();
  ASSERT_TRUE(acl.add_lun("g", 0, "dev1"));
  ASSERT_TRUE(acl.add_lun("g", 1, "dev2"));
  // LUN 0 cannot go while LUN 1 is there; by device name neither.
  st = acl.remove_lun("g", 0);
  ASSERT_FALSE(st);
  EXPECT_NE(st.message().find("'g'"), std::string::npos);
  EXPECT_FALSE(acl.remove_device_from_group("g", "dev1"));
  ASSERT_TRUE(acl.remove_device_from_group("g", "dev2"));
  ASSERT_TRUE(acl.remove_lun("g", 0));
  EXPECT_TRUE(acl.resolve(kTarget, "x")->luns.empty());
}

TEST_F(AccessControlTest, LunErrorsNameTheObject) {
  ASSERT_TRUE(acl.add_group("g"));
  ASSERT_TRUE(acl.add_lun("g", 0, "dev1"));
  auto expect_error = [](ConfigStatus st, const char* needle) {
    ASSERT_FALSE(st);
    EXPECT_NE(st.message().find(needle), std::string::npos) << st.message();
  };
  expect_error(acl.add_lun("g", 0, "dev2"), "already mapped to device 'dev1'");
  expect_error(acl.add_lun("g", 1, "dev1"), "already LUN 0");
  expect_error(acl.add_lun("g", 1, "nodev"), "device 'nodev' is not registered");
  expect_error(acl.add_lun("nogroup", 0, "dev1"), "security group 'nogroup' does not exist");
  expect_error(acl.add_lun("g", 16384, "dev2"), "above the maximum 16383");
  expect_error(acl.remove_device("dev1"), "still mapped as LUN 0 in security group 'g'");
  expect_error(acl.remove_group("Default"), "cannot be removed");
  expect_error(acl.add_group("g"), "already exists");
  expect_error(acl.add_group("has space"), "space or control");
  expect_error(acl.add_initiator("g", ""), "empty");
  ASSERT_TRUE(acl.add_lun("g", 16383, "dev2", true));
  auto v = acl.resolve(kTarget, "x");
  ASSERT_TRUE(acl.add_initiator("g", "x"));
  v = acl.resolve(kTarget, "x");
  ASSERT_EQ(v->luns.size(), 2u);
  EXPECT_FALSE(v->luns[0].read_only);
  EXPECT_TRUE(v->luns[1].read_only);
  EXPECT_EQ(v->luns[1].lun, 16383u);
}

TEST_F(AccessControlTest, ApplyValidatesEverythingFirst) {
  configure_seed_example();
  const AccessConfig before = acl.config();
  AccessConfig bad;
  bad.targets = {kTarget};
  bad.groups = {GroupConfig{"ok", {"iqn.x"}, {{0, "dev1", false}}},
                GroupConfig{"nolun0", {"iqn.y"}, {{1, "dev2", false}, {2, "dev3", true}}}};
  ConfigStatus st = acl.apply(bad);
  ASSERT_FALSE(st);
  EXPECT_NE(st.message().find("security group 'nolun0' has LUNs but no LUN 0"), std::string::npos)
      << st.message();
  // Nothing changed.
  const AccessConfig after = acl.config();
  ASSERT_EQ(after.groups.size(), before.groups.size());
  EXPECT_EQ(acl.resolve(kTarget, kSpecIni)->group, "spec_ini");

  AccessConfig good;
  good.targets = {kTarget};
  good.groups = {GroupConfig{std::string("Default_") + kTarget, {}, {{0, "dev3", false}}},
                 GroupConfig{"nolun0", {"iqn.y"}, {{0, "dev2", false}, {2, "dev1", true}}}};
  ASSERT_TRUE(acl.apply(good));
  EXPECT_EQ(acl.resolve(kTarget, kSpecIni)->group, std::string("Default_") + kTarget);
  auto y = acl.resolve(kTarget, "iqn.y");
  ASSERT_EQ(y->luns.size(), 2u);
  EXPECT_EQ(y->luns[1].lun, 2u);
  EXPECT_TRUE(y->luns[1].read_only);
  // Default always exists even when the config does not list it.
  bool has_default = false;
  for (const auto& g : acl.config().groups) has_default |= g.name == "Default";
  EXPECT_TRUE(has_default);

  AccessConfig dup;
  dup.targets = {kTarget};
  dup.groups = {GroupConfig{"d", {}, {{0, "dev1", false}, {1, "dev1", false}}}};
  EXPECT_FALSE(acl.apply(dup));
  dup.groups = {GroupConfig{"d", {}, {{0, "dev1", false}, {0, "dev2", false}}}};
  EXPECT_FALSE(acl.apply(dup));
  dup.groups = {GroupConfig{"d", {}, {{0, "ghost", false}}}};
  EXPECT_FALSE(acl.apply(dup));
}

TEST_F(AccessControlTest, ChangeListenerRunsOnSuccessOnly) {
  int calls = 0;
  acl.set_change_listener([&] { ++calls; });
  ASSERT_TRUE(acl.add_group("g"));
  EXPECT_EQ(calls, 1);
  EXPECT_FALSE(acl.add_lun("g", 1, "dev1"));
  EXPECT_EQ(calls, 1);
  ASSERT_TRUE(acl.add_lun("g", 0, "dev1"));
  ASSERT_TRUE(acl.add_initiator("g", "iqn.*"));
  ASSERT_TRUE(acl.clear_luns("g"));
  EXPECT_EQ(calls, 4);
}

}  // namespace
}  // namespace scstu::core
