#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0-only
"""Host half of the `p2p` suite, run by lab/run-tests after the VM exited.

usage: check_frames.py OUTDIR IVSHMEM_IMG [--corrupt]

tests/p2p/vfio_p2p_dma_test (in the guest) made the lab's second virtio-net
send frames whose payload it DMA-read from ivshmem's BAR2, and wrote what
must be on the wire to OUTDIR/p2p/frames.txt:
  frame CASE OFF LEN   exactly one frame equals IVSHMEM_IMG[OFF:OFF+LEN]
  none CASE OFF LEN    no frame holds those (secret) bytes, nor any 64-byte
                       piece of them past the 14-byte Ethernet header
  zeros CASE LEN       the device consumed a chain whose payload did not
                       translate: QEMU sent LEN zero bytes instead; explains
                       one all-zero frame of LEN bytes
The outer QEMU's filter-dump, OUTDIR/p2p.pcap, holds what the device sent.
One TAP case per case of the guest's OUTDIR/p2p.tap (its frame and none
lines hold), then no_unexplained_frames: every frame is a "frame" match or
one of exactly as many all-zero frames as "zeros" lines.

--corrupt (or LAB_P2P_WRONG=1): perturb one byte of the first expected
payload, which must fail the run (tests/lab/p2p-check.t).
"""
import argparse
import os
import re
import sys

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "clients"))
from host_check import read_pcap  # noqa: E402

ETH_HDR = 14
PIECE = 64


def guest_cases(tap):
    """The case names of the guest's TAP file, in order."""
    names = []
    try:
        with open(tap) as f:
            for line in f:
                m = re.match(r"^(?:not )?ok \d+ (?:p2p\.)?(\S+)", line)
                if m:
                    names.append(m.group(1))
    except OSError:
        pass
    return names


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("outdir")
    ap.add_argument("image")
    ap.add_argument("--corrupt", action="store_true")
    a = ap.parse_args()
    corrupt = a.corrupt or os.environ.get("LAB_P2P_WRONG") == "1"

    problems = {}     # case -> [why]
    expect = []       # (case, off, bytes) of frame lines
    secrets = []      # (case, off, bytes) of none lines
    zeros = {}        # LEN -> count of zeros lines
    err = None
    try:
        with open(os.path.join(a.outdir, "p2p", "frames.txt")) as f, open(a.image, "rb") as img:
            for n, line in enumerate(f, 1):
                w = line.split()
                if len(w) == 3 and w[0] == "zeros":
                    zeros[int(w[2])] = zeros.get(int(w[2]), 0) + 1
                    continue
                if len(w) != 4 or w[0] not in ("frame", "none"):
                    raise ValueError(f"frames.txt line {n}: cannot parse {line.strip()!r}")
                off, ln = int(w[2], 0), int(w[3])
                img.seek(off)
                data = img.read(ln)
                if len(data) != ln:
                    raise ValueError(f"frames.txt line {n}: {a.image} ends before {off:#x}+{ln}")
                (expect if w[0] == "frame" else secrets).append((w[1], off, data))
    except (OSError, ValueError) as e:
        err = str(e)
    if corrupt and expect:
        c, off, data = expect[0]
        expect[0] = (c, off, data[:100] + bytes([data[100] ^ 0xFF]) + data[101:])
        print(f"# --corrupt: byte 100 of the expected frame of {c} at {off:#x} flipped")

    frames = []
    try:
        frames = [d for orig, d in read_pcap(os.path.join(a.outdir, "p2p.pcap")) if orig == len(d)]
    except (OSError, ValueError) as e:
        err = err or str(e)

    explained = [False] * len(frames)
    compared = 0
    for c, off, data in expect:
        hits = [i for i, d in enumerate(frames) if d == data]
        compared += len(frames) * len(data)
        if len(hits) != 1:
            problems.setdefault(c, []).append(
                f"{len(hits)} frames equal BAR2[{off:#x}:+{len(data)}] (want exactly 1)")
        for i in hits:
            explained[i] = True
    for c, off, data in secrets:
        pieces = [data]
        pieces += [data[i:i + PIECE] for i in range(ETH_HDR, len(data) - PIECE + 1, PIECE)]
        for i, d in enumerate(frames):
            compared += len(d) * len(pieces)
            if any(p in d for p in pieces):
                problems.setdefault(c, []).append(
                    f"frame {i} holds secret bytes of BAR2[{off:#x}:+{len(data)}]")
    zero_frames = {}
    for i, d in enumerate(frames):
        if not explained[i] and not any(d):
            zero_frames[len(d)] = zero_frames.get(len(d), 0) + 1
            explained[i] = True

    cases = guest_cases(os.path.join(a.outdir, "p2p.tap"))
    for c, _, _ in expect + secrets:
        if c not in cases:
            cases.append(c)
    print("TAP version 13")
    print(f"1..{len(cases) + 1}")
    print(f"# {len(frames)} frames in p2p.pcap, {len(expect)} expected payloads, "
          f"{len(secrets)} secrets, {sum(zeros.values())} zero frames announced; "
          f"{compared} bytes compared")
    if err:
        print(f"# {err}")
    failed = 0
    for n, c in enumerate(cases, 1):
        why = problems.get(c, []) + ([err] if err else [])
        for line in why:
            print(f"# {c}: {line}")
        print(f"{'not ok' if why else 'ok'} {n} {c}")
        failed += bool(why)
    why = []
    if zero_frames != zeros:
        why.append(f"all-zero frames by length {zero_frames}, announced by zeros lines {zeros}")
    other = [i for i, x in enumerate(explained) if not x]
    if other:
        why.append(f"{len(other)} unexplained frames, the first: {frames[other[0]][:32].hex()}")
    if err:
        why.append(err)
    for line in why:
        print(f"# no_unexplained_frames: {line}")
    print(f"{'not ok' if why else 'ok'} {len(cases) + 1} no_unexplained_frames")
    failed += bool(why)
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
