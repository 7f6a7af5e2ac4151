// SPDX-License-Identifier: GPL-2.0
/*
 * scstu_host.c - the virtual SCSI host: one Scsi_Host per device, one
 * target, LUN 0. Every command, INQUIRY included, goes to the handler; the
 * kernel answers nothing itself. Error handling sends SAM-5 task management
 * requests to the handler and waits for them (tmf_timeout_secs).
 */
#include <linux/device.h>
#include <linux/module.h>
#include <scsi/scsi.h>
#include <scsi/scsi_cmnd.h>
#include <scsi/scsi_device.h>
#include <scsi/scsi_host.h>

#include "scstu.h"

static struct scstu_dev *scstu_from_host(struct Scsi_Host *shost)
{
	return *(struct scstu_dev **)shost_priv(shost);
}

static int scstu_queuecommand(struct Scsi_Host *shost, struct scsi_cmnd *cmd)
{
	return scstu_ring_submit(scstu_from_host(shost), cmd);
}

/* SAM-5 7.1: FUNCTION COMPLETE / SUCCEEDED; no handler means nothing to abort. */
static int scstu_tmf_result(struct scstu_dev *dev, const char *what, int rc)
{
	if (rc == -ENOTCONN || rc == SCSTU_TMF_COMPLETE || rc == SCSTU_TMF_SUCCEEDED)
		return SUCCESS;
	pr_warn("scstu %s: %s: %s %d\n", dev->name, what,
		rc < 0 ? "error" : "service response", rc);
	return FAILED;
}

static int scstu_eh_abort(struct scsi_cmnd *cmd)
{
	struct scstu_dev *dev = scstu_from_host(cmd->device->host);
	struct scstu_cmd_priv *priv = scsi_cmd_priv(cmd);

	/* Not held by the handler (completed, or never sent): nothing to abort. */
	if (!scstu_ring_forget_cmd(dev, cmd))
		return SUCCESS;
	return scstu_tmf_result(dev, "ABORT TASK",
				scstu_ring_tmf(dev, SCSTU_TMF_ABORT_TASK, priv->queue,
					       priv->tag, priv->seq));
}

static int scstu_eh_reset(struct scsi_cmnd *cmd, u8 function, const char *what)
{
	struct scstu_dev *dev = scstu_from_host(cmd->device->host);

	scstu_ring_forget_all(dev);
	return scstu_tmf_result(dev, what, scstu_ring_tmf(dev, function, 0, 0, 0));
}

static int scstu_eh_device_reset(struct scsi_cmnd *cmd)
{
	return scstu_eh_reset(cmd, SCSTU_TMF_LUN_RESET, "LOGICAL UNIT RESET");
}

static int scstu_eh_target_reset(struct scsi_cmnd *cmd)
{
	return scstu_eh_reset(cmd, SCSTU_TMF_TARGET_RESET, "TARGET RESET");
}

static int scstu_eh_host_reset(struct scsi_cmnd *cmd)
{
	/* One target per host: the host is the I_T nexus. */
	return scstu_eh_reset(cmd, SCSTU_TMF_I_T_NEXUS_LOSS, "I_T NEXUS LOSS");
}

static struct scsi_host_template scstu_sht = {
	.module = THIS_MODULE,
	.name = "scstu",
	.proc_name = "scstu",
	.queuecommand = scstu_queuecommand,
	.eh_abort_handler = scstu_eh_abort,
	.eh_device_reset_handler = scstu_eh_device_reset,
	.eh_target_reset_handler = scstu_eh_target_reset,
	.eh_host_reset_handler = scstu_eh_host_reset,
	.change_queue_depth = scsi_change_queue_depth,
	.this_id = -1,
	.can_queue = 1,       /* per host below */
	.cmd_per_lun = 1,
	.sg_tablesize = SG_ALL,
	.max_sectors = 8,
	.cmd_size = sizeof(struct scstu_cmd_priv),
	.skip_settle_delay = 1,
};

int scstu_host_create(struct scstu_dev *dev)
{
	struct Scsi_Host *shost;
	int ret;

	shost = scsi_host_alloc(&scstu_sht, sizeof(struct scstu_dev *));
	if (!shost)
		return -ENOMEM;
	*(struct scstu_dev **)shost_priv(shost) = dev;
	shost->max_id = 1;
	shost->max_lun = 1;
	shost->max_channel = 0;
	shost->max_cmd_len = SCSTU_CDB_MAX;
	shost->nr_hw_queues = dev->nr_queues;
	/*
	 * SCSI commands use the tags with a data slot; at least one tag per
	 * queue stays free for task management requests.
	 */
	shost->can_queue = min(dev->data_slots, dev->queue_depth - 1);
	shost->cmd_per_lun = min_t(u32, shost->can_queue, 256);
	shost->max_sectors = dev->max_io_bytes >> SECTOR_SHIFT;
	/* Data is copied, not DMA'd: segment count only bounds the sg table. */
	shost->sg_tablesize = min_t(u32, dev->max_io_bytes / 512, 2048);
	ret = scsi_add_host(shost, scstu_root);
	if (ret) {
		scsi_host_put(shost);
		return ret;
	}
	dev->shost = shost;
	return 0;
}

/*
 * Runs on every handler attach: LUN 0's INQUIRY goes to the handler. A LUN
 * that is already there is left alone; one whose scan failed (say the first
 * handler died during it) is tried again.
 */
void scstu_host_scan(struct work_struct *work)
{
	struct scstu_dev *dev = container_of(work, struct scstu_dev, scan_work);
	struct scsi_device *sdev = scsi_device_lookup(dev->shost, 0, 0, 0);
	int ret;

	if (sdev) {
		scsi_device_put(sdev);
		return;
	}
	ret = scsi_add_device(dev->shost, 0, 0, 0);
	if (ret)
		pr_warn("scstu %s: adding LUN 0 failed: %d\n", dev->name, ret);
}

/*
 * With a handler attached, outstanding commands (and sd's final SYNCHRONIZE
 * CACHE) are served normally; without one they fail at once (dev->removed).
 * A hung handler is bounded by the command timeout and eh.
 */
void scstu_host_remove(struct scstu_dev *dev)
{
	if (!dev->shost)
		return;
	scsi_remove_host(dev->shost);
	scsi_host_put(dev->shost);
	dev->shost = NULL;
}
