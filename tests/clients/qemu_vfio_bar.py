#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0-only
"""QEMU as an unmodified VFIO client of ivshmem's BAR2 (runs in the lab guest).

Starts Debian's qemu-system-x86_64 with `-device vfio-pci,host=BDF` and no
guest OS: the CPUs never run (-S), the test drives the machine through the
qtest protocol on QEMU's stdin/stdout and QMP on a unix socket.  It programs
BAR2 itself through the 0xcf8/0xcfc config ports, reads the first u64 of
pages through the guest-physical BAR address and compares them with the
pattern the outer host wrote into the ivshmem backing file, writes replies
the outer host checks after the VM exits (tests/clients/host_check.py),
resets the machine (QEMU resets the device through VFIO), reprograms the BAR
and reads again.  It checks in /proc/<qemu>/maps that QEMU really mmap()ed
the BAR (a DMABUF named after device and BAR on the patched kernel, the VFIO
device file on base 7.3), in QEMU's trace that no BAR2 access took the
read()/write() slow path, so the data went through the kernel's BAR mmap()
path, and that QEMU mapped the BAR's mmap() into its IOMMU container
(peer-to-peer DMA map, type1 follows the PFN mapping).  `--device-opts
,x-no-mmap=on` makes QEMU skip the mmap(), and the test fail.

Layout in the BAR (tests/include/ivshmem_pattern.h): the host wrote
pattern(seed, p) into bytes 0..7 of every 4 KiB page p.  Other tests write
bytes 8..23; this one writes reply(seed, p) = pattern(seed ^ CLIENTS_SALT, p)
into bytes 24..31 of every REPLY_STRIDE-th page.

usage: qemu_vfio_bar.py BDF SEED WORKDIR [--expect dmabuf|vfio]
       [--stride N] [--qemu PATH] [--timeout SECS] [--device-opts ,PROP=VAL]
Prints TAP on stdout; QEMU's stderr and trace go to WORKDIR/qemu.{err,trace}.
The whole run is bounded by --timeout (default 240 s).
"""
import argparse
import json
import os
import re
import select
import socket
import subprocess
import sys
import tempfile
import time

sys.dont_write_bytecode = True     # the guest's root is read-only
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "smoke"))
from ivshmem_pattern import M64, PAGE, pattern  # noqa: E402  (tests/smoke)

BAR_GPA = 1 << 32           # where we put BAR2: above 4 GiB, no RAM there (-m 64)
SLOT = 4                    # -device ... addr=04.0 on pcie.0
CLIENTS_SALT = 0x636c69656e747321   # "clients!"
REPLY_STRIDE = 1024         # one reply every 4 MiB: 256 replies in 1 GiB
REPLY_OFF = 24
REGION_SHIFT = 40           # VFIO_PCI_OFFSET_SHIFT
BAR_INDEX = 2
BATCH = 1024                # qtest commands in flight (< 64 KiB of pipe)


def reply(seed, i):
    return pattern(seed ^ CLIENTS_SALT, i)


class Fail(Exception):
    pass


