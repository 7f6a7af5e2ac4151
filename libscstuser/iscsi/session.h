// session.h - one iSCSI session (RFC 7143 4.4): the connections it has
// (multiple connections per session, MC/S), the one I_T nexus they share in
// the core, and the command numbering common to all of them.
//
// CmdSN ordering (4.2.2.1): commands and other non-immediate PDUs are handed
// on in CmdSN order across the session, whichever connection they come on.
// A connection whose next PDU is numbered beyond ExpCmdSN leaves it unread in
// its socket (order() answers kHold) and sleeps until the gap fills: the
// connection that delivers the missing number wakes it (delivered()). While
// one PDU is being delivered (its data read, the command handed to the core)
// the next number waits, so the core sees them in order. Immediate PDUs
// bypass all this. With a single connection a gap cannot fill (TCP keeps
// order), so the PDU is taken at once as before; with several, a gap that
// stays open longer than ServerOptions::cmdsn_gap_timeout is skipped too.
//
// ExpCmdSN and MaxCmdSN are session-wide: every connection reports the same
// window, which counts the session's commands (take_slot / release_slot).
// StatSN stays per connection (Connection::statsn_).
//
// Membership (members, draining, joining, ended) belongs to ServerImpl and is
// guarded by its mutex; the sequencing state has a lock of its own.
#pragma once

#include <array>
#include <atomic>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <tuple>
#include <vector>

#include "iscsi/itt_table.h"
#include "iscsi/session_params.h"

namespace scstu::core {
class Session;
}

namespace scstu::iscsi {

class Connection;
struct Task;

// RFC 7143 4.4.3: a session is identified by initiator name, ISID and target.
struct SessionKey {
  std::string initiator;
  std::array<uint8_t, 6> isid{};
  std::string target;  // empty for a discovery session
  bool operator<(const SessionKey& o) const {
    return std::tie(initiator, isid, target) < std::tie(o.initiator, o.isid, o.target);
  }
  bool operator==(const SessionKey& o) const {
    return std::tie(initiator, isid, target) == std::tie(o.initiator, o.isid, o.target);
  }
};

class Session {
 public:
  // `leading`: what the leading connection negotiated; its session-wide
  // (leading only) values bind every connection.
  Session(SessionKey key, uint16_t tsih, const SessionParams& leading, uint32_t window,
          uint32_t first_cmdsn, uint32_t tasks_per_connection);

  const SessionKey& key() const { return key_; }
  uint16_t tsih() const { return tsih_; }
  const SessionParams& params() const { return params_; }
  // Copy the session-wide values into a joining connection's parameters.
  void apply_session_wide(SessionParams& p) const;

  // The core's I_T nexus: set once by the leading connection before the
  // session is visible to joining connections, cleared by the last one.
  std::shared_ptr<core::Session> core_session;

  // ---- CmdSN (any connection thread) ----
  enum class Order {
    kDeliver,  // the next number: handle it now, then call delivered()
    kHold,     // beyond ExpCmdSN: keep it unread; `waiter` is woken later
    kIgnore,   // outside [ExpCmdSN, MaxCmdSN]: 4.2.2.1 says drop it silently
    kFenced,   // a SCSI command after a TMF in progress on its LUN: keep it unread
    kCovered,  // like kDeliver, but a SCSI command numbered before a TMF in
               // progress on its LUN, which terminates it: drop it unanswered
  };
  // `skip_gap`: the gap before `cmdsn` has been open too long; take it.
  // `command_lun`: the LUN field of a SCSI Command, else nullptr.
  Order order(uint32_t cmdsn, Connection* waiter, bool skip_gap,
              const uint64_t* command_lun = nullptr);
  void delivered();
  // A connection that leaves stops waiting; waiting connections re-check (a
  // gap nobody can fill any more is skipped).
  void forget_waiter(Connection* c);
  void wake_waiters();

  uint32_t exp_cmdsn() const { return expcmdsn_.load(std::memory_order_acquire); }
  // RFC 7143 4.2.2.1: MaxCmdSN - ExpCmdSN + 1 commands may be outstanding;
  // what was advertised stays valid (the window never shrinks).
  uint32_t max_cmdsn();
  bool take_slot();
  void release_slot() { active_.fetch_sub(1, std::memory_order_acq_rel); }

  // ---- TMF fences (any connection thread) ----
  // RFC 7143 11.5.1: a TMF acts on the commands numbered before it. One
  // that terminates task sets (ABORT/CLEAR TASK SET, LOGICAL UNIT RESET,
  // TARGET RESET) raises a fence before it marks the session's tasks and
  // lowers it once the core has acted (its done()): a SCSI command for
  // those LUNs numbered at or after the TMF's CmdSN and arriving in
  // between, on any connection, stays unread until then, so it is not
  // caught by the core's abort (answered TASK ABORTED, or lost). Its CmdSN
  // is not taken, so later numbers wait behind it; gaps are not skipped
  // while a fence is up. One numbered before the TMF (still on its way on
  // another connection when the TMF came) is terminated by it: kCovered.
  void raise_fence(const void* id, uint64_t lun, bool all_luns, uint32_t cmdsn);
  void lower_fence(const void* id);
  // For an immediate SCSI command (no CmdSN turn): true = hold it; `waiter`
  // is woken when the fence goes.
  bool fenced(uint64_t lun, Connection* waiter);

  // ---- Initiator Task Tags (any connection thread) ----
  // RFC 7143 11.2.1.8: a tag is unique within the session, not just within
  // a connection. Kept here only when the session may have several
  // connections (MaxConnections > 1); with one, the connection's own table
  // says it all and no lock is taken. `tasks_per_connection`: the most
  // tasks one connection holds at once.
  bool tracks_itts() const { return tracks_itts_; }
  IttTable<Task>::Insert claim_itt(uint32_t itt, Task* task);
  void release_itt(uint32_t itt, const Task* task);

  // ---- membership, guarded by ServerImpl's mutex ----
  struct Member {
    Connection* conn;
    uint16_t cid;
  };
  std::vector<Member> members;           // in full feature phase
  std::vector<Connection*> draining;     // left, still finishing their tasks
  uint32_t joining = 0;                  // logins reinstating a CID right now
  bool ended = false;                    // no connection may join any more
  bool ended_by_last = false;            // the last member left (I_T nexus closed)
  bool ready = false;                    // the I_T nexus is open: others may join
  std::atomic<uint32_t> connections{0};  // members.size(), for order()

 private:
  const SessionKey key_;
  const uint16_t tsih_;
  const SessionParams params_;
  const uint32_t window_;

  const bool tracks_itts_;
  std::mutex itt_mutex_;
  IttTable<Task> itts_;  // guarded by itt_mutex_

  std::mutex mutex_;  // the fields below
  std::atomic<uint32_t> expcmdsn_;
  std::atomic<uint32_t> advertised_;
  std::atomic<uint32_t> active_{0};
  bool delivering_ = false;
  std::vector<Connection*> waiters_;
  struct Fence {
    const void* id;
    uint64_t lun;
    bool all_luns;
    uint32_t cmdsn;  // the TMF's: commands numbered before it are its
  };
  std::vector<Fence> fences_;
  std::atomic<uint32_t> fence_count_{0};  // fences_.size(): a lock-free "none"
  bool fence_covers_locked(uint64_t lun) const;
  void add_waiter_locked(Connection* waiter);
};

}  // namespace scstu::iscsi
