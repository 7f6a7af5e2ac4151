#!/usr/bin/env bash
# run_kmod_test.sh - test kmod/ (scstu.ko) in QEMU: this machine's kernel has
# no module support, so build the module against Debian 12's kernel headers,
# boot Debian's own kernel under TCG with an initramfs holding busybox, the
# module, the handler and the SCSI tools, and run the steps in guest_init.sh.
# Each step prints "MARKER PASS: ..." or "MARKER FAIL: ..." on the serial
# console; this script passes when every step passed.
#
# Works from a clean checkout on a fresh Debian 12 machine: installs what it
# needs with apt-get (INSTALL=0 to forbid), caches the unpacked kernel under
# $WORK (never in the repository).
#
# Environment:
#   WORK=/tmp/scstu-kmod    cache + build + logs
#   SCSTU_FILEIO_TGT=       fileio_tgt built by CMake (ctest sets it): the disk steps
#                           run it with --kernel (else kmod_test_handler; its own steps skip)
#   TIMEOUT=280             hard limit for the guest, seconds
#   MEM=768 SMP=2 ACCEL=tcg
#   INSTALL=1               apt-get install missing packages
#   QEMU=qemu-system-x86_64  the emulator
#   KVER=                   another Debian 12 kernel ABI, e.g. 6.12.117+deb12-amd64
#                           (default: the one linux-headers-amd64 points at)
# Exit: 0 pass, 1 fail, 77 skipped (QEMU or the kernel cannot be made to run here).
set -euo pipefail

HERE=$(cd "$(dirname "$0")" && pwd)
SRC=$(cd "$HERE/../.." && pwd)
WORK=${WORK:-/tmp/scstu-kmod}
TIMEOUT=${TIMEOUT:-280}
MEM=${MEM:-768}
SMP=${SMP:-2}
ACCEL=${ACCEL:-tcg}
INSTALL=${INSTALL:-1}
QEMU=${QEMU:-qemu-system-x86_64}
SKIP=77

log() { echo "[kmod-test $(date +%T)] $*" >&2; }
skip() { log "SKIPPED: $*"; exit $SKIP; }

# ---------------------------------------------------------------- packages
PKGS=(qemu-system-x86 linux-headers-amd64 busybox-static cpio kmod make gcc libc6-dev
      sg3-utils e2fsprogs mt-st)
missing=()
for p in "${PKGS[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if ((${#missing[@]})); then
  [[ $INSTALL == 1 && $(id -u) == 0 ]] || skip "missing packages: ${missing[*]} (run as root with INSTALL=1)"
  log "installing: ${missing[*]}"
  DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "${missing[@]}" >&2 ||
    skip "apt-get install ${missing[*]} failed"
fi
command -v "$QEMU" >/dev/null || skip "no $QEMU"

# The kernel ABI the headers metapackage points at (the host's kernel is irrelevant).
if [[ -z ${KVER:-} ]]; then
  KVER=$(dpkg-query -W -f='${Depends}' linux-headers-amd64 |
         sed -n 's/.*linux-headers-\([0-9][^ ,]*-amd64\).*/\1/p')
elif [[ ! -e /usr/src/linux-headers-$KVER/Makefile && $INSTALL == 1 && $(id -u) == 0 ]]; then
  DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "linux-headers-$KVER" >&2 ||
    skip "apt-get install linux-headers-$KVER failed"
fi
HDRS=/usr/src/linux-headers-$KVER
[[ -n $KVER && -e $HDRS/Makefile ]] || skip "no kernel headers for '$KVER'"

mkdir -p "$WORK"
exec 9>"$WORK/.lock"
flock 9   # one run at a time per $WORK

