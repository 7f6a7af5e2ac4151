/* SPDX-License-Identifier: (GPL-2.0 OR MIT) */
/*
 * ring_abi.h - the one contract between a command producer (the kernel shim
 * kmod/, or the user-space iSCSI target) and a handler process.
 *
 * Plain C, fixed-width types only: included by kernel C and user-space C++.
 * Read this file and you know the data path.
 *
 * One shared region per device, laid out as:
 *
 *   offset 0                  struct scstu_region_header   (written by the producer)
 *   SCSTU_HANDLER_STATE_OFFSET struct scstu_handler_state  (written by the handler, ABI 1.2)
 *   hdr.queues_offset + q*hdr.queue_stride, for q in [0, nr_queues):
 *     +0                      struct scstu_queue_ctl       (ring indices, doorbell flags)
 *     +hdr.sq_ring_offset     __u32 sq_ring[queue_depth]   tags, producer -> handler
 *     +hdr.cq_ring_offset     __u32 cq_ring[queue_depth]   tags, handler -> producer
 *     +hdr.cmd_offset         struct scstu_cmd cmd[queue_depth]  (written by producer)
 *     +hdr.cpl_offset         struct scstu_cpl cpl[queue_depth]  (written by handler)
 *   hdr.data_offset           data area, hdr.data_size bytes, 4096-aligned; queue q
 *                             owns [q*data_per_queue, (q+1)*data_per_queue)
 *
 * Rings carry tags; the descriptors are tag-indexed (like ublk's io_desc),
 * so a tag is in flight at most once and a ring of queue_depth slots can never
 * overflow. A ring entry is just the tag; the descriptor's seq field, echoed
 * back in the completion, tells a stale completion (tag reused after an
 * abort) from a current one.
 *
 * Ring protocol (single producer, single consumer per ring, like io_uring):
 *   writer: fill descriptor(s); store-release ring[tail & mask] = tag;
 *           store-release tail = tail + n;
 *           full barrier; if (flags & SCSTU_RING_NEED_WAKEUP) ring the doorbell.
 *   reader: load-acquire tail; consume entries up to it; store-release head.
 *           Before sleeping: set NEED_WAKEUP; full barrier; re-check tail;
 *           sleep only if still empty; clear NEED_WAKEUP when awake.
 * So under load neither side makes a syscall per command: the doorbell is
 * rung only when the other side said it is going to sleep.
 *
 * Doorbells are outside the region: eventfds handed over a Unix socket by the
 * user-space producer; for the kernel shim, an eventfd registered with an
 * ioctl (kernel -> handler) and the SCSTU_IOC_KICK ioctl (handler -> kernel).
 *
 * Trust: each side treats every value the other side wrote as hostile.
 * Ring indices are free-running __u32; (tail - head) > queue_depth is a
 * protocol violation. Tags >= queue_depth, seq mismatches, iov outside the
 * data area, sense_len > SCSTU_SENSE_MAX, cdb_len > SCSTU_CDB_MAX: the entry is
 * failed (or the peer dropped); never dereferenced.
 */
#ifndef SCSTU_RING_ABI_H
#define SCSTU_RING_ABI_H

#ifdef __KERNEL__
#include <linux/types.h>
#elif defined(__linux__)
/* The kernel's own definitions: glibc headers (e.g. <sys/stat.h>) include
 * them too, and a second, different typedef of __u64 would not compile. */
#include <linux/types.h>
#include <stdint.h>
#else
#include <stdint.h>
typedef uint8_t __u8;
typedef uint16_t __u16;
typedef uint32_t __u32;
typedef uint64_t __u64;
typedef int32_t __s32;
#endif

#define SCSTU_REGION_MAGIC 0x55545353u /* "SSTU" little endian */
#define SCSTU_ABI_MAJOR 1u             /* incompatible layout changes */
#define SCSTU_ABI_MINOR 2u             /* compatible additions (1: identity strings in the header;
					* 2: SCSTU_F_UNIT_STATE) */

