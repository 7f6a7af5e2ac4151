// SPDX-License-Identifier: GPL-2.0
/*
 * kmod_test_handler.c - the kmod harness's own tool, written directly on
 * ring_abi.h so the kernel side can be tested without the C++ library:
 *
 *   kmod_test_handler create NAME TYPE [VENDOR PRODUCT SERIAL [QUEUES DEPTH MAXIO [DATA_SIZE]]]
 *   kmod_test_handler remove NAME
 *   kmod_test_handler serve NAME [IMAGE [DELAY_MS [DROP_LBA [hostile|noabort]]]]
 *   kmod_test_handler badargs        (CREATE/REMOVE with invalid arguments and
 *                                     without CAP_SYS_ADMIN must all be refused)
 *   kmod_test_handler openchecks NAME (with a handler attached: EBUSY, EACCES)
 *
 * serve: a disk (type 0) backed by IMAGE with pread/pwrite, so data survives a
 * kill -9 and restart; other types answer only TEST UNIT READY, INQUIRY,
 * REQUEST SENSE and REPORT LUNS. INQUIRY strings come from the region header
 * (the create ioctl). DELAY_MS slows each WRITE (so a kill lands mid-I/O);
 * DROP_LBA: the first READ starting at that LBA is held until an ABORT TASK
 * for it arrives (exercises the kernel's eh -> TMF path), then completed late
 * (the kernel must discard that stale completion). hostile: READ(10)s of LBA
 * 4096..4101 get broken completions (see hostile()); the kernel must fail
 * 4096..4098 and drop the garbage around 4099..4101, which then succeed.
 * hostile also scribbles on the header page (the next handler must find it intact).
 * noabort: ABORT TASK is never answered (the kernel's wait times out and eh
 * escalates to LOGICAL UNIT RESET, which is answered).
 */
// clang-format off (written in the kernel's style, like ring_abi.h)
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "ring_abi.h"

static void die(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	fprintf(stderr, "kmod_test_handler: ");
	vfprintf(stderr, fmt, ap);
	fprintf(stderr, "\n");
	va_end(ap);
	exit(1);
}

static int open_ctl(void)
{
	int fd = open("/dev/scstu-ctl", O_RDWR | O_CLOEXEC);

	if (fd < 0)
		die("open /dev/scstu-ctl: %s (module loaded?)", strerror(errno));
	return fd;
}

static void fill_create(struct scstu_dev_create *c, const char *name, int type)
{
	memset(c, 0, sizeof(*c));
	snprintf(c->name, sizeof(c->name), "%s", name);
	c->device_type = (__u8)type;
	c->nr_queues = 1;
	c->queue_depth = 32;
	c->max_io_bytes = 256 * 1024;
}

static int cmd_create(int argc, char **argv)
{
	struct scstu_dev_create c;
	int fd = open_ctl();

	if (argc < 2)
		die("create NAME TYPE [VENDOR PRODUCT SERIAL [QUEUES DEPTH MAXIO [DATA_SIZE]]]");
	fill_create(&c, argv[0], atoi(argv[1]));
	if (argc >= 5) {
		snprintf(c.vendor, sizeof(c.vendor), "%s", argv[2]);
		snprintf(c.product, sizeof(c.product), "%s", argv[3]);
		snprintf(c.serial, sizeof(c.serial), "%s", argv[4]);
	}
	snprintf(c.revision, sizeof(c.revision), "0001");
	if (argc >= 8) {
		c.nr_queues = strtoul(argv[5], NULL, 0);
		c.queue_depth = strtoul(argv[6], NULL, 0);
		c.max_io_bytes = strtoul(argv[7], NULL, 0);
	}
	if (argc >= 9)
		c.data_size = strtoull(argv[8], NULL, 0);
	if (ioctl(fd, SCSTU_IOC_CREATE, &c) != 0)
		die("create %s: %s", argv[0], strerror(errno));
	return 0;
}

