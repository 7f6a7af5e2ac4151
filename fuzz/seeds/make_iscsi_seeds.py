#!/usr/bin/env python3
"""Writes the seed inputs of the iSCSI fuzz targets (fuzz/seeds/iscsi_*_fuzz/).

Run from the repository root after changing a target's input layout. The seeds
are valid login conversations and well-formed PDU headers, so the fuzzer starts
from the paths a real initiator takes (RFC 7143 6.x login stages, 11.x PDUs)
instead of having to discover the 48-byte header format by chance.
"""
import os
import struct

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)))


def bhs(opcode, flags, data_len, rest=b"", itt=1, immediate=False):
    """A 48-byte Basic Header Segment: opcode, flags, DataSegmentLength, then
    bytes 8..47 from `rest` (ISID/LUN...), ITT at 16..19 unless rest covers it."""
    b = bytearray(48)
    b[0] = opcode | (0x40 if immediate else 0)
    b[1] = flags
    b[5:8] = data_len.to_bytes(3, "big")
    b[8:8 + len(rest)] = rest
    if len(rest) <= 8:
        b[16:20] = itt.to_bytes(4, "big")
    return bytes(b)


def login_pdu(csg, nsg, transit, keys, tsih=0, cmdsn=1, continued=False):
    text = b"".join(k.encode() + b"\0" for k in keys)
    flags = (0x80 if transit else 0) | (0x40 if continued else 0) | (csg << 2) | nsg
    b = bytearray(bhs(0x03, flags, len(text), immediate=True))
    b[8:14] = bytes([0x80, 0x00, 0x02, 0x3D, 0x00, 0x01])  # ISID: random type
    b[14:16] = tsih.to_bytes(2, "big")
    b[24:28] = cmdsn.to_bytes(4, "big")
    return bytes(b) + len(text).to_bytes(2, "big") + text


OPERATIONAL = [
    "HeaderDigest=CRC32C,None", "DataDigest=None", "MaxRecvDataSegmentLength=262144",
    "MaxBurstLength=1048576", "FirstBurstLength=262144", "InitialR2T=No",
    "ImmediateData=Yes", "MaxOutstandingR2T=1", "DataPDUInOrder=Yes",
    "DataSequenceInOrder=Yes", "ErrorRecoveryLevel=0", "MaxConnections=1",
    "DefaultTime2Wait=2", "DefaultTime2Retain=0",
]

LOGIN_SEEDS = {
    # No authentication: security stage, then operational, then full feature.
    "normal-none": (0, [
        login_pdu(0, 1, True, ["InitiatorName=iqn.i", "TargetName=iqn.t",
                               "SessionType=Normal", "AuthMethod=None"]),
        login_pdu(1, 3, True, OPERATIONAL),
    ]),
    # Straight to the operational stage (allowed when no authentication is required).
    "operational-first": (0, [
        login_pdu(1, 3, True, ["InitiatorName=iqn.i", "TargetName=iqn.t"] + OPERATIONAL),
    ]),
    "discovery": (0, [
        login_pdu(0, 1, True, ["InitiatorName=iqn.i", "SessionType=Discovery",
                               "AuthMethod=None"]),
        login_pdu(1, 3, True, ["HeaderDigest=None", "DataDigest=None",
                               "MaxRecvDataSegmentLength=8192"]),
    ]),
    # CHAP: method, algorithm, then a response (wrong, but well formed) with a
    # mutual challenge.
    "chap": (1, [
        login_pdu(0, 0, False, ["InitiatorName=iqn.i", "TargetName=iqn.t",
                                "SessionType=Normal", "AuthMethod=CHAP,None"]),
        login_pdu(0, 0, False, ["CHAP_A=5"]),
        login_pdu(0, 1, True, ["CHAP_N=alice", "CHAP_R=0x" + "00" * 16,
                               "CHAP_I=7", "CHAP_C=0x" + "5a" * 16]),
        login_pdu(1, 3, True, OPERATIONAL),
    ]),
    # A continued (C bit) first PDU and a non-zero TSIH.
    "continued-tsih": (0, [
        login_pdu(0, 1, False, ["InitiatorName=iqn.i"], tsih=1, continued=True),
        login_pdu(0, 1, True, ["TargetName=iqn.t", "AuthMethod=None"], tsih=1),
    ]),
}


def scsi_command(cdb, lun=0, expected=4096, flags=0xC1):
    rest = bytearray(40)
    rest[0:8] = lun.to_bytes(2, "big") + bytes(6)  # LUN (bytes 8..15)
    rest[8:12] = (5).to_bytes(4, "big")            # ITT
    rest[12:16] = expected.to_bytes(4, "big")      # Expected Data Transfer Length
    rest[16:20] = (1).to_bytes(4, "big")           # CmdSN
    rest[24:24 + len(cdb)] = cdb                   # CDB (bytes 32..47)
    return bhs(0x01, flags, 0, bytes(rest))


PDU_SEEDS = {
    "scsi-read10": scsi_command(bytes([0x28, 0, 0, 0, 0, 0, 0, 0, 8, 0]), flags=0xC1),
    "scsi-write16-imm": scsi_command(bytes([0x8A] + [0] * 9 + [0, 0, 0, 8, 0, 0]),
                                     flags=0xA1) + bytes(512),
    "scsi-ext-cdb-ahs": (lambda h: h[:4] + bytes([5]) + h[5:])(
        scsi_command(bytes([0x7F, 0, 0, 0, 0, 0, 0, 0x18, 0x00, 0x09] + [0] * 6)))
        + struct.pack(">HBB", 17, 1, 0) + bytes(16) + bytes(3),
    "data-out": bhs(0x05, 0x80, 512, bytes(8) + (5).to_bytes(4, "big") +
                    (0x10).to_bytes(4, "big")) + bytes(512),
    "nop-out": bhs(0x00, 0x80, 0, immediate=True),
    "tmf-abort": bhs(0x02, 0x81, 0, immediate=True),
    "text-sendtargets": bhs(0x04, 0x80, 16, immediate=True) + b"SendTargets=All\0",
    "logout": bhs(0x06, 0x80, 0, immediate=True),
    "snack": bhs(0x10, 0x80, 0),
}