class Qemu:
    def __init__(self, qemu, bdf, workdir, timeout, device_opts=""):
        self.workdir = workdir
        self.deadline = time.monotonic() + timeout
        # QMP's socket on tmpfs: the log directory may be on 9p
        self.sockdir = tempfile.mkdtemp(prefix="clients-qmp-", dir="/run" if os.access("/run", os.W_OK) else None)
        self.qmp_path = os.path.join(self.sockdir, "qmp.sock")
        self.trace = os.path.join(workdir, "qemu.trace")
        self.err = open(os.path.join(workdir, "qemu.err"), "w")
        if os.path.exists(self.trace):
            os.unlink(self.trace)
        self.argv = [qemu, "-machine", "q35", "-accel", "tcg", "-S",
                     "-nodefaults", "-display", "none", "-m", "64",
                     "-qtest", "stdio", "-qtest-log", "/dev/null",
                     "-qmp", f"unix:{self.qmp_path},server=on,wait=off",
                     "-D", self.trace,
                     "-trace", "enable=vfio_region_*",
                     "-trace", "enable=vfio_pci_reset*",
                     "-trace", "enable=vfio_pci_hot_reset*",
                     "-trace", "enable=vfio_listener_region_add_*",
                     "-device", f"vfio-pci,host={bdf},addr={SLOT:02x}.0,id=ivshmem{device_opts}"]
        self.proc = subprocess.Popen(self.argv, stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, stderr=self.err)
        self.rbuf = b""
        self.qmp = None
        self.qbuf = b""
        self.events = []

    def left(self):
        t = self.deadline - time.monotonic()
        if t <= 0:
            raise Fail("timed out talking to QEMU")
        return t

    def _readline(self):
        fd = self.proc.stdout.fileno()
        while b"\n" not in self.rbuf:
            r, _, _ = select.select([fd], [], [], self.left())
            if not r:
                raise Fail("timed out waiting for a qtest reply")
            chunk = os.read(fd, 1 << 16)
            if not chunk:
                raise Fail(f"QEMU closed qtest (exit {self.proc.poll()}), see {self.err.name}")
            self.rbuf += chunk
        line, self.rbuf = self.rbuf.split(b"\n", 1)
        return line.decode()

    def batch(self, cmds):
        """Send qtest commands, return their replies' payloads ("OK x" -> "x")."""
        out = []
        for i in range(0, len(cmds), BATCH):
            chunk = cmds[i:i + BATCH]
            self.proc.stdin.write(("\n".join(chunk) + "\n").encode())
            self.proc.stdin.flush()
            for c in chunk:
                line = self._readline()
                while line.startswith("IRQ"):
                    line = self._readline()
                if not line.startswith("OK"):
                    raise Fail(f"qtest '{c}' -> '{line}'")
                out.append(line[3:])
        return out

    def cmd(self, c):
        return self.batch([c])[0]

    # PCI config space of 00:SLOT.0 through the legacy ports
    def cfg_read(self, reg, size=4):
        self.cmd(f"outl 0xcf8 {0x80000000 | (SLOT << 11) | (reg & 0xfc):#x}")
        port = 0xcfc + (reg & 3)
        op = {1: "inb", 2: "inw", 4: "inl"}[size]
        return int(self.cmd(f"{op} {port:#x}"), 0)

    def cfg_write(self, reg, val, size=4):
        self.cmd(f"outl 0xcf8 {0x80000000 | (SLOT << 11) | (reg & 0xfc):#x}")
        port = 0xcfc + (reg & 3)
        op = {1: "outb", 2: "outw", 4: "outl"}[size]
        self.cmd(f"{op} {port:#x} {val:#x}")

    def qmp_connect(self):
        while True:
            try:
                s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
                s.connect(self.qmp_path)
                break
            except OSError:
                s.close()
                if self.proc.poll() is not None:
                    raise Fail(f"QEMU exited with {self.proc.returncode}, see {self.err.name}")
                self.left()
                time.sleep(0.2)
        self.qmp = s
        self.qmp_recv()                 # greeting
        self.qmp_call("qmp_capabilities")

    def qmp_recv(self, event=None):
        """Next reply, or with @event the first such event (seen or coming)."""
        for i, msg in enumerate(self.events):
            if event is not None and msg.get("event") == event:
                return self.events.pop(i)
        while True:
            while b"\n" not in self.qbuf:
                self.qmp.settimeout(self.left())
                chunk = self.qmp.recv(65536)
                if not chunk:
                    raise Fail("QEMU closed QMP")
                self.qbuf += chunk
            line, self.qbuf = self.qbuf.split(b"\n", 1)
            msg = json.loads(line)
            if "event" not in msg and event is None:
                return msg
            if "event" in msg:
                if msg["event"] == event:
                    return msg
                self.events.append(msg)

    def qmp_call(self, name):
        self.qmp.sendall(json.dumps({"execute": name}).encode() + b"\n")
        msg = self.qmp_recv()
        if "error" in msg:
            raise Fail(f"QMP {name}: {msg['error']}")
        return msg

    def wait(self):
        try:
            return self.proc.wait(max(self.deadline - time.monotonic(), 1))
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            raise Fail("QEMU did not exit after quit")

    def kill(self):
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        self.err.close()
        if self.qmp:
            self.qmp.close()
        if os.path.exists(self.qmp_path):
            os.unlink(self.qmp_path)
        os.rmdir(self.sockdir)


