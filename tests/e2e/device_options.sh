#!/usr/bin/env bash
# Each of fileio_tgt's vdisk options, seen by a real initiator.
source "$(dirname "$0")/lib.sh"
IQN=iqn.2026-11.org.scstu:e2e-options
url() { echo "iscsi://127.0.0.1:$PORT/$IQN/0"; }
truncate -s 32M "$WORK/disk.img"
head -c 4096 /dev/urandom >"$WORK/block.raw"

step "--read-only: writes are refused (write protected), reads work"
start_fileio ro --target "$IQN" --read-only disk "$WORK/disk.img"
if out=$(qemu-io -f raw -c "write -P 0x55 0 4k" "$(url)" 2>&1); then
  fail "a write to a --read-only device succeeded: $out"
fi
expect_contains "$out" "write protected" "read-only write"
qemu-io -r -f raw -c "read -P 0 0 4k" "$(url)" >/dev/null || fail "read from --read-only"
stop_pid "$LAST_PID"

step "--removable: RMB=1"
start_fileio rmb --target "$IQN" --removable disk "$WORK/disk.img"
expect_contains "$(iscsi-inq "$(url)")" "Removable:1" "removable"
stop_pid "$LAST_PID"

step "--block-size 4096"
start_fileio bs --target "$IQN" --block-size 4096 disk "$WORK/disk.img"
out=$(iscsi-readcapacity16 "$(url)")
expect_contains "$out" "LOGICAL BLOCK LENGTH IN BYTES:4096" "block size"
expect_contains "$out" "RETURNED LOGICAL BLOCK ADDRESS:8191" "block count"
qemu-io -f raw -c "write -P 0x3c 4096 8k" -c "read -P 0x3c 4096 8k" "$(url)" >/dev/null ||
  fail "4096-byte blocks round trip"
stop_pid "$LAST_PID"

step "--physical-block-size 4096: 8 logical blocks per physical block"
start_fileio pbs --target "$IQN" --physical-block-size 4096 disk "$WORK/disk.img"
expect_contains "$(iscsi-readcapacity16 "$(url)")" "LOGICAL BLOCKS PER PHYSICAL BLOCK EXPONENT:3" \
  "physical block size"
stop_pid "$LAST_PID"
if "$FILEIO_TGT" --iscsi 127.0.0.1:0 --physical-block-size 256 d "$WORK/disk.img" 2>"$WORK/err.txt"; then
  fail "accepted a physical block smaller than the logical block"
fi
expect_contains "$(cat "$WORK/err.txt")" "--physical-block-size 256" "physical block size error"

step "--thin: UNMAP punches holes in the file"
truncate -s 0 "$WORK/disk.img"
truncate -s 32M "$WORK/disk.img"
start_fileio thin --target "$IQN" --thin disk "$WORK/disk.img"
expect_contains "$(iscsi-readcapacity16 "$(url)")" "LBPME:1" "thin readcapacity"
qemu-io -f raw -c "write -P 0xaa 0 4M" "$(url)" >/dev/null || fail "thin write"
before=$(stat -c %b "$WORK/disk.img")
qemu-io -f raw -c "discard 0 4M" "$(url)" >/dev/null || fail "discard"
after=$(stat -c %b "$WORK/disk.img")
[ "$after" -lt "$before" ] || fail "UNMAP freed nothing: $before -> $after blocks"
qemu-io -r -f raw -c "read -P 0 0 4M" "$(url)" >/dev/null || fail "unmapped blocks do not read as zeroes"
stop_pid "$LAST_PID"

step "--cdrom: an MMC device (type 5), read-only, 2048-byte blocks"
head -c $((2048 * 64)) /dev/urandom >"$WORK/cd.iso"
start_fileio cd --target "$IQN" --cdrom cd "$WORK/cd.iso"
out=$(iscsi-inq "$(url)")
expect_contains "$out" "Peripheral Device Type:MMC" "cdrom type"
expect_contains "$out" "Removable:1" "cdrom removable"
qemu-img convert -f raw -O raw "$(url)" "$WORK/cd.back" || fail "cdrom read"
cmp "$WORK/cd.iso" "$WORK/cd.back" || fail "cdrom data differs"
stop_pid "$LAST_PID"

step "--nullio: no I/O, reads return zeroes"
head -c 1M /dev/urandom >"$WORK/nz.img"
cp "$WORK/nz.img" "$WORK/nz.orig"
start_fileio null --target "$IQN" --nullio disk "$WORK/nz.img"
qemu-io -f raw -c "write -P 0x77 0 64k" -c "read -P 0 0 64k" "$(url)" >/dev/null ||
  fail "nullio reads are not zeroes"