# ------------------------------------ the matching kernel image, unpacked
KROOT=$WORK/kernel-$KVER
if [[ ! -e $KROOT/.unpacked ]]; then
  rm -rf "$KROOT" "$WORK/debs"
  mkdir -p "$WORK/debs"
  deb=$(ls /var/cache/apt/archives/linux-image-"$KVER"_*_amd64.deb 2>/dev/null | tail -1 || true)
  if [[ -z $deb ]]; then
    (cd "$WORK/debs" && apt-get download "linux-image-$KVER" >&2 2>/dev/null) ||
      skip "apt-get download linux-image-$KVER failed"
    deb=$(ls "$WORK"/debs/linux-image-"$KVER"_*_amd64.deb | tail -1)
  fi
  dpkg-deb -x "$deb" "$KROOT"
  [[ -d $KROOT/lib/modules/$KVER ]] || mv "$KROOT/usr/lib/modules" "$KROOT/lib/modules"
  depmod -b "$KROOT" "$KVER"
  touch "$KROOT/.unpacked"
  rm -rf "$WORK/debs"
  log "unpacked linux-image-$KVER"
fi
KERNEL=$KROOT/boot/vmlinuz-$KVER
MODDIR=$KROOT/lib/modules/$KVER
[[ -e $KERNEL && -e $MODDIR/modules.dep ]] || skip "kernel image incomplete under $KROOT"

