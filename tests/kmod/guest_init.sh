#!/bin/sh
# guest_init.sh - /init of the kmod test guest (see run_kmod_test.sh). Reads
# like the steps a user would type; one MARKER PASS/FAIL line per step.
/bin/busybox mkdir -p /usr/bin /usr/sbin
/bin/busybox --install -s
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
mount -t tmpfs -o size=400m tmpfs /tmp
export PATH=/sbin:/bin:/usr/sbin:/usr/bin
H=kmod_test_handler
fail=0
up() { cut -d' ' -f1 /proc/uptime; }
pass() { echo "MARKER PASS: $* [$(up)s]"; }
bad() { echo "MARKER FAIL: $* [$(up)s]"; fail=1; }
# wait_for GLOB SECONDS
wait_for() {
  i=0
  while [ $i -lt $(($2 * 10)) ]; do
    for p in $1; do [ -e "$p" ] && return 0; done
    usleep 100000; i=$((i + 1))
  done
  return 1
}
# writes_in_flight DISK N: wait (up to 20 s of uptime) until the block layer has N writes in flight
writes_in_flight() {
  deadline=$(( $(cut -d. -f1 /proc/uptime) + 20 ))
  while [ $(cut -d. -f1 /proc/uptime) -lt $deadline ]; do
    set -- $1 $2 $(cat /sys/block/$1/inflight)
    [ "$4" -ge $2 ] && return 0
    usleep 20000
  done
  return 1
}
serve() { # serve NAME [IMAGE [DELAY_MS [DROP_LBA]]] -> $HPID
  $H serve "$@" 2>>/tmp/handler-$1.log &
  HPID=$!
}
# fserve NAME IMAGE -> $HPID: the project's fileio_tgt attached to /dev/scstu/NAME
fserve() {
  fileio_tgt --kernel "$1" "$2" 2>>/tmp/handler-$1.log &
  HPID=$!
}
if [ -x /sbin/fileio_tgt ]; then
  DSERVE=fserve; DNAME="fileio_tgt --kernel"
else
  DSERVE=serve; DNAME=kmod_test_handler
  echo "MARKER SKIP: fileio_tgt not in the initramfs (SCSTU_FILEIO_TGT): disk steps use kmod_test_handler"
fi

echo "MARKER: guest up, kernel $(uname -r)"
# watchdog SECONDS WHAT: if still running by then, dump what is stuck (kill $WD when done)
watchdog() {
  (end=$(( $(cut -d. -f1 /proc/uptime) + $1 ))
   while [ $(cut -d. -f1 /proc/uptime) -lt $end ]; do usleep 500000; done
   echo "MARKER FAIL: watchdog: $2 still running after $1 s"
   for d in /sys/block/sd*; do echo "$d inflight: $(cat $d/inflight)"; done
   ps; tail -n 5 /tmp/handler-*.log
   echo w > /proc/sysrq-trigger; dmesg | tail -150) &
  WD=$!
}

# -- 1. the module
for m in sd_mod sg st sr_mod crc32c_generic ext4; do modprobe $m || bad "modprobe $m"; done
if modprobe scstu && [ -c /dev/scstu-ctl ]; then
  pass "module loaded, /dev/scstu-ctl present"
else
  bad "modprobe scstu"; dmesg | tail -20
fi

# -- 2. the control ioctls refuse bad arguments and unprivileged callers
if out=$($H badargs 2>&1); then pass "ioctl validation: $out"; else bad "ioctl validation: $out"; fi

# -- 3. a disk: create, attach the handler, the LUN appears with the create's identity
truncate -s 64M /tmp/disk0.img
if $H create disk0 0 SCSTU KMODDISK SN-DISK0-4711 2 32 262144; then
  pass "created disk0 (2 queues x 32)"
else
  bad "create disk0"
fi
$DSERVE disk0 /tmp/disk0.img
DPID=$HPID
disk=
if wait_for "/sys/class/scsi_disk/*" 30 && wait_for "/sys/block/sd*" 10; then
  disk=$(basename $(ls -d /sys/block/sd* | head -1))
  wait_for /dev/$disk 5
  pass "disk0 is /dev/$disk, served by $DNAME on /tmp/disk0.img"