class Tap:
    def __init__(self, names):
        self.names = names
        self.n = 0
        self.failed = 0
        print("TAP version 13")
        print(f"1..{len(names)}", flush=True)

    def result(self, ok, detail=""):
        name = self.names[self.n]
        self.n += 1
        if not ok:
            self.failed += 1
        for line in detail.splitlines():
            print(f"# {line}")
        print(f"{'ok' if ok else 'not ok'} {self.n} {name}", flush=True)

    def abort(self, why):
        while self.n < len(self.names):
            self.result(False, why)
            why = "not reached"


def program_bar(q):
    """Size BAR2 (64-bit), place it at BAR_GPA, enable memory decode."""
    reg = 0x10 + 4 * BAR_INDEX
    lo = q.cfg_read(reg)
    if lo & 0x7 != 0x4:
        raise Fail(f"BAR2 is not a 64-bit memory BAR (low dword {lo:#x})")
    q.cfg_write(reg, 0xffffffff)
    q.cfg_write(reg + 4, 0xffffffff)
    mask = ((q.cfg_read(reg + 4) << 32) | q.cfg_read(reg)) & ~0xf
    size = (~mask & M64) + 1
    q.cfg_write(reg, BAR_GPA & 0xffffffff)
    q.cfg_write(reg + 4, BAR_GPA >> 32)
    got = ((q.cfg_read(reg + 4) << 32) | q.cfg_read(reg)) & ~0xf
    if got != BAR_GPA:
        raise Fail(f"BAR2 reads back {got:#x} after writing {BAR_GPA:#x}")
    q.cfg_write(0x04, q.cfg_read(0x04, 2) | 0x2, 2)     # PCI_COMMAND_MEMORY
    return size, lo & 0x8


def check_pages(q, seed, pages):
    """readq the first u64 of each page; returns (bad, first mismatches)."""
    vals = q.batch([f"readq {BAR_GPA + p * PAGE:#x}" for p in pages])
    bad = []
    for p, v in zip(pages, vals):
        if int(v, 0) != pattern(seed, p):
            bad.append(f"page {p}: got {int(v, 0):#018x} want {pattern(seed, p):#018x}")
    return bad


def maps_lines(pid):
    """Mappings of the BAR2 region of a VFIO device: file offset 2 << 40."""
    lines = []
    with open(f"/proc/{pid}/maps") as f:
        for line in f:
            fields = line.split(None, 5)
            start, end = (int(x, 16) for x in fields[0].split("-"))
            off = int(fields[2], 16)
            if off >> REGION_SHIFT == BAR_INDEX and "s" in fields[1]:
                lines.append((start, end, off, fields[5].strip() if len(fields) > 5 else "", line.strip()))
    return lines


