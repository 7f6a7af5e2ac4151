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
