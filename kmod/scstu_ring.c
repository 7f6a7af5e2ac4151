// SPDX-License-Identifier: GPL-2.0
/*
 * scstu_ring.c - the producer side of the ring (ring_abi.h) in the kernel:
 * publish SCSI commands and task management requests, take completions back,
 * and recover when the handler goes away.
 *
 * Everything the handler can write (ring indices, ring entries, completion
 * descriptors, the data area) is read once into kernel memory and validated
 * before use; a bad entry fails its command (DID_ERROR) or is dropped.
 */
#include <linux/bitmap.h>
#include <linux/blk-mq.h>
#include <linux/slab.h>
#include <linux/vmalloc.h>
#include <linux/version.h>
#if LINUX_VERSION_CODE >= KERNEL_VERSION(6, 12, 0)
#include <linux/unaligned.h>
#else
#include <asm/unaligned.h>
#endif
#include <scsi/scsi.h>
#include <scsi/scsi_cmnd.h>
#include <scsi/scsi_device.h>
#include <scsi/scsi_host.h>

#include "scstu.h"

#define SCSTU_DRAIN_BATCH 16

static u64 align_up(u64 v, u64 a)
{
	return (v + a - 1) / a * a;
}

/*
 * The same layout libscstuser's compute_layout() produces for a user-space
 * producer, with one fixed data slot of max_io_bytes for each of the first
 * data_slots tags of a queue.
 */
u64 scstu_ring_layout(struct scstu_region_header *hdr, u32 nr_queues, u32 queue_depth,
		      u32 data_slots, u32 max_io_bytes)
{
	u64 ring_bytes = align_up(4ull * queue_depth, 64);

	memset(hdr, 0, sizeof(*hdr));
	hdr->magic = SCSTU_REGION_MAGIC;
	hdr->abi_major = SCSTU_ABI_MAJOR;
	hdr->abi_minor = SCSTU_ABI_MINOR;
	hdr->features = SCSTU_F_KERNEL | SCSTU_F_TMF;
	hdr->header_size = sizeof(struct scstu_region_header);
	hdr->cmd_size = sizeof(struct scstu_cmd);
	hdr->cpl_size = sizeof(struct scstu_cpl);
	hdr->nr_queues = nr_queues;
	hdr->queue_depth = queue_depth;
	hdr->max_io_bytes = max_io_bytes;
	hdr->queues_offset = SCSTU_HEADER_BYTES;
	hdr->sq_ring_offset = sizeof(struct scstu_queue_ctl);
	hdr->cq_ring_offset = hdr->sq_ring_offset + ring_bytes;
	hdr->cmd_offset = hdr->cq_ring_offset + ring_bytes;
	hdr->cpl_offset = hdr->cmd_offset + sizeof(struct scstu_cmd) * queue_depth;
	hdr->queue_stride = align_up(hdr->cpl_offset + sizeof(struct scstu_cpl) * queue_depth,
				     PAGE_SIZE);
	hdr->data_offset = align_up(hdr->queues_offset + hdr->queue_stride * nr_queues,
				    SCSTU_DATA_ALIGN);
	hdr->data_per_queue = (u64)data_slots * max_io_bytes;
	hdr->data_size = hdr->data_per_queue * nr_queues;
	hdr->region_size = hdr->data_offset + hdr->data_size;
	return hdr->region_size;
}

static void scstu_queue_reset(struct scstu_queue *q)
{
	memset(q->ctl, 0, sizeof(*q->ctl));
	/* The kernel never polls the CQ: the handler must always kick. */
	q->ctl->cq.reader_flags = SCSTU_RING_NEED_WAKEUP;
	q->sq_tail = 0;
	q->cq_head = 0;
}

