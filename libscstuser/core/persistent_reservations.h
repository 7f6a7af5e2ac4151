// persistent_reservations.h - SPC-4 persistent reservations of one logical
// unit (SPC-4 5.13, 6.15 PERSISTENT RESERVE IN, 6.16 PERSISTENT RESERVE OUT).
//
// Registrations belong to I_T nexuses, identified as SPC-4 requires by the
// initiator port (its TransportID: for iSCSI the initiator name and ISID) and
// the relative target port, not by the transport's session id: they survive
// logout, I_T nexus loss and LUN reset, and with APTPL a restart of the
// handler (the state is written atomically to a file: temp, fsync, rename).
//
// Supported: all eight PR OUT service actions except REPLACE LOST
// RESERVATION, all six types, ALL_TG_PT (ATP_C), APTPL (PTPL_C, when a state
// file is configured), CRH (SPC-4 5.13.3). Not supported: SPEC_I_PT (SIP_C = 0:
// INVALID FIELD IN PARAMETER LIST), element scope.
//
// Thread-safe. The per-command conflict check is one atomic load while the
// unit holds no persistent reservation.
#pragma once

#include <atomic>
#include <cstdint>
#include <mutex>
#include <optional>
#include <span>
#include <string>
#include <unordered_map>
#include <vector>

#include "core/reservations.h"
#include "core/unit_attentions.h"
#include "handler/command.h"

namespace scstu::core {

// SPC-4 6.15.3.4 Table 212.
enum class PrType : uint8_t {
  kWriteExclusive = 0x1,
  kExclusiveAccess = 0x3,
  kWriteExclusiveRegistrantsOnly = 0x5,
  kExclusiveAccessRegistrantsOnly = 0x6,
  kWriteExclusiveAllRegistrants = 0x7,
  kExclusiveAccessAllRegistrants = 0x8,
};
bool valid_pr_type(uint8_t type);

// PERSISTENT RESERVE OUT service actions (SPC-4 6.16.2 Table 213).
enum class PrOutAction : uint8_t {
  kRegister = 0x00,
  kReserve = 0x01,
  kRelease = 0x02,
  kClear = 0x03,
  kPreempt = 0x04,
  kPreemptAndAbort = 0x05,
  kRegisterAndIgnoreExistingKey = 0x06,
  kRegisterAndMove = 0x07,
};

// An initiator port as SPC-4 identifies it (7.6.4 TransportID).
struct InitiatorPort {
  uint8_t protocol_id = 0xF;  // SPC-4 7.6.1: 5 = iSCSI
  std::string name;           // iSCSI name, lower case
  std::string isid;           // iSCSI ISID, 12 lower-case hex digits; empty = any
  // From an attached nexus: SessionInfo::transport_id is the text form
  // "iqn...,i,0x<ISID>", or empty (then initiator_name alone).
  static InitiatorPort from_session(const SessionInfo& s);
  // SPC-4 7.6.4.6 iSCSI TransportID (format 00b or 01b); nullopt if malformed.
  // `consumed` is set to the TransportID's length in bytes.
  static std::optional<InitiatorPort> parse_transport_id(std::span<const uint8_t> tid,
                                                         size_t* consumed);
  // Format 00b (the initiator name), padded to a multiple of 4 and >= 24 bytes.
  std::vector<uint8_t> transport_id() const;
  // A registration with no ISID matches every ISID of the name.
  bool matches(const InitiatorPort& session_port) const;
  friend bool operator==(const InitiatorPort&, const InitiatorPort&) = default;
};

class PersistentReservations {
 public:
  struct Options {
    // Where APTPL state lives; empty: APTPL unsupported (PTPL_C = 0).
    std::string state_file;
  };
  PersistentReservations(UnitAttentions& unit_attentions, Options options);
  PersistentReservations(const PersistentReservations&) = delete;
  PersistentReservations& operator=(const PersistentReservations&) = delete;

  // Read the APTPL state file if it exists. Returns an error message naming
  // the file and the cause ("" on success or when there is no file); on error
  // the state stays empty.
  std::string load();

