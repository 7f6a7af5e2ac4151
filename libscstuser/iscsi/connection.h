// connection.h - one iSCSI connection of a session (session.h): login, then
// the full feature phase (RFC 7143 4-11). A session may have several
// (MC/S); each task belongs to the connection its command came on
// (connection allegiance, 4.2.3.2): its R2Ts, Data-In, response and a TMF's
// response go out there.
//
// Threading: the connection runs in one thread of its own. Commands complete
// on whatever thread their device uses; done() then pushes the task on a
// lock-free stack and rings an eventfd only if the connection thread said it
// is going to sleep; a completion that happens on the connection thread
// itself (a device that completes inside execute()) is queued without any
// atomic operation. Under load the loop is: recv what is there, handle every
// complete PDU, send the completions with one sendmsg (mid-batch already once
// kEarlyFlushBytes are queued, so large reads leave while the next execute),
// and sleep in poll() only when there is nothing left.
//
// Zero copy: Data-Out and immediate data that are not yet in the receive
// buffer are read straight into the command's buffer (readv into its
// iovecs); Data-In is sent from the command's buffer (writev), headers from a
// per-connection arena. No allocation per command once warm.
//
// Files: connection.cpp (thread, login, event loop, cleanup),
// connection_io.cpp (socket receive/transmit), connection_scsi.cpp (tasks,
// SCSI Command, Data-Out/R2T, Data-In/Response), connection_control.cpp
// (PDU dispatch, CmdSN window, NOP, Text, Logout, TMF, Reject).
#pragma once

#include <array>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <memory>
#include <mutex>
#include <span>
#include <string>
#include <vector>

#include "core/device.h"
#include "iscsi/itt_table.h"
#include "iscsi/login.h"
#include "iscsi/pdu.h"
#include "iscsi/session.h"
#include "iscsi/session_params.h"

namespace scstu::core {
class Session;
}

namespace scstu::iscsi {

class ServerImpl;
class Connection;

// An R2T the initiator still owes Data-Out for (RFC 7143 11.8).
struct OutstandingR2T {
  uint32_t ttt = 0;
  uint32_t offset = 0;
  uint32_t length = 0;
  uint32_t received = 0;
  uint32_t datasn = 0;
};

inline constexpr size_t kMaxR2TPerTask = 16;

// One SCSI task of this connection.
struct Task {
  core::TargetCommand cmd;
  Connection* conn = nullptr;
  Task* next_done = nullptr;  // completion stack link
  uint32_t index = 0;
  uint32_t itt = 0;
  uint32_t edtl = 0;
  bool in_use = false;
  bool immediate = false;
  bool prepared = false;   // core.prepare() said yes: buffer allocated
  bool executed = false;   // handed to the device
  bool completed = false;  // done() seen on the connection thread
  bool aborted = false;    // by a TMF or connection loss: no response is sent
  bool responded = false;  // Data-In/response queued
  // Data-Out state (RFC 7143 11.7, DataPDUInOrder=DataSequenceInOrder=Yes).
  uint32_t write_len = 0;   // bytes that go into cmd.buffer
  uint32_t unsol_end = 0;   // end of the unsolicited burst
  uint32_t unsol_next = 0;  // next unsolicited offset expected
  uint32_t unsol_datasn = 0;
  bool unsol_open = false;  // unsolicited Data-Out still to come
  uint32_t r2t_next = 0;    // next offset to solicit
  uint32_t r2tsn = 0;
  uint32_t datain_pdus = 0;
  uint32_t r2t_count = 0;
  std::array<OutstandingR2T, kMaxR2TPerTask> r2t{};
};

// A TMF waiting for the core's answer.
struct PendingTmf {
  core::TargetTmf tmf;
  Connection* conn = nullptr;
  PendingTmf* next_done = nullptr;
  uint32_t itt = 0;
  Task* ref = nullptr;
  scstu_tmf_response response = SCSTU_TMF_COMPLETE;
  bool cold_reset = false;
  bool internal = false;  // ours (a dropped connection's tasks): no response
  bool fenced = false;    // raised a Session fence: lowered in finish_tmf()
  // MC/S: the other connections of the session mark their tasks first
  // (AbortMark); the last acknowledgement sends the TMF to the core, or, for
  // an ABORT TASK of another connection's task, answers it (remote_abort).
  std::atomic<uint32_t> acks{0};
  std::atomic<bool> found{false};
  bool remote_abort = false;
  TmfResponse not_found = TmfResponse::kTaskDoesNotExist;
  PendingTmf* parent = nullptr;  // internal ABORT TASK done for a remote_abort
};

// A TMF received on another connection of the session, for the tasks of
// this one (connection allegiance: only the owner touches its tasks).
struct AbortMark {
  PendingTmf* tmf = nullptr;
  uint64_t lun = 0;
  bool all_luns = false;
  bool by_itt = false;  // ABORT TASK: just the task with this ITT
  uint32_t itt = 0;
};

class Connection {
 public:
  Connection(ServerImpl& server, int fd, std::string peer);
  ~Connection();
  Connection(const Connection&) = delete;
  Connection& operator=(const Connection&) = delete;

