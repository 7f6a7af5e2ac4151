#!/usr/bin/env bash
# fileio_tgt serving a block device (a loop device over a sparse file), seen by
# a real initiator: capacity, data, --o-direct, --thin UNMAP, resize.
# Needs root and /dev/loop-control; exits 77 (ctest: skipped) without them.
source "$(dirname "$0")/lib.sh"
IQN=iqn.2026-11.org.scstu:e2e-blockdev
url() { echo "iscsi://127.0.0.1:$PORT/$IQN/0"; }

if [ "$(id -u)" -ne 0 ] || [ ! -c /dev/loop-control ] || ! command -v losetup >/dev/null; then
  echo "SKIP: needs root, /dev/loop-control and losetup to make a loop device"
  exit 77
fi

LOOP=""
LOOP4K=""
on_exit() {
  local rc=$?
  for pid in "${BG_PIDS[@]}"; do stop_pid "$pid"; done
  [ -z "$LOOP" ] || losetup -d "$LOOP" || echo "losetup -d $LOOP failed" >&2
  [ -z "$LOOP4K" ] || losetup -d "$LOOP4K" 2>/dev/null || true
  rm -rf "$WORK"
  exit $rc
}
trap on_exit EXIT

step "a loop device over a sparse 64 MiB file"
truncate -s 64M "$WORK/backing.img"
if ! LOOP=$(losetup -f --show "$WORK/backing.img" 2>"$WORK/losetup.err"); then
  LOOP=""
  echo "SKIP: losetup -f --show failed: $(cat "$WORK/losetup.err")"
  exit 77
fi
echo "loop device $LOOP"

step "capacity is the device's (BLKGETSIZE64)"
start_fileio plain --target "$IQN" disk "$LOOP"
[ "$(iscsi-readcapacity16 -s "$(url)")" = "$(blockdev --getsize64 "$LOOP")" ] ||
  fail "capacity differs from blockdev --getsize64"

step "data round trip: what the initiator writes is on the device"
head -c 3M /dev/urandom >"$WORK/pattern"
qemu-io -f raw -c "write -s $WORK/pattern 1M 3M" "$(url)" >/dev/null || fail "write"
qemu-img convert -f raw -O raw "$(url)" "$WORK/back.raw" || fail "read the whole device"
cmp <(dd if="$WORK/back.raw" bs=1M skip=1 count=3 status=none) "$WORK/pattern" ||
  fail "read back differs"
cmp <(dd if="$LOOP" bs=1M skip=1 count=3 iflag=direct status=none) "$WORK/pattern" ||
  fail "the loop device does not hold what was written"
stop_pid "$LAST_PID"

step "--o-direct: round trip, misaligned too"
start_fileio direct --target "$IQN" --o-direct disk "$LOOP"
head -c 1M /dev/urandom >"$WORK/pattern2"
qemu-io -f raw -c "write -s $WORK/pattern2 8M 1M" -c "write -P 0x6b 512 7k" \
  -c "read -P 0x6b 512 7k" "$(url)" >/dev/null || fail "o-direct write/read"
cmp <(dd if="$LOOP" bs=1M skip=8 count=1 iflag=direct status=none) "$WORK/pattern2" ||
  fail "o-direct write not on the device"
stop_pid "$LAST_PID"

step "--thin: UNMAP deallocates on the block device (the backing file gets a hole)"
start_fileio thin --target "$IQN" --thin disk "$LOOP"
expect_contains "$(iscsi-readcapacity16 "$(url)")" "LBPME:1" "thin readcapacity"
expect_contains "$(iscsi-readcapacity16 "$(url)")" "LBPRZ:1" "thin readcapacity"
qemu-io -f raw -c "write -P 0xaa 16M 4M" -c "flush" "$(url)" >/dev/null || fail "thin write"
sync "$WORK/backing.img"
before=$(stat -c %b "$WORK/backing.img")
qemu-io -f raw -c "discard 16M 4M" "$(url)" >/dev/null || fail "discard"
sync "$WORK/backing.img"
after=$(stat -c %b "$WORK/backing.img")
[ "$after" -lt "$before" ] || fail "UNMAP freed nothing in the backing file: $before -> $after"
qemu-io -r -f raw -c "read -P 0 16M 4M" "$(url)" >/dev/null ||
  fail "unmapped blocks do not read as zeroes (LBPRZ)"
cmp <(dd if="$LOOP" bs=1M skip=16 count=4 iflag=direct status=none) <(head -c 4M /dev/zero) ||
  fail "unmapped range is not zeroes on the device"
stop_pid "$LAST_PID"