/* Called before the region is ever mapped: the header is still the kernel's alone. */
int scstu_ring_init(struct scstu_dev *dev)
{
	struct scstu_region_header *hdr = dev->hdr;
	u32 i;

	dev->data_per_queue = hdr->data_per_queue;
	dev->queues = kcalloc(dev->nr_queues, sizeof(*dev->queues), GFP_KERNEL);
	if (!dev->queues)
		return -ENOMEM;
	for (i = 0; i < dev->nr_queues; i++) {
		struct scstu_queue *q = &dev->queues[i];
		u8 *base = (u8 *)dev->region + hdr->queues_offset + i * hdr->queue_stride;

		spin_lock_init(&q->lock);
		q->slots = kvcalloc(dev->queue_depth, sizeof(*q->slots), GFP_KERNEL);
		q->busy = bitmap_zalloc(dev->queue_depth, GFP_KERNEL);
		if (!q->slots || !q->busy)
			return -ENOMEM; /* scstu_ring_free() cleans up */
		q->ctl = (struct scstu_queue_ctl *)base;
		q->sq_ring = (u32 *)(base + hdr->sq_ring_offset);
		q->cq_ring = (u32 *)(base + hdr->cq_ring_offset);
		q->cmds = (struct scstu_cmd *)(base + hdr->cmd_offset);
		q->cpls = (struct scstu_cpl *)(base + hdr->cpl_offset);
		q->data = (u8 *)dev->region + hdr->data_offset + i * hdr->data_per_queue;
		scstu_queue_reset(q);
	}
	return 0;
}

void scstu_ring_free(struct scstu_dev *dev)
{
	u32 i;

	if (!dev->queues)
		return;
	for (i = 0; i < dev->nr_queues; i++) {
		struct scstu_queue *q = &dev->queues[i];

		if (q->eventfd)
			eventfd_ctx_put(q->eventfd);
		kvfree(q->slots);
		bitmap_free(q->busy);
	}
	kfree(dev->queues);
	dev->queues = NULL;
}

static void scstu_wake_slot_waiters(struct scstu_dev *dev)
{
	if (wq_has_sleeper(&dev->slot_wq))
		wake_up_all(&dev->slot_wq);
}

/* Called with q->lock held. Returns a free tag below limit, or queue_depth. */
static u32 scstu_alloc_slot(struct scstu_dev *dev, struct scstu_queue *q, u8 state, u32 limit)
{
	u32 tag = find_first_zero_bit(q->busy, limit);

	if (tag >= limit)
		return dev->queue_depth;
	__set_bit(tag, q->busy);
	q->slots[tag].state = state;
	q->slots[tag].seq = ++q->next_seq;
	return tag;
}

/* Called with q->lock held. */
static void scstu_free_slot(struct scstu_queue *q, u32 tag)
{
	q->slots[tag].state = SCSTU_SLOT_FREE;
	q->slots[tag].cmd = NULL;
	__clear_bit(tag, q->busy);
}

/* Called with q->lock held: make tag visible to the handler, ring its doorbell. */
static void scstu_publish(struct scstu_dev *dev, struct scstu_queue *q, u32 tag)
{
	WRITE_ONCE(q->sq_ring[q->sq_tail & (dev->queue_depth - 1)], tag);
	q->sq_tail++;
	smp_store_release(&q->ctl->sq.tail, q->sq_tail);
	/* Pairs with the handler's "set NEED_WAKEUP; full barrier; re-check tail". */
	smp_mb();
	if ((READ_ONCE(q->ctl->sq.reader_flags) & SCSTU_RING_NEED_WAKEUP) && q->eventfd)
		scstu_eventfd_signal(q->eventfd);
}

static void scstu_finish_now(struct scsi_cmnd *cmd, int host_byte)
{
	cmd->result = host_byte << 16;
	scsi_done(cmd);
}

/*
 * No handler attached: hold the command (the midlayer re-dispatches it after
 * a short delay) until one attaches, for at most hold_secs after the last
 * one went away. Before the first attach and during removal, fail at once.
 */
static int scstu_no_handler(struct scstu_dev *dev, struct scsi_cmnd *cmd)
{
	if (READ_ONCE(dev->removed) || !READ_ONCE(dev->ever_attached) ||
	    time_after(jiffies, READ_ONCE(dev->detached_since) + scstu_hold_secs * HZ)) {
		scstu_finish_now(cmd, DID_NO_CONNECT);
		return 0;
	}
	return SCSI_MLQUEUE_HOST_BUSY;
}

static u8 scstu_data_dir(struct scsi_cmnd *cmd)
{
	switch (cmd->sc_data_direction) {
	case DMA_TO_DEVICE:
		return SCSTU_DIR_WRITE;
	case DMA_FROM_DEVICE:
		return SCSTU_DIR_READ;
	case DMA_NONE:
		return SCSTU_DIR_NONE;
	default:
		return 0xff;
	}
}

