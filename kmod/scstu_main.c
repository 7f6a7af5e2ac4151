// SPDX-License-Identifier: GPL-2.0
/*
 * scstu_main.c - module entry, /dev/scstu-ctl and device lifetime.
 *
 * SCSTU_IOC_CREATE validates every field of struct scstu_dev_create, builds
 * the shared region (header filled here), the Scsi_Host and the handler's
 * char device /dev/scstu/<name>. The LUN is scanned when the first handler
 * attaches, so INQUIRY is answered by the handler. SCSTU_IOC_REMOVE and
 * rmmod take devices down (rmmod is refused while a handler holds a device
 * open: its file pins the module).
 */
#include <linux/capability.h>
#include <linux/ctype.h>
#include <linux/device.h>
#include <linux/fs.h>
#include <linux/log2.h>
#include <linux/math64.h>
#include <linux/module.h>
#include <linux/slab.h>
#include <linux/uaccess.h>
#include <linux/vmalloc.h>
#include <scsi/scsi_host.h>
#include <scsi/scsi_proto.h>

#include "scstu.h"

#define SCSTU_MAX_DEVICES 64
#define SCSTU_MAX_IO_BYTES (4u << 20)

unsigned int scstu_hold_secs = 30;
module_param_named(hold_secs, scstu_hold_secs, uint, 0644);
MODULE_PARM_DESC(hold_secs,
		 "how long commands wait for a handler to (re)attach before failing (default 30)");

unsigned int scstu_tmf_secs = 10;
module_param_named(tmf_timeout_secs, scstu_tmf_secs, uint, 0644);
MODULE_PARM_DESC(tmf_timeout_secs, "how long error handling waits for a task management response (default 10)");

static unsigned int scstu_max_region_mb = 1024;
module_param_named(max_region_mb, scstu_max_region_mb, uint, 0644);
MODULE_PARM_DESC(max_region_mb, "largest shared region (rings + data area) per device, MiB (default 1024)");

struct device *scstu_root;
static LIST_HEAD(scstu_devices);
static DEFINE_MUTEX(scstu_devices_lock);
static unsigned int scstu_nr_devices;

/* A NUL-terminated string in a fixed array, every byte accepted by ok(). */
static bool scstu_valid_string(const char *s, size_t size, bool (*ok)(char c))
{
	size_t len = strnlen(s, size), i;

	if (len == size)
		return false;
	for (i = 0; i < len; i++)
		if (!ok(s[i]))
			return false;
	return true;
}

static bool scstu_name_char(char c)
{
	return isalnum(c) || c == '_' || c == '-';
}

/* SPC-4 4.4.1: INQUIRY ASCII fields hold 0x20..0x7E. */
static bool scstu_ascii_char(char c)
{
	return c >= 0x20 && c <= 0x7e;
}

static bool scstu_valid_name(const char *name)
{
	return name[0] && scstu_valid_string(name, SCSTU_NAME_MAX, scstu_name_char);
}

static bool scstu_all_zero(const void *p, size_t n)
{
	return !memchr_inv(p, 0, n);
}

/* Tags per queue that own a data slot (the rest only carry TMFs). */
static u32 scstu_data_slots(const struct scstu_dev_create *c)
{
	u64 slots;

	if (!c->data_size)
		return c->queue_depth;
	slots = div64_u64(c->data_size, (u64)c->nr_queues * c->max_io_bytes);
	return (u32)min_t(u64, slots, c->queue_depth);
}