# ------------------------------------------------ build scstu.ko (W=1, no warnings)
B=$WORK/build
rm -rf "$B"
mkdir -p "$B/kmod"
cp "$SRC"/kmod/Kbuild "$SRC"/kmod/*.c "$SRC"/kmod/*.h "$SRC"/libscstuser/ring/ring_abi.h "$B/kmod/"
CHECK=()
command -v sparse >/dev/null && CHECK=(C=1)   # sparse, when installed, must be quiet too
if ! make -C "$HDRS" M="$B/kmod" W=1 "${CHECK[@]}" modules > "$B/kmod-build.log" 2>&1; then
  cat "$B/kmod-build.log" >&2
  log "FAIL: scstu.ko does not build"; exit 1
fi
if grep -E 'warning:|error:' "$B/kmod-build.log" >&2; then
  log "FAIL: scstu.ko builds with warnings"; exit 1
fi
log "built scstu.ko with W=1 ${CHECK[*]}, no warnings ($(modinfo -F vermagic "$B/kmod/scstu.ko"))"

# The test handler: static, so it needs no library closure in the guest.
gcc -O2 -Wall -Wextra -Werror -static -I "$SRC/libscstuser/ring" \
  "$HERE/kmod_test_handler.c" -o "$B/kmod_test_handler"

# ---------------------------------------------------------------- initramfs
STAGE=$B/initramfs
mkdir -p "$STAGE"/{bin,sbin,dev,proc,sys,tmp,mnt,etc,lib64,lib/x86_64-linux-gnu,"lib/modules/$KVER/extra"}
cp /bin/busybox "$STAGE/bin/busybox"
ln -s busybox "$STAGE/bin/sh"
MODS=(scsi_mod sd_mod sg st sr_mod ch ext4 crc32c_generic)
for m in "${MODS[@]}"; do
  modprobe -d "$KROOT" -S "$KVER" -D "$m"
done | awk '$1 == "insmod" {print $2}' | sort -u | while read -r f; do
  install -D -m 0644 "$f" "$STAGE/lib/modules/$KVER/${f#"$MODDIR"/}"
done
cp "$MODDIR"/modules.{order,builtin,builtin.modinfo} "$STAGE/lib/modules/$KVER/"
cp "$B/kmod/scstu.ko" "$STAGE/lib/modules/$KVER/extra/"
depmod -b "$STAGE" "$KVER"

# Tools and their shared-library closures.
TOOLS=(/usr/bin/sg_inq /usr/bin/sg_readcap /usr/bin/sg_opcodes /sbin/mke2fs /sbin/e2fsck /bin/mt-st)
for t in "${TOOLS[@]}"; do
  [[ -x $t ]] || { log "FAIL: missing $t"; exit 1; }
  cp "$t" "$STAGE/sbin/"
  ldd "$t" | awk '$2 == "=>" && $3 ~ /^\// {print $3} $1 ~ /^\/lib64\// {print $1}'
done | sort -u | while read -r lib; do
  case $lib in /lib64/*) dst=$STAGE$lib ;; *) dst=$STAGE/lib/x86_64-linux-gnu/$(basename "$lib") ;; esac
  cp -L "$lib" "$dst"
done
ln -sf mke2fs "$STAGE/sbin/mkfs.ext4"
ln -sf mt-st "$STAGE/sbin/mt"
cp /etc/mke2fs.conf "$STAGE/etc/" 2>/dev/null || true
cp "$B/kmod_test_handler" "$STAGE/sbin/"
FILEIO_TGT=${SCSTU_FILEIO_TGT:-}
if [[ -n $FILEIO_TGT && -x $FILEIO_TGT ]]; then
  cp "$FILEIO_TGT" "$STAGE/sbin/fileio_tgt"
  ldd "$FILEIO_TGT" | awk '$2 == "=>" && $3 ~ /^\// {print $3} $1 ~ /^\/lib64\// {print $1}' |
  while read -r lib; do
    case $lib in /lib64/*) dst=$STAGE$lib ;; *) dst=$STAGE/lib/x86_64-linux-gnu/$(basename "$lib") ;; esac
    cp -L "$lib" "$dst"
  done
  log "fileio_tgt: $FILEIO_TGT"
else
  log "no SCSTU_FILEIO_TGT (build the fileio_tgt target): the disk steps use kmod_test_handler"
fi
echo 'root:x:0:0:root:/:/bin/sh' > "$STAGE/etc/passwd"
echo 'nobody:x:65534:65534:nobody:/:/bin/sh' >> "$STAGE/etc/passwd"
cp "$HERE/guest_init.sh" "$STAGE/init"
chmod 0755 "$STAGE/init"
(cd "$STAGE" && find . -print0 | cpio --null -o -H newc --quiet | gzip -1) > "$B/initramfs.cpio.gz"
log "initramfs: $(du -k "$B/initramfs.cpio.gz" | cut -f1) KiB"

# ------------------------------------------------------------------- boot
LOG=$WORK/serial-$KVER.log
CPU=max; [[ $ACCEL == kvm ]] && CPU=host
log "booting $KVER: accel=$ACCEL mem=${MEM}M smp=$SMP, serial -> $LOG"
rc=0
timeout -k 5 "$TIMEOUT" "$QEMU" \
  -accel "$ACCEL" -cpu "$CPU" -m "$MEM" -smp "$SMP" \
  -display none -no-reboot -nodefaults -serial stdio -nic none \
  -kernel "$KERNEL" -initrd "$B/initramfs.cpio.gz" \
  -append "console=ttyS0 panic=-1 quiet" </dev/null > "$LOG" 2>&1 || rc=$?
grep -q 'MARKER' "$LOG" || {
  tail -20 "$LOG" >&2
  [[ $rc == 124 ]] && { log "FAIL: guest timed out before any marker"; exit 1; }
  skip "qemu did not boot the guest (rc=$rc)"
}

grep -E '^MARKER|^GUEST_RESULT' "$LOG" | tr -d '\r' >&2
pass=$(grep -c '^MARKER PASS' "$LOG" || true)
fail=$(grep -c '^MARKER FAIL' "$LOG" || true)
if [[ $rc == 124 ]]; then
  log "FAIL: guest timed out after $TIMEOUT s ($pass passed, $fail failed so far); tail:"
  tail -30 "$LOG" >&2
  exit 1
fi
if [[ $fail == 0 && $pass -gt 0 ]] && grep -q '^GUEST_RESULT: PASS' "$LOG"; then
  log "PASS: $pass steps"
  exit 0
fi
log "FAIL: $fail of $((pass + fail)) steps failed (full log: $LOG)"
exit 1
