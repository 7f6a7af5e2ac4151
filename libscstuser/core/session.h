// session.h - an I_T nexus on the producer side: who the initiator is, which
// target it logged in to, which security group it was given and the LUNs that
// group maps (its LUN inventory), and its outstanding-command count.
//
// Sessions are created and closed by TargetCore (open_session/close_session);
// a transport holds the shared_ptr and passes the raw pointer in each
// TargetCommand. Keep the shared_ptr until every command of the session has
// been released.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "core/access_control.h"
#include "core/exported_device.h"
#include "handler/command.h"

namespace scstu::core {

// SPC-4 7.6.1 Table 444: protocol identifiers.
inline constexpr uint16_t kProtocolIscsi = 0x5;
inline constexpr uint16_t kProtocolNone = 0xF;

struct SessionParams {
  std::string target_name;
  std::string initiator_name;  // iSCSI InitiatorName (or a pattern-matchable id)
  uint64_t isid = 0;           // iSCSI ISID, 48 bits (RFC 7143 10.12.5)
  uint16_t relative_port = 1;  // SPC-4 relative target port identifier
  uint16_t protocol_id = kProtocolIscsi;
  // SPC-4 TransportID in text form; empty: built from initiator_name and isid
  // for iSCSI, or the initiator name otherwise.
  std::string transport_id;
};

// SPC-4 7.6.4.6 (iSCSI TransportID, format 01b): "<name>,i,0x<ISID>", the ISID
// as 12 lower-case hex digits.
std::string iscsi_transport_id(std::string_view initiator_name, uint64_t isid);

// One LUN of a session: the I_T_L nexus. Shared by the commands routed
// through it (they hold it while outstanding), so the device and counters
// outlive a configuration change that unmaps the LUN.
class CommandRoute {
 public:
  CommandRoute() = default;
  CommandRoute(uint64_t lun, std::shared_ptr<ExportedDevice> device, bool read_only)
      : lun_(lun), device_(std::move(device)), read_only_(read_only) {}

  uint64_t lun() const { return lun_; }
  ExportedDevice* exported() const { return device_.get(); }
  const std::shared_ptr<ExportedDevice>& shared_exported() const { return device_; }
  bool read_only() const { return read_only_; }
  std::atomic<uint32_t>& outstanding() { return outstanding_; }
  // Commands the core answers itself carry their response data here.
  std::vector<uint8_t>& response() { return response_; }
  // The sense format the device used last on this route (SPC-4 4.5.1), for
  // sense the core builds when the device cannot be asked (a RingDevice).
  void note_sense_format(bool descriptor) {
    descriptor_sense_seen_.store(descriptor, std::memory_order_relaxed);
  }
  bool descriptor_sense_seen() const {
    return descriptor_sense_seen_.load(std::memory_order_relaxed);
  }

 private:
  uint64_t lun_ = 0;
  std::shared_ptr<ExportedDevice> device_;
  bool read_only_ = false;
  std::atomic<uint32_t> outstanding_{0};
  std::atomic<bool> descriptor_sense_seen_{false};
  std::vector<uint8_t> response_;
};

// A session's LUN inventory, replaced as a whole on configuration changes.
struct LunTable {
  std::string group;
  std::vector<std::shared_ptr<CommandRoute>> routes;  // sorted by LUN

  const std::shared_ptr<CommandRoute>* find(uint64_t lun) const;
};

class Session {
 public:
  Session(uint64_t id, const SessionParams& params);

  const SessionInfo& info() const { return info_; }
  uint64_t id() const { return info_.id; }
  const std::string& target_name() const { return info_.target_name; }
  const std::string& initiator_name() const { return info_.initiator_name; }
  uint64_t isid() const { return isid_; }
  bool closed() const { return closed_.load(std::memory_order_acquire); }
  uint32_t outstanding() const { return outstanding_.load(std::memory_order_relaxed); }
  // The security group the session is in now, and what it maps.
  std::string group() const;
  std::vector<LunMapping> luns() const;

  // ---- used by TargetCore ----
  // The current table, for anything but the command path.
  std::shared_ptr<const LunTable> table() const;
  void set_table(std::shared_ptr<const LunTable> table);

  // The command path's view of the current table: no lock, no reference
  // count. Tables replaced while a view may be open are kept until a
  // set_table() finds no view open (readers_ and the table pointer are
  // seq_cst, so either the writer sees the reader or the reader sees the new
  // table).
  class TableView {
   public:
    explicit TableView(const Session& s) : session_(s), table_(s.enter_table()) {}
    ~TableView() { session_.leave_table(); }
    TableView(const TableView&) = delete;
    TableView& operator=(const TableView&) = delete;
    const LunTable& operator*() const { return *table_; }
    const LunTable* operator->() const { return table_; }

   private:
    const Session& session_;
    const LunTable* table_;
  };

  std::atomic<uint32_t>& outstanding_counter() { return outstanding_; }
  void mark_closed() { closed_.store(true, std::memory_order_release); }
  // SPC-4 REPORTED LUNS DATA HAS CHANGED, pending per LUN of this I_T nexus.
  void raise_luns_changed(const std::vector<uint64_t>& luns);
  bool take_luns_changed(uint64_t lun);  // true once per raise, then cleared
  void clear_luns_changed();             // REPORT LUNS clears it for all LUNs

 private:
  const LunTable* enter_table() const {
    readers_.fetch_add(1, std::memory_order_seq_cst);
    return current_.load(std::memory_order_seq_cst);
  }
  void leave_table() const { readers_.fetch_sub(1, std::memory_order_release); }

  SessionInfo info_;
  uint64_t isid_ = 0;
  mutable std::mutex tables_mutex_;
  std::vector<std::shared_ptr<const LunTable>> tables_;  // back() is current
  std::atomic<const LunTable*> current_{nullptr};
  mutable std::atomic<uint32_t> readers_{0};
  std::atomic<uint32_t> outstanding_{0};
  std::atomic<bool> closed_{false};
  std::atomic<bool> luns_changed_any_{false};  // hot-path check before the lock
  std::mutex ua_mutex_;
  std::set<uint64_t> luns_changed_;
};

}  // namespace scstu::core
