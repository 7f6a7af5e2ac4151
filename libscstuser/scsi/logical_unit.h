// logical_unit.h - scsi::LogicalUnit, the device server: a LowLevelHandler that
// emulates SPC-4 and SBC-3 over a BlockDevice (the high-level handler API), as
// libfuse's high-level API sits on its low-level one.
//
//   LogicalUnitConfig cfg;
//   cfg.vendor = "ACME"; cfg.product = "RAMDISK"; cfg.serial = "ram0";
//   RamDisk disk(64 << 20);                       // a BlockDevice
//   scsi::LogicalUnit lu(cfg, &disk);             // a LowLevelHandler
//   // hand `lu` to the ring consumer (handler/) or to a core::LocalDevice.
//
// Per command: look the opcode up in scsi/opcode_table.h, check the device
// type, decode the CDB again (the producer's lengths are not trusted), report
// a pending unit attention, check reservations and the task set, check write
// protection and the LBA range, then call the row's emulation entry.
//
// ---------------------------------------------------------------------------
// Writing an emulation entry (scsi/sbc_*.cpp, scsi/spc_*.cpp, ...)
// ---------------------------------------------------------------------------
//   void sbc_foo(CommandContext& ctx);          // declare in scsi/emulation.h,
//                                               // put &sbc_foo in the table row
// When it is called, the framework has already: decoded the CDB (ctx.decoded():
// direction, transfer_length, lba, blocks), rejected bits outside the row's
// CDB usage mask, reported unit attentions, checked reservations, and, for
// rows with opflag::kWritesMedium / kLbaRange, write protection and the LBA
// range. Everything else is the entry's job:
//  - Field checks:   `return ctx.complete_check(kInvalidFieldInCdb, {true, 1, 3});`
//                    (byte 1, bit 3 of the CDB; {false, ...} for the parameter list).
//                    The sense is built in the format D_SENSE selects.
//  - More sense:     `ctx.complete_check(ctx.sense(kMiscompare).information(off));`
//  - Write protect:  `if (!ctx.check_writable()) return;`   (already completed)
//  - LBA range:      `if (!ctx.check_lba_range(lba, n)) return;`
//  - Data-out:       `ctx.read_parameters(span)` copies the parameter list in;
//                    ctx.data() is the whole DataBuffer (in-place, zero copy).
//  - Data-in:        `ctx.complete_data_in(bytes)` copies min(size, allocation
//                    length) and completes GOOD with the residual right.
//  - Block I/O:      `ctx.submit_block(slot, BlockOp::kRead, lba, n,
//                        ctx.data_iov(offset, len), flags, &on_done);`
//                    with `static void on_done(CommandContext& ctx, unsigned slot, int err)`.
//                    on_done may run on any thread, even inside submit_block():
//                    touch nothing of ctx after submit_block() returns. Up to
//                    CommandContext::kBlockSlots requests may be in flight; a
//                    bounce buffer: ctx.bounce(bytes) (reused, no per-command allocation).
//                    Errors: `ctx.complete_block_error(err, lba)` maps the errno.
//  - Completion:     exactly once, complete_good / complete_check / complete_status;
//                    the context then returns to the pool: do not touch it.
//  - Per-LU state:   ctx.unit() (config, capacity, mode pages, write cache state).
// ---------------------------------------------------------------------------
#pragma once

#include <array>
#include <atomic>
#include <bitset>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "handler/block_device.h"
#include "handler/command.h"
#include "scsi/sense.h"

namespace scstu::scsi {

class CommandContext;
class ContextPool;
class ModePages;
class NexusTable;
struct LuRuntime;

// SPC-4 / SBC-3 write cache behaviour, the seed's vdisk flags.
enum class WriteCacheMode : uint8_t {
  kWriteBack,     // WCE = 1: SYNCHRONIZE CACHE flushes; FUA writes are durable at once
  kWriteThrough,  // WCE = 0: every write is made durable before GOOD (FUA implied)
  // NV_CACHE (seed): the cache is non-volatile. Reports WCE = 0 so initiators
  // drop their flush workarounds, and SYNCHRONIZE CACHE / FUA complete GOOD
  // without touching the device ("overrides WRITE_THROUGH").
  kNvCache,
};

struct LogicalUnitConfig {
  uint8_t device_type = 0x00;  // SPC-4 peripheral device type (0 disk, 1 tape, 5 CD-ROM, 8 changer)
  std::string vendor = "SCSTU";   // T10 vendor identification, <= 8 ASCII chars
  std::string product = "VDISK";  // <= 16
  std::string revision = "0001";  // <= 4
  std::string serial;             // VPD 0x80; also seeds the NAA identifier. Empty: none
  // VPD 0x83 NAA 6 (IEEE registered extended) designator; empty = derived
  // from `ieee_company_id` and a hash of vendor/product/serial.
  std::optional<std::array<uint8_t, 16>> naa;
  uint32_t ieee_company_id = 0x001405;
  std::optional<uint64_t> eui64;  // an EUI-64 designator too, when set

  bool read_only = false;  // software write protect of the whole LU (WP = 1)
  bool removable = false;  // RMB = 1
  bool thin = false;       // LBPME: UNMAP / WRITE SAME UNMAP (needs BlockCapabilities::unmap)
  WriteCacheMode write_cache = WriteCacheMode::kWriteBack;
  // A producer-side copy manager (core::TargetCore's) executes EXTENDED COPY
  // and RECEIVE COPY RESULTS for this unit: INQUIRY reports 3PC and VPD 8Fh.
  // False where no such producer fronts the unit (the kernel shim): the unit
  // then neither advertises nor accepts them.
  bool third_party_copy = true;

