#!/usr/bin/env bash
# SBC-4 4.11.2: a SANITIZE interrupted by a crash of the handler is not
# forgotten. fileio_tgt --state-dir (then the scstu-target daemon with a file
# device's state_dir) records the operation before SANITIZE completes; killed
# (-9) mid-operation and started again, it resumes: NOT READY / SANITIZE IN
# PROGRESS (02/04/1B) until every block holds the pattern, then GOOD, and the
# state file is gone.
# SANITIZE_IMAGE_SIZE (default 2G, sparse) must take the machine more than a
# moment to overwrite; the test says so if it did not.
source "$(dirname "$0")/lib.sh"
IQN=iqn.2026-11.org.scstu:e2e-sanitize
SIZE=${SANITIZE_IMAGE_SIZE:-2G}
url() { echo "iscsi://127.0.0.1:$PORT/$IQN/0"; }
IMG=$WORK/disk.img
STATE=$WORK/state
mkdir "$STATE"
# 16 bytes of the image at OFFSET, as hex without spaces.
bytes_at() { od -An -tx1 -v -j "$1" -N 16 "$IMG" | tr -d ' \n'; }
A5=a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5
# Each watch logs in anew: its first TEST UNIT READY takes the power-on
# unit attention, the second one is the answer.
ask() { printf 'tur\n%s\n' "$1" | "$E2E_CLIENT" watch "$(url)" | tail -n 1; }

# start_server NAME: the server under test on $IMG with $STATE; sets PORT, SERVER.
start_fileio_server() {
  start_fileio "$1" --target "$IQN" --state-dir "$STATE" disk "$IMG"
  SERVER=$LAST_PID
}
start_daemon_server() {
  cat >"$WORK/daemon.conf" <<CONF
portals: "127.0.0.1:0"
admin_socket: "$WORK/admin.sock"
targets { name: "$IQN" }
devices { name: "disk" file { path: "$IMG" state_dir: "$STATE" } }
groups { name: "Default_$IQN" luns { lun: 0 device: "disk" } }
CONF
  start_daemon "$1" "$WORK/daemon.conf"
  SERVER=$DAEMON_PID
}

# scenario KIND: fileio or daemon.
scenario() {
  local kind=$1 out
  rm -f "$IMG" "$STATE"/*
  truncate -s "$SIZE" "$IMG"
  BYTES=$(stat -c %s "$IMG")

  step "$kind: SANITIZE (IMMED, OVERWRITE 0xA5) of a $SIZE image, recorded in the state directory"
  "start_${kind}_server" "$kind-first"
  out=$(ask sanitize)
  [ "$out" = "sanitize GOOD" ] || fail "SANITIZE: $out"
  kill -KILL "$SERVER"
  wait "$SERVER" 2>/dev/null || true
  step "$kind: killed -9 mid-operation: the state file says in progress"
  [ -f "$STATE/disk.sanitize" ] || fail "no $STATE/disk.sanitize after SANITIZE completed"
  grep -q '^state in-progress$' "$STATE/disk.sanitize" || fail "state: $(cat "$STATE/disk.sanitize")"
  if [ "$(bytes_at $((BYTES - 16)))" = "$A5" ]; then
    fail "the whole $SIZE image was overwritten before the kill: raise SANITIZE_IMAGE_SIZE"
  fi

  step "$kind: restarted: the operation resumes, 02/04/1B until it ends"
  "start_${kind}_server" "$kind-second"
  wait_line "$WORK/$kind-second.log" "resuming the interrupted sanitize" >/dev/null
  out=$(ask tur)
  [ "$out" = "tur CHECK 02/04/1b" ] ||
    fail "TEST UNIT READY after the restart: '$out' (expected 02/04/1b; a GOOD here means the $SIZE image was overwritten too fast: raise SANITIZE_IMAGE_SIZE)"
  out=$(ask read)
  [ "$out" = "read CHECK 02/04/1b" ] || fail "READ during the resumed sanitize: $out"
  for _ in $(seq 600); do
    out=$(ask tur)
    [ "$out" = "tur GOOD" ] && break
    [ "$out" = "tur CHECK 02/04/1b" ] || fail "TEST UNIT READY while sanitizing: $out"
    sleep 0.5
  done
  [ "$out" = "tur GOOD" ] || fail "the resumed sanitize did not end within 300 s"

  step "$kind: done: every block holds the pattern, the state file is gone"
  for off in 0 $((BYTES / 2)) $((BYTES - 16)); do
    [ "$(bytes_at "$off")" = "$A5" ] || fail "offset $off: $(bytes_at "$off"), expected 0xA5"
  done
  [ ! -e "$STATE/disk.sanitize" ] || fail "state file left: $(cat "$STATE/disk.sanitize")"
  out=$(ask read)
  [ "$out" = "read GOOD" ] || fail "READ after the sanitize: $out"
  stop_pid "$SERVER"
}

scenario fileio
scenario daemon
echo "PASS"
