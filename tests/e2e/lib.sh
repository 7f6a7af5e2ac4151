# lib.sh - helpers for the end-to-end scripts: a scratch directory, background
# programs stopped by PID at exit, waiting for a log line, failing loudly.
# The binaries come from the environment (set by CMake's add_test):
# FILEIO_TGT, SCSTU_TARGET, SCSTUADMIN, E2E_CLIENT.
set -euo pipefail

WORK=$(mktemp -d "${TMPDIR:-/var/tmp}/scstu-e2e.XXXXXX")
BG_PIDS=()

step() { echo "== $*"; }

dump_logs() {
  for f in "$WORK"/*.log; do
    [ -f "$f" ] || continue
    echo "---- $f"
    tail -n 30 "$f"
  done
}

fail() {
  echo "FAIL: $*" >&2
  dump_logs >&2
  exit 1
}

# Stops one background program by PID: SIGTERM, then SIGKILL after 10 s.
stop_pid() {
  local pid=$1
  kill -TERM "$pid" 2>/dev/null || return 0
  for _ in $(seq 100); do
    kill -0 "$pid" 2>/dev/null || { wait "$pid" 2>/dev/null || true; return 0; }
    sleep 0.1
  done
  echo "pid $pid ignored SIGTERM for 10 s: SIGKILL" >&2
  kill -KILL "$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
}

cleanup() {
  local rc=$?
  for pid in "${BG_PIDS[@]}"; do stop_pid "$pid"; done
  rm -rf "$WORK"
  exit $rc
}
trap cleanup EXIT

# start_bg NAME CMD...: runs CMD in the background with output to $WORK/NAME.log;
# its PID in $LAST_PID.
start_bg() {
  local name=$1
  shift
  # Truncate here, not in the background job's redirection: that one runs
  # after the fork, so a wait_line right after could still read the line a
  # previous process of the same NAME wrote (its port), and connect there.
  : >"$WORK/$name.log"
  "$@" >>"$WORK/$name.log" 2>&1 &
  LAST_PID=$!
  BG_PIDS+=("$LAST_PID")
}

# wait_line FILE REGEX [SECONDS]: waits for a matching line; prints it.
wait_line() {
  local file=$1 regex=$2 secs=${3:-20}
  for _ in $(seq $((secs * 10))); do
    if grep -Eq "$regex" "$file" 2>/dev/null; then
      grep -E "$regex" "$file" | tail -n 1
      return 0
    fi
    sleep 0.1
  done
  fail "no line matching '$regex' in $file after ${secs}s"
}

# start_fileio NAME ARGS...: fileio_tgt --iscsi 127.0.0.1:0 ARGS; sets $PORT.
start_fileio() {
  local name=$1
  shift
  start_bg "$name" "$FILEIO_TGT" --iscsi 127.0.0.1:0 "$@"
  local line
  line=$(wait_line "$WORK/$name.log" 'serving .* on 127\.0\.0\.1:[0-9]+')
  PORT=${line##*:}
}

expect_contains() {  # TEXT NEEDLE WHAT
  grep -qF -- "$2" <<<"$1" || fail "$3: expected '$2' in: $1"
}

# write_config FILE: a daemon configuration with one handler device, disk0,
# as LUN 0 of $IQN's default group; sockets in $WORK.
write_config() {
  cat >"$1" <<CONF
portals: "127.0.0.1:0"
handler_socket: "$WORK/handler.sock"
admin_socket: "$WORK/admin.sock"
targets { name: "$IQN" }
devices { name: "disk0" handler { device_type: 0 block_size: 512 } }
groups { name: "Default_$IQN" luns { lun: 0 device: "disk0" } }
CONF
}

# start_daemon NAME CONFIG: scstu-target; sets $PORT and $DAEMON_PID.
start_daemon() {
  start_bg "$1" "$SCSTU_TARGET" --config "$2"
  DAEMON_PID=$LAST_PID
  local line
  line=$(wait_line "$WORK/$1.log" 'serving iSCSI on 127\.0\.0\.1:[0-9]+')
  PORT=${line##*:}
  wait_line "$WORK/$1.log" 'admin socket' >/dev/null
}

# start_handler NAME IMAGE: fileio_tgt --attach for disk0; sets $HANDLER_PID.
start_handler() {
  start_bg "$1" "$FILEIO_TGT" --attach "$WORK/handler.sock" disk0 "$2"
  HANDLER_PID=$LAST_PID
  wait_line "$WORK/$1.log" 'disk0 (re-)?attached' >/dev/null
}