static int cmd_remove(int argc, char **argv)
{
	char name[SCSTU_NAME_MAX] = {0};
	int fd = open_ctl();

	if (argc < 1)
		die("remove NAME");
	snprintf(name, sizeof(name), "%s", argv[0]);
	if (ioctl(fd, SCSTU_IOC_REMOVE, name) != 0)
		die("remove %s: %s", argv[0], strerror(errno));
	return 0;
}

/* Invalid arguments, each of which must be refused with EINVAL. */
static void mutate(struct scstu_dev_create *c, int i)
{
	switch (i) {
	case 0: c->name[0] = 0; break;                          /* empty name */
	case 1: strcpy(c->name, "bad/name"); break;             /* charset */
	case 2: memset(c->name, 'a', sizeof(c->name)); break;   /* no NUL */
	case 3: c->device_type = 2; break;                      /* printer */
	case 4: c->device_type = 0x1f; break;
	case 5: c->queue_depth = 48; break;                     /* not a power of two */
	case 6: c->queue_depth = 1; break;                      /* no TMF slot */
	case 7: c->queue_depth = 8192; break;
	case 8: c->nr_queues = 0; break;
	case 9: c->nr_queues = 65; break;
	case 10: c->max_io_bytes = 1000; break;
	case 11: c->max_io_bytes = 0; break;
	case 12: c->max_io_bytes = 64u << 20; break;
	case 13: c->data_size = 4096; break;                    /* smaller than needed */
	case 14: c->reserved[3] = 1; break;
	case 15: c->reserved2 = 7; break;
	case 16: memset(c->vendor, 'V', sizeof(c->vendor)); break; /* no NUL */
	case 17: c->product[0] = 0x01; break;                   /* not printable */
	case 18: c->nr_queues = 64; c->queue_depth = 4096; c->max_io_bytes = 4u << 20; break;
	}
}

static int cmd_badargs(void)
{
	struct scstu_dev_create c;
	int fd = open_ctl(), bad = 0, i;
	char name[SCSTU_NAME_MAX] = "nosuchdev";

	for (i = 0; i <= 18; i++) {
		fill_create(&c, "badargs", 0);
		mutate(&c, i);
		if (ioctl(fd, SCSTU_IOC_CREATE, &c) == 0 || errno != EINVAL) {
			fprintf(stderr, "badargs: case %d accepted or wrong errno (%s)\n", i,
				strerror(errno));
			bad = 1;
			if (errno == 0)
				ioctl(fd, SCSTU_IOC_REMOVE, c.name);
		}
	}
	if (ioctl(fd, SCSTU_IOC_REMOVE, name) == 0 || errno != ENOENT) {
		fprintf(stderr, "badargs: REMOVE of a missing device: %s\n", strerror(errno));
		bad = 1;
	}
	if (ioctl(fd, _IO(SCSTU_IOC_MAGIC, 99), 0) == 0 || errno != ENOTTY) {
		fprintf(stderr, "badargs: unknown ioctl not refused with ENOTTY\n");
		bad = 1;
	}
	/* Without CAP_SYS_ADMIN (the fd stays open: the check is per ioctl). */
	if (setuid(65534) != 0)
		die("setuid(nobody): %s", strerror(errno));
	fill_create(&c, "unpriv", 0);
	if (ioctl(fd, SCSTU_IOC_CREATE, &c) == 0 || errno != EPERM) {
		fprintf(stderr, "badargs: unprivileged CREATE not refused with EPERM (%s)\n",
			strerror(errno));
		bad = 1;
	}
	if (ioctl(fd, SCSTU_IOC_REMOVE, name) == 0 || errno != EPERM) {
		fprintf(stderr, "badargs: unprivileged REMOVE not refused with EPERM\n");
		bad = 1;
	}
	if (!bad)
		printf("all 19 invalid CREATEs, a missing REMOVE, an unknown ioctl and 2 unprivileged calls refused\n");
	return bad;
}