  // Nexuses the unit knows, for unit attentions and PREEMPT AND ABORT.
  void session_attached(const SessionInfo& session);
  void session_detached(uint64_t nexus);

  // PERSISTENT RESERVE IN (0x5E): the full parameter data into `data`; the
  // caller truncates it to the CDB's ALLOCATION LENGTH.
  Outcome in(const SessionInfo& session, std::span<const uint8_t> cdb, std::vector<uint8_t>& data);
  // PERSISTENT RESERVE OUT (0x5F) with its parameter list (data-out).
  // PREEMPT AND ABORT (SPC-4 5.13.11.2.6): `preempted` receives the nexuses
  // whose tasks the caller must now abort, sparing this command's own task,
  // before completing it: TaskSet::abort_nexuses(*preempted, tas, &own_task, ...).
  Outcome out(const SessionInfo& session, std::span<const uint8_t> cdb,
              std::span<const uint8_t> parameters, std::vector<uint64_t>* preempted = nullptr);

  // True if the command must end in RESERVATION CONFLICT (SPC-4 5.13.1 table
  // 65). Not for PERSISTENT RESERVE OUT or RESERVE/RELEASE: see out() and
  // spc2_exception().
  bool conflicts(const SessionInfo& session, std::span<const uint8_t> cdb) const;

  // SPC-4 5.13.3 for RESERVE(6/10)/RELEASE(6/10): nullopt = process it as
  // SPC-2 says; GOOD = complete with GOOD and change nothing; RESERVATION
  // CONFLICT = a registration exists (SPC-2 5.5.1).
  std::optional<Outcome> spc2_exception(const SessionInfo& session) const;
  // SPC-2 5.5.1: PERSISTENT RESERVE IN/OUT conflict while an SPC-2
  // reservation is held; the caller checks Reservations::reserved().

  // Introspection (tests, statistics).
  uint32_t generation() const;
  size_t registrations() const;
  std::optional<PrType> reservation_type() const;
  bool is_registered(const SessionInfo& session) const;
  bool is_holder(const SessionInfo& session) const;

 private:
  struct Registration {
    InitiatorPort port;
    uint16_t relative_port = 0;
    bool all_target_ports = false;
    uint64_t key = 0;
  };
  // Everything APTPL persists. PR OUT works on a copy and commits it only
  // once it is durable, so a failed write leaves the old state in force.
  struct State {
    std::vector<Registration> registrations;
    std::optional<PrType> type;  // the reservation, if any
    size_t holder = 0;           // its holder (index), unless an all-registrants type
    uint32_t generation = 0;
    bool aptpl = false;
  };
  struct Nexus {
    InitiatorPort port;
    uint16_t relative_port = 0;
  };
  struct OutRequest;
  struct Effects;

  static const Registration* find(const State& s, const InitiatorPort& port,
                                  uint16_t relative_port);
  static bool is_holder(const State& s, const Registration* reg);
  static void remove(State& s, size_t index);
  std::vector<uint64_t> nexuses_of(const Registration& reg) const;  // under mutex_
  void add_unit_attention(Effects& fx, const Registration& reg, UnitAttention ua,
                          const OutRequest& except) const;
  std::string persist(const State& s) const;
  bool persistent_conflict(const State& s, const SessionInfo& session, AccessClass cls) const;

  Outcome do_register(State& s, const OutRequest& r, bool ignore_key, Effects& fx) const;
  Outcome do_reserve(State& s, const OutRequest& r) const;
  Outcome do_release(State& s, const OutRequest& r, Effects& fx) const;
  Outcome do_clear(State& s, const OutRequest& r, Effects& fx) const;
  Outcome do_preempt(State& s, const OutRequest& r, bool abort, Effects& fx) const;
  Outcome do_register_and_move(State& s, const OutRequest& r) const;

  UnitAttentions& unit_attentions_;
  const Options options_;

  mutable std::mutex mutex_;
  std::unordered_map<uint64_t, Nexus> nexuses_;
  State state_;
  std::atomic<bool> reserved_{false};  // state_.type set (fast path)
};

}  // namespace scstu::core