int scstu_ring_submit(struct scstu_dev *dev, struct scsi_cmnd *cmd)
{
	struct scstu_cmd_priv *priv = scsi_cmd_priv(cmd);
	u32 hwq = blk_mq_unique_tag_to_hwq(blk_mq_unique_tag(scsi_cmd_to_rq(cmd)));
	u32 qidx = hwq < dev->nr_queues ? hwq : 0;
	struct scstu_queue *q = &dev->queues[qidx];
	u32 len = scsi_bufflen(cmd);
	u8 dir = scstu_data_dir(cmd);
	struct scsi_lun lun;
	struct scstu_cmd *d;
	u32 tag, seq;

	if (cmd->cmd_len == 0 || cmd->cmd_len > SCSTU_CDB_MAX || len > dev->max_io_bytes ||
	    dir == 0xff || (dir != SCSTU_DIR_NONE && len == 0)) {
		scstu_finish_now(cmd, DID_ERROR);
		return 0;
	}

	spin_lock(&q->lock);
	if (!READ_ONCE(dev->attached)) {
		spin_unlock(&q->lock);
		return scstu_no_handler(dev, cmd);
	}
	tag = scstu_alloc_slot(dev, q, SCSTU_SLOT_SETUP, dev->data_slots);
	if (tag >= dev->queue_depth) {
		/* Only when aborted commands still pin slots (ZOMBIE). */
		spin_unlock(&q->lock);
		return SCSI_MLQUEUE_HOST_BUSY;
	}
	q->slots[tag].cmd = cmd;
	q->slots[tag].data_length = len;
	q->slots[tag].data_dir = dir;
	seq = q->slots[tag].seq;
	spin_unlock(&q->lock);

	priv->queue = qidx;
	priv->tag = tag;
	priv->seq = seq;

	/* SETUP: the slot is ours alone; fill it without the lock. */
	d = &q->cmds[tag];
	memset(d, 0, sizeof(*d));
	d->kind = SCSTU_KIND_SCSI;
	d->data_dir = dir;
	d->task_attr = SCSTU_TASK_SIMPLE;
	d->cdb_len = cmd->cmd_len;
	d->seq = seq;
	d->data_length = len;
	int_to_scsilun(cmd->device->lun, &lun);
	d->lun = get_unaligned_be64(lun.scsi_lun);
	d->expected_length = len;
	memcpy(d->cdb, cmd->cmnd, cmd->cmd_len);
	if (len) {
		u64 slot_off = (u64)tag * dev->max_io_bytes;

		d->nr_iov = 1;
		d->iov[0].offset = (u64)qidx * dev->data_per_queue + slot_off;
		d->iov[0].len = len;
		if (dir == SCSTU_DIR_WRITE)
			scsi_sg_copy_to_buffer(cmd, q->data + slot_off, len);
	}

	spin_lock(&q->lock);
	if (!READ_ONCE(dev->attached)) {
		/* The handler went away while we filled the slot. */
		scstu_free_slot(q, tag);
		spin_unlock(&q->lock);
		scstu_wake_slot_waiters(dev);
		return scstu_no_handler(dev, cmd);
	}
	q->slots[tag].state = SCSTU_SLOT_INFLIGHT;
	scstu_publish(dev, q, tag);
	spin_unlock(&q->lock);
	scstu_wake_slot_waiters(dev);
	return 0;
}

/* SAM-5 5.3: the status codes a device server may return. */
static bool scstu_valid_status(u8 status)
{
	switch (status) {
	case SAM_STAT_GOOD:
	case SAM_STAT_CHECK_CONDITION:
	case SAM_STAT_CONDITION_MET:
	case SAM_STAT_BUSY:
	case SAM_STAT_RESERVATION_CONFLICT:
	case SAM_STAT_TASK_SET_FULL:
	case SAM_STAT_ACA_ACTIVE:
	case SAM_STAT_TASK_ABORTED:
		return true;
	default:
		return false;
	}
}