  // The thread body: login, full feature phase, cleanup. Returns when the
  // connection is closed and every task is released.
  void run();
  // From other threads: drop the connection (session reinstatement, stop).
  void request_stop();
  // From other threads: send an Asynchronous Message asking for a logout.
  void request_logout();
  // From other threads: look at the session's CmdSN again (a PDU held for
  // a gap may go now).
  void wake();
  // From another connection of the session (server mutex held, we are a
  // member): mark our tasks a TMF there terminates, then acknowledge.
  void post_abort(const AbortMark& mark);

  // Completion entry points (any thread).
  void task_done(Task& task);
  void tmf_done(PendingTmf& tmf);

 private:
  enum class Wait { kNone, kRead, kWrite };

  // ---- socket ----
  bool fill(size_t need, std::chrono::steady_clock::time_point deadline);
  ssize_t recv_some();
  bool wait_fd(short events, std::chrono::steady_clock::time_point deadline);
  bool read_into(std::span<const iovec> dest, size_t offset, size_t len,
                 std::chrono::steady_clock::time_point deadline, uint32_t* crc);
  bool read_payload(std::span<const iovec> dest, size_t dest_offset, size_t dest_len,
                    uint32_t total_len);
  bool read_small_payload(uint32_t len, std::vector<uint8_t>& out);
  bool skip_payload(uint32_t len);

  // ---- transmit ----
  uint8_t* arena(size_t n);
  void reset_arena();
  bool tx_backlogged() const;
  void push(const void* p, size_t n);
  void push_pdu(const Bhs& h, std::span<const iovec> data, size_t offset, uint32_t len);
  void push_pdu(const Bhs& h, const void* data, uint32_t len);
  void push_release(Task* t);
  bool flush(bool block);
  bool flush_blocking();

  // ---- login ----
  bool login();
  bool read_login_pdu(Bhs& h, std::vector<uint8_t>& data,
                      std::chrono::steady_clock::time_point deadline);

  // ---- full feature phase ----
  void full_feature();
  bool handle_pdu();
  bool on_scsi_command(const Bhs& h);
  bool on_data_out(const Bhs& h);
  bool on_nop_out(const Bhs& h);
  bool on_tmf(const Bhs& h);
  bool on_text(const Bhs& h);
  bool on_logout(const Bhs& h);
  bool on_snack(const Bhs& h);
  bool on_login_in_full_feature(const Bhs& h);
  bool on_unknown(const Bhs& h);
  using PduHandler = bool (Connection::*)(const Bhs&);
  static PduHandler handler(Opcode op);
  bool reject(const Bhs& h, RejectReason reason, const char* why);
  bool protocol_error(const Bhs& h, const char* why);
  bool check_cmdsn(const Bhs& h, uint32_t cmdsn, bool immediate);
  bool sequenced(const Bhs& h) const;
  bool peer_closed() const;
  uint32_t exp_cmdsn() const { return sess_->exp_cmdsn(); }

  Task* alloc_task();
  void free_task(Task* t);
  Task* find_task(uint32_t itt);
  void remove_itt(Task* t);

