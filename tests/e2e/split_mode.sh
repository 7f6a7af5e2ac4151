#!/usr/bin/env bash
# Split mode: the scstu-target daemon runs the portal, fileio_tgt attaches
# over the ring. Killing fileio_tgt (kill -9) during a write stream must not
# take the daemon down, and every write acknowledged before the kill must be
# on disk; after a restart the device serves again.
source "$(dirname "$0")/lib.sh"
IQN=iqn.2026-11.org.scstu:e2e-split
BLOCKS=$((64 << 20 >> 9))

step "daemon + fileio_tgt --attach"
write_config "$WORK/scstu.conf"
truncate -s 64M "$WORK/disk0.img"
start_daemon daemon "$WORK/scstu.conf"
start_handler handler1 "$WORK/disk0.img"
URL=iscsi://127.0.0.1:$PORT/$IQN/0

step "data round trip through the ring"
[ "$(iscsi-readcapacity16 -s "$URL")" = $((64 << 20)) ] || fail "capacity over the ring"
head -c $((4 << 20)) /dev/urandom >"$WORK/pattern.raw"
qemu-img convert -n -f raw -O raw "$WORK/pattern.raw" "$URL" || fail "qemu-img write"
qemu-img convert -f raw -O raw "$URL" "$WORK/back.raw" || fail "qemu-img read"
cmp -n $((4 << 20)) "$WORK/pattern.raw" "$WORK/back.raw" || fail "read back differs"

step "kill -9 fileio_tgt during a write stream, restart it"
# Blocks after the 4 MiB pattern; each written once, QD 8.
start_bg writer "$E2E_CLIENT" write "$URL" "$BLOCKS" 512 8
WRITER_PID=$LAST_PID
# Let some writes be acknowledged first.
for _ in $(seq 200); do
  [ "$(grep -c '^ACK' "$WORK/writer.log" || true)" -ge 2000 ] && break
  sleep 0.05
done
[ "$(grep -c '^ACK' "$WORK/writer.log" || true)" -ge 1 ] || fail "no write acknowledged before the kill"
kill -KILL "$HANDLER_PID"
wait "$HANDLER_PID" 2>/dev/null || true
acked_before=$(grep -c '^ACK' "$WORK/writer.log" || true)
sleep 0.5
kill -0 "$DAEMON_PID" || fail "the daemon died with its handler"
start_handler handler2 "$WORK/disk0.img"
for _ in $(seq 600); do
  kill -0 "$WRITER_PID" 2>/dev/null || break
  sleep 0.1
done
kill -0 "$WRITER_PID" 2>/dev/null && fail "the writer did not finish in 60 s"
wait "$WRITER_PID" || fail "the writer failed: $(tail -n 3 "$WORK/writer.log")"

step "every acknowledged write is on disk"
grep '^ACK' "$WORK/writer.log" >"$WORK/acks.txt"
acked=$(wc -l <"$WORK/acks.txt")
errors=$(grep -c '^ERR' "$WORK/writer.log" || true)
echo "acknowledged $acked (of them $acked_before before the kill), failed $errors"
[ "$errors" -ge 1 ] || fail "no command failed: was the handler really killed mid-stream?"
[ "$acked" -gt "$acked_before" ] || fail "no write acknowledged after the restart"
"$E2E_CLIENT" verify "$WORK/disk0.img" 512 <"$WORK/acks.txt" || fail "acknowledged data lost"
# And through the target, after the restart.
qemu-img convert -f raw -O raw "$URL" "$WORK/after.raw" || fail "read after restart"
"$E2E_CLIENT" verify "$WORK/after.raw" 512 <"$WORK/acks.txt" || fail "acknowledged data not served"
kill -0 "$DAEMON_PID" || fail "the daemon died"
expect_contains "$(cat "$WORK/daemon.log")" "handler dropped" "daemon log"

step "the daemon restarts: fileio_tgt re-attaches on its own"
stop_pid "$DAEMON_PID"
start_daemon daemon2 "$WORK/scstu.conf"
wait_line "$WORK/handler2.log" 'disk0 re-attached' 30 >/dev/null
URL=iscsi://127.0.0.1:$PORT/$IQN/0
qemu-img convert -f raw -O raw "$URL" "$WORK/after2.raw" || fail "read after the daemon restart"
"$E2E_CLIENT" verify "$WORK/after2.raw" 512 <"$WORK/acks.txt" || fail "data after the daemon restart"