def write(dirname, name, data):
    d = os.path.join(ROOT, dirname)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, name), "wb") as f:
        f.write(data)


for name, (chap, pdus) in LOGIN_SEEDS.items():
    write("iscsi_login_keys_fuzz", name, bytes([chap]) + b"".join(pdus))
for name, data in PDU_SEEDS.items():
    write("iscsi_pdu_fuzz", name, data)


# iscsi_connection_fuzz: [mode][byte stream]. Mode 0 and 1 start in full
# feature phase (the harness logs in with CmdSN 0, ExpStatSN 0); mode 2 is a
# whole conversation. PDUs are padded to 4 bytes, without digests.
def pad(data):
    return data + bytes(-len(data) % 4)


def stream_pdu(opcode, flags, data=b"", itt=1, cmdsn=0, lun=0, rest=None, immediate=False):
    b = bytearray(48)
    b[0] = opcode | (0x40 if immediate else 0)
    b[1] = flags
    b[5:8] = len(data).to_bytes(3, "big")
    b[8:16] = lun.to_bytes(2, "big") + bytes(6)
    b[16:20] = itt.to_bytes(4, "big")
    b[24:28] = cmdsn.to_bytes(4, "big")
    if rest:
        for at, value in rest.items():
            b[at:at + len(value)] = value
    return bytes(b) + pad(data)


def command(cdb, itt, cmdsn, expected, flags, data=b""):
    return stream_pdu(0x01, flags, data, itt, cmdsn,
                      rest={20: expected.to_bytes(4, "big"), 32: bytes(cdb) + bytes(16 - len(cdb))})


def data_out(itt, offset, data, datasn=0, final=True, ttt=0xFFFFFFFF):
    return stream_pdu(0x05, 0x80 if final else 0, data, itt,
                      rest={20: ttt.to_bytes(4, "big"), 24: bytes(4),
                            36: datasn.to_bytes(4, "big"), 40: offset.to_bytes(4, "big")})


def text(keys, itt, cmdsn, final=True, cont=False, ttt=0xFFFFFFFF):
    body = b"".join(k.encode() + b"\0" for k in keys)
    return stream_pdu(0x04, (0x80 if final else 0) | (0x40 if cont else 0), body, itt, cmdsn,
                      rest={20: ttt.to_bytes(4, "big")}, immediate=True)


def stream_login(keys, csg, nsg, cmdsn=0):
    body = b"".join(k.encode() + b"\0" for k in keys)
    flags = 0x80 | (csg << 2) | nsg
    return stream_pdu(0x03, flags, body, 0x100, cmdsn,
                      rest={8: bytes([0x80, 0x00, 0x02, 0x3D, 0x00, 0x02, 0, 0])}, immediate=True)


READ10 = [0x28, 0, 0, 0, 0, 0, 0, 0, 8, 0]
WRITE10 = [0x2A, 0, 0, 0, 0, 0x10, 0, 0, 8, 0]
CONNECTION_SEEDS = {
    "read-write-logout": bytes([0]) + command(READ10, 1, 0, 4096, 0xC0)
    + command(WRITE10, 2, 1, 4096, 0x20, bytes([0x5A]) * 1024)
    + data_out(2, 1024, bytes([0xA5]) * 3072)
    + stream_pdu(0x00, 0x80, b"", 3, 2, rest={20: bytes([0xFF] * 4)}, immediate=True)
    + stream_pdu(0x06, 0x80, b"", 4, 2, immediate=True),
    "write-r2t": bytes([0]) + command([0x8A, 0] + [0] * 8 + [0, 0, 0, 64, 0, 0], 1, 0, 32768, 0xA0)
    + data_out(1, 0, bytes(8192), final=False) + data_out(1, 8192, bytes(8192), datasn=1),
    "text-continued-sendtargets": bytes([0]) + text(["SendTargets="], 1, 0, final=False, cont=True)
    + text(["X-Unknown=1", "SendTargets=All"], 1, 0, ttt=1),
    "tmf-abort-task": bytes([0]) + command(READ10, 1, 0, 4096, 0xC0)
    + stream_pdu(0x02, 0x81, b"", 2, 1, rest={20: (1).to_bytes(4, "big")}, immediate=True),
    "discovery-sendtargets": bytes([1]) + text(["SendTargets=All"], 1, 0)
    + stream_pdu(0x06, 0x80, b"", 2, 0, immediate=True),
    "login-then-inquiry": bytes([2])
    + stream_login(["InitiatorName=iqn.2026-11.fuzz:j", "TargetName=iqn.2026-11.fuzz:t",
                    "SessionType=Normal", "AuthMethod=None"], 0, 1)
    + stream_login(["HeaderDigest=None", "DataDigest=None", "MaxRecvDataSegmentLength=4096"], 1, 3)
    + command([0x12, 0, 0, 0, 96, 0], 1, 0, 96, 0xC0),
}
for name, data in CONNECTION_SEEDS.items():
    write("iscsi_connection_fuzz", name, data)