  void send_r2ts(Task* t);
  void data_phase_check(Task* t);
  void drain_completions();
  void complete_task(Task* t);
  void send_response(Task* t);
  void send_nop_ping();
  void send_async_logout();
  void finish_tmf(PendingTmf* p);
  void apply_abort_marks();
  void ack_tmf(PendingTmf* p);
  void abort_at_device(Task* t, PendingTmf* parent);
  uint32_t max_cmdsn();
  bool fail_data_phase(Task* t, const Bhs& h, uint8_t ascq, const char* why);
  void cleanup();
  void log(const char* fmt, ...) __attribute__((format(printf, 2, 3)));

  ServerImpl& server_;
  int fd_;
  int event_fd_;
  std::string peer_;
  std::string local_host_;  // the address the initiator connected to
  std::atomic<bool> stop_{false};
  std::atomic<bool> logout_requested_{false};
  bool logout_sent_ = false;
  bool closing_ = false;  // logout answered: close after flush

  // login results
  std::unique_ptr<LoginNegotiator> login_;
  SessionParams params_;
  bool discovery_ = false;
  std::string initiator_;
  std::shared_ptr<Session> sess_;           // the iSCSI session joined
  std::shared_ptr<core::Session> session_;  // its I_T nexus in the core
  uint16_t cid_ = 0;

  // sequence numbers: StatSN is per connection; CmdSN is the session's
  uint32_t statsn_ = 0;
  uint32_t window_ = 128;
  uint32_t active_ = 0;    // non-immediate tasks of this connection (window slots)
  bool cmdsn_ok_ = false;  // the PDU being handled is the session's next CmdSN
  bool covered_ = false;   // ... and a TMF in progress terminates it (Session::kCovered)
  // The PDU at rpos_ waits for a CmdSN gap to fill (session.h); since when.
  bool held_ = false;
  bool held_fence_ = false;  // ... behind a TMF fence (Session::raise_fence), not a gap
  std::chrono::steady_clock::time_point held_since_;

  // receive buffer: [rpos_, wpos_) holds unread bytes
  std::vector<uint8_t> rx_;
  size_t rpos_ = 0, wpos_ = 0;
  bool rx_short_ = false;         // the last recv() returned less than it could
  std::vector<uint8_t> scratch_;  // discarded data, digests
  std::vector<iovec> iov_scratch_;
  std::vector<uint8_t> small_payload_;  // login/text/NOP data
  std::chrono::steady_clock::time_point last_rx_;
  std::chrono::steady_clock::time_point ping_sent_;
  bool ping_outstanding_ = false;
  uint32_t next_ttt_ = 1;

  // transmit queue
  std::vector<iovec> tx_;
  size_t tx_head_ = 0;
  std::vector<std::pair<size_t, Task*>> tx_release_;  // release once tx_head_ passes index
  struct ArenaChunk {
    std::unique_ptr<uint8_t[]> memory;
    size_t size = 0;
  };
  std::vector<ArenaChunk> arena_chunks_;
  size_t arena_chunk_ = 0, arena_used_ = 0;
  size_t arena_bytes_ = 0;
  size_t tx_bytes_ = 0;  // queued, not yet sent

  // tasks
  std::vector<std::unique_ptr<Task>> tasks_;
  std::vector<Task*> free_tasks_;
  IttTable<Task> itt_;       // live tasks (until their response is queued)
  uint32_t tasks_live_ = 0;  // prepared or in flight: cleanup waits for them

  // completions
  std::atomic<Task*> done_stack_{nullptr};
  std::atomic<PendingTmf*> tmf_stack_{nullptr};
  std::atomic<bool> sleeping_{false};
  std::vector<Task*> local_done_;
  std::vector<Task*> drain_;
  uint32_t tmfs_pending_ = 0;
  std::mutex marks_mutex_;
  std::vector<AbortMark> marks_;  // guarded by marks_mutex_
  std::atomic<bool> marks_posted_{false};
  std::vector<AbortMark> marks_taken_;

  // The extended CDB of the PDU being handled (AHS type 1).
  std::array<uint8_t, SCSTU_CDB_LONG_MAX> ext_cdb_{};
  size_t ext_cdb_len_ = 0;

  // Text exchanges spanning PDUs (RFC 7143 11.10/11.11: C bit, TTT): the
  // request being collected, the response being handed out.
  std::string text_in_;
  std::string text_out_;
  size_t text_pos_ = 0;
  uint32_t text_ttt_ = kReservedTag;
  uint32_t text_itt_ = kReservedTag;
};

}  // namespace scstu::iscsi
