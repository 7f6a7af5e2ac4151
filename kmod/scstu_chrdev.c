// SPDX-License-Identifier: GPL-2.0
/*
 * scstu_chrdev.c - /dev/scstu/<name>, the handler's door to one device.
 *
 * open() attaches the handler (one at a time: a second open gets EBUSY) and
 * bumps hdr.generation; mmap() maps the region (any page-aligned window from
 * offset 0, so a handler may map the header page alone first to learn
 * region_size); SCSTU_IOC_SET_EVENTFD registers the per-queue doorbell;
 * SCSTU_IOC_KICK drains a queue's completions. The last close detaches
 * (mappings hold the file, so the region is no longer shared by then).
 */
#include <linux/fs.h>
#include <linux/mm.h>
#include <linux/module.h>
#include <linux/slab.h>
#include <linux/uaccess.h>
#include <linux/vmalloc.h>

#include "scstu.h"

static void scstu_dev_release_kref(struct kref *kref)
{
	struct scstu_dev *dev = container_of(kref, struct scstu_dev, kref);

	scstu_ring_free(dev);
	vfree(dev->region);
	kfree(dev);
}

void scstu_dev_get(struct scstu_dev *dev)
{
	kref_get(&dev->kref);
}

void scstu_dev_put(struct scstu_dev *dev)
{
	kref_put(&dev->kref, scstu_dev_release_kref);
}

static int scstu_dev_open(struct inode *inode, struct file *file)
{
	/* misc_open() set private_data to our miscdevice, under misc_mtx. */
	struct scstu_dev *dev = container_of(file->private_data, struct scstu_dev, misc);
	int ret = 0;

	mutex_lock(&dev->attach_lock);
	if (dev->removed) {
		ret = -ENODEV;
	} else if (dev->attached) {
		ret = -EBUSY;
	} else {
		scstu_dev_get(dev);
		/* A previous handler may have scribbled on the header page. */
		dev->generation++;
		dev->hdr_copy.generation = dev->generation;
		memcpy(dev->hdr, &dev->hdr_copy, sizeof(dev->hdr_copy));
		WRITE_ONCE(dev->attached, true);
		WRITE_ONCE(dev->ever_attached, true);
		schedule_work(&dev->scan_work);
		file->private_data = dev;
		pr_info("scstu %s: handler attached (pid %d, generation %llu)\n", dev->name,
			task_tgid_nr(current), dev->generation);
	}
	mutex_unlock(&dev->attach_lock);
	return ret;
}

static int scstu_dev_release(struct inode *inode, struct file *file)
{
	struct scstu_dev *dev = file->private_data;
	unsigned int requeued;

	mutex_lock(&dev->attach_lock);
	WRITE_ONCE(dev->detached_since, jiffies);
	WRITE_ONCE(dev->attached, false);
	requeued = scstu_ring_detach(dev);
	pr_info("scstu %s: handler detached (generation %llu), %u in-flight command(s) requeued; new ones held for %u s\n",
		dev->name, dev->generation, requeued, scstu_hold_secs);
	mutex_unlock(&dev->attach_lock);
	scstu_dev_put(dev);
	return 0;
}

static int scstu_dev_mmap(struct file *file, struct vm_area_struct *vma)
{
	struct scstu_dev *dev = file->private_data;

	/* remap_vmalloc_range() refuses windows beyond the region. */
	return remap_vmalloc_range(vma, dev->region, vma->vm_pgoff);
}

static long scstu_dev_ioctl(struct file *file, unsigned int cmd, unsigned long arg)
{
	struct scstu_dev *dev = file->private_data;
	void __user *uarg = (void __user *)arg;

	switch (cmd) {
	case SCSTU_IOC_SET_EVENTFD: {
		struct scstu_eventfd_reg reg;

		if (copy_from_user(&reg, uarg, sizeof(reg)))
			return -EFAULT;
		if (reg.queue >= dev->nr_queues || reg.fd < -1)
			return -EINVAL;
		return scstu_ring_set_eventfd(dev, reg.queue, reg.fd);
	}
	case SCSTU_IOC_KICK: {
		u32 queue;

		if (get_user(queue, (u32 __user *)uarg))
			return -EFAULT;
		if (queue >= dev->nr_queues)
			return -EINVAL;
		return scstu_ring_drain(dev, queue);
	}
	default:
		return -ENOTTY;
	}
}

const struct file_operations scstu_dev_fops = {
	.owner = THIS_MODULE,
	.open = scstu_dev_open,
	.release = scstu_dev_release,
	.mmap = scstu_dev_mmap,
	.unlocked_ioctl = scstu_dev_ioctl,
	.compat_ioctl = compat_ptr_ioctl,
	.llseek = noop_llseek,
};