static int scstu_validate(const struct scstu_dev_create *c)
{
	u64 needed;

	if (!scstu_valid_name(c->name)) {
		pr_info("scstu: create: name must be 1..%d characters of [A-Za-z0-9_-]\n",
			SCSTU_NAME_MAX - 1);
		return -EINVAL;
	}
	if (!scstu_valid_string(c->vendor, sizeof(c->vendor), scstu_ascii_char) ||
	    !scstu_valid_string(c->product, sizeof(c->product), scstu_ascii_char) ||
	    !scstu_valid_string(c->revision, sizeof(c->revision), scstu_ascii_char) ||
	    !scstu_valid_string(c->serial, sizeof(c->serial), scstu_ascii_char)) {
		pr_info("scstu %s: create: vendor/product/revision/serial must be NUL-terminated printable ASCII\n",
			c->name);
		return -EINVAL;
	}
	if (c->device_type != TYPE_DISK && c->device_type != TYPE_TAPE &&
	    c->device_type != TYPE_ROM && c->device_type != TYPE_MEDIUM_CHANGER) {
		pr_info("scstu %s: create: device_type %u not one of 0 (disk), 1 (tape), 5 (cd-rom), 8 (changer)\n",
			c->name, c->device_type);
		return -EINVAL;
	}
	if (!scstu_all_zero(c->reserved, sizeof(c->reserved)) || c->reserved2) {
		pr_info("scstu %s: create: reserved fields must be zero\n", c->name);
		return -EINVAL;
	}
	if (c->nr_queues < 1 || c->nr_queues > SCSTU_MAX_QUEUES) {
		pr_info("scstu %s: create: nr_queues %u not in 1..%d\n", c->name, c->nr_queues,
			SCSTU_MAX_QUEUES);
		return -EINVAL;
	}
	/* >= 2: one tag per queue is kept for task management. */
	if (c->queue_depth < 2 || c->queue_depth > SCSTU_MAX_QUEUE_DEPTH ||
	    !is_power_of_2(c->queue_depth)) {
		pr_info("scstu %s: create: queue_depth %u not a power of two in 2..%d\n", c->name,
			c->queue_depth, SCSTU_MAX_QUEUE_DEPTH);
		return -EINVAL;
	}
	if (c->max_io_bytes < SCSTU_DATA_ALIGN || c->max_io_bytes > SCSTU_MAX_IO_BYTES ||
	    c->max_io_bytes % SCSTU_DATA_ALIGN) {
		pr_info("scstu %s: create: max_io_bytes %u not a multiple of 4096 in 4096..%u\n",
			c->name, c->max_io_bytes, SCSTU_MAX_IO_BYTES);
		return -EINVAL;
	}
	/*
	 * One data slot of max_io_bytes per tag, for as many tags as data_size
	 * allows (0: all of them); at least one per queue.
	 */
	if (c->data_size && c->data_size < (u64)c->nr_queues * c->max_io_bytes) {
		pr_info("scstu %s: create: data_size %llu < nr_queues * max_io_bytes = %llu (0 means a slot per tag)\n",
			c->name, c->data_size, (u64)c->nr_queues * c->max_io_bytes);
		return -EINVAL;
	}
	needed = (u64)c->nr_queues * scstu_data_slots(c) * c->max_io_bytes;
	if (needed > ((u64)scstu_max_region_mb << 20)) {
		pr_info("scstu %s: create: data area of %llu bytes exceeds max_region_mb=%u\n",
			c->name, needed, scstu_max_region_mb);
		return -EINVAL;
	}
	return 0;
}

static struct scstu_dev *scstu_find(const char *name)
{
	struct scstu_dev *dev;

	list_for_each_entry(dev, &scstu_devices, node)
		if (!strcmp(dev->name, name))
			return dev;
	return NULL;
}

static void scstu_teardown(struct scstu_dev *dev)
{
	mutex_lock(&dev->attach_lock);
	WRITE_ONCE(dev->removed, true);
	mutex_unlock(&dev->attach_lock);
	/* No new handler from here on; a scan in progress finishes first. */
	if (dev->misc_registered)
		misc_deregister(&dev->misc);
	cancel_work_sync(&dev->scan_work);
	scstu_host_remove(dev);
}

static int scstu_create(const struct scstu_dev_create *c)
{
	struct scstu_region_header hdr;
	struct scstu_dev *dev;
	u64 size;
	int ret;

	ret = scstu_validate(c);
	if (ret)
		return ret;
	size = scstu_ring_layout(&hdr, c->nr_queues, c->queue_depth, scstu_data_slots(c),
				 c->max_io_bytes);
	if (size > ((u64)scstu_max_region_mb << 20) + hdr.data_offset)
		return -EINVAL;

	mutex_lock(&scstu_devices_lock);
	if (scstu_find(c->name)) {
		ret = -EEXIST;
		goto out_unlock;
	}
	if (scstu_nr_devices >= SCSTU_MAX_DEVICES) {
		ret = -ENOSPC;
		goto out_unlock;
	}
	dev = kzalloc(sizeof(*dev), GFP_KERNEL);
	if (!dev) {
		ret = -ENOMEM;
		goto out_unlock;
	}
	kref_init(&dev->kref);
	mutex_init(&dev->attach_lock);
	mutex_init(&dev->tmf_lock);
	init_completion(&dev->tmf_done);
	init_waitqueue_head(&dev->slot_wq);
	INIT_WORK(&dev->scan_work, scstu_host_scan);
	strscpy(dev->name, c->name, sizeof(dev->name));
	dev->device_type = c->device_type;
	dev->nr_queues = c->nr_queues;
	dev->queue_depth = c->queue_depth;
	dev->max_io_bytes = c->max_io_bytes;
	dev->data_slots = scstu_data_slots(c);
	dev->detached_since = jiffies;

	dev->region = vmalloc_user(size);
	if (!dev->region) {
		ret = -ENOMEM;
		goto out_put;
	}
	dev->region_size = size;
	dev->hdr = dev->region;
	hdr.device_type = c->device_type;
	memcpy(hdr.vendor, c->vendor, sizeof(hdr.vendor));
	memcpy(hdr.product, c->product, sizeof(hdr.product));
	memcpy(hdr.revision, c->revision, sizeof(hdr.revision));
	memcpy(hdr.serial, c->serial, sizeof(hdr.serial));
	dev->hdr_copy = hdr;
	memcpy(dev->hdr, &hdr, sizeof(hdr));
	ret = scstu_ring_init(dev);
	if (ret)
		goto out_put;

	/* The host exists before the char device: an attach may scan at once. */
	ret = scstu_host_create(dev);
	if (ret)
		goto out_put;
	snprintf(dev->nodename, sizeof(dev->nodename), "scstu/%s", dev->name);
	snprintf(dev->miscname, sizeof(dev->miscname), "scstu:%s", dev->name);
	dev->misc.minor = MISC_DYNAMIC_MINOR;
	dev->misc.name = dev->miscname;
	dev->misc.nodename = dev->nodename;
	dev->misc.mode = 0600;
	dev->misc.fops = &scstu_dev_fops;
	ret = misc_register(&dev->misc);
	if (ret) {
		scstu_teardown(dev);
		goto out_put;
	}
	dev->misc_registered = true;
	list_add_tail(&dev->node, &scstu_devices);
	scstu_nr_devices++;
	mutex_unlock(&scstu_devices_lock);
	pr_info("scstu %s: created: type %u, %u queue(s) x %u (%u with data), max_io %u, region %llu bytes, host%u\n",
		dev->name, dev->device_type, dev->nr_queues, dev->queue_depth, dev->data_slots,
		dev->max_io_bytes, size, dev->shost->host_no);
	return 0;

out_put:
	scstu_dev_put(dev);
out_unlock:
	mutex_unlock(&scstu_devices_lock);
	return ret;
}

