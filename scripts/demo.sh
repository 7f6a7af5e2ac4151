#!/usr/bin/env bash
# demo.sh - the main job: install what is missing, build, serve a demo disk
# image over iSCSI on 127.0.0.1 with fileio_tgt (embedded mode), and read it
# back with real initiators (libiscsi's tools and qemu-img).
#   PORT=3260 KEEP=1 scripts/demo.sh    (KEEP=1 leaves the target running)
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
scripts/build.sh build >/dev/null

PORT=${PORT:-3260}
IQN=iqn.2026-11.io.scstu:demo
WORK=$(mktemp -d /tmp/scstu-demo.XXXXXX)
IMG=$WORK/disk0.img
URL=iscsi://127.0.0.1:$PORT/$IQN/0

echo "== a 64 MiB demo image with a random pattern in its first 4 MiB"
truncate -s 64M "$IMG"
head -c 4M /dev/urandom > "$WORK/pattern.raw"
dd if="$WORK/pattern.raw" of="$IMG" conv=notrunc status=none

echo "== fileio_tgt --iscsi 127.0.0.1:$PORT --target $IQN disk0 $IMG"
build/fileio_tgt/fileio_tgt --iscsi "127.0.0.1:$PORT" --target "$IQN" disk0 "$IMG" \
  > "$WORK/fileio_tgt.log" 2>&1 &
TGT=$!
stop() { [[ ${KEEP:-0} == 1 ]] || { kill "$TGT" 2>/dev/null; wait "$TGT" 2>/dev/null || true; }; }
trap stop EXIT
for _ in $(seq 50); do
  iscsi-ls "iscsi://127.0.0.1:$PORT" >/dev/null 2>&1 && break
  kill -0 "$TGT" 2>/dev/null || { cat "$WORK/fileio_tgt.log"; exit 1; }
  sleep 0.1
done

echo "== discovery: iscsi-ls"
iscsi-ls "iscsi://127.0.0.1:$PORT"
echo "== iscsi-inq $URL"
iscsi-inq "$URL"
echo "== iscsi-readcapacity16 $URL"
iscsi-readcapacity16 "$URL"
echo "== read the first 4 MiB back with qemu-img (libiscsi) and compare"
qemu-img convert -f raw -O raw "$URL" "$WORK/readback.raw"
if cmp -n 4194304 "$WORK/pattern.raw" "$WORK/readback.raw"; then
  echo "demo: PASS, the initiator read back exactly what the image holds"
else
  echo "demo: FAIL, data differs"; exit 1
fi
if [[ ${KEEP:-0} == 1 ]]; then echo "target still running (pid $TGT): $URL"; fi