def since_exec():
    """Seconds since this process was started (Python's start-up included)."""
    start = int(open("/proc/self/stat").read().rsplit(")", 1)[1].split()[19])
    return float(open("/proc/uptime").read().split()[0]) - start / os.sysconf("SC_CLK_TCK")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("bdf")
    ap.add_argument("seed")
    ap.add_argument("workdir")
    ap.add_argument("--expect", choices=("dmabuf", "vfio"),
                    default="vfio" if os.environ.get("LAB_KERNEL") in ("base", "base-compat") else "dmabuf",
                    help="what /proc/<qemu>/maps must name the BAR mapping: the "
                    "vfio device file on base 7.3 (LAB_KERNEL=base or base-compat), else a DMABUF")
    ap.add_argument("--stride", type=int, default=4,
                    help="check every N-th page of the BAR (default: 4)")
    ap.add_argument("--qemu", default="qemu-system-x86_64")
    ap.add_argument("--timeout", type=float, default=240)
    ap.add_argument("--device-opts", default="",
                    help="extra vfio-pci properties, e.g. ',x-no-mmap=on' to see the test fail")
    a = ap.parse_args()
    seed = int(a.seed, 0)
    os.makedirs(a.workdir, exist_ok=True)

    tap = Tap(["qemu_starts_with_vfio_device",
               "bar2_programmed",
               "qemu_mmaps_bar2",
               "bar2_reads_host_pattern",
               "bar2_reads_without_slow_path",
               "bar2_dma_mapped_for_p2p",
               "bar2_writes_read_back",
               "system_reset_resets_device",
               "bar2_data_after_reset",
               "qemu_quits_cleanly"])
    t0 = time.monotonic()
    q = None
    try:
        q = Qemu(a.qemu, a.bdf, a.workdir, a.timeout, a.device_opts)
        q.qmp_connect()
        ident = q.cfg_read(0)
        tap.result(ident == 0x11101af4,
                   f"qemu pid {q.proc.pid} up in {time.monotonic() - t0:.1f}s; "
                   f"00:{SLOT:02x}.0 id {ident:#010x} (want 0x11101af4 ivshmem)\n"
                   f"argv: {' '.join(q.argv)}")

        size, pref = program_bar(q)
        tap.result(size == 1 << 30, f"BAR2: {size:#x} bytes, 64-bit{' prefetchable' if pref else ''}, at {BAR_GPA:#x}")
        npages = size // PAGE

        # QEMU mmap()s the BAR at realize time; it must be a single 1 GiB
        # mapping of region 2 with the name the kernel gives BAR mmap()s.
        m = maps_lines(q.proc.pid)
        detail = "\n".join(x[4] for x in m) or "no mapping of region 2 in /proc/<qemu>/maps"
        whole = [x for x in m if x[1] - x[0] == size and x[2] == BAR_INDEX << REGION_SHIFT]
        if a.expect == "dmabuf":
            want = re.compile(r"^/dmabuf:vfio\d+:" + re.escape(a.bdf) + r"/2$")
        else:
            want = re.compile(r"^(/dev/vfio/|anon_inode:\[vfio-device\])")
        named = [x for x in whole if want.search(x[3])]
        detail += f"\nwant one {size >> 20} MiB mapping at offset {BAR_INDEX << REGION_SHIFT:#x} named like {want.pattern}"
        tap.result(len(named) == 1, detail)

        pages = list(range(0, npages, a.stride))
        if pages[-1] != npages - 1:
            pages.append(npages - 1)
        t1 = time.monotonic()
        bad = check_pages(q, seed, pages)
        tap.result(not bad, "\n".join(bad[:8] + [
            f"{len(pages)} pages x 8 bytes = {8 * len(pages)} bytes compared "
            f"in {time.monotonic() - t1:.1f}s, {len(bad)} mismatches"]))

        rpages = list(range(0, npages, REPLY_STRIDE))
        q.batch([f"writeq {BAR_GPA + p * PAGE + REPLY_OFF:#x} {reply(seed, p):#x}" for p in rpages])
        back = q.batch([f"readq {BAR_GPA + p * PAGE + REPLY_OFF:#x}" for p in rpages])

        # Trace: QEMU mapped BAR2, and no BAR2 access went through read()/write().
        # (the trace file is complete only after QEMU exits; checked below)
        wbad = [p for p, v in zip(rpages, back) if int(v, 0) != reply(seed, p)]

        q.qmp_call("system_reset")
        q.qmp_recv("RESET")
        cmd_after = q.cfg_read(0x04, 2)
        bar_after = q.cfg_read(0x10 + 4 * BAR_INDEX) & ~0xf
        # The write results are reported after the trace check (case order).
        size2, _ = program_bar(q)
        sample = list(range(0, npages, 256)) + [npages - 1]
        bad2 = check_pages(q, seed, sample)
        back2 = q.batch([f"readq {BAR_GPA + p * PAGE + REPLY_OFF:#x}" for p in rpages])
        bad2 += [f"reply page {p}: got {int(v, 0):#x}" for p, v in zip(rpages, back2)
                 if int(v, 0) != reply(seed, p)]
        maps_after = maps_lines(q.proc.pid)

        q.qmp_call("quit")
        rc = q.wait()
        q.err.flush()
        trace = open(q.trace).read()
        slow = [ln for ln in trace.splitlines()
                if re.match(r"^(\d+@[\d.]+:)?vfio_region_(read|write) +\(" + re.escape(a.bdf) + r":region2\+", ln)]
        mmapped = re.search(r"vfio_region_mmap Region " + re.escape(a.bdf) + r" BAR 2 mmaps\[0\] \[0x0 - 0x3fffffff\]", trace)
        resets = [ln for ln in trace.splitlines() if "vfio_pci_reset" in ln or "vfio_pci_hot_reset" in ln]
        errs = open(q.err.name).read().strip()
        tap.result(not slow and mmapped is not None,
                   f"trace: {'BAR 2 mmaps[0] [0x0 - 0x3fffffff]' if mmapped else 'no vfio_region_mmap for BAR 2'}; "
                   f"{len(slow)} BAR2 accesses through read()/write()\n" + "\n".join(slow[:4]))
        # With BAR2 mapped into its address space, QEMU also maps the BAR's
        # mmap() into the IOMMU container (type1 pins the PFNs of the mapping)
        # so other devices could reach it; a failure is only a warning there.
        p2p = f"region_add [ram] {BAR_GPA:#x} - {BAR_GPA + size - 1:#x}"
        p2p_ok = p2p in trace and "vfio_dma_map" not in errs
        tap.result(p2p_ok, f"trace {'has' if p2p in trace else 'lacks'} '{p2p}'"
                   + (f"; qemu stderr:\n{errs}" if "vfio_dma_map" in errs else ""))
        tap.result(not wbad, f"{len(rpages)} replies written at byte {REPLY_OFF} of every "
                   f"{REPLY_STRIDE}th page, {len(wbad)} read back wrong")
        # one reset at start-up, one for system_reset
        nreset = sum(1 for ln in resets if re.search(r"vfio_pci_reset +\(" + re.escape(a.bdf), ln))
        tap.result(cmd_after & 0x2 == 0 and bar_after == 0 and nreset >= 2,
                   f"after system_reset: command {cmd_after:#x}, BAR2 low {bar_after:#x}; trace:\n"
                   + "\n".join(resets[:6]))
        tap.result(size2 == size and not bad2 and len(maps_after) == len(m),
                   "\n".join(bad2[:8] + [f"{len(sample)} pattern words + {len(rpages)} replies "
                   f"= {8 * (len(sample) + len(rpages))} bytes compared after reset, {len(bad2)} mismatches"]))
        tap.result(rc == 0, f"exit {rc}; QEMU's run {time.monotonic() - t0:.1f}s, "
                   f"{since_exec():.1f}s since this test started"
                   + (f"\nqemu stderr:\n{errs}" if errs else ""))
    except (Fail, OSError, ValueError) as e:
        tap.abort(f"{type(e).__name__}: {e} (QEMU stderr {a.workdir}/qemu.err)")
    finally:
        if q:
            q.kill()
    sys.exit(1 if tap.failed else 0)


if __name__ == "__main__":
    main()
