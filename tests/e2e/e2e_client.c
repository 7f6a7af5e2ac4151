/*
 * e2e_client - a small libiscsi client for the end-to-end tests.
 *
 *   e2e_client write URL BLOCKS BLOCK_SIZE QUEUE_DEPTH [fua]
 *       writes LBA 0, 1, 2, ... once each (WRITE 16, one block, QUEUE_DEPTH in
 *       flight) with a pattern naming the LBA, and prints "ACK <lba>" for each
 *       GOOD status and "ERR <lba> <status>" for anything else, as it happens.
 *   e2e_client verify IMAGE BLOCK_SIZE < acks
 *       checks that every ACKed LBA holds its pattern in the image file;
 *       prints "verified N acknowledged blocks" or the first bad LBA, exit 1.
 *   e2e_client wce URL
 *       prints "WCE=<0|1>" from MODE SENSE(6)'s caching page (SBC-3 6.4.5):
 *       the write-back / write-through / NV_CACHE report.
 *   e2e_client await-ua URL
 *       logs in (one I_T nexus, its power-on unit attention taken), prints
 *       "logged in", waits for a line on stdin, then sends TEST UNIT READY and
 *       prints "GOOD" or "SENSE <key> <asc> <ascq>" (hex), then READ
 *       CAPACITY(16) and prints "BYTES <capacity in bytes>": what an
 *       initiator already logged in sees after a resize.
 *   e2e_client watch URL
 *       keeps one session (one I_T nexus) and runs a command per line of
 *       stdin: "tur" (TEST UNIT READY), "cap" (READ CAPACITY(10)), "prevent"
 *       / "allow" (PREVENT ALLOW MEDIUM REMOVAL), "sanitize" (SANITIZE IMMED
 *       OVERWRITE, one pass of 0xA5), "read" (READ(16) of LBA 0, 512 bytes);
 *       prints one line each:
 *       "<cmd> GOOD [blocks block_size]" or "<cmd> CHECK key/asc/ascq" (hex).
 *
 * write: the kill -9 durability test's writer.
 * Each LBA is written once, so an acknowledged block has exactly one valid
 * content whatever happened to the writes in flight around it.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <iscsi/iscsi.h>
#include <iscsi/scsi-lowlevel.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "url_login.h"

#define MAGIC 0x5343535455414b31ull /* "SCSTUAK1" */

static void fill(uint8_t *buf, uint32_t bs, uint64_t lba) {
  uint64_t *w = (uint64_t *)buf;
  for (uint32_t i = 0; i < bs / 8; i++) w[i] = lba * 0x9E3779B97F4A7C15ull + i;
  w[0] = MAGIC;
  w[1] = lba;
}

struct writer {
  struct iscsi_context *iscsi;
  int lun;
  uint32_t bs;
  uint64_t next, blocks, done;
  int in_flight, fua, errors_in_a_row;
  uint8_t *bufs; /* one block per queue slot */
  int *free_slots, nfree;
};

struct slot_ctx {
  struct writer *w;
  int slot;
  uint64_t lba;
};

static void submit_next(struct writer *w);

static struct iscsi_context *login(const char *url_text, int *lun) {
  return url_login(url_text, "iqn.2026-11.org.scstu:e2e-client", lun);
}

static void write_done(struct iscsi_context *iscsi, int status, void *command_data,
                       void *private_data) {
  (void)iscsi;
  struct slot_ctx *ctx = private_data;
  struct writer *w = ctx->w;
  struct scsi_task *task = command_data;
  if (status == SCSI_STATUS_GOOD) {
    printf("ACK %" PRIu64 "\n", ctx->lba);
    w->errors_in_a_row = 0;
  } else {
    printf("ERR %" PRIu64 " %d\n", ctx->lba, status);
    w->errors_in_a_row++;
  }
  if (task) scsi_free_scsi_task(task);
  w->free_slots[w->nfree++] = ctx->slot;
  w->in_flight--;
  w->done++;
  free(ctx);
}

static void submit_next(struct writer *w) {
  while (w->nfree > 0 && w->next < w->blocks) {
    int slot = w->free_slots[--w->nfree];
    uint8_t *buf = w->bufs + (size_t)slot * w->bs;
    struct slot_ctx *ctx = malloc(sizeof *ctx);
    ctx->w = w;
    ctx->slot = slot;
    ctx->lba = w->next++;
    fill(buf, w->bs, ctx->lba);
    if (!iscsi_write16_task(w->iscsi, w->lun, ctx->lba, buf, w->bs, (int)w->bs, 0, 0, w->fua, 0,
                            0, write_done, ctx)) {
      printf("ERR %" PRIu64 " submit\n", ctx->lba);
      w->free_slots[w->nfree++] = slot;
      w->done++;
      free(ctx);
      continue;
    }
    w->in_flight++;
  }
}

