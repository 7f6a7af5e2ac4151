#!/usr/bin/env bash
# scstuadmin against a running daemon: the seed's /proc/scsi_tgt operations
# (groups, initiator patterns, devices with LUNs, READ_ONLY, resync_size),
# errors shown verbatim, and every change persisted to the config file: a
# restarted daemon serves the same mapping.
source "$(dirname "$0")/lib.sh"
IQN=iqn.2026-11.org.scstu:e2e-admin
SPEC=iqn.2007-05.com.example:storage.disk1.spec_ini.xyz
admin() { "$SCSTUADMIN" --socket "$WORK/admin.sock" "$@"; }

write_config "$WORK/scstu.conf"
truncate -s 64M "$WORK/disk0.img"
truncate -s 16M "$WORK/disk1.img"
start_daemon daemon "$WORK/scstu.conf"
start_handler handler "$WORK/disk0.img"

step "add a file device and a group for one initiator (the seed's spec_ini example)"
admin add-device disk1 --file "$WORK/disk1.img" || fail "add-device"
admin add-group spec_ini || fail "add-group"
admin add-initiator spec_ini "$SPEC" || fail "add-initiator"
if out=$(admin add-lun spec_ini disk1 1 2>&1); then fail "a group without LUN 0 was accepted"; fi
expect_contains "$out" "no LUN 0" "daemon error shown verbatim"
admin add-lun spec_ini disk1 0 --read-only || fail "add-lun"
out=$(admin list groups)
expect_contains "$out" "name $SPEC" "list groups"
expect_contains "$out" "LUN 0  disk1  READ_ONLY" "list groups"
out=$(admin list devices)
expect_contains "$out" "disk0                handler  attached" "list devices"
expect_contains "$out" "disk1                file     open" "list devices"

step "the initiators see what their groups map"
[ "$(iscsi-readcapacity16 -s -i "$SPEC" "iscsi://127.0.0.1:$PORT/$IQN/0")" = $((16 << 20)) ] ||
  fail "spec_ini does not see disk1 as LUN 0"
[ "$(iscsi-readcapacity16 -s -i iqn.2026-11.org.example:other "iscsi://127.0.0.1:$PORT/$IQN/0")" = \
  $((64 << 20)) ] || fail "another initiator does not see disk0 as LUN 0"
if qemu-io --image-opts -c "write 0 4k" \
  "driver=iscsi,transport=tcp,portal=127.0.0.1:$PORT,target=$IQN,lun=0,initiator-name=$SPEC" \
  >"$WORK/ro.txt" 2>&1; then
  fail "a write through a READ_ONLY mapping succeeded"
fi
expect_contains "$(cat "$WORK/ro.txt")" "write protected" "READ_ONLY mapping"

step "resync_size of a file device; a handler device's size belongs to its process"
truncate -s 32M "$WORK/disk1.img"
expect_contains "$(admin resync-size disk1)" "capacity changed" "resync-size"
[ "$(iscsi-readcapacity16 -s -i "$SPEC" "iscsi://127.0.0.1:$PORT/$IQN/0")" = $((32 << 20)) ] ||
  fail "new size not served"
if out=$(admin resync-size disk0 2>&1); then fail "resync-size of a handler device"; fi
expect_contains "$out" "SIGUSR1" "resync-size of a handler device"

step "errors: unknown objects, removing a mapped device"
if out=$(admin del-device disk1 2>&1); then fail "removed a mapped device"; fi
expect_contains "$out" "spec_ini" "del-device names the group"
if out=$(admin add-lun nogroup disk1 0 2>&1); then fail "add-lun to a missing group"; fi

step "the changes are in the config file, and survive a restart"
grep -q "name: \"spec_ini\"" "$WORK/scstu.conf" || fail "group not saved"
grep -q "$SPEC" "$WORK/scstu.conf" || fail "initiator pattern not saved"
grep -q "path: \"$WORK/disk1.img\"" "$WORK/scstu.conf" || fail "device not saved"
stop_pid "$HANDLER_PID"
stop_pid "$DAEMON_PID"
start_daemon daemon2 "$WORK/scstu.conf"
start_handler handler2 "$WORK/disk0.img"
out=$(admin list groups)
expect_contains "$out" "name $SPEC" "groups after restart"
expect_contains "$out" "LUN 0  disk1  READ_ONLY" "LUNs after restart"
[ "$(iscsi-readcapacity16 -s -i "$SPEC" "iscsi://127.0.0.1:$PORT/$IQN/0")" = $((32 << 20)) ] ||
  fail "mapping lost across the restart"

step "remove it all again"
admin del-lun spec_ini disk1 || fail "del-lun"
admin del-group spec_ini || fail "del-group"
admin del-device disk1 || fail "del-device"
if grep -q spec_ini "$WORK/scstu.conf"; then fail "removed group still saved"; fi
expect_contains "$(admin list sessions; echo end)" "end" "list sessions"