/* While a handler is attached: a second open is EBUSY; without privileges EACCES. */
static int cmd_openchecks(int argc, char **argv)
{
	char path[64];
	int fd, bad = 0;

	if (argc < 1)
		die("openchecks NAME");
	snprintf(path, sizeof(path), "/dev/scstu/%s", argv[0]);
	fd = open(path, O_RDWR);
	if (fd >= 0 || errno != EBUSY) {
		fprintf(stderr, "openchecks: second open of %s: %s\n", path, strerror(errno));
		bad = 1;
	}
	if (setuid(65534) != 0)
		die("setuid(nobody): %s", strerror(errno));
	fd = open(path, O_RDWR);
	if (fd >= 0 || errno != EACCES) {
		fprintf(stderr, "openchecks: unprivileged open of %s: %s\n", path, strerror(errno));
		bad = 1;
	}
	fd = open("/dev/scstu-ctl", O_RDWR);
	if (fd >= 0 || errno != EACCES) {
		fprintf(stderr, "openchecks: unprivileged open of /dev/scstu-ctl: %s\n", strerror(errno));
		bad = 1;
	}
	if (!bad)
		printf("second open EBUSY, unprivileged opens EACCES\n");
	return bad;
}

/* ---- serve --------------------------------------------------------------- */

struct queue {
	struct scstu_queue_ctl *ctl;
	__u32 *sq, *cq;
	struct scstu_cmd *cmds;
	struct scstu_cpl *cpls;
	__u32 sq_head, cq_tail;
	int posted;
};

static struct {
	int dev_fd, efd, img_fd;
	unsigned char *base;
	struct scstu_region_header hdr; /* validated copy */
	struct queue q[SCSTU_MAX_QUEUES];
	__u64 blocks;
	__u32 block_size;
	int delay_ms;
	long long drop_lba;
	int hostile;
	int noabort;
	int held; /* DROP_LBA: a command is being held */
	__u32 held_q, held_tag, held_seq;
} S;

struct reply {
	__u8 status;
	__u8 sense_len;
	__u8 sense[18];
	__u32 transferred;
};

static void sense(struct reply *r, __u8 key, __u8 asc, __u8 ascq)
{
	/* SPC-4 4.5.3 fixed format sense data */
	memset(r->sense, 0, sizeof(r->sense));
	r->sense[0] = 0x70;
	r->sense[2] = key;
	r->sense[7] = 10;
	r->sense[12] = asc;
	r->sense[13] = ascq;
	r->sense_len = 18;
	r->status = 0x02;
	r->transferred = 0;
}

static __u32 be(const __u8 *p, int n)
{
	__u32 v = 0;

	while (n--)
		v = v << 8 | *p++;
	return v;
}

static void put_be(__u8 *p, __u64 v, int n)
{
	while (n--) {
		p[n] = (__u8)v;
		v >>= 8;
	}
}

static void pad(__u8 *dst, const char *src, size_t n)
{
	size_t l = strnlen(src, n);

	memset(dst, ' ', n);
	memcpy(dst, src, l);
}

/* Copy a built response into the data buffer, honouring the allocation length. */
static void respond(struct reply *r, __u8 *buf, __u32 buflen, const __u8 *resp, __u32 len,
		    __u32 alloc)
{
	__u32 n = len < alloc ? len : alloc;

	if (n > buflen)
		n = buflen;
	memcpy(buf, resp, n);
	r->transferred = n;
}