cmp "$WORK/nz.img" "$WORK/nz.orig" || fail "nullio wrote to the file"
stop_pid "$LAST_PID"

step "write cache report: default WCE=1, --write-through and --nv-cache WCE=0"
start_fileio wb --target "$IQN" disk "$WORK/disk.img"
[ "$("$E2E_CLIENT" wce "$(url)")" = "WCE=1" ] || fail "default is not write-back"
stop_pid "$LAST_PID"
for flag in --write-through --nv-cache; do
  start_fileio wt --target "$IQN" "$flag" disk "$WORK/disk.img"
  [ "$("$E2E_CLIENT" wce "$(url)")" = "WCE=0" ] || fail "$flag does not report write-through"
  qemu-io -f raw -c "write -P 0x19 0 64k" -c "flush" -c "read -P 0x19 0 64k" "$(url)" >/dev/null ||
    fail "$flag round trip"
  stop_pid "$LAST_PID"
done

step "--o-direct and --io-engine threads round trip"
for flags in "--o-direct" "--io-engine threads" "--o-direct --io-engine threads"; do
  # shellcheck disable=SC2086
  start_fileio io --target "$IQN" $flags disk "$WORK/disk.img"
  out=$(qemu-io -f raw -c "write -P 0x42 512 7k" -c "read -P 0x42 512 7k" "$(url)" 2>&1) ||
    fail "round trip with $flags: $out"
  grep -q "Pattern verification failed" <<<"$out" && fail "round trip with $flags: $out"
  stop_pid "$LAST_PID"
done

step "SIGUSR1 re-reads the size (resync_size)"
start_fileio rs --target "$IQN" disk "$WORK/disk.img"
truncate -s 48M "$WORK/disk.img"
kill -USR1 "$LAST_PID"
wait_line "$WORK/rs.log" 'capacity changed' 10 >/dev/null
[ "$(iscsi-readcapacity16 -s "$(url)")" = $((48 << 20)) ] || fail "new size not reported"
stop_pid "$LAST_PID"

step "errors name the file and the cause"
if "$FILEIO_TGT" --iscsi 127.0.0.1:0 disk "$WORK/missing.img" 2>"$WORK/err.txt"; then
  fail "started with a missing file"
fi
expect_contains "$(cat "$WORK/err.txt")" "open $WORK/missing.img: No such file or directory" "error"

step "--help has examples; bad options name the option and the fix"
expect_contains "$("$FILEIO_TGT" --help)" "Examples:" "--help"
for bad in "--iscsi 127.0.0.1:0 --block-size 1000 d $WORK/disk.img" \
  "d $WORK/disk.img" "--iscsi 127.0.0.1:0 d" "--iscsi 127.0.0.1:0 --io-engine foo d $WORK/disk.img" \
  "--iscsi 127.0.0.1:99999 d $WORK/disk.img" "--iscsi 127.0.0.1:0 bad/name $WORK/disk.img"; do
  # shellcheck disable=SC2086
  if "$FILEIO_TGT" $bad 2>"$WORK/err.txt"; then fail "accepted: fileio_tgt $bad"; fi
  grep -q '^fileio_tgt: ' "$WORK/err.txt" || fail "no clear error for: fileio_tgt $bad"
done
expect_contains "$("$FILEIO_TGT" --iscsi 127.0.0.1:0 --block-size 1000 d "$WORK/disk.img" 2>&1 || true)" \
  "not a power of two" "block size error"

step "--max-connections / --cmdsn-gap-timeout: bounds checked, embedded mode only"
for bad in "--max-connections 0" "--max-connections 65" "--cmdsn-gap-timeout 0" \
  "--cmdsn-gap-timeout 600001"; do
  # shellcheck disable=SC2086
  if "$FILEIO_TGT" --iscsi 127.0.0.1:0 $bad d "$WORK/disk.img" 2>"$WORK/err.txt"; then
    fail "accepted: fileio_tgt $bad"
  fi
  expect_contains "$(cat "$WORK/err.txt")" "fileio_tgt: ${bad}: " "error for $bad"
done
if "$FILEIO_TGT" --attach "$WORK/none.sock" --max-connections 2 d "$WORK/disk.img" \
  2>"$WORK/err.txt"; then
  fail "accepted --max-connections in split mode"
fi
expect_contains "$(cat "$WORK/err.txt")" "--max-connections applies to --iscsi" "split-mode error"
start_fileio mcs --target "$IQN" --max-connections 1 --cmdsn-gap-timeout 100 disk "$WORK/disk.img"
qemu-io -r -f raw -c "read 0 4k" "$(url)" >/dev/null || fail "read with --max-connections 1"
stop_pid "$LAST_PID"