static int scstu_remove(const char *name)
{
	struct scstu_dev *dev;

	mutex_lock(&scstu_devices_lock);
	dev = scstu_find(name);
	if (!dev) {
		mutex_unlock(&scstu_devices_lock);
		return -ENOENT;
	}
	list_del(&dev->node);
	scstu_nr_devices--;
	scstu_teardown(dev);
	mutex_unlock(&scstu_devices_lock);
	pr_info("scstu %s: removed\n", dev->name);
	scstu_dev_put(dev);
	return 0;
}

static long scstu_ctl_ioctl(struct file *file, unsigned int cmd, unsigned long arg)
{
	void __user *uarg = (void __user *)arg;

	if (!capable(CAP_SYS_ADMIN))
		return -EPERM;
	switch (cmd) {
	case SCSTU_IOC_CREATE: {
		struct scstu_dev_create c;

		if (copy_from_user(&c, uarg, sizeof(c)))
			return -EFAULT;
		return scstu_create(&c);
	}
	case SCSTU_IOC_REMOVE: {
		char name[SCSTU_NAME_MAX];

		if (copy_from_user(name, uarg, sizeof(name)))
			return -EFAULT;
		if (!scstu_valid_name(name))
			return -EINVAL;
		return scstu_remove(name);
	}
	default:
		return -ENOTTY;
	}
}

static const struct file_operations scstu_ctl_fops = {
	.owner = THIS_MODULE,
	.unlocked_ioctl = scstu_ctl_ioctl,
	.compat_ioctl = compat_ptr_ioctl,
	.llseek = noop_llseek,
};

static struct miscdevice scstu_ctl = {
	.minor = MISC_DYNAMIC_MINOR,
	.name = "scstu-ctl",
	.mode = 0600,
	.fops = &scstu_ctl_fops,
};

static int __init scstu_init(void)
{
	int ret;

	scstu_root = root_device_register("scstu");
	if (IS_ERR(scstu_root))
		return PTR_ERR(scstu_root);
	ret = misc_register(&scstu_ctl);
	if (ret) {
		root_device_unregister(scstu_root);
		return ret;
	}
	pr_info("scstu: loaded (ring ABI %u.%u)\n", SCSTU_ABI_MAJOR, SCSTU_ABI_MINOR);
	return 0;
}

static void __exit scstu_exit(void)
{
	struct scstu_dev *dev, *tmp;

	misc_deregister(&scstu_ctl);
	mutex_lock(&scstu_devices_lock);
	list_for_each_entry_safe(dev, tmp, &scstu_devices, node) {
		list_del(&dev->node);
		scstu_teardown(dev);
		scstu_dev_put(dev);
	}
	scstu_nr_devices = 0;
	mutex_unlock(&scstu_devices_lock);
	root_device_unregister(scstu_root);
	pr_info("scstu: unloaded\n");
}

module_init(scstu_init);
module_exit(scstu_exit);
MODULE_LICENSE("GPL");
MODULE_DESCRIPTION("scstu: a virtual SCSI host whose commands are served by a user-space handler over a shared ring");
MODULE_AUTHOR("scstu project");
