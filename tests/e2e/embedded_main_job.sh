#!/usr/bin/env bash
# The README's main job: fileio_tgt serves an image over iSCSI on 127.0.0.1
# and real initiators (libiscsi tools, qemu-img) use it.
source "$(dirname "$0")/lib.sh"
IQN=iqn.2026-11.org.scstu:e2e-main

step "create a 64 MiB image and serve it"
truncate -s 64M "$WORK/disk0.img"
start_fileio fileio --target "$IQN" disk0 "$WORK/disk0.img"
URL=iscsi://127.0.0.1:$PORT/$IQN/0

step "iscsi-ls discovers the target"
out=$(iscsi-ls "iscsi://127.0.0.1:$PORT") || fail "iscsi-ls failed: $out"
expect_contains "$out" "Target:$IQN Portal:127.0.0.1:$PORT" "iscsi-ls"

step "iscsi-inq: a direct-access device"
out=$(iscsi-inq "$URL") || fail "iscsi-inq failed: $out"
expect_contains "$out" "Peripheral Device Type:DIRECT_ACCESS" "iscsi-inq"
expect_contains "$out" "Removable:0" "iscsi-inq"

step "iscsi-readcapacity16: 131072 blocks of 512 bytes"
out=$(iscsi-readcapacity16 "$URL") || fail "iscsi-readcapacity16 failed: $out"
expect_contains "$out" "RETURNED LOGICAL BLOCK ADDRESS:131071" "readcapacity16"
expect_contains "$out" "LOGICAL BLOCK LENGTH IN BYTES:512" "readcapacity16"

step "write a random pattern with qemu-img, read it back, compare"
head -c $((8 << 20)) /dev/urandom >"$WORK/pattern.raw"
qemu-img convert -n -f raw -O raw "$WORK/pattern.raw" "$URL" || fail "qemu-img write"
qemu-img convert -f raw -O raw "$URL" "$WORK/back.raw" || fail "qemu-img read"
cmp -n $((8 << 20)) "$WORK/pattern.raw" "$WORK/back.raw" || fail "read back differs"
cmp -n $((8 << 20)) "$WORK/pattern.raw" "$WORK/disk0.img" || fail "image file differs"
[ "$(stat -c %s "$WORK/back.raw")" = $((64 << 20)) ] || fail "read back has the wrong size"

step "two LUNs, numbered in argument order"
truncate -s 16M "$WORK/disk1.img"
start_fileio fileio2 --target "$IQN" a "$WORK/disk0.img" b "$WORK/disk1.img"
[ "$(iscsi-readcapacity16 -s "iscsi://127.0.0.1:$PORT/$IQN/1")" = $((16 << 20)) ] ||
  fail "LUN 1 is not the second argument"

step "SIGTERM shuts down cleanly"
stop_pid "$LAST_PID"
wait_line "$WORK/fileio2.log" 'shutting down' 1 >/dev/null