else
  bad "no sd device for disk0"; dmesg | tail -30; cat /tmp/handler-disk0.log
fi

if [ -n "$disk" ]; then
  inq=$(sg_inq /dev/$disk 2>&1)
  if echo "$inq" | grep -q "Vendor identification: SCSTU" &&
     echo "$inq" | grep -q "Product identification: KMODDISK" &&
     echo "$inq" | grep -q "Unit serial number: SN-DISK0-4711"; then
    pass "sg_inq: SCSTU / KMODDISK / SN-DISK0-4711 (the create's identity, from $DNAME)"
  else
    bad "sg_inq: $inq"
  fi
  if out=$($H openchecks disk0 2>&1); then pass "char devices: $out"; else bad "char devices: $out"; fi
  cap=$(sg_readcap /dev/$disk 2>&1)
  if echo "$cap" | grep -q "Last LBA=131071" && echo "$cap" | grep -q "Logical block length=512"; then
    pass "sg_readcap: 131072 x 512"
  else
    bad "sg_readcap: $cap"
  fi

  # -- 4. data through the ring, both ways, and into the handler's image
  head -c 4194304 /dev/urandom > /tmp/pat1
  dd if=/tmp/pat1 of=/dev/$disk bs=256k seek=8 oflag=direct 2>/dev/null
  dd if=/dev/$disk of=/tmp/back1 bs=256k skip=8 count=16 iflag=direct 2>/dev/null
  dd if=/tmp/disk0.img of=/tmp/img1 bs=256k skip=8 count=16 2>/dev/null
  if cmp -s /tmp/pat1 /tmp/back1 && cmp -s /tmp/pat1 /tmp/img1; then
    pass "dd 4 MiB pattern written, read back and found in $DNAME's image ($(md5sum < /tmp/pat1 | cut -c1-12))"
  else
    bad "dd pattern mismatch"
  fi
  rm -f /tmp/back1 /tmp/img1

  # -- 5. a file system
  if mkfs.ext4 -F -q /dev/$disk > /tmp/mkfs.log 2>&1 && mount -t ext4 /dev/$disk /mnt; then
    cp /tmp/pat1 /mnt/pattern && echo "hello scstu" > /mnt/hello && mkdir /mnt/dir &&
      for i in 1 2 3 4 5 6 7 8; do head -c 100000 /dev/urandom > /mnt/dir/f$i; done
    md5a=$(cat /mnt/pattern /mnt/hello /mnt/dir/* | md5sum)
    umount /mnt
    echo 3 > /proc/sys/vm/drop_caches
    if out=$(e2fsck -f -n /dev/$disk 2>&1); then
      mount -t ext4 -o ro /dev/$disk /mnt
      md5b=$(cat /mnt/pattern /mnt/hello /mnt/dir/* | md5sum)
      umount /mnt
      [ "$md5a" = "$md5b" ] && pass "$DNAME: mkfs.ext4, mount, write files, umount, fsck -f clean, contents intact" ||
        bad "file contents differ after remount"
    else
      bad "fsck -f: $out"
    fi
  else
    bad "mkfs.ext4/mount: $(cat /tmp/mkfs.log)"; dmesg | tail -20
  fi

  # -- 6. kill -9 the handler during dd's (4 writers in parallel, so several
  #       commands are in flight on both queues), restart it: all complete, data intact
  #       (kmod_test_handler from here on: it has the knobs; a different
  #       handler binary re-attaching to the same device is part of the test)
  for w in 0 1 2 3; do head -c 2097152 /dev/urandom > /tmp/pat2.$w; done
  kill -9 $DPID; wait $DPID 2>/dev/null
  g0=$(dmesg | grep -c 'scstu disk0: handler attached')   # attaches so far
  serve disk0 /tmp/disk0.img 25       # 25 ms per WRITE: the kill lands mid-dd
  DPID=$HPID
  DDS=
  for w in 0 1 2 3; do
    dd if=/tmp/pat2.$w of=/dev/$disk bs=64k seek=$((256 + w * 32)) oflag=direct 2>/tmp/dd2.$w.err &
    DDS="$DDS $!"
  done
  writes_in_flight $disk 2
  kill -9 $DPID; wait $DPID 2>/dev/null
  killed_at=$(up)
  sleep 1
  serve disk0 /tmp/disk0.img
  DPID=$HPID
  ddfail=
  for p in $DDS; do wait $p || ddfail=1; done
  if [ -z "$ddfail" ]; then
    same=1
    for w in 0 1 2 3; do
      dd if=/dev/$disk of=/tmp/back2 bs=64k skip=$((256 + w * 32)) count=32 iflag=direct 2>/dev/null
      cmp -s /tmp/pat2.$w /tmp/back2 || same=
    done
    requeued=$(dmesg | sed -n "s/.*disk0: handler detached (generation $((g0 + 1))), \([0-9]*\) in-flight.*/\1/p")
    if ! [ "${requeued:-0}" -ge 1 ]; then
      bad "kill -9 during dd: no in-flight command was requeued (the kill missed the I/O)"
    elif [ -n "$same" ]; then
      pass "kill -9 handler at ${killed_at}s during 4 parallel 2 MiB dd's ($requeued in-flight requeued), restart: all completed, data intact"
    else
      bad "kill -9/restart: data differs"
    fi
  else
    bad "kill -9/restart: dd failed: $(cat /tmp/dd2.*.err)"
  fi
  grep -q "generation $((g0 + 2))" /tmp/handler-disk0.log && pass "re-attach bumped the generation ($((g0 + 2)) attaches)" ||
    bad "generation not bumped: $(cat /tmp/handler-disk0.log)"

  # -- 6b. three more kill -9 / restart cycles under 4 readers + 4 writers that
  #        keep going until all cycles are done
  watchdog 120 "kill cycles"
  for w in 0 1 2 3; do head -c 1048576 /dev/urandom > /tmp/pat3.$w; done
  rm -f /tmp/stop
  DDS=
  for w in 0 1 2 3; do
    (while [ ! -e /tmp/stop ]; do
       dd if=/tmp/pat3.$w of=/dev/$disk bs=16k seek=$((2048 + w * 64)) oflag=direct 2>/dev/null || exit 1
       dd if=/dev/$disk of=/dev/null bs=128k skip=$((w * 64)) count=16 iflag=direct 2>/dev/null || exit 1
     done) &
    DDS="$DDS $!"
  done
  hits=0
  for cycle in 1 2 3; do
    writes_in_flight $disk 1 && hits=$((hits + 1))
    kill -9 $DPID; wait $DPID 2>/dev/null
    usleep 300000
    serve disk0 /tmp/disk0.img 5
    DPID=$HPID
    usleep 500000
  done
  touch /tmp/stop
  ddfail=
  for p in $DDS; do wait $p || ddfail=1; done
  kill $WD 2>/dev/null
  same=1
  for w in 0 1 2 3; do
    dd if=/dev/$disk of=/tmp/back3 bs=16k skip=$((2048 + w * 64)) count=64 iflag=direct 2>/dev/null
    cmp -s /tmp/pat3.$w /tmp/back3 || same=
  done
  if [ -z "$ddfail" ] && [ -n "$same" ] && [ $hits = 3 ]; then
    pass "3 kill -9/restart cycles, each with writes in flight, under 8 parallel readers/writers: all I/O completed, data intact"
  else
    bad "kill cycles: ddfail=$ddfail same=$same cycles with writes in flight=$hits"
  fi

  # -- 7. error handling: a READ the handler holds times out; eh sends ABORT TASK
  kill -9 $DPID; wait $DPID 2>/dev/null
  serve disk0 /tmp/disk0.img 0 2048
  DPID=$HPID
  echo 4 > /sys/block/$disk/device/timeout
  t0=$(up)
  if dd if=/dev/$disk of=/tmp/back3 bs=4k skip=256 count=1 iflag=direct 2>/dev/null &&
     dd if=/tmp/disk0.img of=/tmp/img3 bs=4k skip=256 count=1 2>/dev/null &&
     cmp -s /tmp/back3 /tmp/img3 && grep -q "TMF function 1" /tmp/handler-disk0.log; then
    pass "timed-out READ: ABORT TASK sent to the handler, command retried with correct data ($t0 -> $(up)s)"
  else
    bad "eh abort path: $(tail -3 /tmp/handler-disk0.log)"; dmesg | tail -15
  fi

  # -- 7b. escalation: the handler ignores ABORT TASK; the kernel's wait times
  #        out (tmf_timeout_secs) and eh escalates to LOGICAL UNIT RESET
  kill -9 $DPID; wait $DPID 2>/dev/null
  serve disk0 /tmp/disk0.img 0 3072 noabort
  DPID=$HPID
  echo 2 > /sys/module/scstu/parameters/tmf_timeout_secs
  t0=$(up)
  if dd if=/dev/$disk of=/tmp/back3 bs=4k skip=384 count=1 iflag=direct 2>/dev/null &&
     dd if=/tmp/disk0.img of=/tmp/img3 bs=4k skip=384 count=1 2>/dev/null &&
     cmp -s /tmp/back3 /tmp/img3 && grep -q "TMF function 1 .*(ignored)" /tmp/handler-disk0.log &&
     grep -q "TMF function 4" /tmp/handler-disk0.log; then
    pass "ABORT TASK unanswered: timed out, eh escalated to LOGICAL UNIT RESET, command retried with correct data ($t0 -> $(up)s)"
  else
    bad "eh escalation: $(tail -4 /tmp/handler-disk0.log)"; dmesg | tail -15
  fi
  echo 10 > /sys/module/scstu/parameters/tmf_timeout_secs
  echo 30 > /sys/block/$disk/device/timeout

  # -- 8. a hostile handler: broken completions fail their command, nothing else
  kill -9 $DPID; wait $DPID 2>/dev/null
  serve disk0 /tmp/disk0.img 0 -1 hostile
  DPID=$HPID
  rd() { dd if=/dev/$disk of=/tmp/h$1 bs=512 skip=$1 count=1 iflag=direct 2>/dev/null; }
  hfail=
  for l in 4096 4097 4098; do rd $l && hfail="$hfail $l-accepted"; done
  for l in 4099 4100 4101; do
    dd if=/tmp/disk0.img of=/tmp/i$l bs=512 skip=$l count=1 2>/dev/null
    rd $l && cmp -s /tmp/h$l /tmp/i$l || hfail="$hfail $l-failed"
  done
  nbad=$(dmesg | grep -c 'bad completion')
  if [ -z "$hfail" ] && [ "$nbad" -ge 3 ] && grep -q "bogus tail refused" /tmp/handler-disk0.log &&
     grep -q "mmap beyond the region refused" /tmp/handler-disk0.log &&
     ! grep -q "not refused" /tmp/handler-disk0.log && kill -0 $DPID; then
    pass "hostile handler: bad sense_len/transferred/status fail their READ, bad tag/seq/tail dropped ($nbad bad completions logged), mmap beyond the region refused"
  else
    bad "hostile handler:$hfail ($nbad logged) $(tail -3 /tmp/handler-disk0.log)"
  fi

  # -- 9. no handler: commands are held, then fail after hold_secs
  kill -9 $DPID; wait $DPID 2>/dev/null
  echo 3 > /sys/module/scstu/parameters/hold_secs
  sleep 4
  if dd if=/dev/$disk of=/dev/null bs=4k count=1 iflag=direct 2>/dev/null; then
    bad "read without a handler beyond hold_secs succeeded"
  else
    pass "no handler for > hold_secs: I/O fails instead of hanging"
  fi
  echo 30 > /sys/module/scstu/parameters/hold_secs
  serve disk0 /tmp/disk0.img
  DPID=$HPID
  if dd if=/dev/$disk of=/tmp/back6 bs=256k skip=8 count=16 iflag=direct 2>/dev/null &&
     dd if=/tmp/disk0.img of=/tmp/img6 bs=256k skip=8 count=16 2>/dev/null &&
     cmp -s /tmp/img6 /tmp/back6 && kill -0 $DPID; then
    pass "a new handler after the hostile one found the header intact (restored on attach) and serves I/O"
  else
    bad "re-attach after the hostile handler: $(tail -2 /tmp/handler-disk0.log)"
  fi
fi

# -- 10. fileio_tgt --kernel on a second device: identity from the create,
#        data, a file system, kill -9 during a dd and restart
if [ -x /sbin/fileio_tgt ]; then
  lserve() { fileio_tgt --kernel disk1 /tmp/disk1.img 2>>/tmp/handler-disk1.log & LIBPID=$!; }
  truncate -s 64M /tmp/disk1.img
  # 64 tags but a 2 MiB data area: 8 tags own a 256 KiB slot, so 8 commands at a time
  $H create disk1 0 SCSTU KMODLIB SN-LIB-1 1 64 262144 2097152 || bad "create disk1"
  lserve
  ldisk=
  for i in $(seq 1 300); do
    for m in /sys/block/sd*/device/model; do
      grep -q KMODLIB $m 2>/dev/null && ldisk=$(basename $(dirname $(dirname $m)))
    done
    [ -n "$ldisk" ] && break
    usleep 100000
  done
  if [ -n "$ldisk" ] && wait_for /dev/$ldisk 5; then
    inq=$(sg_inq /dev/$ldisk 2>&1); cap=$(sg_readcap /dev/$ldisk 2>&1)
    if echo "$inq" | grep -q "Vendor identification: SCSTU" &&
       echo "$inq" | grep -q "Product identification: KMODLIB" &&
       echo "$inq" | grep -q "Unit serial number: SN-LIB-1" && echo "$cap" | grep -q "Last LBA=131071"; then
      pass "fileio_tgt: disk1 is /dev/$ldisk, sg_inq SCSTU/KMODLIB/SN-LIB-1 (the create's), sg_readcap 131072 x 512"
    else
      bad "fileio_tgt: sg_inq/sg_readcap: $inq $cap"
    fi
    # REPORT SUPPORTED OPERATION CODES lists what the unit executes: READ(10)
    # and REPORT LUNS, but no EXTENDED COPY / RECEIVE COPY RESULTS (83h/84h):
    # no copy manager fronts a kernel-shim unit.
    ops=$(sg_opcodes /dev/$ldisk 2>&1)
    has() { echo "$ops" | awk -v op="$1" 'tolower($1) == op {f = 1} END {exit !f}'; }
    if has 28 && has a0 && ! has 83 && ! has 84; then
      pass "fileio_tgt: sg_opcodes lists READ(10) and REPORT LUNS, no 83h/84h (no copy manager)"
    else
      bad "fileio_tgt: sg_opcodes: $ops"
    fi
    qd=$(cat /sys/block/$ldisk/device/queue_depth)
    [ "$qd" = 8 ] && pass "a 2 MiB data area for 64 tags of 256 KiB gives queue depth 8" ||
      bad "queue depth of disk1 is $qd, not 8"
    if out=$(fileio_tgt --kernel disk1 /tmp/disk1.img 2>&1); then
      bad "a second fileio_tgt on disk1 started: $out"
    else
      echo "$out" | grep -q "another handler is attached" &&
        pass "a second fileio_tgt on disk1 is refused: $out" || bad "second fileio_tgt: $out"
    fi
    head -c 4194304 /dev/urandom > /tmp/pat4
    dd if=/tmp/pat4 of=/dev/$ldisk bs=256k seek=8 oflag=direct 2>/dev/null
    dd if=/dev/$ldisk of=/tmp/back4 bs=256k skip=8 count=16 iflag=direct 2>/dev/null
    dd if=/tmp/disk1.img of=/tmp/img4 bs=256k skip=8 count=16 2>/dev/null
    cmp -s /tmp/pat4 /tmp/back4 && cmp -s /tmp/pat4 /tmp/img4 &&
      pass "fileio_tgt: 4 MiB pattern written, read back, found in the image" ||
      bad "fileio_tgt: dd pattern mismatch"
    if mkfs.ext4 -F -q /dev/$ldisk > /tmp/mkfs4.log 2>&1 && mount -t ext4 /dev/$ldisk /mnt; then
      cp /tmp/pat4 /mnt/pattern && echo hello > /mnt/hello && mkdir /mnt/dir &&
        for i in 1 2 3 4; do head -c 100000 /dev/urandom > /mnt/dir/f$i; done
      md5a=$(cat /mnt/pattern /mnt/hello /mnt/dir/* | md5sum)
      umount /mnt
      echo 3 > /proc/sys/vm/drop_caches
      if e2fsck -f -n /dev/$ldisk > /tmp/fsck4.log 2>&1; then
        mount -t ext4 -o ro /dev/$ldisk /mnt
        md5b=$(cat /mnt/pattern /mnt/hello /mnt/dir/* | md5sum)
        umount /mnt
        [ "$md5a" = "$md5b" ] &&
          pass "fileio_tgt: mkfs.ext4, mount, write files, umount, fsck -f clean, contents intact" ||
          bad "fileio_tgt: file contents differ after remount"
      else
        bad "fileio_tgt: fsck: $(cat /tmp/fsck4.log)"
      fi
    else
      bad "fileio_tgt: mkfs/mount: $(cat /tmp/mkfs4.log)"
    fi
    # 1 MiB writes split into 256 KiB commands: several in flight at once
    head -c 16777216 /dev/urandom > /tmp/pat5
    dd if=/tmp/pat5 of=/dev/$ldisk bs=1M seek=32 oflag=direct 2>/tmp/dd5.err &
    DD=$!
    writes_in_flight $ldisk 1
    if kill -0 $DD 2>/dev/null; then running=1; else running=; fi
    kill -9 $LIBPID; wait $LIBPID 2>/dev/null
    sleep 1
    rq=$(dmesg | sed -n 's/.*disk1: handler detached (generation [0-9]*), \([0-9]*\) in-flight.*/\1/p' | tail -1)
    lserve
    if [ -z "$running" ]; then
      bad "fileio_tgt: the 16 MiB dd finished before the kill -9 (nothing to recover)"
    elif wait $DD; then
      dd if=/dev/$ldisk of=/tmp/back5 bs=1M skip=32 count=16 iflag=direct 2>/dev/null
      dd if=/tmp/disk1.img of=/tmp/img5 bs=1M skip=32 count=16 2>/dev/null
      cmp -s /tmp/pat5 /tmp/back5 && cmp -s /tmp/pat5 /tmp/img5 && kill -0 $LIBPID &&
        pass "fileio_tgt: kill -9 during a 16 MiB dd ($rq in flight requeued), restarted: dd completed, data intact" ||
        bad "fileio_tgt: data differs after kill -9/restart"
    else
      bad "fileio_tgt: dd failed across kill -9/restart: $(cat /tmp/dd5.err)"
    fi
    rm -f /tmp/back4 /tmp/img4 /tmp/back5 /tmp/img5 /tmp/pat5
  else
    bad "fileio_tgt: no sd device for disk1"; tail -5 /tmp/handler-disk1.log
  fi
  $H remove disk1 || bad "remove disk1"
  kill -9 $LIBPID 2>/dev/null; wait $LIBPID 2>/dev/null
else
  echo "MARKER SKIP: fileio_tgt steps (SCSTU_FILEIO_TGT not given)"
fi

# -- 11. a tape and a changer: device nodes
$H create tape0 1 SCSTU KMODTAPE SN-TAPE0
if [ -x /sbin/fileio_tgt ]; then
  if out=$(fileio_tgt --kernel tape0 /tmp/disk0.img 2>&1); then
    bad "fileio_tgt served the tape device tape0 as a disk: $out"
  else
    echo "$out" | grep -q "created as device type 1 (tape)" &&
      pass "fileio_tgt refuses the tape device tape0: $out" || bad "fileio_tgt on tape0: $out"
  fi
fi
serve tape0 && TPID=$HPID
if wait_for "/sys/class/scsi_tape/nst*" 30; then
  st=$(basename $(ls -d /sys/class/scsi_tape/nst* | grep -v 'nst[0-9]*[lma]$' | head -1))
  wait_for /dev/$st 5 && [ -c /dev/$st ] && pass "tape0 is /dev/$st" || bad "no /dev/$st node"
else
  bad "no scsi_tape for tape0"; cat /tmp/handler-tape0.log
fi
$H create chg0 8 SCSTU KMODCHGR SN-CHG0 && serve chg0 && CPID=$HPID
sgc=
for i in $(seq 1 300); do
  for t in /sys/class/scsi_generic/sg*/device/type; do
    [ "$(cat $t 2>/dev/null)" = 8 ] && sgc=$(basename $(dirname $(dirname $t)))
  done
  [ -n "$sgc" ] && break
  usleep 100000
done
if [ -n "$sgc" ] && wait_for /dev/$sgc 5 && sg_inq /dev/$sgc 2>&1 | grep -q KMODCHGR; then
  pass "changer chg0 is /dev/$sgc (sg_inq: KMODCHGR, type 8)"
else
  bad "no sg node for the changer: $sgc"
fi

$H create cd0 5 SCSTU KMODCD SN-CD0 && serve cd0 && RPID=$HPID
if wait_for "/sys/class/block/sr*" 30 && sr=$(basename $(ls -d /sys/class/block/sr* | head -1)) &&
   wait_for /dev/$sr 5; then
  pass "cd-rom cd0 is /dev/$sr"
else
  bad "no sr device for cd0"; dmesg | tail -10
fi
$H remove cd0 || bad "remove cd0"
kill -9 $RPID; wait $RPID 2>/dev/null

# -- 12. removal: devices with handlers attached, one with I/O in flight
$H remove tape0 && $H remove chg0 && [ ! -e /dev/scstu/tape0 ] && pass "removed tape0 and chg0" ||
  bad "remove tape0/chg0"
if [ -n "$disk" ]; then
  (while dd if=/dev/$disk of=/dev/null bs=256k count=64 iflag=direct 2>/dev/null; do :; done) &
  LOOP=$!
  sleep 1
  t0=$(up)
  if $H remove disk0; then
    wait $LOOP
    [ ! -e /sys/block/$disk ] && pass "removed disk0 with reads in flight ($t0 -> $(up)s)" ||
      bad "disk0 still present after remove"
  else
    bad "remove disk0"; kill $LOOP
  fi
fi
kill -9 $DPID $TPID $CPID 2>/dev/null; wait $DPID $TPID $CPID 2>/dev/null

# -- 13. rmmod: refused while a handler holds a device, cleans up devices otherwise
$H create left0 0 && $H create left1 0 && serve left1 /tmp/disk0.img && LPID=$HPID
sleep 1
if rmmod scstu 2>/dev/null; then
  bad "rmmod succeeded while a handler had /dev/scstu/left1 open"
else
  pass "rmmod refused while a handler is attached"
fi
kill -9 $LPID; wait $LPID 2>/dev/null
if rmmod scstu && [ ! -e /dev/scstu-ctl ] && [ -z "$(ls /sys/class/scsi_host/ 2>/dev/null)" ]; then
  pass "rmmod with devices left0/left1 present cleaned them up"
else
  bad "rmmod: $(ls /sys/class/scsi_host/)"
fi

if dmesg | grep -qE 'BUG:|WARNING:|Oops|general protection|KASAN|list_del corruption'; then
  bad "kernel warnings:"; dmesg | grep -E -A5 'BUG:|WARNING:|Oops|general protection'
else
  pass "no kernel BUG/WARNING/Oops in dmesg"
fi
echo "--- scstu kernel log"; dmesg | grep -E 'scstu|sd |st |ch ' | tail -60
echo "--- handler logs"; tail -n 20 /tmp/handler-*.log
[ $fail = 0 ] || { echo "--- dmesg tail"; dmesg | tail -40; }
echo "MARKER: done at $(up)s"
[ $fail = 0 ] && echo "GUEST_RESULT: PASS" || echo "GUEST_RESULT: FAIL"
sync
poweroff -f