static void inquiry(const __u8 *cdb, struct reply *r, __u8 *buf, __u32 buflen)
{
	__u8 resp[96] = {0};
	__u32 alloc = be(cdb + 3, 2), len;
	const char *serial = S.hdr.serial[0] ? S.hdr.serial : "0";

	resp[0] = S.hdr.device_type;
	if (!(cdb[1] & 1)) {
		if (cdb[2])
			return sense(r, 0x05, 0x24, 0x00);
		resp[1] = S.hdr.device_type == 1 || S.hdr.device_type == 5 ? 0x80 : 0; /* RMB */
		resp[2] = 0x06; /* SPC-4 */
		resp[3] = 0x02;
		resp[4] = 36 - 5;
		resp[7] = 0x02; /* CMDQUE */
		pad(resp + 8, S.hdr.vendor, 8);
		pad(resp + 16, S.hdr.product, 16);
		pad(resp + 32, S.hdr.revision, 4);
		return respond(r, buf, buflen, resp, 36, alloc);
	}
	resp[1] = cdb[2];
	switch (cdb[2]) {
	case 0x00: /* supported VPD pages */
		resp[3] = 3;
		resp[4] = 0x00;
		resp[5] = 0x80;
		resp[6] = 0x83;
		len = 7;
		break;
	case 0x80: /* unit serial number */
		len = strlen(serial);
		resp[3] = (__u8)len;
		memcpy(resp + 4, serial, len);
		len += 4;
		break;
	case 0x83: /* device identification: one T10 vendor ID designator */
		resp[4] = 0x02; /* ASCII */
		resp[5] = 0x01; /* T10 vendor ID, LU association */
		pad(resp + 8, S.hdr.vendor, 8);
		len = strlen(serial);
		memcpy(resp + 16, serial, len);
		resp[7] = (__u8)(8 + len);
		put_be(resp + 2, 4 + resp[7], 2);
		len = 8 + resp[7];
		break;
	default:
		return sense(r, 0x05, 0x24, 0x00);
	}
	respond(r, buf, buflen, resp, len, alloc);
}

static void rw(const __u8 *cdb, struct reply *r, __u8 *buf, __u32 buflen, int write)
{
	__u64 lba;
	__u32 blocks;
	ssize_t n;

	switch (cdb[0]) {
	case 0x08: case 0x0a: /* 6-byte: 21-bit LBA, 0 blocks means 256 */
		lba = be(cdb + 1, 3) & 0x1fffff;
		blocks = cdb[4] ? cdb[4] : 256;
		break;
	case 0x28: case 0x2a:
		lba = be(cdb + 2, 4);
		blocks = be(cdb + 7, 2);
		break;
	default: /* 16-byte */
		lba = (__u64)be(cdb + 2, 4) << 32 | be(cdb + 6, 4);
		blocks = be(cdb + 10, 4);
		break;
	}
	if (lba > S.blocks || blocks > S.blocks - lba)
		return sense(r, 0x05, 0x21, 0x00); /* LBA OUT OF RANGE */
	if ((__u64)blocks * S.block_size > buflen)
		return sense(r, 0x05, 0x24, 0x00);
	if (write) {
		if (S.delay_ms)
			usleep(S.delay_ms * 1000);
		n = pwrite(S.img_fd, buf, (size_t)blocks * S.block_size, lba * S.block_size);
	} else {
		n = pread(S.img_fd, buf, (size_t)blocks * S.block_size, lba * S.block_size);
	}
	if (n != (ssize_t)blocks * S.block_size)
		return sense(r, 0x03, write ? 0x0c : 0x11, 0x00); /* WRITE / UNRECOVERED READ ERROR */
	r->transferred = (__u32)n;
}

