#!/usr/bin/env bash
# scstuadmin's runtime operations beyond groups and LUNs, each checked from a
# real initiator (libiscsi tools and e2e_client) against the real daemon:
# the seed's vcdrom "change NAME [PATH]", latency statistics ("echo 0 >
# latency"), trace_level, version, I/O threads, buffer use, and CHAP changed
# on a running daemon. Configuration changes must survive a restart.
source "$(dirname "$0")/lib.sh"
IQN=iqn.2026-11.org.scstu:e2e-runtime
admin() { "$SCSTUADMIN" --socket "$WORK/admin.sock" "$@"; }
url() { echo "iscsi://127.0.0.1:$PORT/$IQN/$1"; }

write_config "$WORK/scstu.conf"
truncate -s 16M "$WORK/disk0.img"
head -c $((2048 * 512)) /dev/urandom >"$WORK/a.iso"
head -c $((2048 * 1024)) /dev/urandom >"$WORK/b.iso"
start_daemon daemon "$WORK/scstu.conf"
start_handler handler "$WORK/disk0.img"

# A session kept open across the changes: one I_T nexus, one command per line.
start_watch() {
  coproc WATCH { "$E2E_CLIENT" watch "$(url 1)" 2>&1; }
  BG_PIDS+=("$WATCH_PID")
}
probe() {  # probe tur|cap|prevent|allow: prints the answer line
  echo "$1" >&"${WATCH[1]}"
  local line
  IFS= read -r -t 20 line <&"${WATCH[0]}" || fail "watch: no answer to $1"
  echo "$line"
}

step "a CD-ROM drive added at runtime, with a medium"
admin add-device cd0 --cdrom --file "$WORK/a.iso" || fail "add-device --cdrom"
admin add-lun "Default_$IQN" cd0 1 || fail "add-lun cd0"
expect_contains "$(iscsi-inq "$(url 1)")" "Peripheral Device Type:MMC" "cd0 is a CD-ROM"
start_watch
for _ in 1 2 3; do  # the new nexus's POWER ON / REPORTED LUNS conditions
  [ "$(probe tur)" = "tur GOOD" ] && break
done
[ "$(probe tur)" = "tur GOOD" ] || fail "cd0 not ready"
[ "$(probe cap)" = "cap GOOD 512 2048" ] || fail "cd0 capacity: $(probe cap)"

step "change with no PATH ejects: NOT READY, MEDIUM NOT PRESENT"
out=$(admin change cd0) || fail "eject"
expect_contains "$out" "ejected" "eject message"
[ "$(probe tur)" = "tur CHECK 02/3a/00" ] || fail "TEST UNIT READY of an empty drive"
[ "$(probe cap)" = "cap CHECK 02/3a/00" ] || fail "READ CAPACITY of an empty drive"
expect_contains "$(admin list devices)" "no medium" "list devices while empty"
grep -A3 'name: "cd0"' "$WORK/scstu.conf" | grep -q "path" && fail "ejected medium still saved"

step "change NAME PATH loads a new medium: MEDIUM MAY HAVE CHANGED, then the new capacity"
out=$(admin change cd0 "$WORK/b.iso") || fail "change"
expect_contains "$out" "1024 blocks" "change message"
[ "$(probe tur)" = "tur CHECK 06/28/00" ] || fail "no NOT READY TO READY CHANGE unit attention"
[ "$(probe tur)" = "tur GOOD" ] || fail "not ready after the change"
[ "$(probe cap)" = "cap GOOD 1024 2048" ] || fail "capacity does not follow the new medium"
qemu-img convert -f raw -O raw "$(url 1)" "$WORK/b.back" || fail "reading the new medium"
cmp "$WORK/b.iso" "$WORK/b.back" || fail "the new medium's data differs"

step "refusals: a missing image keeps the medium; PREVENT blocks a change; not a CD-ROM"
if out=$(admin change cd0 "$WORK/none.iso" 2>&1); then fail "changed to a missing file"; fi
expect_contains "$out" "none.iso" "error names the file"
[ "$(probe cap)" = "cap GOOD 1024 2048" ] || fail "a failed change touched the medium"
[ "$(probe prevent)" = "prevent GOOD" ] || fail "PREVENT MEDIUM REMOVAL"
if out=$(admin change cd0 "$WORK/a.iso" 2>&1); then fail "changed a prevented medium"; fi
expect_contains "$out" "prevents medium removal" "PREVENT refusal"
[ "$(probe allow)" = "allow GOOD" ] || fail "ALLOW MEDIUM REMOVAL"
if out=$(admin change disk0 "$WORK/a.iso" 2>&1); then fail "changed a handler device"; fi
expect_contains "$out" "handler process" "change of a handler device"