/* What the drain took from the CQ: a validated copy, used outside the lock. */
struct scstu_done {
	u32 tag;
	u32 transferred;
	u8 status;
	u8 sense_len;
	bool valid;
};

static void scstu_complete_one(struct scstu_dev *dev, struct scstu_queue *q,
			       const struct scstu_done *c)
{
	struct scstu_slot *slot = &q->slots[c->tag];
	struct scsi_cmnd *cmd = slot->cmd;
	u8 *buf = q->data + (u64)c->tag * dev->max_io_bytes;

	BUILD_BUG_ON(SCSTU_SENSE_MAX > SCSI_SENSE_BUFFERSIZE);
	if (!c->valid) {
		cmd->result = DID_ERROR << 16;
	} else {
		if (slot->data_dir == SCSTU_DIR_READ && c->transferred)
			scsi_sg_copy_from_buffer(cmd, buf, c->transferred);
		scsi_set_resid(cmd, slot->data_length - c->transferred);
		if (c->sense_len) {
			memcpy(cmd->sense_buffer, q->cpls[c->tag].sense, c->sense_len);
			memset(cmd->sense_buffer + c->sense_len, 0,
			       SCSI_SENSE_BUFFERSIZE - c->sense_len);
		}
		cmd->result = c->status;
	}
	/* Before the slot is freed: an abort waiting on COMPLETING must not
	 * return (and let eh reuse cmd) until scsi_done() has run. */
	scsi_done(cmd);
}

/*
 * Take one CQ entry (q->lock held). Returns true and fills *out when a SCSI
 * command is to be completed outside the lock.
 */
static bool scstu_take_cpl(struct scstu_dev *dev, struct scstu_queue *q, u32 tag,
			   struct scstu_done *out)
{
	struct scstu_slot *slot = &q->slots[tag];
	struct scstu_cpl c;

	/* One copy of the fixed fields: the handler may rewrite them meanwhile. */
	memcpy(&c, &q->cpls[tag], offsetof(struct scstu_cpl, sense));
	if (c.tag != tag || c.seq != slot->seq)
		return false; /* stale (a reused tag) or garbage: not this slot's */
	switch (slot->state) {
	case SCSTU_SLOT_INFLIGHT:
		out->tag = tag;
		out->status = c.status;
		out->sense_len = c.sense_len;
		out->transferred = c.transferred;
		/* SPC-4 4.5: CHECK CONDITION carries sense data (8 bytes at least,
		 * the descriptor format header); without it the midlayer would
		 * escalate a handler bug into error recovery. */
		out->valid = scstu_valid_status(c.status) && c.sense_len <= SCSTU_SENSE_MAX &&
			     (c.status != SAM_STAT_CHECK_CONDITION || c.sense_len >= 8) &&
			     c.transferred <= slot->data_length;
		if (!out->valid)
			pr_warn_ratelimited("scstu %s: queue %u tag %u: bad completion (status 0x%x sense_len %u transferred %u of %u), failing the command\n",
					    dev->name, (u32)(q - dev->queues), tag, c.status,
					    c.sense_len, c.transferred, slot->data_length);
		slot->state = SCSTU_SLOT_COMPLETING;
		return true;
	case SCSTU_SLOT_ZOMBIE:
		scstu_free_slot(q, tag);
		return false;
	case SCSTU_SLOT_TMF:
		if (tag == dev->tmf_tag && c.seq == dev->tmf_seq) {
			dev->tmf_response = c.tmf_response;
			complete(&dev->tmf_done);
		}
		scstu_free_slot(q, tag);
		return false;
	default:
		return false;
	}
}

