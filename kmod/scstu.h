/* SPDX-License-Identifier: GPL-2.0 */
/*
 * scstu.h - the kernel shim's internal types.
 *
 * One scstu_dev per created device: a Scsi_Host with one target and LUN 0,
 * a vmalloc'ed region shared with the handler (layout: ring_abi.h), and a
 * misc char device /dev/scstu/<name> the handler opens and mmaps.
 *
 * Slot ownership (per queue, per ring tag): a slot is FREE, SETUP (a
 * submitter is filling it outside the lock), INFLIGHT (published; the handler
 * owns it), COMPLETING (taken back from the CQ, data being copied and the
 * command completed outside the lock), ZOMBIE (its command was aborted or
 * reset, but the handler may still touch the slot's data buffer: the slot is
 * reused only after the handler completes it or detaches) or TMF.
 */
#ifndef SCSTU_KMOD_H
#define SCSTU_KMOD_H

#include <linux/completion.h>
#include <linux/eventfd.h>
#include <linux/kref.h>
#include <linux/miscdevice.h>
#include <linux/mutex.h>
#include <linux/spinlock.h>
#include <linux/version.h>
#include <linux/wait.h>
#include <linux/workqueue.h>

#include "ring_abi.h"

#if LINUX_VERSION_CODE >= KERNEL_VERSION(6, 8, 0)
#define scstu_eventfd_signal(ctx) eventfd_signal(ctx)
#else
#define scstu_eventfd_signal(ctx) eventfd_signal(ctx, 1)
#endif

struct Scsi_Host;
struct scsi_cmnd;

enum scstu_slot_state {
	SCSTU_SLOT_FREE = 0,
	SCSTU_SLOT_SETUP,
	SCSTU_SLOT_INFLIGHT,
	SCSTU_SLOT_COMPLETING,
	SCSTU_SLOT_ZOMBIE,
	SCSTU_SLOT_TMF,
};

struct scstu_slot {
	struct scsi_cmnd *cmd; /* INFLIGHT/COMPLETING/SETUP only */
	u32 seq;               /* kernel's copy; the descriptor's is not trusted */
	u32 data_length;
	u8 state;              /* enum scstu_slot_state */
	u8 data_dir;
};

struct scstu_queue {
	spinlock_t lock;           /* slots, sq_tail, cq_head, eventfd */
	struct scstu_slot *slots;  /* [queue_depth] */
	unsigned long *busy;       /* bitmap: slot not FREE */
	u32 next_seq;
	u32 sq_tail;               /* private copies of the indices this side writes */
	u32 cq_head;
	struct eventfd_ctx *eventfd;
	/* views into the region */
	struct scstu_queue_ctl *ctl;
	u32 *sq_ring;
	u32 *cq_ring;
	struct scstu_cmd *cmds;
	struct scstu_cpl *cpls;
	u8 *data;                  /* this queue's data slice */
};

struct scstu_dev {
	struct kref kref;
	struct list_head node;     /* scstu_devices, under scstu_devices_lock */
	char name[SCSTU_NAME_MAX];
	char nodename[SCSTU_NAME_MAX + 8];  /* "scstu/<name>" */
	char miscname[SCSTU_NAME_MAX + 8];  /* "scstu:<name>" */
	u8 device_type;
	u32 nr_queues;
	u32 queue_depth;
	u32 max_io_bytes;
	u32 data_slots;            /* tags [0, data_slots) own a data slot; SCSI commands use only those */
	u64 data_per_queue;        /* private copies: the header page is handler-writable */

	void *region;              /* vmalloc_user */
	size_t region_size;
	struct scstu_region_header *hdr;   /* in the region */
	struct scstu_region_header hdr_copy; /* rewritten into the region on each attach */
	struct scstu_queue *queues;

	struct Scsi_Host *shost;
	struct miscdevice misc;
	bool misc_registered;
	struct work_struct scan_work;

	struct mutex attach_lock;  /* attached, generation, ever_attached, removed */
	bool attached;             /* read locklessly on the hot path (READ_ONCE) */
	bool ever_attached;
	bool removed;
	unsigned long detached_since; /* jiffies */
	u64 generation;

	struct mutex tmf_lock;     /* one task management request at a time */
	struct completion tmf_done;
	u16 tmf_tag;
	u32 tmf_seq;
	u8 tmf_response;
	bool tmf_handler_gone;

	wait_queue_head_t slot_wq; /* COMPLETING/SETUP slots becoming something else */
};

/* scsi_cmd_priv(): where a command lives in the ring, for eh. */
struct scstu_cmd_priv {
	u16 queue;
	u16 tag;
	u32 seq;
};

extern struct device *scstu_root;
extern unsigned int scstu_hold_secs;
extern unsigned int scstu_tmf_secs;

/* scstu_host.c */
int scstu_host_create(struct scstu_dev *dev);
void scstu_host_scan(struct work_struct *work);
void scstu_host_remove(struct scstu_dev *dev);

/* scstu_ring.c */
u64 scstu_ring_layout(struct scstu_region_header *hdr, u32 nr_queues, u32 queue_depth,
		      u32 data_slots, u32 max_io_bytes);
int scstu_ring_init(struct scstu_dev *dev);
void scstu_ring_free(struct scstu_dev *dev);
int scstu_ring_submit(struct scstu_dev *dev, struct scsi_cmnd *cmd);
int scstu_ring_drain(struct scstu_dev *dev, u32 qidx);
unsigned int scstu_ring_detach(struct scstu_dev *dev);
int scstu_ring_set_eventfd(struct scstu_dev *dev, u32 qidx, int fd);
int scstu_ring_tmf(struct scstu_dev *dev, u8 function, u16 ref_queue, u16 ref_tag,
		   u32 ref_seq);
bool scstu_ring_forget_cmd(struct scstu_dev *dev, struct scsi_cmnd *cmd);
void scstu_ring_forget_all(struct scstu_dev *dev);

/* scstu_chrdev.c */
extern const struct file_operations scstu_dev_fops;
void scstu_dev_get(struct scstu_dev *dev);
void scstu_dev_put(struct scstu_dev *dev);

#endif /* SCSTU_KMOD_H */