static void scsi(const struct scstu_cmd *c, struct reply *r, __u8 *buf, __u32 buflen)
{
	const __u8 *cdb = c->cdb;
	__u8 resp[32] = {0};
	int disk = S.hdr.device_type == 0;

	switch (cdb[0]) {
	case 0x00: /* TEST UNIT READY */
		return;
	case 0x03: /* REQUEST SENSE: no sense pending */
		resp[0] = 0x70;
		resp[7] = 10;
		return respond(r, buf, buflen, resp, 18, cdb[4]);
	case 0x12:
		return inquiry(cdb, r, buf, buflen);
	case 0xa0: /* REPORT LUNS: LUN 0 */
		resp[3] = 8;
		return respond(r, buf, buflen, resp, 16, be(cdb + 6, 4));
	}
	if (!disk)
		return sense(r, 0x05, 0x20, 0x00);
	switch (cdb[0]) {
	case 0x08: case 0x28: case 0x88:
		return rw(cdb, r, buf, buflen, 0);
	case 0x0a: case 0x2a: case 0x8a:
		return rw(cdb, r, buf, buflen, 1);
	case 0x35: case 0x91: /* SYNCHRONIZE CACHE */
		if (fdatasync(S.img_fd) != 0)
			return sense(r, 0x03, 0x0c, 0x00);
		return;
	case 0x1b: case 0x1e: case 0x2f: /* START STOP, PREVENT ALLOW, VERIFY */
		return;
	case 0x1a: /* MODE SENSE(6): header only, no pages, not write protected */
		resp[0] = 3;
		return respond(r, buf, buflen, resp, 4, cdb[4]);
	case 0x5a:
		resp[1] = 6;
		return respond(r, buf, buflen, resp, 8, be(cdb + 7, 2));
	case 0x25: /* READ CAPACITY(10) */
		put_be(resp, S.blocks - 1 > 0xffffffffull ? 0xffffffffull : S.blocks - 1, 4);
		put_be(resp + 4, S.block_size, 4);
		return respond(r, buf, buflen, resp, 8, 8);
	case 0x9e:
		if ((cdb[1] & 0x1f) == 0x10) { /* READ CAPACITY(16) */
			put_be(resp, S.blocks - 1, 8);
			put_be(resp + 8, S.block_size, 4);
			return respond(r, buf, buflen, resp, 32, be(cdb + 10, 4));
		}
		break;
	}
	sense(r, 0x05, 0x20, 0x00); /* INVALID COMMAND OPERATION CODE */
}

static void post(unsigned qi, __u32 tag, __u32 seq, const struct reply *r, __u8 tmf_response)
{
	struct queue *q = &S.q[qi];
	struct scstu_cpl *cpl = &q->cpls[tag];

	memset(cpl, 0, sizeof(*cpl));
	cpl->tag = (__u16)tag;
	cpl->seq = seq;
	cpl->tmf_response = tmf_response;
	if (r) {
		cpl->status = r->status;
		cpl->sense_len = r->sense_len;
		cpl->transferred = r->transferred;
		memcpy(cpl->sense, r->sense, r->sense_len);
	}
	__atomic_store_n(&q->cq[q->cq_tail & (S.hdr.queue_depth - 1)], tag, __ATOMIC_RELEASE);
	q->cq_tail++;
	__atomic_store_n(&q->ctl->cq.tail, q->cq_tail, __ATOMIC_RELEASE);
	q->posted = 1;
}

static void kick(unsigned qi)
{
	if (ioctl(S.dev_fd, SCSTU_IOC_KICK, &qi) != 0)
		die("KICK queue %u: %s", qi, strerror(errno));
	S.q[qi].posted = 0;
}

/* Returns 1 when it completed the command itself. */
static int hostile(unsigned qi, __u32 tag, const struct scstu_cmd *c, __u8 *buf, __u32 buflen)
{
	struct queue *q = &S.q[qi];
	struct reply r = {0};
	__u32 lba = be(c->cdb + 2, 4), saved;

	if (c->cdb[0] != 0x28 || lba < 4096 || lba > 4101)
		return 0;
	scsi(c, &r, buf, buflen);
	switch (lba - 4096) {
	case 0: /* sense_len beyond SCSTU_SENSE_MAX */
		r.sense_len = 200;
		break;
	case 1: /* more bytes than the buffer holds */
		r.transferred = c->data_length + 512;
		break;
	case 2: /* not a SAM status */
		r.status = 0x77;
		break;
	case 3: /* a tag beyond the depth, a never-submitted tag, then the real one */
		__atomic_store_n(&q->cq[q->cq_tail & (S.hdr.queue_depth - 1)], 9999, __ATOMIC_RELEASE);
		q->cq_tail++;
		__atomic_store_n(&q->ctl->cq.tail, q->cq_tail, __ATOMIC_RELEASE);
		post(qi, (tag + 1) & (S.hdr.queue_depth - 1), 0xdead, &r, 0);
		if (ioctl(S.dev_fd, SCSTU_IOC_KICK, &qi) == 0 || errno != EPROTO)
			fprintf(stderr, "kmod_test_handler: hostile: tag 9999 not refused\n");
		break;
	case 4: /* a stale seq for this tag, kicked on its own */
		post(qi, tag, c->seq + 1, &r, 0);
		kick(qi);
		break;
	case 5: /* a completion tail far beyond the head */
		saved = q->ctl->cq.tail;
		__atomic_store_n(&q->ctl->cq.tail, saved + 100000, __ATOMIC_RELEASE);
		if (ioctl(S.dev_fd, SCSTU_IOC_KICK, &qi) == 0 || errno != EPROTO)
			fprintf(stderr, "kmod_test_handler: hostile: bogus tail not refused\n");
		else
			fprintf(stderr, "kmod_test_handler: hostile: bogus tail refused (EPROTO)\n");
		__atomic_store_n(&q->ctl->cq.tail, saved, __ATOMIC_RELEASE);
		break;
	}
	post(qi, tag, c->seq, &r, 0);
	return 1;
}