/* Feature flags (hdr.features): what the producer offers. */
#define SCSTU_F_SGL_INDIRECT (1ull << 0) /* cmd iov lists longer than inline */
#define SCSTU_F_LONG_CDB (1ull << 1)     /* CDBs > 32 bytes live in the data area */
#define SCSTU_F_TMF (1ull << 2)          /* task management entries are sent */
#define SCSTU_F_SESSION_EVENTS (1ull << 3) /* session attach/detach entries are sent */
#define SCSTU_F_KERNEL (1ull << 4)       /* producer is the kernel shim */
/* ABI 1.2: the handler keeps the target core's part of the logical unit's
 * state: SCSTU_KIND_UNIT_EVENT entries are sent, and the handler publishes
 * its sense format in struct scstu_handler_state. Offered by the producer in
 * hdr.features; used only once the handler accepted it there (an older
 * handler never does: the producer then keeps both itself). */
#define SCSTU_F_UNIT_STATE (1ull << 5)

#define SCSTU_CDB_MAX 32      /* inline CDB bytes */
#define SCSTU_CDB_LONG_MAX 260 /* SPC-4 variable-length CDB upper bound */
#define SCSTU_SENSE_MAX 96    /* bytes of sense data in a completion */
#define SCSTU_INLINE_IOV 3    /* iov entries carried in the command itself */
#define SCSTU_MAX_IOV 256     /* longest indirect iov list */
#define SCSTU_DATA_ALIGN 4096 /* data buffers and the data area */
#define SCSTU_MAX_QUEUES 64
#define SCSTU_MAX_QUEUE_DEPTH 4096 /* power of two */

/* Ring control: head and tail on separate cache lines. */
struct scstu_ring_idx {
	__u32 head; /* written by the reader */
	__u32 reader_flags; /* SCSTU_RING_NEED_WAKEUP, written by the reader */
	__u8 pad0[56];
	__u32 tail; /* written by the writer */
	__u32 writer_flags; /* reserved, 0 */
	__u8 pad1[56];
};

#define SCSTU_RING_NEED_WAKEUP (1u << 0)

struct scstu_queue_ctl {
	struct scstu_ring_idx sq; /* writer: producer; reader: handler */
	struct scstu_ring_idx cq; /* writer: handler;  reader: producer */
};

/* Kinds of command descriptor (scstu_cmd.kind). */
enum scstu_cmd_kind {
	SCSTU_KIND_SCSI = 1,      /* a SCSI command */
	SCSTU_KIND_TMF = 2,       /* a task management request */
	SCSTU_KIND_SESS_ATTACH = 3, /* an I_T nexus appeared; iov[0] -> scstu_session_info */
	SCSTU_KIND_SESS_DETACH = 4, /* an I_T nexus went away */
	SCSTU_KIND_UNIT_EVENT = 5, /* ABI 1.2, SCSTU_F_UNIT_STATE: unit.event for the nexus session_id */
};

/* SCSTU_KIND_UNIT_EVENT (scstu_cmd.unit.event): conditions the target core
 * raises for a logical unit and the handler keeps with its own unit
 * attentions, so one is reported per command in SAM-5 5.14 precedence (a
 * POWER ON / RESET before REPORTED LUNS DATA HAS CHANGED). The completion's
 * tmf_response answers REPORTED_LUNS_CHANGED: SCSTU_TMF_SUCCEEDED, the
 * handler queued it; SCSTU_TMF_NOT_SUPPORTED, it keeps no unit attentions
 * (the producer reports the condition itself). REPORTED_LUNS_READ is
 * answered SCSTU_TMF_COMPLETE. No data, no flags. */
enum scstu_unit_event {
	SCSTU_EVENT_REPORTED_LUNS_CHANGED = 1, /* SPC-4 6.33: raise 3Fh/0Eh for the nexus */
	SCSTU_EVENT_REPORTED_LUNS_READ = 2,    /* REPORT LUNS answered for the nexus: clear it */
};

/* Data direction, seen from the initiator (SAM). */
enum scstu_data_dir {
	SCSTU_DIR_NONE = 0,
	SCSTU_DIR_WRITE = 1, /* initiator -> device: the buffer holds data to consume */
	SCSTU_DIR_READ = 2,  /* device -> initiator: the handler fills the buffer */
	SCSTU_DIR_BIDI = 3,  /* iov[] write part first, then read part (out_length) */
};

/* SAM-5 task attributes. */
enum scstu_task_attr {
	SCSTU_TASK_SIMPLE = 0,
	SCSTU_TASK_ORDERED = 1,
	SCSTU_TASK_HEAD_OF_QUEUE = 2,
	SCSTU_TASK_ACA = 3,
};

