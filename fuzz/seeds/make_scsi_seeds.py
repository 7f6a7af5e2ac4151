#!/usr/bin/env python3
"""Writes the seed inputs of lu_parameter_lists_fuzz and ring_session_fuzz
(fuzz/seeds/<target>/). Run from anywhere after changing a target's input
layout. Each seed is a valid command with a valid parameter list (SBC-3 /
SPC-4), so the fuzzer starts past the length and header checks.
"""
import os
import struct

ROOT = os.path.dirname(os.path.abspath(__file__))
HEADER_BYTES = 248  # sizeof(struct scstu_region_header), ring_abi.h

# Index into lu_parameter_lists_fuzz.cpp's kCommands.
UNMAP, WS10, WS16, WS32, CAW, ORWRITE, WATOMIC, FORMAT, SANITIZE, LOGSEL, SENDDIAG, \
    MS6, MS10, RESERVE10, PROUT, PROUT2, PRIN, INQUIRY, MSENSE10 = range(19)


def lu(cmd, cdb, data=b"", session=0):
    return bytes([cmd, session]) + bytes(cdb) + data


def be(v, n):
    return v.to_bytes(n, "big")


def pr_out(sa, key, sa_key, type_=0, flags=0, extra=b""):
    params = be(key, 8) + be(sa_key, 8) + bytes(4) + bytes([flags, 0, 0, 0]) + extra
    cdb = [0x5F, sa, type_, 0, 0] + list(be(len(params), 4)) + [0]
    return cdb, params


def transport_id(name):
    text = name.encode() + b"\0"
    text += bytes(-len(text) % 4)
    if len(text) < 20:
        text += bytes(20 - len(text))
    return bytes([0x05, 0]) + be(len(text), 2) + text


LU_SEEDS = {
    "unmap": lu(UNMAP, [0x42, 0, 0, 0, 0, 0, 0, 0, 24, 0],
                be(22, 2) + be(16, 2) + bytes(4) + be(8, 8) + be(8, 4) + bytes(4)),
    "write-same10": lu(WS10, [0x41, 0, 0, 0, 0, 4, 0, 0, 8, 0], bytes([0xA5]) * 512),
    "write-same16-unmap": lu(WS16, [0x93, 0x08] + list(be(0, 8)) + list(be(16, 4)) + [0, 0],
                             bytes(512)),
    "write-same32": lu(WS32, [0x7F, 0, 0, 0, 0, 0, 0, 0x18, 0x00, 0x0D, 0x00, 0]
                       + list(be(2, 8)) + [0] * 8 + list(be(4, 4)), bytes([1]) * 512),
    "compare-and-write": lu(CAW, [0x89, 0] + list(be(0, 8)) + [0, 0, 0, 1, 0, 0],
                            bytes(512) + bytes([7]) * 512),
    "orwrite16": lu(ORWRITE, [0x8B, 0] + list(be(1, 8)) + list(be(1, 4)) + [0, 0],
                    bytes([0x0F]) * 512),
    "write-atomic16": lu(WATOMIC, [0x9C, 0] + list(be(2, 8)) + [0, 0, 0, 2, 0, 0],
                         bytes([3]) * 1024),
    "format-unit": lu(FORMAT, [0x04, 0x10, 0, 0, 0, 0], bytes([0, 0x02, 0, 0])),
    "sanitize-overwrite": lu(SANITIZE, [0x48, 0x81, 0, 0, 0, 0, 0, 0, 8, 0],
                             bytes([0x01, 0, 0, 4, 0xDE, 0xAD, 0xBE, 0xEF])),
    "sanitize-block-erase": lu(SANITIZE, [0x48, 0x02, 0, 0, 0, 0, 0, 0, 0, 0]),
    "log-select-pcr": lu(LOGSEL, [0x4C, 0x02, 0xC0, 0, 0, 0, 0, 0, 0, 0]),
    "log-select-list": lu(LOGSEL, [0x4C, 0x00, 0x40 | 0x0D, 0, 0, 0, 0, 0, 12, 0],
                          bytes([0x0D, 0, 0, 8, 0, 0, 0x03, 2, 0, 0x25, 0, 0])),
    "send-diagnostic-selftest": lu(SENDDIAG, [0x1D, 0x04, 0, 0, 0, 0]),
    "send-diagnostic-page": lu(SENDDIAG, [0x1D, 0x10, 0, 0, 4, 0], bytes([0, 0, 0, 0])),
    "mode-select6-caching": lu(MS6, [0x15, 0x10, 0, 0, 24, 0],
                               bytes([0, 0, 0, 0]) + bytes([0x08, 0x12, 0x04]) + bytes(17)),
    "mode-select10-control-save": lu(MS10, [0x55, 0x11, 0, 0, 0, 0, 0, 0, 20, 0],
                                     bytes(8) + bytes([0x0A, 0x0A, 0x04]) + bytes(9)),
    "reserve10": lu(RESERVE10, [0x56, 0, 0, 0, 0, 0, 0, 0, 0, 0]),
    "pr-in-full-status": lu(PRIN, [0x5E, 0x03, 0, 0, 0, 0, 0, 0x10, 0, 0]),
    "inquiry-vpd83": lu(INQUIRY, [0x12, 0x01, 0x83, 0x01, 0x00, 0]),
    "mode-sense10-all": lu(MSENSE10, [0x5A, 0, 0x3F, 0, 0, 0, 0, 0x10, 0, 0]),
}
for name, (sa, type_, flags, extra, session) in {
        "pr-register": (0x00, 0, 0, b"", 0),
        "pr-register-aptpl": (0x00, 0, 0x01, b"", 1),
        "pr-register-all-tg-pt": (0x00, 0, 0x04, b"", 2),
        "pr-reserve-we": (0x01, 1, 0, b"", 0),
        "pr-release": (0x02, 1, 0, b"", 0),
        "pr-clear": (0x03, 0, 0, b"", 0),
        "pr-preempt-abort": (0x05, 3, 0, b"", 1),
        "pr-register-ignore": (0x06, 0, 0, b"", 2),
}.items():
    key = 0 if sa in (0x00, 0x06) else 0x1111
    cdb, params = pr_out(sa, key, 0x1111 + session, type_, flags, extra)
    LU_SEEDS[name] = lu(PROUT, cdb, params, session)
