#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0-only
"""Host half of the `clients` suite, run by lab/run-tests after the VM exited.

usage: host_check.py OUTDIR IVSHMEM_IMG SEED [--min-frames N]

1. QEMU (tests/clients/qemu_vfio_bar.py) wrote reply(seed, p) through its
   vfio-pci BAR2 into bytes 24..31 of every 1024th page: the backing file
   must hold them.
2. testpmd (tests/clients/testpmd_txonly) sent txonly frames: the outer
   QEMU's filter-dump, OUTDIR/virtio-net.pcap, must hold at least N of them
   (default 1000), exactly as many as testpmd counted as sent
   (OUTDIR/testpmd.txcount).

A txonly frame is what DPDK 22.11's testpmd sends by default: 64 bytes,
Ethernet 52:54:00:12:34:56 (the NIC's MAC, lab/run-vm) -> 02:00:00:00:00:00
(testpmd's default peer of port 0), IPv4 198.18.0.1 -> 198.18.0.2, TTL 64,
UDP, valid header checksum, total length 50, UDP 9 -> 9, length 30.
Prints TAP.
"""
import argparse
import os
import struct
import sys

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from qemu_vfio_bar import PAGE, REPLY_OFF, REPLY_STRIDE, reply  # noqa: E402

SRC_MAC = bytes.fromhex("525400123456")
DST_MAC = bytes.fromhex("020000000000")
FRAME_LEN = 64
IP_SRC = bytes([198, 18, 0, 1])
IP_DST = bytes([198, 18, 0, 2])
UDP_PORT = 9


def ip_csum_ok(hdr):
    s = sum(struct.unpack("!10H", hdr))
    while s >> 16:
        s = (s & 0xFFFF) + (s >> 16)
    return s == 0xFFFF


def is_txonly(d):
    if len(d) != FRAME_LEN or d[0:6] != DST_MAC or d[6:12] != SRC_MAC or d[12:14] != b"\x08\x00":
        return False
    ip = d[14:34]
    ver_ihl, _, tot_len, _, _, ttl, proto, _, src, dst = struct.unpack("!BBHHHBBH4s4s", ip)
    if (ver_ihl, tot_len, ttl, proto, src, dst) != (0x45, FRAME_LEN - 14, 64, 17, IP_SRC, IP_DST):
        return False
    if not ip_csum_ok(ip):
        return False
    sport, dport, ulen = struct.unpack("!HHH", d[34:40])
    return (sport, dport, ulen) == (UDP_PORT, UDP_PORT, FRAME_LEN - 34)


def read_pcap(path):
    """Yield (orig_len, data) of each record of a classic pcap, Ethernet only."""
    with open(path, "rb") as f:
        hdr = f.read(24)
        if len(hdr) < 24:
            raise ValueError(f"{path}: no pcap header ({len(hdr)} bytes)")
        magic = struct.unpack("<I", hdr[:4])[0]
        if magic in (0xA1B2C3D4, 0xA1B23C4D):
            end = "<"
        elif magic in (0xD4C3B2A1, 0x4D3CB2A1):
            end = ">"
        else:
            raise ValueError(f"{path}: not a pcap file (magic {magic:#x})")
        linktype = struct.unpack(end + "I", hdr[20:24])[0]
        if linktype != 1:
            raise ValueError(f"{path}: link type {linktype}, want 1 (Ethernet)")
        while True:
            rec = f.read(16)
            if not rec:
                return
            if len(rec) < 16:
                raise ValueError(f"{path}: truncated record header")
            _, _, incl, orig = struct.unpack(end + "IIII", rec)
            data = f.read(incl)
            if len(data) < incl:
                raise ValueError(f"{path}: truncated record")
            yield orig, data


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("outdir")
    ap.add_argument("image")
    ap.add_argument("seed")
    ap.add_argument("--min-frames", type=int, default=1000)
    a = ap.parse_args()
    seed = int(a.seed, 0)
    failed = 0

    def result(n, ok, name, *detail):
        nonlocal failed
        for line in detail:
            print(f"# {line}")
        print(f"{'ok' if ok else 'not ok'} {n} {name}")
        failed += not ok

    print("TAP version 13")
    print("1..3")

    # 1. QEMU's writes through its BAR reached the backing file.
    with open(a.image, "rb") as f:
        f.seek(0, 2)
        pages = f.tell() // PAGE
        bad = []
        for p in range(0, pages, REPLY_STRIDE):
            f.seek(p * PAGE + REPLY_OFF)
            got = struct.unpack("<Q", f.read(8))[0]
            if got != reply(seed, p):
                bad.append(f"page {p}: {got:#018x}, want {reply(seed, p):#018x}")
    nrep = len(range(0, pages, REPLY_STRIDE))
    result(1, not bad, "host_sees_qemu_bar_writes", *bad[:4],
           f"{nrep - len(bad)}/{nrep} QEMU replies in {a.image} ({8 * nrep} bytes compared)",
           *([f"QEMU's side: {a.outdir}/clients-qemu.tap, {a.outdir}/clients-qemu/qemu.err"] if bad else []))

    # 2./3. testpmd's frames in the outer QEMU's dump.
    pcap = os.path.join(a.outdir, "virtio-net.pcap")
    txonly = other = 0
    first_other = None
    try:
        for orig, d in read_pcap(pcap):
            if orig == len(d) and is_txonly(d):
                txonly += 1
            else:
                other += 1
                first_other = first_other or d[:64].hex()
        err = None
    except (OSError, ValueError) as e:
        err = str(e)
    detail = [err] if err else [f"{pcap}: {txonly} txonly frames ({txonly * FRAME_LEN} bytes), {other} other frames"]
    if first_other:
        detail.append(f"first other frame: {first_other}")
    result(2, err is None and txonly >= a.min_frames, "pcap_has_testpmd_txonly_frames",
           *detail, f"want at least {a.min_frames} txonly frames; "
           f"testpmd's side: {a.outdir}/clients-testpmd.tap, {a.outdir}/testpmd.log")

    try:
        sent = int(open(os.path.join(a.outdir, "testpmd.txcount")).read())
    except (OSError, ValueError) as e:
        sent, why = None, f"no TX count from testpmd: {e}"
    else:
        why = f"testpmd counted {sent} frames sent, the dump holds {txonly}"
    result(3, err is None and sent == txonly, "pcap_count_matches_testpmd_tx", why)
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
