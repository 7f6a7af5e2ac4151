#!/usr/bin/env bash
# iscsi_vs_tgtd.sh - scstu's fileio_tgt (embedded iSCSI target) against Debian's
# tgtd, same run, same kind of image (tmpfs), same load generator:
#   4 KiB random read, QD 32     iscsi-perf -r -b 8 -m 32
#   1 MiB sequential read, QD 8  iscsi-perf -b 2048 -m 8
# plus the target's CPU seconds per I/O (utime + stime of the whole process
# from /proc/PID/stat) and the one-connection loopback TCP ceiling
# (shared/bench/tcp-ceiling.c). Prints one JSON line per result.
#
# Usage: bench/iscsi_vs_tgtd.sh [BUILD_DIR]        (default: ./build)
# Env:   DURATION=20 (seconds per workload), IMAGE_SIZE=1G, TGTD_CONTROL_PORT=47,
#        TCP_CEILING_SRC=<repo>/../shared/bench/tcp-ceiling.c, PIN=0 (PIN=1: target
#        on CPU 0, load generator on CPU 1; see docs/PERFORMANCE.md for why that
#        is not the default on a shared 2-CPU machine).
# Needs: tgt, libiscsi-bin, gcc; root for tgtd.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
BUILD=${1:-$ROOT/build}
FILEIO_TGT=$BUILD/fileio_tgt/fileio_tgt
DURATION=${DURATION:-20}
IMAGE_SIZE=${IMAGE_SIZE:-1G}
CTL=${TGTD_CONTROL_PORT:-47}
PIN=${PIN:-0}
CEILING_SRC=${TCP_CEILING_SRC:-$ROOT/../shared/bench/tcp-ceiling.c}
TGTD_IQN=iqn.2026-11.org.scstu:bench-tgtd
SCSTU_IQN=iqn.2026-11.org.scstu:bench-fileio

for tool in tgtd tgtadm iscsi-perf gcc; do
  command -v "$tool" >/dev/null || { echo "iscsi_vs_tgtd: $tool not found (apt-get install tgt libiscsi-bin gcc)" >&2; exit 1; }
done
[ -x "$FILEIO_TGT" ] || { echo "iscsi_vs_tgtd: $FILEIO_TGT not built (cmake --build $BUILD --target fileio_tgt)" >&2; exit 1; }

TMP=$(mktemp -d)
IMG=/dev/shm/scstu-bench-$$.img
TGTD_PID=
SCSTU_PID=

stop_tgtd() {
  [ -n "$TGTD_PID" ] || return 0
  # tgtd ignores SIGTERM while it has targets (shared/PEERS.md).
  tgtadm -C "$CTL" --op update --mode sys --name State -v offline >/dev/null 2>&1 || true
  tgtadm -C "$CTL" --lld iscsi --op delete --mode target --tid 1 --force >/dev/null 2>&1 || true
  tgtadm -C "$CTL" --op delete --mode system >/dev/null 2>&1 || true
  sleep 0.5
  kill -KILL "$TGTD_PID" 2>/dev/null || true
  wait "$TGTD_PID" 2>/dev/null || true
  TGTD_PID=
}
stop_scstu() {
  [ -n "$SCSTU_PID" ] || return 0
  kill -TERM "$SCSTU_PID" 2>/dev/null || true
  wait "$SCSTU_PID" 2>/dev/null || true
  SCSTU_PID=
}
cleanup() {
  stop_tgtd
  stop_scstu
  rm -rf "$TMP" "$IMG"
}
trap cleanup EXIT

free_port() {
  for p in $(seq 13260 13299); do
    if ! ss -Htln "sport = :$p" | grep -q .; then echo "$p"; return; fi
  done
  echo "iscsi_vs_tgtd: no free port in 13260-13299" >&2
  exit 1
}

# utime + stime of the whole process, in seconds.
cpu_seconds() {
  local stat
  stat=$(cat "/proc/$1/stat")
  stat=${stat##*) }  # fields after the command name (which may hold spaces)
  awk -v hz="$(getconf CLK_TCK)" '{ printf "%.4f", ($12 + $13) / hz }' <<<"$stat"
}

pin_target() {
  [ "$PIN" = 1 ] && taskset -a -p 1 "$1" >/dev/null
  return 0
}
load() {
  if [ "$PIN" = 1 ]; then taskset 2 "$@"; else "$@"; fi
}

# run_perf NAME PID URL WORKLOAD ARGS...: one iscsi-perf run; a JSON line.
declare -A IOPS MBPS CPU
run_perf() {
  local name=$1 pid=$2 url=$3 workload=$4
  shift 4
  local c0 c1 out iops mbps
  c0=$(cpu_seconds "$pid")
  # iscsi-perf's -t is checked by its own loop; a starved run can overshoot it.
  out=$(load timeout $((DURATION * 3 + 30)) iscsi-perf -t "$DURATION" "$@" "$url" 2>&1 | tr '\r' '\n' | grep -o 'iops average [0-9]* ([0-9]* MB/s)' | tail -n 1 || true)
  c1=$(cpu_seconds "$pid")
  [ -n "$out" ] || { echo "iscsi_vs_tgtd: iscsi-perf against $name produced no result" >&2; exit 1; }
  iops=$(awk '{print $3}' <<<"$out")
  mbps=$(awk '{print substr($4, 2)}' <<<"$out")
  local cpu_us
  cpu_us=$(awk -v a="$c0" -v b="$c1" -v n="$iops" -v d="$DURATION" \
    'BEGIN { printf "%.2f", (n > 0) ? (b - a) * 1e6 / (n * d) : 0 }')
  IOPS[$name.$workload]=$iops
  MBPS[$name.$workload]=$mbps
  CPU[$name.$workload]=$cpu_us
}

echo "# $(nproc) CPUs: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ *//'); load average $(cut -d' ' -f1-3 /proc/loadavg); ${DURATION}s per workload" >&2
truncate -s "$IMAGE_SIZE" "$IMG"
# Fill it, so reads hit allocated tmpfs pages for both targets.
dd if=/dev/zero of="$IMG" bs=1M count=$(( $(stat -c %s "$IMG") >> 20 )) conv=notrunc status=none

WORKLOADS=(randread_4k_qd32 seqread_1m_qd8)
perf_args() {
  case $1 in
    randread_4k_qd32) echo "-r -b 8 -m 32" ;;
    seqread_1m_qd8) echo "-b 2048 -m 8" ;;
  esac
}