static int do_write(int argc, char **argv) {
  if (argc < 6) return 2;
  struct writer w = {0};
  w.blocks = strtoull(argv[3], NULL, 10);
  w.bs = (uint32_t)strtoul(argv[4], NULL, 10);
  int qd = atoi(argv[5]);
  w.fua = argc > 6 && strcmp(argv[6], "fua") == 0;
  if (qd < 1 || qd > 128 || w.bs < 512 || w.bs % 8) return 2;
  w.iscsi = login(argv[2], &w.lun);
  if (!w.iscsi) return 1;
  w.bufs = aligned_alloc(4096, (size_t)qd * w.bs);
  w.free_slots = calloc((size_t)qd, sizeof(int));
  for (int i = 0; i < qd; i++) w.free_slots[w.nfree++] = i;
  submit_next(&w);
  while (w.done < w.blocks) {
    struct pollfd p = {iscsi_get_fd(w.iscsi), (short)iscsi_which_events(w.iscsi), 0};
    if (poll(&p, 1, 1000) < 0 && errno != EINTR) break;
    if (iscsi_service(w.iscsi, p.revents) < 0) {
      fprintf(stderr, "e2e_client: %s\n", iscsi_get_error(w.iscsi));
      break;
    }
    /* While the handler is away every command fails at once: pace the retries. */
    if (w.errors_in_a_row > 0) usleep(2000);
    submit_next(&w);
  }
  fflush(stdout);
  iscsi_logout_sync(w.iscsi);
  iscsi_destroy_context(w.iscsi);
  free(w.bufs);
  free(w.free_slots);
  return 0;
}

static void print_outcome(const char *cmd, struct scsi_task *task) {
  if (task && task->status == SCSI_STATUS_CHECK_CONDITION) {
    printf("%s CHECK %02x/%02x/%02x\n", cmd, (unsigned)task->sense.key,
           (unsigned)(task->sense.ascq >> 8), (unsigned)(task->sense.ascq & 0xFF));
  } else if (!task || task->status != SCSI_STATUS_GOOD) {
    printf("%s STATUS %d\n", cmd, task ? task->status : -1);
  } else if (strcmp(cmd, "cap") == 0) {
    struct scsi_readcapacity10 *rc = scsi_datain_unmarshall(task);
    if (rc)
      printf("cap GOOD %" PRIu64 " %u\n", (uint64_t)rc->lba + 1, rc->block_size);
    else
      printf("cap GOOD unparsable\n");
  } else {
    printf("%s GOOD\n", cmd);
  }
  fflush(stdout);
  if (task) scsi_free_scsi_task(task);
}

static int do_watch(int argc, char **argv) {
  if (argc < 3) return 2;
  int lun;
  struct iscsi_context *iscsi = login(argv[2], &lun);
  if (!iscsi) return 1;
  char line[64];
  while (fgets(line, sizeof line, stdin)) {
    line[strcspn(line, "\r\n")] = 0;
    if (strcmp(line, "tur") == 0) {
      print_outcome(line, iscsi_testunitready_sync(iscsi, lun));
    } else if (strcmp(line, "cap") == 0) {
      print_outcome(line, iscsi_readcapacity10_sync(iscsi, lun, 0, 0));
    } else if (strcmp(line, "sanitize") == 0) {
      /* SANITIZE IMMED=1 OVERWRITE, one pass of 0xA5 (SBC-4 5.30.2.2). The
       * list is 512 bytes (a 508-byte pattern): libiscsi rounds SANITIZE's
       * expected transfer up to 512 and waits for that much otherwise. */
      unsigned char p[512];
      memset(p, 0xA5, sizeof p);
      p[0] = 0x01;
      p[1] = 0;
      p[2] = (sizeof p - 4) >> 8;
      p[3] = (sizeof p - 4) & 0xFF;
      struct iscsi_data d = {sizeof p, p};
      print_outcome(line, iscsi_sanitize_sync(iscsi, lun, 1, 0, 0x01, sizeof p, &d));
    } else if (strcmp(line, "read") == 0) {
      print_outcome(line, iscsi_read16_sync(iscsi, lun, 0, 512, 512, 0, 0, 0, 0, 0));
    } else if (strcmp(line, "prevent") == 0 || strcmp(line, "allow") == 0) {
      print_outcome(line, iscsi_preventallow_sync(iscsi, lun, line[0] == 'p'));
    } else {
      printf("%s UNKNOWN\n", line);
      fflush(stdout);
    }
  }
  iscsi_logout_sync(iscsi);
  iscsi_destroy_context(iscsi);
  return 0;
}

