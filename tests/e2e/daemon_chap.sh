#!/usr/bin/env bash
# CHAP configured in the daemon's config file reaches the portal: the right
# secret logs in, a wrong one and none are refused; discovery CHAP likewise.
source "$(dirname "$0")/lib.sh"
IQN=iqn.2026-11.org.scstu:e2e-chap
truncate -s 16M "$WORK/disk1.img"
cat >"$WORK/scstu.conf" <<CONF
portals: "127.0.0.1:0"
admin_socket: "$WORK/admin.sock"
targets { name: "$IQN" chap { user: "alice" secret: "alicesecret12" } }
devices { name: "disk1" file { path: "$WORK/disk1.img" } }
groups { name: "Default_$IQN" luns { lun: 0 device: "disk1" } }
discovery_chap { user: "disco" secret: "discosecret12" }
CONF
start_daemon daemon "$WORK/scstu.conf"

step "the right secret logs in"
[ "$(iscsi-readcapacity16 -s "iscsi://alice%alicesecret12@127.0.0.1:$PORT/$IQN/0")" = $((16 << 20)) ] ||
  fail "login with the configured CHAP secret"

step "a wrong secret and no secret are refused"
if iscsi-readcapacity16 -s "iscsi://alice%wrongsecret12@127.0.0.1:$PORT/$IQN/0" >/dev/null 2>&1; then
  fail "logged in with a wrong secret"
fi
if iscsi-readcapacity16 -s "iscsi://127.0.0.1:$PORT/$IQN/0" >/dev/null 2>&1; then
  fail "logged in without CHAP"
fi

step "discovery needs its own CHAP"
out=$(iscsi-ls "iscsi://disco%discosecret12@127.0.0.1:$PORT" 2>&1) || fail "discovery with CHAP: $out"
expect_contains "$out" "Target:$IQN" "discovery"
if iscsi-ls "iscsi://127.0.0.1:$PORT" >/dev/null 2>&1; then fail "discovery without CHAP"; fi

step "list targets shows CHAP users, never secrets"
out=$("$SCSTUADMIN" --socket "$WORK/admin.sock" list targets)
expect_contains "$out" "$IQN  CHAP" "list targets"
if grep -q alicesecret12 <<<"$("$SCSTUADMIN" --socket "$WORK/admin.sock" list targets)"; then
  fail "a secret left the daemon"
fi
step "a target added at runtime with CHAP needs it at once"
OTHER=iqn.2026-11.org.scstu:other
"$SCSTUADMIN" --socket "$WORK/admin.sock" add-target "$OTHER" --chap-user bob \
  --chap-secret bobsecret1234 || fail "add-target with CHAP"
"$SCSTUADMIN" --socket "$WORK/admin.sock" add-group "Default_$OTHER" || fail "add-group"
"$SCSTUADMIN" --socket "$WORK/admin.sock" add-lun "Default_$OTHER" disk1 0 || fail "add-lun"
if iscsi-readcapacity16 -s "iscsi://127.0.0.1:$PORT/$OTHER/0" >/dev/null 2>&1; then
  fail "logged in to the runtime target without CHAP"
fi
[ "$(iscsi-readcapacity16 -s "iscsi://bob%bobsecret1234@127.0.0.1:$PORT/$OTHER/0")" = \
  $((16 << 20)) ] || fail "login with the runtime target's CHAP"