int scstu_ring_drain(struct scstu_dev *dev, u32 qidx)
{
	struct scstu_queue *q = &dev->queues[qidx];
	struct scstu_done batch[SCSTU_DRAIN_BATCH];
	u32 mask = dev->queue_depth - 1;
	int n, i, ret = 0;

	do {
		u32 tail;

		n = 0;
		spin_lock(&q->lock);
		tail = smp_load_acquire(&q->ctl->cq.tail);
		if (tail - q->cq_head > dev->queue_depth) {
			spin_unlock(&q->lock);
			pr_warn_ratelimited("scstu %s: queue %u: completion tail %u head %u: ring protocol violation\n",
					    dev->name, qidx, tail, q->cq_head);
			return -EPROTO;
		}
		while (q->cq_head != tail && n < SCSTU_DRAIN_BATCH) {
			u32 tag = READ_ONCE(q->cq_ring[q->cq_head & mask]);

			q->cq_head++;
			if (tag >= dev->queue_depth) {
				pr_warn_ratelimited("scstu %s: queue %u: completion with tag %u >= depth %u dropped\n",
						    dev->name, qidx, tag, dev->queue_depth);
				ret = -EPROTO;
				continue;
			}
			if (scstu_take_cpl(dev, q, tag, &batch[n]))
				n++;
		}
		smp_store_release(&q->ctl->cq.head, q->cq_head);
		spin_unlock(&q->lock);

		for (i = 0; i < n; i++)
			scstu_complete_one(dev, q, &batch[i]);
		if (n) {
			spin_lock(&q->lock);
			for (i = 0; i < n; i++)
				scstu_free_slot(q, batch[i].tag);
			spin_unlock(&q->lock);
			scstu_wake_slot_waiters(dev);
		}
	} while (n == SCSTU_DRAIN_BATCH);
	return ret;
}

/*
 * The handler's file was released (it exited or crashed). Commands it held
 * are completed with DID_REQUEUE: the midlayer re-dispatches them without
 * counting a retry (the command did not fail, its server went away), and
 * queuecommand holds them until a handler re-attaches (hold_secs). Slots the
 * handler could still have touched are all free afterwards, and the rings
 * are reset for the next handler.
 */
unsigned int scstu_ring_detach(struct scstu_dev *dev)
{
	unsigned int requeued = 0;
	u32 i, tag;

	for (i = 0; i < dev->nr_queues; i++) {
		struct scstu_queue *q = &dev->queues[i];
		struct eventfd_ctx *efd;

		spin_lock(&q->lock);
		for (tag = 0; tag < dev->queue_depth; tag++) {
			struct scstu_slot *slot = &q->slots[tag];
			struct scsi_cmnd *cmd;

			switch (slot->state) {
			case SCSTU_SLOT_INFLIGHT:
				slot->state = SCSTU_SLOT_COMPLETING;
				cmd = slot->cmd;
				spin_unlock(&q->lock);
				scstu_finish_now(cmd, DID_REQUEUE);
				spin_lock(&q->lock);
				scstu_free_slot(q, tag);
				requeued++;
				break;
			case SCSTU_SLOT_ZOMBIE:
				scstu_free_slot(q, tag);
				break;
			case SCSTU_SLOT_TMF:
				dev->tmf_handler_gone = true;
				complete(&dev->tmf_done);
				scstu_free_slot(q, tag);
				break;
			default:
				/* SETUP: its submitter sees !attached and backs out. */
				break;
			}
		}
		scstu_queue_reset(q);
		efd = q->eventfd;
		q->eventfd = NULL;
		spin_unlock(&q->lock);
		if (efd)
			eventfd_ctx_put(efd);
	}
	scstu_wake_slot_waiters(dev);
	return requeued;
}

int scstu_ring_set_eventfd(struct scstu_dev *dev, u32 qidx, int fd)
{
	struct scstu_queue *q = &dev->queues[qidx];
	struct eventfd_ctx *ctx = NULL, *old;

	if (fd >= 0) {
		ctx = eventfd_ctx_fdget(fd);
		if (IS_ERR(ctx))
			return PTR_ERR(ctx);
	}
	spin_lock(&q->lock);
	old = q->eventfd;
	q->eventfd = ctx;
	/* Submissions may already be waiting: let the new eventfd see them. */
	if (ctx && READ_ONCE(q->ctl->sq.tail) != READ_ONCE(q->ctl->sq.head))
		scstu_eventfd_signal(ctx);
	spin_unlock(&q->lock);
	if (old)
		eventfd_ctx_put(old);
	return 0;
}

/*
 * Send a task management request on queue 0 and wait for its response.
 * Returns the SAM-5 service response, -ENOTCONN when no handler is attached
 * (nothing is outstanding then), -EBUSY without a free slot, -ETIMEDOUT.
 */