static int do_wce(int argc, char **argv) {
  if (argc < 3) return 2;
  int lun;
  struct iscsi_context *iscsi = login(argv[2], &lun);
  if (!iscsi) return 1;
  struct scsi_task *task = iscsi_modesense6_sync(iscsi, lun, 1, SCSI_MODESENSE_PC_CURRENT,
                                                 SCSI_MODEPAGE_CACHING, 0, 255);
  if (!task || task->status != SCSI_STATUS_GOOD) {
    fprintf(stderr, "e2e_client: MODE SENSE: %s\n", iscsi_get_error(iscsi));
    return 1;
  }
  struct scsi_mode_sense *ms = scsi_datain_unmarshall(task);
  struct scsi_mode_page *page =
      ms ? scsi_modesense_get_page(ms, SCSI_MODEPAGE_CACHING, 0) : NULL;
  if (!page) {
    fprintf(stderr, "e2e_client: no caching mode page\n");
    return 1;
  }
  printf("WCE=%d\n", page->caching.wce);
  scsi_free_scsi_task(task);
  iscsi_logout_sync(iscsi);
  iscsi_destroy_context(iscsi);
  return 0;
}

static void print_tur(struct iscsi_context *iscsi, int lun) {
  struct scsi_task *task = iscsi_testunitready_sync(iscsi, lun);
  if (!task) {
    printf("ERROR %s\n", iscsi_get_error(iscsi));
    return;
  }
  if (task->status == SCSI_STATUS_GOOD) {
    printf("GOOD\n");
  } else {
    printf("SENSE %x %02x %02x\n", (unsigned)task->sense.key, (task->sense.ascq >> 8) & 0xff,
           task->sense.ascq & 0xff);
  }
  scsi_free_scsi_task(task);
}

static int do_await_ua(int argc, char **argv) {
  if (argc < 3) return 2;
  int lun;
  struct iscsi_context *iscsi = login(argv[2], &lun);
  if (!iscsi) return 1;
  struct scsi_task *task = iscsi_testunitready_sync(iscsi, lun); /* any power-on UA */
  if (task) scsi_free_scsi_task(task);
  printf("logged in\n");
  char line[64];
  if (!fgets(line, sizeof line, stdin)) return 1;
  print_tur(iscsi, lun);
  task = iscsi_readcapacity16_sync(iscsi, lun);
  struct scsi_readcapacity16 *rc16 =
      task && task->status == SCSI_STATUS_GOOD ? scsi_datain_unmarshall(task) : NULL;
  if (!rc16) {
    fprintf(stderr, "e2e_client: READ CAPACITY(16): %s\n", iscsi_get_error(iscsi));
    return 1;
  }
  printf("BYTES %" PRIu64 "\n", (rc16->returned_lba + 1) * (uint64_t)rc16->block_length);
  scsi_free_scsi_task(task);
  iscsi_logout_sync(iscsi);
  iscsi_destroy_context(iscsi);
  return 0;
}

static int do_verify(int argc, char **argv) {
  if (argc < 4) return 2;
  uint32_t bs = (uint32_t)strtoul(argv[3], NULL, 10);
  int fd = open(argv[2], O_RDONLY);
  if (fd < 0) {
    fprintf(stderr, "e2e_client: open %s: %s\n", argv[2], strerror(errno));
    return 1;
  }
  uint8_t *want = malloc(bs), *got = malloc(bs);
  char line[128];
  uint64_t n = 0;
  while (fgets(line, sizeof line, stdin)) {
    uint64_t lba;
    if (sscanf(line, "ACK %" SCNu64, &lba) != 1) continue;
    fill(want, bs, lba);
    if (pread(fd, got, bs, (off_t)(lba * bs)) != (ssize_t)bs || memcmp(want, got, bs) != 0) {
      printf("acknowledged LBA %" PRIu64 " is not on disk\n", lba);
      free(want);
      free(got);
      close(fd);
      return 1;
    }
    n++;
  }
  free(want);
  free(got);
  close(fd);
  printf("verified %" PRIu64 " acknowledged blocks\n", n);
  return n > 0 ? 0 : 1;
}

int main(int argc, char **argv) {
  setvbuf(stdout, NULL, _IOLBF, 0);
  int rc = 2;
  if (argc > 1 && strcmp(argv[1], "write") == 0) rc = do_write(argc, argv);
  if (argc > 1 && strcmp(argv[1], "verify") == 0) rc = do_verify(argc, argv);
  if (argc > 1 && strcmp(argv[1], "wce") == 0) rc = do_wce(argc, argv);
  if (argc > 1 && strcmp(argv[1], "await-ua") == 0) rc = do_await_ua(argc, argv);
  if (argc > 1 && strcmp(argv[1], "watch") == 0) rc = do_watch(argc, argv);
  if (rc == 2) fprintf(stderr, "usage: see the comment at the top of e2e_client.c\n");
  return rc;
}