/* SAM-5 task management functions (scstu_cmd.tmf.function). */
enum scstu_tmf_function {
	SCSTU_TMF_ABORT_TASK = 1,
	SCSTU_TMF_ABORT_TASK_SET = 2,
	SCSTU_TMF_CLEAR_TASK_SET = 3,
	SCSTU_TMF_LUN_RESET = 4,
	SCSTU_TMF_TARGET_RESET = 5,
	SCSTU_TMF_I_T_NEXUS_LOSS = 6,
	SCSTU_TMF_QUERY_TASK = 7,
	SCSTU_TMF_CLEAR_ACA = 8,
	SCSTU_TMF_QUERY_TASK_SET = 9,
	SCSTU_TMF_QUERY_ASYNC_EVENT = 10,
};

/* SAM-5 7.10 service responses of a TMF (scstu_cpl.tmf_response). */
enum scstu_tmf_response {
	SCSTU_TMF_COMPLETE = 0,
	SCSTU_TMF_SUCCEEDED = 1,
	SCSTU_TMF_REJECTED = 2,
	SCSTU_TMF_INCORRECT_LUN = 3,
	SCSTU_TMF_NOT_SUPPORTED = 4,
	SCSTU_TMF_FAILED = 5,
};

/* scstu_cmd.flags */
#define SCSTU_CMD_F_IOV_INDIRECT (1u << 0) /* iov[0] points at nr_iov scstu_iov in the data area */
#define SCSTU_CMD_F_CDB_IN_DATA (1u << 1)  /* cdb_len > 32: CDB at cdb_offset in the data area */
#define SCSTU_CMD_F_READ_ONLY (1u << 2)    /* LUN mapped READ_ONLY for this nexus (access control) */

/* A buffer in the data area: offset from hdr.data_offset, length in bytes. */
struct scstu_iov {
	__u64 offset;
	__u32 len;
	__u32 reserved;
};

struct scstu_unit_event_desc {
	__u8 event;         /* enum scstu_unit_event */
	__u8 reserved[23];
};

struct scstu_tmf_desc {
	__u8 function;      /* enum scstu_tmf_function */
	__u8 reserved[3];
	__u16 ref_tag;      /* ABORT TASK / QUERY TASK: tag of the referenced command */
	__u16 reserved2;
	__u32 ref_seq;      /* ... and its seq, so a reused tag is not aborted */
	__u32 reserved3;
	__u64 ref_queue;    /* queue of the referenced command */
};

/* Command descriptor: 128 bytes, written by the producer, read by the handler. */
struct scstu_cmd {
	__u8 kind;          /* enum scstu_cmd_kind */
	__u8 data_dir;      /* enum scstu_data_dir */
	__u8 task_attr;     /* enum scstu_task_attr */
	__u8 cdb_len;       /* 1..SCSTU_CDB_MAX inline, up to SCSTU_CDB_LONG_MAX with CDB_IN_DATA */
	__u16 flags;        /* SCSTU_CMD_F_* */
	__u16 nr_iov;       /* inline: <= SCSTU_INLINE_IOV; indirect: <= SCSTU_MAX_IOV */
	__u32 seq;          /* producer's sequence number, echoed in the completion */
	__u32 data_length;  /* bytes in iov[] (for BIDI: write part + read part) */
	__u64 lun;          /* SAM-5 4.6 LUN, 8 bytes big-endian-as-on-the-wire packed in a u64 */
	__u64 session_id;   /* opaque I_T nexus id; 0 for the kernel shim's local initiator */
	__u32 expected_length; /* the initiator's expected transfer length (verify only) */
	__u32 out_length;   /* BIDI: bytes of the read (device -> initiator) part */
	union {
		__u8 cdb[SCSTU_CDB_MAX];
		__u64 cdb_offset; /* CDB_IN_DATA: offset of the CDB in the data area */
		struct scstu_tmf_desc tmf;
		struct scstu_unit_event_desc unit; /* SCSTU_KIND_UNIT_EVENT */
	};
	struct scstu_iov iov[SCSTU_INLINE_IOV];
	__u8 priority;      /* SAM-5 command priority, 0 = none */
	__u8 reserved[7];
};

