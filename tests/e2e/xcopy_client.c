/*
 * xcopy_client - EXTENDED COPY (LID1) as an initiator sends it, with libiscsi.
 *
 *   xcopy_client copy URL SRC_LUN DST_LUN SRC_LBA DST_LBA BLOCKS LIST_ID
 *       reads VPD 83h of both LUNs, sends one EXTENDED COPY (to SRC_LUN) with
 *       two identification CSCD descriptors (E4h, the NAA designators) and
 *       block-to-block segments (02h, up to 65535 blocks each) copying BLOCKS
 *       blocks; prints "STATUS GOOD" or "STATUS CHECK key/asc/ascq"; then
 *       RECEIVE COPY RESULTS: "COPY_STATUS <manager status> <segments>
 *       <transfer count>" and, for a failed copy, "FAILED_SENSE <hex bytes>"
 *       (FAILED SEGMENT DETAILS: the sense data the copy ended with).
 *   xcopy_client reserve URL LUN
 *       logs in as a second initiator, RESERVE(6)s LUN, prints "RESERVED",
 *       and holds the reservation until stdin reaches EOF or a signal ends it.
 *
 * URL names the target (iscsi://127.0.0.1:PORT/IQN/0); LUNs are given apart.
 * Exit 0 when the commands could be sent (whatever their status), 1 if not.
 */
#include <inttypes.h>
#include <iscsi/iscsi.h>
#include <iscsi/scsi-lowlevel.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "url_login.h"

static struct iscsi_context* login(const char* url_text, const char* initiator) {
  struct iscsi_context* iscsi = url_login(url_text, initiator, NULL);
  if (!iscsi) exit(1);
  return iscsi;
}

/* TEST UNIT READY until it is no longer CHECK CONDITION: takes the new
 * nexus's unit attentions (a RESERVATION CONFLICT is an answer too). */
static void settle(struct iscsi_context* iscsi, int lun) {
  for (int i = 0; i < 8; i++) {
    struct scsi_task* t = iscsi_testunitready_sync(iscsi, lun);
    if (!t) {
      fprintf(stderr, "TEST UNIT READY lun %d: %s\n", lun, iscsi_get_error(iscsi));
      exit(1);
    }
    const int settled = t->status != SCSI_STATUS_CHECK_CONDITION;
    scsi_free_scsi_task(t);
    if (settled) return;
  }
  fprintf(stderr, "lun %d never became ready\n", lun);
  exit(1);
}

/* The binary NAA designator (logical unit association) of VPD 83h, as a
 * 20-byte designation descriptor (header + up to 16 bytes). */
static void naa_designator(struct iscsi_context* iscsi, int lun, uint8_t out[20]) {
  struct scsi_task* t = iscsi_inquiry_sync(iscsi, lun, 1, 0x83, 1024);
  if (!t || t->status != SCSI_STATUS_GOOD || t->datain.size < 4) {
    fprintf(stderr, "INQUIRY VPD 83h lun %d failed\n", lun);
    exit(1);
  }
  const uint8_t* p = t->datain.data;
  size_t end = 4 + ((size_t)p[2] << 8 | p[3]);
  if (end > (size_t)t->datain.size) end = t->datain.size;
  for (size_t at = 4; at + 4 <= end;) {
    const size_t len = p[at + 3];
    if ((p[at] & 0x0F) == 1 && (p[at + 1] & 0x30) == 0 && (p[at + 1] & 0x0F) == 3 && len <= 16 &&
        at + 4 + len <= end) {
      memset(out, 0, 20);
      memcpy(out, p + at, 4 + len);
      scsi_free_scsi_task(t);
      return;
    }
    at += 4 + len;
  }
  fprintf(stderr, "lun %d reports no NAA designator\n", lun);
  exit(1);
}

static void put16(uint8_t* p, uint32_t v) {
  p[0] = (uint8_t)(v >> 8);
  p[1] = (uint8_t)v;
}
static void put32(uint8_t* p, uint32_t v) {
  put16(p, v >> 16);
  put16(p + 2, v);
}
static void put64(uint8_t* p, uint64_t v) {
  put32(p, (uint32_t)(v >> 32));
  put32(p + 4, (uint32_t)v);
}