static void process(unsigned qi, __u32 tag)
{
	struct queue *q = &S.q[qi];
	struct scstu_cmd c;
	struct reply r = {0};
	__u8 *buf = NULL;
	__u32 buflen = 0;

	if (tag >= S.hdr.queue_depth)
		die("queue %u: submission tag %u >= depth", qi, tag);
	memcpy(&c, &q->cmds[tag], sizeof(c));
	if (c.kind == SCSTU_KIND_TMF) {
		fprintf(stderr, "kmod_test_handler: TMF function %u ref %u/%u%s\n", c.tmf.function,
			(unsigned)c.tmf.ref_queue, c.tmf.ref_tag,
			S.noabort && c.tmf.function == SCSTU_TMF_ABORT_TASK ? " (ignored)" : "");
		if (S.noabort && c.tmf.function == SCSTU_TMF_ABORT_TASK)
			return;
		if (S.held && (c.tmf.function != SCSTU_TMF_ABORT_TASK ||
			       (c.tmf.ref_queue == S.held_q && c.tmf.ref_tag == S.held_tag))) {
			/* Complete the held command late: the kernel must drop it. */
			r.transferred = 0;
			post(S.held_q, S.held_tag, S.held_seq, &r, 0);
			S.held = 0;
		}
		return post(qi, tag, c.seq, NULL, SCSTU_TMF_COMPLETE);
	}
	if (c.kind != SCSTU_KIND_SCSI || c.cdb_len < 1 || c.cdb_len > SCSTU_CDB_MAX ||
	    c.nr_iov > 1)
		die("queue %u tag %u: malformed command", qi, tag);
	if (c.nr_iov == 1) {
		if (c.iov[0].offset > S.hdr.data_size ||
		    c.iov[0].len > S.hdr.data_size - c.iov[0].offset)
			die("queue %u tag %u: iov outside the data area", qi, tag);
		buf = S.base + S.hdr.data_offset + c.iov[0].offset;
		buflen = c.iov[0].len;
	}
	if (S.drop_lba >= 0 && (c.cdb[0] == 0x28 || c.cdb[0] == 0x88) &&
	    be(c.cdb + (c.cdb[0] == 0x28 ? 2 : 6), 4) == (__u32)S.drop_lba) {
		fprintf(stderr, "kmod_test_handler: holding READ of LBA %lld (tag %u)\n",
			S.drop_lba, tag);
		S.drop_lba = -1;
		S.held = 1;
		S.held_q = qi;
		S.held_tag = tag;
		S.held_seq = c.seq;
		return;
	}
	if (S.hostile && hostile(qi, tag, &c, buf, buflen))
		return;
	scsi(&c, &r, buf, buflen);
	post(qi, tag, c.seq, &r, 0);
}