step "stats: per class counts and latency, --json, --clear"
out=$(admin stats cd0) || fail "stats"
expect_contains "$out" "cd0:" "stats header"
expect_contains "$out" "read " "stats read class"
expect_contains "$out" "buffers: command slots" "stats buffers"
admin stats cd0 --json | python3 -c '
import json, sys
s = json.load(sys.stdin)["statistics"][0]
read = [c for c in s["classes"] if c["name"] == "read"][0]
assert int(read["bytes"]) >= 1024 * 2048, read
assert int(read["commands"]) > 0 and sum(map(int, read["latency_histogram"])) == int(read["commands"])
' || fail "stats --json"
out=$(admin stats disk0) || fail "stats of a handler device"
expect_contains "$out" "buffers: ring data area" "ring data area use"
admin stats cd0 --clear >/dev/null || fail "stats --clear"
expect_contains "$(admin stats cd0)" "cd0: 0 commands" "statistics cleared"
if admin stats nodev >/dev/null 2>&1; then fail "stats of a missing device"; fi

step "version"
out=$(admin version) || fail "version"
expect_contains "$out" "scstu-target 0." "daemon version"
expect_contains "$out" "ring ABI 1." "ring ABI version"

step "log-level: read, set, persisted; info lines gated"
[ "$(admin log-level)" = info ] || fail "default log level"
[ "$(admin log-level error)" = error ] || fail "set log level"
grep -q 'log_level: "error"' "$WORK/scstu.conf" || fail "log level not saved"
before=$(grep -c "login refused\|login failed\|no target" "$WORK/daemon.log" || true)
iscsi-inq "iscsi://127.0.0.1:$PORT/iqn.2026-11.org.scstu:none/0" >/dev/null 2>&1 || true
after=$(grep -c "login refused\|login failed\|no target" "$WORK/daemon.log" || true)
[ "$before" = "$after" ] || fail "an info line printed at level error"
admin log-level debug >/dev/null
admin list groups >/dev/null
wait_line "$WORK/daemon.log" "admin: list_groups" 5 >/dev/null
iscsi-inq "iscsi://127.0.0.1:$PORT/iqn.2026-11.org.scstu:none/0" >/dev/null 2>&1 || true
wait_line "$WORK/daemon.log" "no target iqn.2026-11.org.scstu:none" 5 >/dev/null
if out=$(admin log-level loud 2>&1); then fail "accepted log level 'loud'"; fi
expect_contains "$out" "expected error, warning, info or debug" "bad log level"

step "I/O engine and threads per file device"
truncate -s 8M "$WORK/disk2.img"
admin add-device disk2 --file "$WORK/disk2.img" --io-engine threads --threads 3 ||
  fail "add-device --threads"
expect_contains "$(admin list devices)" "io threads 3" "threads shown"
expect_contains "$(admin list devices)" "ring 1 queue(s) of 128" "a handler device's ring shown"
admin add-device disk9 --handler --queues 2 --queue-depth 64 || fail "add-device --handler --queues"
expect_contains "$(admin list devices)" "ring 2 queue(s) of 64" "ring queues shown"
admin del-device disk9 || fail "del-device disk9"
grep -q "io_threads: 3" "$WORK/scstu.conf" || fail "threads not saved"
if out=$(admin add-device disk3 --file "$WORK/disk2.img" --threads 999 2>&1); then
  fail "accepted 999 threads"
fi
expect_contains "$out" "io_threads must be 1..256" "thread bound"

step "CHAP set on the running daemon applies to new logins"
admin set-chap "$IQN" --chap-user alice --chap-secret alicesecret12 || fail "set-chap"
if iscsi-inq "$(url 0)" >/dev/null 2>&1; then fail "logged in without CHAP after set-chap"; fi
iscsi-inq "iscsi://alice%alicesecret12@127.0.0.1:$PORT/$IQN/0" >/dev/null ||
  fail "login with the new CHAP secret"
[ "$(probe cap)" = "cap GOOD 1024 2048" ] || fail "the session from before set-chap was hurt"
expect_contains "$(admin list targets)" "$IQN  CHAP" "list targets shows CHAP"
grep -q alicesecret12 "$WORK/scstu.conf" || fail "CHAP not saved"

step "everything survives a restart"
echo >&"${WATCH[1]}"  # unknown line, then EOF: the watcher logs out
eval "exec ${WATCH[1]}>&-"
stop_pid "$HANDLER_PID"
stop_pid "$DAEMON_PID"
start_daemon daemon2 "$WORK/scstu.conf"
start_handler handler2 "$WORK/disk0.img"
[ "$(admin log-level)" = debug ] || fail "log level after restart"
expect_contains "$(admin list devices)" "io threads 3" "threads after restart"
[ "$(iscsi-readcapacity16 -s "iscsi://alice%alicesecret12@127.0.0.1:$PORT/$IQN/0")" = \
  $((16 << 20)) ] || fail "CHAP after restart"
out=$(admin list devices)
expect_contains "$out" "$WORK/b.iso, 1024 blocks" "the changed medium after restart"
admin set-chap "$IQN" || fail "set-chap with no credentials"
iscsi-inq "$(url 0)" >/dev/null || fail "CHAP not removed"