static int copy(const char* url, int src_lun, int dst_lun, uint64_t src_lba, uint64_t dst_lba,
                uint64_t blocks, int list_id) {
  struct iscsi_context* iscsi = login(url, "iqn.2026-11.org.scstu:xcopy-client");
  settle(iscsi, src_lun);
  settle(iscsi, dst_lun);
  uint8_t designators[2][20];
  naa_designator(iscsi, src_lun, designators[0]);
  naa_designator(iscsi, dst_lun, designators[1]);

  const uint64_t per_segment = 65535;
  const size_t segments = (size_t)((blocks + per_segment - 1) / per_segment);
  if (segments == 0 || segments > 16) {
    fprintf(stderr, "BLOCKS must be 1..%" PRIu64 "\n", 16 * per_segment);
    return 1;
  }
  const size_t size = 16 + 2 * 32 + segments * 28;
  uint8_t* list = calloc(1, size);
  list[0] = (uint8_t)list_id;
  list[1] = 0; /* LIST ID USAGE 00b: results held for RECEIVE COPY RESULTS */
  put16(list + 2, 2 * 32);
  put32(list + 8, (uint32_t)(segments * 28));
  for (int i = 0; i < 2; i++) {
    uint8_t* d = list + 16 + 32 * i;
    d[0] = 0xE4; /* identification descriptor CSCD, peripheral type 0 */
    memcpy(d + 4, designators[i], 20);
    d[30] = 0x02; /* DISK BLOCK LENGTH 512 */
  }
  for (size_t s = 0; s < segments; s++) {
    uint8_t* d = list + 16 + 64 + 28 * s;
    const uint64_t done = s * per_segment;
    const uint64_t n = blocks - done < per_segment ? blocks - done : per_segment;
    d[0] = 0x02; /* block to block */
    put16(d + 2, 24);
    put16(d + 4, 0);
    put16(d + 6, 1);
    put16(d + 10, (uint32_t)n);
    put64(d + 12, src_lba + done);
    put64(d + 20, dst_lba + done);
  }
  struct iscsi_data data = {size, list};
  struct scsi_task* t = iscsi_extended_copy_sync(iscsi, src_lun, &data);
  if (!t) {
    fprintf(stderr, "EXTENDED COPY: %s\n", iscsi_get_error(iscsi));
    return 1;
  }
  const int good = t->status == SCSI_STATUS_GOOD;
  if (good) {
    printf("STATUS GOOD\n");
  } else if (t->status == SCSI_STATUS_CHECK_CONDITION) {
    printf("STATUS CHECK %02X/%02X/%02X\n", t->sense.key, (t->sense.ascq >> 8) & 0xFF,
           t->sense.ascq & 0xFF);
  } else {
    printf("STATUS %02X\n", t->status);
  }
  scsi_free_scsi_task(t);
  free(list);

  t = iscsi_receive_copy_results_sync(iscsi, src_lun, SCSI_COPY_RESULTS_COPY_STATUS, list_id, 12);
  if (!t || t->status != SCSI_STATUS_GOOD || t->datain.size < 12) {
    fprintf(stderr, "RECEIVE COPY RESULTS (COPY STATUS) failed\n");
    return 1;
  }
  const uint8_t* p = t->datain.data;
  printf("COPY_STATUS %u %u %u\n", p[4], (unsigned)p[5] << 8 | p[6],
         (unsigned)p[8] << 24 | (unsigned)p[9] << 16 | (unsigned)p[10] << 8 | p[11]);
  scsi_free_scsi_task(t);
  if (!good) {
    t = iscsi_receive_copy_results_sync(iscsi, src_lun, SCSI_COPY_RESULTS_FAILED_SEGMENT, list_id,
                                        256);
    if (!t || t->status != SCSI_STATUS_GOOD || t->datain.size < 60) {
      fprintf(stderr, "RECEIVE COPY RESULTS (FAILED SEGMENT DETAILS) failed\n");
      return 1;
    }
    p = t->datain.data;
    const size_t n = (size_t)p[58] << 8 | p[59];
    printf("FAILED_SENSE");
    for (size_t i = 0; i < n && 60 + i < (size_t)t->datain.size; i++) printf(" %02X", p[60 + i]);
    printf("\n");
    scsi_free_scsi_task(t);
  }
  iscsi_logout_sync(iscsi);
  iscsi_destroy_context(iscsi);
  return 0;
}

static int reserve(const char* url, int lun) {
  struct iscsi_context* iscsi = login(url, "iqn.2026-11.org.scstu:xcopy-other");
  settle(iscsi, lun);
  struct scsi_task* t = iscsi_reserve6_sync(iscsi, lun);
  if (!t || t->status != SCSI_STATUS_GOOD) {
    fprintf(stderr, "RESERVE(6) lun %d failed\n", lun);
    return 1;
  }
  scsi_free_scsi_task(t);
  printf("RESERVED\n");
  fflush(stdout);
  char c;
  while (read(0, &c, 1) > 0) {
  }
  iscsi_logout_sync(iscsi);
  iscsi_destroy_context(iscsi);
  return 0;
}

int main(int argc, char** argv) {
  if (argc == 9 && strcmp(argv[1], "copy") == 0) {
    return copy(argv[2], atoi(argv[3]), atoi(argv[4]), strtoull(argv[5], NULL, 0),
                strtoull(argv[6], NULL, 0), strtoull(argv[7], NULL, 0), atoi(argv[8]));
  }
  if (argc == 4 && strcmp(argv[1], "reserve") == 0) return reserve(argv[2], atoi(argv[3]));
  fprintf(stderr,
          "usage: xcopy_client copy URL SRC_LUN DST_LUN SRC_LBA DST_LBA BLOCKS LIST_ID\n"
          "       xcopy_client reserve URL LUN\n");
  return 2;
}
