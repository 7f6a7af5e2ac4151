// Runs the fuzz target's entry point (fuzz/ring_entry_fuzz.cpp) over a few
// seeds and random inputs in the normal build, so its invariants are checked
// by ctest too (the fuzzer itself needs clang: -DSCSTU_FUZZ=ON).
#include <gtest/gtest.h>

#include <cstring>
#include <random>
#include <vector>

#include "ring/ring_abi.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size);

namespace {

TEST(RingEntryFuzzSeeds, ValidAndHostileEntriesKeepInvariants) {
  std::vector<std::vector<uint8_t>> seeds;
  // A valid READ with two inline iovs and a matching completion.
  {
    std::vector<uint8_t> s(1 + sizeof(scstu_cmd) + 300, 0);
    s[0] = 0x8f;
    scstu_cmd c{};
    c.kind = SCSTU_KIND_SCSI;
    c.data_dir = SCSTU_DIR_READ;
    c.cdb_len = 10;
    c.nr_iov = 2;
    c.data_length = 8192;
    c.iov[0] = {0, 4096, 0};
    c.iov[1] = {4096, 4096, 0};
    std::memcpy(s.data() + 1, &c, sizeof(c));
    seeds.push_back(s);
  }
  // An indirect list.
  {
    std::vector<uint8_t> s(1 + sizeof(scstu_cmd) + 2 * sizeof(scstu_iov), 0);
    s[0] = 0x8f;
    scstu_cmd c{};
    c.kind = SCSTU_KIND_SCSI;
    c.data_dir = SCSTU_DIR_WRITE;
    c.cdb_len = 16;
    c.flags = SCSTU_CMD_F_IOV_INDIRECT;
    c.nr_iov = 2;
    c.data_length = 1024;
    c.iov[0] = {0, 32, 0};
    scstu_iov list[2] = {{0, 512, 0}, {4096, 512, 0}};
    std::memcpy(s.data() + 1, &c, sizeof(c));
    std::memcpy(s.data() + 1 + sizeof(c), list, sizeof(list));
    seeds.push_back(s);
  }
  // An ABI 1.2 unit event with SCSTU_F_UNIT_STATE offered (bit 3 of the
  // first byte), its completion and a handler state block.
  {
    std::vector<uint8_t> s(1 + sizeof(scstu_cpl) + 4 + 1 + 20, 0);
    s[0] = 0x08;
    scstu_cmd c{};
    c.kind = SCSTU_KIND_UNIT_EVENT;
    c.session_id = 3;
    c.unit.event = SCSTU_EVENT_REPORTED_LUNS_CHANGED;
    std::memcpy(s.data() + 1, &c, sizeof(c));
    seeds.push_back(s);
  }
  for (auto& s : seeds) EXPECT_EQ(LLVMFuzzerTestOneInput(s.data(), s.size()), 0);
  // Random mutations of the seeds (a poor man's fuzzer: the real one runs
  // with SCSTU_FUZZ=ON).
  std::mt19937 rng(42);
  for (int i = 0; i < 200000; ++i) {
    std::vector<uint8_t> s = seeds[i % seeds.size()];
    int flips = 1 + rng() % 8;
    for (int k = 0; k < flips; ++k) s[rng() % s.size()] = static_cast<uint8_t>(rng());
    EXPECT_EQ(LLVMFuzzerTestOneInput(s.data(), s.size()), 0);
  }
  EXPECT_EQ(LLVMFuzzerTestOneInput(nullptr, 0), 0);
}

}  // namespace
