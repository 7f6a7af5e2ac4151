// Fuzz target: the persistent reservations APTPL state file loader
// (PersistentReservations::load, core/persistent_reservations.cpp), which
// reads a file a crash, a full disk or a person may have mangled. Invariants:
// a rejected file leaves no state and an error naming the file; an accepted
// one answers every PERSISTENT RESERVE IN service action and the conflict
// check, takes a PR OUT from a registered or new nexus, and the state it then
// writes loads back to the same registrations and generation.
#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "core/persistent_reservations.h"
#include "core/unit_attentions.h"

using namespace scstu;

namespace {

const std::string& state_path() {
  static const std::string path = "/dev/shm/scstu-fuzz-" + std::to_string(getpid()) + "-pr-state";
  return path;
}

void write_file(const std::string& path, const uint8_t* data, size_t size) {
  FILE* f = std::fopen(path.c_str(), "wb");
  if (f == nullptr) std::abort();
  if (size != 0 && std::fwrite(data, 1, size, f) != size) std::abort();
  std::fclose(f);
}

SessionInfo session(uint64_t id, const char* name, uint16_t port) {
  SessionInfo s;
  s.id = id;
  s.relative_port = port;
  s.protocol_id = 5;
  s.initiator_name = name;
  s.transport_id = std::string(name) + ",i,0x400000000001";
  return s;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const bool cleanup = [] {
    (void)state_path();  // constructed first, so destroyed after the handler ran
    return std::atexit([] {
             std::remove(state_path().c_str());
             std::remove((state_path() + ".tmp").c_str());
           }) == 0;
  }();
  (void)cleanup;
  write_file(state_path(), data, size);
  core::UnitAttentions uas;
  core::PersistentReservations pr(uas, {state_path()});
  const SessionInfo a = session(1, "iqn.2026-11.fuzz:a", 1);
  const SessionInfo b = session(2, "iqn.2026-11.fuzz:b", 2);
  uas.attach(a.id);
  uas.attach(b.id);
  pr.session_attached(a);
  pr.session_attached(b);

  const std::string error = pr.load();
  if (!error.empty()) {
    if (error.find(state_path()) == std::string::npos) std::abort();
    if (pr.registrations() != 0 || pr.reservation_type() || pr.generation() != 0) std::abort();
    return 0;
  }
  std::vector<uint8_t> out;
  for (uint8_t sa = 0; sa < 4; ++sa) {
    const uint8_t cdb[10] = {0x5E, sa, 0, 0, 0, 0, 0, 0xFF, 0xFF, 0};
    if (!pr.in(a, cdb, out).ok()) std::abort();
  }
  for (uint8_t op : {0x28, 0x2A, 0x00, 0x12}) {
    const uint8_t cdb[10] = {op};
    (void)pr.conflicts(a, cdb);
    (void)pr.conflicts(b, cdb);
  }
  (void)pr.spc2_exception(b);
  (void)pr.is_holder(a);

  // REGISTER AND IGNORE EXISTING KEY with APTPL from b: the state is written
  // again, and must read back the same.
  const uint8_t cdb[10] = {0x5F, 0x06, 0, 0, 0, 0, 0, 0, 24, 0};
  uint8_t params[24] = {};
  params[15] = size & 0xFF;  // SERVICE ACTION RESERVATION KEY, non-zero
  params[14] = 1;
  params[20] = 0x01;  // APTPL
  if (!pr.out(b, cdb, params).ok()) std::abort();
  core::UnitAttentions uas2;
  core::PersistentReservations again(uas2, {state_path()});
  if (!again.load().empty()) std::abort();
  if (again.registrations() != pr.registrations() || again.generation() != pr.generation() ||
      again.reservation_type() != pr.reservation_type()) {
    std::abort();
  }
  return 0;
}