/* scstu_cpl.flags */
#define SCSTU_CPL_F_RESID_UNDER (1u << 0) /* residual is an underflow */
#define SCSTU_CPL_F_RESID_OVER (1u << 1)  /* residual is an overflow */

/* Completion descriptor: 128 bytes, written by the handler. */
struct scstu_cpl {
	__u16 tag;          /* must equal the tag it is published under */
	__u8 status;        /* SAM status (GOOD 0x00, CHECK CONDITION 0x02, ...) */
	__u8 sense_len;     /* <= SCSTU_SENSE_MAX */
	__u32 seq;          /* scstu_cmd.seq of the command this completes */
	__u32 transferred;  /* bytes actually transferred (read: valid bytes in the buffer) */
	__u32 residual;
	__u16 flags;        /* SCSTU_CPL_F_* */
	__u8 tmf_response;  /* enum scstu_tmf_response (TMF and unit-event entries) */
	__u8 reserved[13];
	__u8 sense[SCSTU_SENSE_MAX]; /* only sense_len bytes are meaningful: writers may
				      * leave the rest stale, readers copy no more */
};

/* Payload of SCSTU_KIND_SESS_ATTACH, in the data area at iov[0]. Strings NUL-terminated. */
struct scstu_session_info {
	__u64 session_id;
	__u16 relative_port;     /* SPC-4 relative target port identifier */
	__u16 protocol_id;       /* SPC-4 7.6.1: 5 = iSCSI, 0xF = none (kernel shim) */
	__u32 reserved;
	char initiator_name[256]; /* iSCSI name (+ ",i,0x" ISID for the transport id) */
	char transport_id[264];   /* SPC-4 TransportID text form */
	char target_name[256];
};

/* The region header: 4096 bytes reserved, written by the producer before the
 * handler attaches and never changed while it is attached. */
struct scstu_region_header {
	__u32 magic;        /* SCSTU_REGION_MAGIC */
	__u16 abi_major;
	__u16 abi_minor;
	__u64 features;     /* SCSTU_F_* */
	__u32 header_size;  /* sizeof(struct scstu_region_header) */
	__u32 cmd_size;     /* sizeof(struct scstu_cmd) */
	__u32 cpl_size;     /* sizeof(struct scstu_cpl) */
	__u32 nr_queues;    /* 1..SCSTU_MAX_QUEUES */
	__u32 queue_depth;  /* power of two, 1..SCSTU_MAX_QUEUE_DEPTH */
	__u32 max_io_bytes; /* largest data_length the producer will send */
	__u64 region_size;  /* total bytes mapped */
	__u64 queues_offset;
	__u64 queue_stride;
	__u64 sq_ring_offset; /* within a queue */
	__u64 cq_ring_offset;
	__u64 cmd_offset;
	__u64 cpl_offset;
	__u64 data_offset;
	__u64 data_size;
	__u64 data_per_queue;
	/* Device identity as the producer knows it (kernel: from the create ioctl). */
	__u8 device_type;   /* SPC-4 peripheral device type */
	__u8 reserved0[7];
	__u64 generation;   /* bumped by the producer on every handler (re)attach */
	/* ABI 1.1: the device's identity as given to the producer (kernel shim:
	 * the create ioctl), NUL-terminated printable ASCII, for the handler's
	 * INQUIRY data (SPC-4 6.6.2 T10 VENDOR / PRODUCT / REVISION, VPD 0x80
	 * serial). All zero when the producer has none: configure the handler. */
	char vendor[8 + 1];
	char product[16 + 1];
	char revision[4 + 1];
	char serial[32 + 1];
	__u8 reserved[48];
};

#define SCSTU_HEADER_BYTES 4096

/* ABI 1.2: the handler's part of the header page, at SCSTU_HANDLER_STATE_OFFSET
 * (own cache lines). Written only by a handler, and only when hdr.features
 * offers SCSTU_F_UNIT_STATE (a producer that does not offer it may keep this
 * page read-only or restore it). The producer starts it zeroed, reads it only
 * off the hot path, and treats it as hostile: bits it did not offer or does
 * not know void the whole block (ring/entry_validation.h).
 *
 * The handler fills unit_flags, then store-releases features: before its
 * first completion, and again (unit_flags) before completing any command
 * that changed them (MODE SELECT), so a producer that load-acquires the
 * completion tail sees the new value once that command is complete. */