# REGISTER AND MOVE to the other initiator on port 2: the TransportID list.
tid = transport_id("iqn.2026-11.fuzz:b")
params = be(0x1111, 8) + be(0x2222, 8) + bytes([0, 0, 0, 0]) + be(len(tid), 4)
params = params[:18] + be(2, 2) + params[20:]  # RELATIVE TARGET PORT IDENTIFIER
LU_SEEDS["pr-register-and-move"] = lu(PROUT, [0x5F, 0x07, 0x01, 0, 0] + list(
    be(len(params) + len(tid), 4)) + [0], params + tid)


def session_info(sid, port, proto, name, tid, target):
    def s(v, n):
        v = v.encode()[:n - 1]
        return v + bytes(n - len(v))
    return struct.pack("<QHHI", sid, port, proto, 0) + s(name, 256) + s(tid, 264) + s(target, 256)


def write(dirname, name, data):
    d = os.path.join(ROOT, dirname)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, name), "wb") as f:
        f.write(data)


for name, data in LU_SEEDS.items():
    write("lu_parameter_lists_fuzz", name, data)


# ring_session_fuzz: [region header][mapped size][session info][PR OUT SA, type].
# The header is left zero (the fuzzer finds the magic and sizes by itself);
# the sessions are what producers send.
HEADER = bytes(HEADER_BYTES) + bytes(8)
SESSIONS = {
    "iscsi-isid": session_info(7, 1, 5, "iqn.2026-11.fuzz:a", "iqn.2026-11.fuzz:a,i,0x400000000001",
                               "iqn.2026-11.fuzz:t"),
    "iscsi-name-only": session_info(8, 2, 5, "iqn.2026-11.Fuzz:UPPER", "", "iqn.2026-11.fuzz:t"),
    "kernel-local": session_info(0, 1, 0xF, "local", "", ""),
}
for name, info in SESSIONS.items():
    write("ring_session_fuzz", name, HEADER + info + bytes([0x01, 0x01]))


# admin_wire_fuzz: framed AdminRequests (4-byte big-endian length + protobuf),
# encoded by protoc from text so the seeds follow tools/config.proto.
def admin_frames(requests):
    import subprocess
    proto_dir = os.path.join(ROOT, "..", "..", "tools")
    out = b""
    for text in requests:
        body = subprocess.run(["protoc", "-I", proto_dir, "--encode=scstu.config.AdminRequest",
                               "config.proto"], input=text.encode(), capture_output=True,
                              check=True).stdout
        out += len(body).to_bytes(4, "big") + body
    return out


ADMIN_SEEDS = {
    "list-everything": ["list_targets {}", "list_devices {}", "list_sessions {}",
                        "list_groups {}", "show_config {}", "version {}", "log_level: \"\""],
    "group-lun-initiator": ['add_group: "hosts"', 'group: "hosts" add_lun { lun: 0 device: "disk0" }',
                            'group: "hosts" add_initiator: "iqn.2026-11.fuzz:*"',
                            'group: "hosts" del_lun { device: "disk0" }', 'del_group: "hosts"'],
    "device-target-chap": ['add_device { name: "disk1" file { path: "x" thin: true } }',
                           'add_target { name: "iqn.2026-11.fuzz:t2" }',
                           'set_chap { target: "iqn.2026-11.fuzz:t2" chap { user: "u" secret: "secretsecret12" } }',
                           'statistics { device: "disk1" clear: true }', 'resync_size: "disk1"',
                           'del_device: "disk1"', 'del_target: "iqn.2026-11.fuzz:t2"'],
    "cdrom-medium": ['add_device { name: "cd1" file { cdrom: true } }',
                     'change_medium { device: "cd1" path: "x" }',
                     'change_medium { device: "cd1" }', 'del_device: "cd1"'],
}
for name, requests in ADMIN_SEEDS.items():
    write("admin_wire_fuzz", name, admin_frames(requests))