# ---- tgtd ----
PORT=$(free_port)
tgtd -f -C "$CTL" --iscsi "portal=127.0.0.1:$PORT" >"$TMP/tgtd.log" 2>&1 &
TGTD_PID=$!
for _ in $(seq 50); do tgtadm -C "$CTL" --op show --mode sys >/dev/null 2>&1 && break; sleep 0.1; done
tgtadm -C "$CTL" --lld iscsi --op new --mode target --tid 1 -T "$TGTD_IQN"
tgtadm -C "$CTL" --lld iscsi --op new --mode logicalunit --tid 1 --lun 1 -b "$IMG"
tgtadm -C "$CTL" --lld iscsi --op bind --mode target --tid 1 -I ALL
pin_target "$TGTD_PID"
for w in "${WORKLOADS[@]}"; do
  # shellcheck disable=SC2046
  run_perf tgtd "$TGTD_PID" "iscsi://127.0.0.1:$PORT/$TGTD_IQN/1" "$w" $(perf_args "$w")
done
stop_tgtd

# ---- scstu fileio_tgt (embedded) ----
"$FILEIO_TGT" --iscsi 127.0.0.1:0 --target "$SCSTU_IQN" disk0 "$IMG" >"$TMP/fileio.log" 2>&1 &
SCSTU_PID=$!
for _ in $(seq 50); do grep -q 'serving .* on' "$TMP/fileio.log" && break; sleep 0.1; done
PORT=$(sed -n 's/.*serving .* on 127\.0\.0\.1:\([0-9]*\)$/\1/p' "$TMP/fileio.log" | head -n 1)
[ -n "$PORT" ] || { cat "$TMP/fileio.log" >&2; exit 1; }
pin_target "$SCSTU_PID"
for w in "${WORKLOADS[@]}"; do
  # shellcheck disable=SC2046
  run_perf fileio_tgt "$SCSTU_PID" "iscsi://127.0.0.1:$PORT/$SCSTU_IQN/0" "$w" $(perf_args "$w")
done
stop_scstu

# ---- the one-connection loopback ceiling ----
declare -A CEIL_IOPS
if [ -f "$CEILING_SRC" ]; then
  gcc -O2 -o "$TMP/tcp-ceiling" "$CEILING_SRC"
  line=$("$TMP/tcp-ceiling" 32 4096 "$DURATION")
  CEIL_IOPS[randread_4k_qd32]=$(sed -n 's/.*"ops_per_s":\([0-9.]*\).*/\1/p' <<<"$line")
  echo "$line"
  line=$("$TMP/tcp-ceiling" 8 1048576 "$DURATION")
  CEIL_IOPS[seqread_1m_qd8]=$(sed -n 's/.*"ops_per_s":\([0-9.]*\).*/\1/p' <<<"$line")
  echo "$line"
else
  echo "iscsi_vs_tgtd: $CEILING_SRC not found: no ceiling" >&2
fi

for w in "${WORKLOADS[@]}"; do
  for t in tgtd fileio_tgt; do
    awk -v t="$t" -v w="$w" -v iops="${IOPS[$t.$w]}" -v mbps="${MBPS[$t.$w]}" -v cpu="${CPU[$t.$w]}" \
      -v tiops="${IOPS[tgtd.$w]}" -v tcpu="${CPU[tgtd.$w]}" -v ceil="${CEIL_IOPS[$w]:-0}" 'BEGIN {
        printf "{\"bench\":\"iscsi\",\"target\":\"%s\",\"workload\":\"%s\",\"iops\":%d,\"MBps\":%d,\"cpu_us_per_io\":%s", t, w, iops, mbps, cpu
        if (t != "tgtd") printf ",\"iops_vs_tgtd\":%.2f,\"cpu_vs_tgtd\":%.2f", (tiops > 0 ? iops / tiops : 0), (tcpu > 0 ? cpu / tcpu : 0)
        if (ceil > 0) printf ",\"of_tcp_ceiling\":%.2f", iops / ceil
        printf "}\n"
      }'
  done
done