struct scstu_handler_state {
	__u64 features;     /* the SCSTU_F_* of hdr.features the handler uses */
	__u32 unit_flags;   /* SCSTU_UNIT_F_* */
	__u32 reserved;
	__u8 pad[48];
};

#define SCSTU_HANDLER_STATE_OFFSET 2048
/* SPC-4 4.5.1, control mode page D_SENSE: the unit returns descriptor-format
 * sense, so sense the producer builds for it must be descriptor format too. */
#define SCSTU_UNIT_F_D_SENSE (1u << 0)

#ifndef __cplusplus
#ifndef __KERNEL__
#include <assert.h>
#define SCSTU_STATIC_ASSERT(c, m) _Static_assert(c, m)
#else
#define SCSTU_STATIC_ASSERT(c, m) _Static_assert(c, m)
#endif
#else
#define SCSTU_STATIC_ASSERT(c, m) static_assert(c, m)
#endif

SCSTU_STATIC_ASSERT(sizeof(struct scstu_ring_idx) == 128, "ring idx layout");
SCSTU_STATIC_ASSERT(sizeof(struct scstu_queue_ctl) == 256, "queue ctl layout");
SCSTU_STATIC_ASSERT(sizeof(struct scstu_iov) == 16, "iov layout");
SCSTU_STATIC_ASSERT(sizeof(struct scstu_tmf_desc) == 24, "tmf layout");
SCSTU_STATIC_ASSERT(sizeof(struct scstu_cmd) == 128, "cmd layout");
SCSTU_STATIC_ASSERT(sizeof(struct scstu_cpl) == 128, "cpl layout");
SCSTU_STATIC_ASSERT(sizeof(struct scstu_region_header) <= SCSTU_HANDLER_STATE_OFFSET,
		    "producer's header ends before the handler's state");
SCSTU_STATIC_ASSERT(sizeof(struct scstu_handler_state) == 64, "handler state layout");
SCSTU_STATIC_ASSERT(SCSTU_HANDLER_STATE_OFFSET + sizeof(struct scstu_handler_state) <=
			    SCSTU_HEADER_BYTES,
		    "handler state fits in the header page");
SCSTU_STATIC_ASSERT(sizeof(struct scstu_unit_event_desc) == 24, "unit event layout");
SCSTU_STATIC_ASSERT(sizeof(struct scstu_session_info) == 792, "session info layout");

/* ---- kernel shim char device (kmod/) ------------------------------------ */
/* ioctls on /dev/scstu-ctl (CAP_SYS_ADMIN) and on /dev/scstu/<name>. */
#ifdef __KERNEL__
#include <linux/ioctl.h>
#else
#include <sys/ioctl.h>
#endif

#define SCSTU_NAME_MAX 32

struct scstu_dev_create {
	char name[SCSTU_NAME_MAX];   /* [a-zA-Z0-9_-], NUL-terminated: /dev/scstu/<name> */
	char vendor[8 + 1];
	char product[16 + 1];
	char revision[4 + 1];
	char serial[32 + 1];
	__u8 device_type;            /* 0 disk, 1 tape, 5 cd-rom, 8 changer */
	__u8 reserved[7];
	__u32 nr_queues;
	__u32 queue_depth;
	__u32 max_io_bytes;          /* per command; multiple of 4096 */
	__u32 reserved2;
	__u64 data_size;             /* whole data area */
};

struct scstu_eventfd_reg {
	__u32 queue;
	__s32 fd;                    /* eventfd the kernel signals on new submissions */
};

#define SCSTU_IOC_MAGIC 0xB7
#define SCSTU_IOC_CREATE _IOW(SCSTU_IOC_MAGIC, 1, struct scstu_dev_create)
#define SCSTU_IOC_REMOVE _IOW(SCSTU_IOC_MAGIC, 2, char[SCSTU_NAME_MAX])
/* on /dev/scstu/<name>: */
#define SCSTU_IOC_SET_EVENTFD _IOW(SCSTU_IOC_MAGIC, 3, struct scstu_eventfd_reg)
#define SCSTU_IOC_KICK _IOW(SCSTU_IOC_MAGIC, 4, __u32) /* completions posted on queue */

#endif /* SCSTU_RING_ABI_H */