int scstu_ring_tmf(struct scstu_dev *dev, u8 function, u16 ref_queue, u16 ref_tag,
		   u32 ref_seq)
{
	struct scstu_queue *q = &dev->queues[0];
	struct scstu_cmd *d;
	u32 tag, seq;
	int ret;

	mutex_lock(&dev->tmf_lock);
	spin_lock(&q->lock);
	if (!READ_ONCE(dev->attached)) {
		spin_unlock(&q->lock);
		ret = -ENOTCONN;
		goto out;
	}
	tag = scstu_alloc_slot(dev, q, SCSTU_SLOT_TMF, dev->queue_depth);
	if (tag >= dev->queue_depth) {
		spin_unlock(&q->lock);
		ret = -EBUSY;
		goto out;
	}
	seq = q->slots[tag].seq;
	d = &q->cmds[tag];
	memset(d, 0, sizeof(*d));
	d->kind = SCSTU_KIND_TMF;
	d->seq = seq;
	d->tmf.function = function;
	d->tmf.ref_tag = ref_tag;
	d->tmf.ref_seq = ref_seq;
	d->tmf.ref_queue = ref_queue;
	dev->tmf_tag = tag;
	dev->tmf_seq = seq;
	dev->tmf_handler_gone = false;
	reinit_completion(&dev->tmf_done);
	scstu_publish(dev, q, tag);
	spin_unlock(&q->lock);

	if (!wait_for_completion_timeout(&dev->tmf_done, scstu_tmf_secs * HZ)) {
		spin_lock(&q->lock);
		if (q->slots[tag].state == SCSTU_SLOT_TMF && q->slots[tag].seq == seq)
			q->slots[tag].state = SCSTU_SLOT_ZOMBIE; /* a late answer frees it */
		spin_unlock(&q->lock);
		ret = -ETIMEDOUT;
	} else {
		ret = dev->tmf_handler_gone ? -ENOTCONN : dev->tmf_response;
	}
out:
	mutex_unlock(&dev->tmf_lock);
	return ret;
}

/*
 * Detach an aborted command from its slot so the midlayer may reuse it.
 * The slot stays reserved (ZOMBIE) until the handler completes it or goes
 * away, because the handler may still be reading or writing its data buffer.
 * Returns true when the handler held the command (a TMF should follow).
 */
bool scstu_ring_forget_cmd(struct scstu_dev *dev, struct scsi_cmnd *cmd)
{
	struct scstu_cmd_priv *priv = scsi_cmd_priv(cmd);
	struct scstu_queue *q;
	struct scstu_slot *slot;

	if (priv->queue >= dev->nr_queues || priv->tag >= dev->queue_depth)
		return false;
	q = &dev->queues[priv->queue];
	slot = &q->slots[priv->tag];
	for (;;) {
		u8 state;

		spin_lock(&q->lock);
		state = slot->state;
		if (slot->cmd != cmd || slot->seq != priv->seq ||
		    (state != SCSTU_SLOT_INFLIGHT && state != SCSTU_SLOT_SETUP &&
		     state != SCSTU_SLOT_COMPLETING)) {
			spin_unlock(&q->lock);
			return false;
		}
		if (state == SCSTU_SLOT_INFLIGHT) {
			slot->state = SCSTU_SLOT_ZOMBIE;
			slot->cmd = NULL;
			spin_unlock(&q->lock);
			return true;
		}
		spin_unlock(&q->lock);
		/* SETUP or COMPLETING: a short, bounded transition. */
		wait_event_timeout(dev->slot_wq,
				   READ_ONCE(slot->state) != state || READ_ONCE(slot->cmd) != cmd,
				   HZ / 10);
	}
}

/* Device/host reset: every command the handler holds is given up. */
void scstu_ring_forget_all(struct scstu_dev *dev)
{
	u32 i, tag;

	for (i = 0; i < dev->nr_queues; i++) {
		struct scstu_queue *q = &dev->queues[i];

		for (tag = 0; tag < dev->queue_depth; tag++) {
			struct scsi_cmnd *cmd;

			spin_lock(&q->lock);
			cmd = q->slots[tag].cmd;
			spin_unlock(&q->lock);
			if (cmd)
				scstu_ring_forget_cmd(dev, cmd);
		}
	}
}