static void attach(const char *name)
{
	char path[64];
	void *p;
	unsigned i;
	struct stat st;

	snprintf(path, sizeof(path), "/dev/scstu/%s", name);
	S.dev_fd = open(path, O_RDWR | O_CLOEXEC);
	if (S.dev_fd < 0)
		die("open %s: %s", path, strerror(errno));
	p = mmap(NULL, SCSTU_HEADER_BYTES, PROT_READ, MAP_SHARED, S.dev_fd, 0);
	if (p == MAP_FAILED)
		die("mmap header of %s: %s", path, strerror(errno));
	memcpy(&S.hdr, p, sizeof(S.hdr));
	munmap(p, SCSTU_HEADER_BYTES);
	if (S.hdr.magic != SCSTU_REGION_MAGIC || S.hdr.abi_major != SCSTU_ABI_MAJOR ||
	    S.hdr.cmd_size != sizeof(struct scstu_cmd) || S.hdr.nr_queues < 1 ||
	    S.hdr.nr_queues > SCSTU_MAX_QUEUES || S.hdr.queue_depth > SCSTU_MAX_QUEUE_DEPTH ||
	    (S.hdr.queue_depth & (S.hdr.queue_depth - 1)) ||
	    S.hdr.data_offset + S.hdr.data_size > S.hdr.region_size)
		die("%s: bad region header", path);
	S.base = mmap(NULL, S.hdr.region_size, PROT_READ | PROT_WRITE, MAP_SHARED, S.dev_fd, 0);
	if (S.base == MAP_FAILED)
		die("mmap %llu bytes of %s: %s", (unsigned long long)S.hdr.region_size, path,
		    strerror(errno));
	S.efd = eventfd(0, EFD_CLOEXEC);
	for (i = 0; i < S.hdr.nr_queues; i++) {
		unsigned char *qb = S.base + S.hdr.queues_offset + i * S.hdr.queue_stride;
		struct scstu_eventfd_reg reg = {i, S.efd};

		S.q[i].ctl = (struct scstu_queue_ctl *)qb;
		S.q[i].sq = (__u32 *)(qb + S.hdr.sq_ring_offset);
		S.q[i].cq = (__u32 *)(qb + S.hdr.cq_ring_offset);
		S.q[i].cmds = (struct scstu_cmd *)(qb + S.hdr.cmd_offset);
		S.q[i].cpls = (struct scstu_cpl *)(qb + S.hdr.cpl_offset);
		S.q[i].sq_head = S.q[i].ctl->sq.head;
		S.q[i].cq_tail = S.q[i].ctl->cq.tail;
		if (ioctl(S.dev_fd, SCSTU_IOC_SET_EVENTFD, &reg) != 0)
			die("SET_EVENTFD queue %u: %s", i, strerror(errno));
	}
	if (S.img_fd >= 0) {
		if (fstat(S.img_fd, &st) != 0)
			die("stat image: %s", strerror(errno));
		S.blocks = (__u64)st.st_size / S.block_size;
	}
	fprintf(stderr, "kmod_test_handler: attached %s: type %u, %u x %u, generation %llu, '%s' '%s' '%s'\n",
		path, S.hdr.device_type, S.hdr.nr_queues, S.hdr.queue_depth,
		(unsigned long long)((struct scstu_region_header *)S.base)->generation,
		S.hdr.vendor, S.hdr.product, S.hdr.serial);
}

