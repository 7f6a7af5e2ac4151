#!/usr/bin/env bash
# EXTENDED COPY between LUNs served by different handler processes (split
# mode): the scstu-target daemon exports disk0 (LUN 0) and disk1 (LUN 1), each
# served by its own fileio_tgt --attach. An initiator (libiscsi) copies 8 MiB
# from LUN 0 to LUN 1 with one EXTENDED COPY; the copy manager in the daemon
# moves the data, which must arrive byte for byte. Then another initiator
# RESERVEs LUN 1: the copy must end COPY ABORTED with the destination's
# RESERVATION CONFLICT in its sense data, and write nothing. Last, libiscsi's
# ExtendedCopy and ReceiveCopyResults suites against the daemon.
source "$(dirname "$0")/lib.sh"
[ -n "${XCOPY_CLIENT:-}" ] || fail "XCOPY_CLIENT not set (CMake's add_test sets it)"
IQN=iqn.2026-11.org.scstu:e2e-xcopy
MIB=$((1 << 20))

step "daemon with two handler devices, two fileio_tgt --attach processes"
cat >"$WORK/scstu.conf" <<CONF
portals: "127.0.0.1:0"
handler_socket: "$WORK/handler.sock"
admin_socket: "$WORK/admin.sock"
targets { name: "$IQN" }
devices { name: "disk0" handler { device_type: 0 block_size: 512 } }
devices { name: "disk1" handler { device_type: 0 block_size: 512 } }
groups { name: "Default_$IQN" luns { lun: 0 device: "disk0" } luns { lun: 1 device: "disk1" } }
CONF
head -c $((16 * MIB)) /dev/urandom >"$WORK/disk0.img"
truncate -s $((16 * MIB)) "$WORK/disk1.img"
start_daemon daemon "$WORK/scstu.conf"
start_bg handler0 "$FILEIO_TGT" --attach "$WORK/handler.sock" disk0 "$WORK/disk0.img"
H0=$LAST_PID
start_bg handler1 "$FILEIO_TGT" --attach "$WORK/handler.sock" disk1 "$WORK/disk1.img"
H1=$LAST_PID
wait_line "$WORK/handler0.log" 'disk0 (re-)?attached' >/dev/null
wait_line "$WORK/handler1.log" 'disk1 (re-)?attached' >/dev/null
[ "$H0" != "$H1" ] || fail "one process serves both LUNs"
URL=iscsi://127.0.0.1:$PORT/$IQN/0

step "EXTENDED COPY: 8 MiB from LUN 0 (LBA 0) to LUN 1 (LBA 4096)"
out=$("$XCOPY_CLIENT" copy "$URL" 0 1 0 4096 16384 1) || fail "xcopy_client: $out"
echo "$out"
expect_contains "$out" "STATUS GOOD" "EXTENDED COPY"
# COPY STATUS: completed without errors, one segment, 8 MiB in bytes.
expect_contains "$out" "COPY_STATUS 1 1 $((8 * MIB))" "RECEIVE COPY RESULTS"
cmp -n $((8 * MIB)) -i 0:$((4096 * 512)) "$WORK/disk0.img" "$WORK/disk1.img" ||
  fail "LUN 1 does not hold LUN 0's data"
cmp -n $((2 * MIB)) "$WORK/disk1.img" /dev/zero || fail "blocks before the destination range were written"

step "the destination reserved by another initiator: COPY ABORTED"
exec 3> >("$XCOPY_CLIENT" reserve "$URL" 1 >"$WORK/reserver.log" 2>&1)
wait_line "$WORK/reserver.log" '^RESERVED' >/dev/null
before=$(md5sum <"$WORK/disk1.img")
out=$("$XCOPY_CLIENT" copy "$URL" 0 1 8192 20000 2048 2) || fail "xcopy_client: $out"
echo "$out"
# COPY ABORTED, THIRD PARTY DEVICE FAILURE (0D/01).
expect_contains "$out" "STATUS CHECK 0A/0D/01" "EXTENDED COPY to a reserved LUN"
expect_contains "$out" "COPY_STATUS 2 0 0" "RECEIVE COPY RESULTS of the failed copy"
# The held sense: fixed format, COPY ABORTED; COMMAND-SPECIFIC INFORMATION
# byte 1 (DESTINATION SENSE DATA OFFSET) = 18, and at byte 18 the
# destination's status, RESERVATION CONFLICT (18h).
sense=$(grep '^FAILED_SENSE' <<<"$out") || fail "no FAILED SEGMENT DETAILS"
read -r -a b <<<"${sense#FAILED_SENSE }"
[ "${b[2]}" = 0A ] || fail "sense key ${b[2]}, not COPY ABORTED: $sense"
[ "${b[8]}" = 00 ] && [ "${b[9]}" = 12 ] || fail "sense data offsets ${b[8]} ${b[9]}: $sense"
[ "${b[18]}" = 18 ] || fail "status at the destination offset ${b[18]}, not 18h: $sense"
[ "$(md5sum <"$WORK/disk1.img")" = "$before" ] || fail "the reserved LUN was written"
exec 3>&-  # the reserver logs out: the reservation ends with its nexus
for _ in $(seq 100); do
  out=$("$XCOPY_CLIENT" copy "$URL" 0 1 8192 20000 2048 3) || fail "xcopy_client: $out"
  grep -q "STATUS GOOD" <<<"$out" && break
  sleep 0.1
done
expect_contains "$out" "STATUS GOOD" "EXTENDED COPY once the reservation is gone"
cmp -n $((1 * MIB)) -i $((8192 * 512)):$((20000 * 512)) "$WORK/disk0.img" "$WORK/disk1.img" ||
  fail "second copy's data differs"

step "libiscsi's EXTENDED COPY / RECEIVE COPY RESULTS tests against the daemon"
for t in SCSI.ExtendedCopy SCSI.ReceiveCopyResults; do
  cu=$(timeout 120 iscsi-test-cu --dataloss -t "$t" -i iqn.2026-11.test:ini1 \
    -I iqn.2026-11.test:ini2 "${URL%/0}/1" "${URL%/0}/1" 2>&1) || fail "iscsi-test-cu -t $t: $cu"
  summary=$(grep -E '^ +tests +[0-9]+' <<<"$cu" | tail -n 1)
  read -r _ total ran passed failed _ <<<"$summary"
  echo "$t: $total tests, $passed passed, $failed failed"
  [ "$failed" = 0 ] && [ "$ran" = "$total" ] && [ "$total" -gt 0 ] || fail "$t: $cu"
done

kill -0 "$DAEMON_PID" || fail "the daemon died"
kill -0 "$H0" && kill -0 "$H1" || fail "a handler died"
echo "PASS"