  // ALUA: one target port group holding the given relative ports (TPGS = 01b).
  uint16_t target_port_group = 1;
  std::vector<uint16_t> relative_ports{1};

  std::string aptpl_file;  // persistent reservations' APTPL state; empty: not persisted
  std::string mode_file;   // saved mode pages (MODE SELECT SP = 1); empty: in memory only
  // A sanitize operation in progress or failed (scsi/sanitize.h), kept across
  // a restart; empty: in memory only.
  std::string sanitize_state_file;

  // Raw passthrough: these opcodes go straight to `passthrough` (low-level
  // API), the rest stays emulated.
  LowLevelHandler* passthrough = nullptr;
  std::bitset<256> passthrough_opcodes;

  // Limits (VPD 0xB0). 0 = derived defaults.
  uint32_t max_transfer_bytes = 8u << 20;  // the ring's max_io_bytes
  uint32_t optimal_transfer_blocks = 0;
  uint8_t physical_block_exponent = 0;  // logical blocks per physical block = 2^n
  uint32_t max_unmap_lba_count = 0x100000;
  uint32_t max_unmap_descriptors = 256;
  uint32_t unmap_granularity = 1;             // in logical blocks
  uint64_t max_write_same_blocks = 0x400000;  // capped to the max transfer length
  uint8_t max_compare_write_blocks = 255;
  uint32_t max_atomic_transfer_blocks = 0;  // WRITE ATOMIC; 0 = max transfer
  uint16_t rotation_rate = 1;               // VPD 0xB1: 1 = non-rotating (SSD)
};

// The device server of one logical unit.
class LogicalUnit : public LowLevelHandler {
 public:
  // `device` may be nullptr: an SPC-only unit without a medium API (e.g. a
  // tape or changer placeholder); medium commands then fail NOT READY /
  // MEDIUM NOT PRESENT. The device must outlive the LogicalUnit.
  LogicalUnit(LogicalUnitConfig config, BlockDevice* device);
  ~LogicalUnit() override;
  LogicalUnit(const LogicalUnit&) = delete;
  LogicalUnit& operator=(const LogicalUnit&) = delete;

  // LowLevelHandler
  void command(CommandHandle cmd) override;
  scstu_tmf_response task_management(const TaskManagementRequest& req) override;
  void session_attached(const SessionInfo& session) override;
  void session_detached(const SessionInfo& session) override;
  bool reported_luns_changed(const SessionInfo& session) override;
  void reported_luns_read(const SessionInfo& session) override;
  bool descriptor_sense() const override;

  // Owner events.
  // Re-read the capacity from the BlockDevice (the seed's resync_size) and
  // raise CAPACITY DATA HAS CHANGED for every I_T nexus when it changed.
  void capacity_changed();
  // The owner took the removable medium out of the BlockDevice (present =
  // false: medium commands then fail NOT READY, MEDIUM NOT PRESENT), or put a
  // new one in (present = true: the tray closes, the capacity is re-read and
  // every I_T nexus gets NOT READY TO READY CHANGE, MEDIUM MAY HAVE CHANGED,
  // 06/28/00, SPC-4 5.14 / MMC-6 4.1.6). The seed's vcdrom "change NAME [PATH]".
  void medium_changed(bool present);
  // A medium is in the device (the owner's view; medium_loaded() is the tray).
  bool medium_present() const {
    return device_ != nullptr && medium_present_.load(std::memory_order_acquire);
  }

  // For emulation entries.
  const LogicalUnitConfig& config() const { return config_; }
  BlockDevice* block_device() const { return device_; }
  uint8_t device_type() const { return config_.device_type; }
  uint32_t block_size() const { return block_size_; }
  uint64_t capacity_blocks() const { return capacity_.load(std::memory_order_relaxed); }
  const BlockCapabilities& capabilities() const { return caps_; }
  SenseFormat sense_format() const;     // control mode page D_SENSE
  bool write_cache_enabled() const;     // caching mode page WCE as reported
  bool software_write_protect() const;  // config.read_only or control page SWP
  bool started() const { return started_.load(std::memory_order_relaxed); }
  void set_started(bool on) { started_.store(on, std::memory_order_relaxed); }
  // Removable medium: ejected by START STOP UNIT (LOEJ), loaded again by it.
  bool medium_loaded() const { return medium_loaded_.load(std::memory_order_relaxed); }
  void set_medium_loaded(bool on) { medium_loaded_.store(on, std::memory_order_relaxed); }
  ModePages& mode_pages() { return *mode_pages_; }
  NexusTable& nexuses() { return *nexuses_; }
  LuRuntime& runtime() { return *runtime_; }

  // Called by CommandContext when a command finishes (returns it to the pool).
  void finish(CommandContext& ctx);

 private:
  // Run a command whose turn has come in the task set.
  void run(CommandContext& ctx);
  bool check_data_length(CommandContext& ctx);

  LogicalUnitConfig config_;
  BlockDevice* device_;
  BlockCapabilities caps_;
  uint32_t block_size_ = 512;
  std::atomic<uint64_t> capacity_{0};
  std::atomic<bool> started_{true};
  std::atomic<bool> medium_loaded_{true};
  std::atomic<bool> medium_present_{true};
  std::unique_ptr<ContextPool> pool_;
  std::unique_ptr<ModePages> mode_pages_;
  std::unique_ptr<NexusTable> nexuses_;
  std::unique_ptr<LuRuntime> runtime_;
};

}  // namespace scstu::scsi