step "split mode: fileio_tgt --attach --o-direct; the ring's data area as io_uring fixed buffers"
write_config "$WORK/target.conf"
start_daemon daemon "$WORK/target.conf"
start_bg handler "$FILEIO_TGT" --attach "$WORK/handler.sock" --o-direct disk0 "$LOOP"
HANDLER_PID=$LAST_PID
wait_line "$WORK/handler.log" 'disk0 (re-)?attached' >/dev/null
wait_line "$WORK/handler.log" 'disk0: ring data area .* registered as io_uring fixed buffers' >/dev/null
head -c 2M /dev/urandom >"$WORK/pattern3"
qemu-io -f raw -c "write -s $WORK/pattern3 4M 2M" "$(url)" >/dev/null || fail "split-mode write"
cmp <(dd if="$LOOP" bs=1M skip=4 count=2 iflag=direct status=none) "$WORK/pattern3" ||
  fail "split-mode write not on the device"
qemu-img convert -f raw -O raw "$(url)" "$WORK/back3.raw" || fail "split-mode read"
cmp <(dd if="$WORK/back3.raw" bs=1M skip=4 count=2 status=none) "$WORK/pattern3" ||
  fail "split-mode read back differs"
stop_pid "$HANDLER_PID"
stop_pid "$DAEMON_PID"

step "resize: grow the file, losetup -c, SIGUSR1: CAPACITY DATA HAS CHANGED and the new size"
start_fileio rs --target "$IQN" disk "$LOOP"
coproc UA { "$E2E_CLIENT" await-ua "$(url)" 2>&1; }
BG_PIDS+=("$UA_PID")
# Own copies of the coprocess's pipes: bash closes UA[] as soon as it exits.
exec {ua_out}<&"${UA[0]}" {ua_in}>&"${UA[1]}"
read -r -t 20 line <&"$ua_out" || fail "await-ua did not log in"
[ "$line" = "logged in" ] || fail "await-ua: $line"
truncate -s 96M "$WORK/backing.img"
losetup -c "$LOOP"
[ "$(blockdev --getsize64 "$LOOP")" = $((96 << 20)) ] || fail "losetup -c did not grow $LOOP"
kill -USR1 "$LAST_PID"
wait_line "$WORK/rs.log" 'capacity changed' 10 >/dev/null
echo go >&"$ua_in"
read -r -t 20 tur <&"$ua_out" || fail "await-ua: no TEST UNIT READY result"
read -r -t 20 bytes <&"$ua_out" || fail "await-ua: no READ CAPACITY result"
exec {ua_out}<&- {ua_in}>&-
# SPC-4: UNIT ATTENTION (6), CAPACITY DATA HAS CHANGED (2Ah/09h).
[ "$tur" = "SENSE 6 2a 09" ] || fail "expected CAPACITY DATA HAS CHANGED, got: $tur"
[ "$bytes" = "BYTES $((96 << 20))" ] || fail "new size not reported to the logged-in initiator: $bytes"
[ "$(iscsi-readcapacity16 -s "$(url)")" = $((96 << 20)) ] || fail "new size not reported"
qemu-io -f raw -c "write -P 0x3d 90M 1M" -c "read -P 0x3d 90M 1M" "$(url)" >/dev/null ||
  fail "I/O in the grown part"
stop_pid "$LAST_PID"

step "4096-byte sectors, 512-byte blocks: physical block size from BLKPBSZGET, sub-sector I/O"
truncate -s 16M "$WORK/backing4k.img"
LOOP4K=$(losetup -f --show --sector-size 4096 "$WORK/backing4k.img") || fail "losetup --sector-size 4096"
start_fileio ss --target "$IQN" --o-direct disk "$LOOP4K"
out=$(iscsi-readcapacity16 "$(url)")
expect_contains "$out" "LOGICAL BLOCK LENGTH IN BYTES:512" "logical block size"
expect_contains "$out" "LOGICAL BLOCKS PER PHYSICAL BLOCK EXPONENT:3" "physical block from the device"
qemu-io -f raw -c "write -P 0x71 512 1536" -c "read -P 0x71 512 1536" -c "read -P 0 0 512" \
  "$(url)" >/dev/null || fail "sub-sector writes on a 4096-byte-sector device"
stop_pid "$LAST_PID"
if "$FILEIO_TGT" --iscsi 127.0.0.1:0 --thin disk "$LOOP4K" 2>"$WORK/err.txt"; then
  fail "--thin accepted with 512-byte blocks on 4096-byte sectors"
fi
expect_contains "$(cat "$WORK/err.txt")" "use --block-size 4096" "--thin sector size error"
losetup -d "$LOOP4K"
LOOP4K=""

echo "PASS: fileio_tgt serves a block device"