static __attribute__((noreturn)) void cmd_serve(int argc, char **argv)
{
	unsigned i;

	if (argc < 1)
		die("serve NAME [IMAGE [DELAY_MS [DROP_LBA [hostile|noabort]]]]");
	S.img_fd = -1;
	S.block_size = 512;
	S.drop_lba = -1;
	if (argc >= 2 && (S.img_fd = open(argv[1], O_RDWR | O_CLOEXEC)) < 0)
		die("open %s: %s", argv[1], strerror(errno));
	if (argc >= 3)
		S.delay_ms = atoi(argv[2]);
	if (argc >= 4)
		S.drop_lba = atoll(argv[3]);
	if (argc >= 5)
		S.hostile = !strcmp(argv[4], "hostile"), S.noabort = !strcmp(argv[4], "noabort");
	attach(argv[0]);
	if (S.hostile) {
		void *p = mmap(NULL, S.hdr.region_size + 4096, PROT_READ, MAP_SHARED, S.dev_fd, 0);
		void *p2 = mmap(NULL, 4096, PROT_READ, MAP_SHARED, S.dev_fd,
				(off_t)S.hdr.region_size);

		if (p != MAP_FAILED || p2 != MAP_FAILED)
			fprintf(stderr, "kmod_test_handler: hostile: mmap beyond the region not refused\n");
		else
			fprintf(stderr, "kmod_test_handler: hostile: mmap beyond the region refused\n");
	}
	if (S.hostile) {
		/* Scribble on the header: the kernel must restore it for the next handler. */
		struct scstu_region_header *h = (struct scstu_region_header *)S.base;

		h->magic = 0xdeadbeef;
		h->region_size = ~0ull;
		h->data_per_queue = 12345;
		h->queue_depth = 3;
	}
	for (;;) {
		int work = 0;

		for (i = 0; i < S.hdr.nr_queues; i++) {
			struct queue *q = &S.q[i];
			__u32 tail = __atomic_load_n(&q->ctl->sq.tail, __ATOMIC_ACQUIRE);

			if (tail - q->sq_head > S.hdr.queue_depth)
				die("queue %u: submission tail %u head %u: protocol violation", i,
				    tail, q->sq_head);
			while (q->sq_head != tail) {
				__u32 tag = __atomic_load_n(&q->sq[q->sq_head & (S.hdr.queue_depth - 1)],
							    __ATOMIC_ACQUIRE);

				q->sq_head++;
				__atomic_store_n(&q->ctl->sq.head, q->sq_head, __ATOMIC_RELEASE);
				process(i, tag);
				work++;
			}
			if (q->posted) {
				__atomic_thread_fence(__ATOMIC_SEQ_CST);
				if (__atomic_load_n(&q->ctl->cq.reader_flags, __ATOMIC_RELAXED) &
				    SCSTU_RING_NEED_WAKEUP)
					kick(i);
				q->posted = 0;
			}
		}
		if (work)
			continue;
		/* About to sleep: ask for a doorbell, then re-check (ring_abi.h). */
		for (i = 0; i < S.hdr.nr_queues; i++)
			__atomic_store_n(&S.q[i].ctl->sq.reader_flags, SCSTU_RING_NEED_WAKEUP,
					 __ATOMIC_RELAXED);
		__atomic_thread_fence(__ATOMIC_SEQ_CST);
		for (i = 0; i < S.hdr.nr_queues; i++)
			if (__atomic_load_n(&S.q[i].ctl->sq.tail, __ATOMIC_ACQUIRE) != S.q[i].sq_head)
				work = 1;
		if (!work) {
			__u64 v;

			if (read(S.efd, &v, sizeof(v)) < 0 && errno != EINTR)
				die("read eventfd: %s", strerror(errno));
		}
		for (i = 0; i < S.hdr.nr_queues; i++)
			__atomic_store_n(&S.q[i].ctl->sq.reader_flags, 0, __ATOMIC_RELAXED);
	}
}

int main(int argc, char **argv)
{
	setvbuf(stdout, NULL, _IOLBF, 0);
	if (argc >= 2 && !strcmp(argv[1], "create"))
		return cmd_create(argc - 2, argv + 2);
	if (argc >= 2 && !strcmp(argv[1], "remove"))
		return cmd_remove(argc - 2, argv + 2);
	if (argc >= 2 && !strcmp(argv[1], "serve"))
		cmd_serve(argc - 2, argv + 2);
	if (argc >= 2 && !strcmp(argv[1], "badargs"))
		return cmd_badargs();
	if (argc >= 2 && !strcmp(argv[1], "openchecks"))
		return cmd_openchecks(argc - 2, argv + 2);
	fprintf(stderr,
		"usage: kmod_test_handler create NAME TYPE [VENDOR PRODUCT SERIAL [QUEUES DEPTH MAXIO [DATA_SIZE]]]\n"
		"       kmod_test_handler remove NAME\n"
		"       kmod_test_handler serve NAME [IMAGE [DELAY_MS [DROP_LBA [hostile|noabort]]]]\n"
		"       kmod_test_handler badargs\n"
		"       kmod_test_handler openchecks NAME\n");
	return 2;
}
