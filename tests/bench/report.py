#!/usr/bin/env python3
"""Turn the raw samples of lab/bench into a summary, a Markdown report and
the data for the plot.

usage: tests/bench/report.py RAW.csv OUTDIR [INFO-FILE]

RAW.csv rows: mode,kernel,round,item,case,metric,unit,iter,value (unit
"note": value is a message, e.g. why a case could not run).  Modes are
"icount" (guest time = instructions executed) and "wall" (real time);
kernels "base" and "patched".  Writes OUTDIR/summary.csv, OUTDIR/report.md
and the plot's data: OUTDIR/ratios.dat, OUTDIR/dmabuf-MODE.dat,
OUTDIR/plot.env.  INFO-FILE holds lines about the run for the report.
"""
import csv
import os
import sys
from collections import defaultdict

KERNELS = ("base", "patched")
MODES = ("icount", "wall")
MODE_TITLE = {
    "icount": "icount (guest instructions; 1 ns = 1 instruction)",
    "wall": "wall clock (real time, multi-threaded TCG)",
}
# metrics where a larger value is better
HIGHER_IS_BETTER = {"rate"}
NAN = float("nan")


def pct(xs, p):
    """p-th percentile, linear interpolation between closest ranks."""
    xs = sorted(xs)
    if not xs:
        return NAN
    k = (len(xs) - 1) * p / 100.0
    f = int(k)
    c = min(f + 1, len(xs) - 1)
    return xs[f] + (xs[c] - xs[f]) * (k - f)


def med(xs):
    return pct(xs, 50)


def isnan(v):
    return v != v


def fmt(v):
    if isnan(v):
        return "n/a"
    a = abs(v)
    if a >= 1000:
        return f"{v:,.0f}"
    if a >= 100:
        return f"{v:.0f}"
    if a >= 10:
        return f"{v:.1f}"
    return f"{v:.2f}"


class Bench:
    """The samples of one mode."""

    def __init__(self, rows):
        self.samples = defaultdict(list)   # (item, case, metric, kernel) -> [v]
        self.rounds = defaultdict(list)    # (item, case, metric, kernel, round) -> [v]
        self.units = {}
        self.notes = defaultdict(set)
        self.order = []
        for kernel, rnd, item, case, metric, unit, value in rows:
            key = (item, case, metric)
            if key not in self.order:
                self.order.append(key)
            if unit == "note":
                self.notes[key + (kernel,)].add(value)
                continue
            v = float(value)
            self.units[key] = unit
            self.samples[key + (kernel,)].append(v)
            self.rounds[key + (kernel, int(rnd))].append(v)
        self.round_ids = sorted({k[4] for k in self.rounds})

    def has(self, key, kernel):
        return bool(self.samples.get(key + (kernel,)))

    def stat(self, key, kernel):
        xs = self.samples.get(key + (kernel,), [])
        return med(xs), pct(xs, 10), pct(xs, 90), len(xs)

    def med(self, key, kernel):
        return self.stat(key, kernel)[0]

    def ratio(self, key):
        b, p = self.med(key, "base"), self.med(key, "patched")
        if isnan(b) or isnan(p) or b == 0:
            return NAN
        return p / b

    def round_ratios(self, key):
        """patched/base of the medians of each round."""
        out = []
        for r in self.round_ids:
            b = self.rounds.get(key + ("base", r))
            p = self.rounds.get(key + ("patched", r))
            if b and p and med(b):
                out.append(med(p) / med(b))
        return out

    def cost_ratio(self, key):
        """>1 means patched is slower / bigger."""
        r = self.ratio(key)
        if key[2] in HIGHER_IS_BETTER and not isnan(r) and r:
            return 1 / r
        return r

    def note(self, key, kernel):
        return "; ".join(sorted(self.notes.get(key + (kernel,), [])))

    def cell(self, key, kernel):
        if not self.has(key, kernel):
            n = self.note(key, kernel)
            return f"n/a ({n})" if n else "n/a"
        m, lo, hi, n = self.stat(key, kernel)
        if lo == hi:
            return fmt(m)
        return f"{fmt(m)} [{fmt(lo)}–{fmt(hi)}]"


def load(path):
    rows = defaultdict(list)
    with open(path) as f:
        for row in csv.reader(f):
            if not row or row[0] == "mode":
                continue
            mode = row[0]
            rows[mode].append(tuple(row[1:8]) + (",".join(row[8:]),))
    return {m: Bench([r[:6] + (r[7],) for r in rs]) for m, rs in rows.items()}


LABELS = [
    (("mmap_munmap", "2M_notouch", "rate"), "mmap+munmap 2M"),
    (("mmap_munmap", "2M_touch", "rate"), "mmap+touch+munmap 2M"),
    (("mmap_munmap", "2M_notouch", "mmap"), "mmap() alone"),
    (("mmap_munmap", "2M_notouch", "munmap"), "munmap() alone"),
    (("mmap_munmap", "dmabuf_export_close", "rate"), "DMABUF export+close"),
    (("first_touch", "ivshmem_1G_at_2M", "time"), "touch 1G @2M"),
    (("first_touch", "ivshmem_1G_at_4K", "time"), "touch 1G @4K"),
    (("first_touch", "bochs_64M_at_2M", "time"), "touch 64M bochs @2M"),
    (("revoke", "1_maps", "decode_off"), "decode off, 1 map"),
    (("revoke", "64_maps", "decode_off"), "decode off, 64 maps"),
    (("revoke", "1024_maps", "decode_off"), "decode off, 1024 maps"),
    (("revoke", "1024_maps", "decode_on"), "decode on, 1024 maps"),
    (("revoke", "1024_maps", "reset_cpu"), "reset CPU, 1024 maps"),
    (("dmabuf_fault", "bar_1x16M", "per_page"), "4K fault, BAR 1x16M"),
    (("dmabuf_fault", "bar_4096x4K", "per_page"), "4K fault, BAR 4096x4K"),
    (("concurrent_fault", "2threads_1map", "per_page"), "2 threads fault, 1 map"),
    (("concurrent_fault", "2threads_2maps", "per_page"), "2 threads fault, 2 maps"),
]

TITLES = {
    "mmap_munmap": "1. mmap()+munmap() of a 2 MiB BAR2 slice at 2 MiB alignment",
    "first_touch": "2. First touch of a whole BAR mapping (one u64 read per 4 KiB page)",
    "revoke": "3. Revoke latency with N live, touched 4 KiB mappings of BAR2",
    "dmabuf_fault": "4. First-touch time per 4 KiB page (4096 pages per sample)",
    "concurrent_fault": "5. Concurrent first touch: 4096 4 KiB pages of BAR2 by 1 thread, or by 2 threads on CPUs 0 and 1 (2048 disjoint pages each) of one or two mappings",
    "memory": "6. Kernel memory per live BAR mapping (4096 mappings per sample)",
}


def targets(b):
    """[(target, measured, status)] for one mode."""
    out = []
    parts, ok, seen = [], True, False
    for key in b.order:
        if key[0] != "first_touch" or key[2] != "minflt":
            continue
        vals = {k: sorted(set(b.samples.get(key + (k,), []))) for k in KERNELS}
        if not vals["base"] or not vals["patched"]:
            continue
        seen = True
        ok &= vals["base"] == vals["patched"] and len(vals["base"]) == 1
        parts.append(vals)
    fv = lambda k: ", ".join("/".join(f"{x:.0f}" for x in v[k]) for v in parts)
    out.append(("minor faults identical to base (item 2: 1G@1G, 1G@2M, 1G@4K, bochs 64M@2M)",
                f"patched {fv('patched')}; base {fv('base')}" if seen else "n/a",
                "n/a" if not seen else ("met" if ok else "MISSED")))

    for case in ("2M_notouch", "2M_touch"):
        key = ("mmap_munmap", case, "rate")
        r, rr = b.ratio(key), b.round_ratios(key)
        st = ("n/a" if isnan(r) else "met, stretch 0.9x met" if r >= 0.9 else
              "met, stretch 0.9x missed" if r >= 0.8 else "MISSED")
        extra = f" (rounds {', '.join(f'{x:.2f}' for x in rr)})" if len(rr) > 1 else ""
        out.append((f"mmap()+munmap() rate ≥ 0.8x base, {case.replace('2M_', '')}",
                    f"{fmt(r)}x{extra}", st))

    def at_most(key, limit, name):
        """patched/base of key against an upper limit"""
        r, rr = b.ratio(key), b.round_ratios(key)
        st = "n/a" if isnan(r) else ("met" if r <= limit else "MISSED")
        extra = f" (rounds {', '.join(f'{x:.2f}' for x in rr)})" if len(rr) > 1 else ""
        out.append((f"{name} ≤ {limit}x base", f"{fmt(r)}x{extra}", st))

    for metric in ("decode_off", "reset_cpu"):
        at_most(("revoke", "1024_maps", metric), 1.3, f"revoke with 1024 mappings, {metric}")
    for case in ("2threads_1map", "2threads_2maps"):
        at_most(("concurrent_fault", case, "per_page"), 1.2,
                f"concurrent faults, {case.replace('_', ', ')}")

    k1 = ("dmabuf_fault", "dmabuf_1_ranges", "per_page")
    k4 = ("dmabuf_fault", "dmabuf_4096_ranges", "per_page")
    if b.has(k1, "patched") and b.has(k4, "patched"):
        r = b.med(k4, "patched") / b.med(k1, "patched")
        out.append(("DMABUF fault per page, 4096 ranges ≤ 2x 1 range",
                    f"{fmt(r)}x ({fmt(b.med(k4, 'patched'))} vs "
                    f"{fmt(b.med(k1, 'patched'))} ns/page)",
                    "met" if r <= 2 else "MISSED"))
    else:
        n = b.note(k1, "patched") or "not measured"
        out.append(("DMABUF fault per page, 4096 ranges ≤ 2x 1 range",
                    f"n/a: mmap() of a DMABUF fd fails on this patched kernel ({n})",
                    "n/a"))
    return out


def derived(b, w):
    us = lambda key, k: b.med(key, k) / 1e3
    mm = ("mmap_munmap", "2M_notouch", "rate")
    if b.has(mm, "base") and b.has(mm, "patched"):
        tb, tp = 1e6 / b.med(mm, "base"), 1e6 / b.med(mm, "patched")
        w(f"- mmap()+munmap() of 2 MiB: {tb:.2f} µs per pair on base, {tp:.2f} µs on "
          f"patched: **+{tp - tb:.2f} µs** per pair.")
        split = []
        for m in ("mmap", "munmap"):
            key = ("mmap_munmap", "2M_notouch", m)
            if b.has(key, "base") and b.has(key, "patched"):
                split.append(f"{m}() {us(key, 'base'):.2f} → {us(key, 'patched'):.2f} µs "
                             f"(+{us(key, 'patched') - us(key, 'base'):.2f})")
        if split:
            w(f"- Timed apart (each call between two clock reads): {'; '.join(split)}.")
    ex = ("mmap_munmap", "dmabuf_export_close", "rate")
    for k in KERNELS:
        if b.has(ex, k):
            te = 1e6 / b.med(ex, k)
            sp = []
            for m in ("export", "close"):
                key = ("mmap_munmap", "dmabuf_export_close", m)
                if b.has(key, k):
                    sp.append(f"{m} {us(key, k):.2f}")
            w(f"- DMABUF export (VFIO_DEVICE_FEATURE_DMA_BUF, one 2 MiB range) + "
              f"close() on {k}: {te:.2f} µs per pair ({', '.join(sp)} µs).")
    uf = ("mmap_munmap", "userfaultfd_close", "rate")
    for k in KERNELS:
        if b.has(uf, k):
            w(f"- userfaultfd() + close() on {k} (a file with its own anonymous inode and "
              f"dentry, like a DMABUF's): {1e6 / b.med(uf, k):.2f} µs per pair.")
    tt = ("mmap_munmap", "2M_touch", "touch")
    if b.has(tt, "base") and b.has(tt, "patched"):
        w(f"- The 2 MiB (PMD) fault in mmap+touch+munmap: {us(tt, 'base'):.2f} µs on base, "
          f"{us(tt, 'patched'):.2f} µs on patched.")
    for case in ("bar_1x16M", "bar_4096x4K"):
        key = ("dmabuf_fault", case, "per_page")
        if b.has(key, "base") and b.has(key, "patched"):
            d = b.med(key, "patched") - b.med(key, "base")
            w(f"- 4 KiB BAR fault ({case}): {fmt(b.med(key, 'base'))} ns on base, "
              f"{fmt(b.med(key, 'patched'))} ns on patched ({d:+.0f} ns, "
              f"{b.ratio(key):.2f}x).")
    ft = ("first_touch", "ivshmem_1G_at_4K", "time")
    if b.has(ft, "base") and b.has(ft, "patched"):
        w(f"- 1 GiB at 4 KiB alignment (262144 faults + reads): "
          f"{1e6 * b.med(ft, 'base') / 262144:.0f} ns per page on base, "
          f"{1e6 * b.med(ft, 'patched') / 262144:.0f} ns on patched.")
    for metric in ("decode_off", "decode_on", "reset_cpu", "reset"):
        k0, kn = ("revoke", "0_maps", metric), ("revoke", "1024_maps", metric)
        parts = []
        for k in KERNELS:
            if b.has(k0, k) and b.has(kn, k):
                scale = 1e6 if b.units[kn] == "ms" else 1e3
                per = (b.med(kn, k) - b.med(k0, k)) * scale / 1024
                parts.append(f"{k} {per:.0f} ns")
        if parts:
            w(f"- {metric}: cost per live mapping, (median with 1024 − median with 0) / 1024: "
              f"{', '.join(parts)}.")
    one = ("concurrent_fault", "1thread_1map", "elapsed")
    for case in ("2threads_1map", "2threads_2maps"):
        key = ("concurrent_fault", case, "elapsed")
        parts = []
        for k in KERNELS:
            if b.has(one, k) and b.has(key, k):
                parts.append(f"{k} {b.med(one, k) / b.med(key, k):.2f}x")
        if parts:
            w(f"- Speed-up of 4096 first touches from 1 thread to 2 ({case}): "
              f"{', '.join(parts)} (2.00x = no waiting on each other; under "
              f"icount both vCPUs share one host thread, so about 1x there).")
    mk = ("memory", "4096_maps", "slab")
    if b.has(mk, "base") and b.has(mk, "patched"):
        w(f"- Slab per live mapping: {fmt(b.med(mk, 'base'))} B on base, "
          f"{fmt(b.med(mk, 'patched'))} B on patched "
          f"(+{b.med(mk, 'patched') - b.med(mk, 'base'):.0f} B); the per-cache "
          f"rows of item 5 say where it goes.")


def main():
    raw, outdir = sys.argv[1], sys.argv[2]
    info = []
    if len(sys.argv) > 3 and os.path.exists(sys.argv[3]):
        info = [l.rstrip("\n") for l in open(sys.argv[3]) if l.strip()]
    benches = load(raw)
    modes = [m for m in MODES if m in benches]
    os.makedirs(outdir, exist_ok=True)

    with open(os.path.join(outdir, "summary.csv"), "w") as f:
        f.write("mode,item,case,metric,unit,kernel,n,median,p10,p90,"
                "ratio_patched_base,round_ratios\n")
        for m in modes:
            b = benches[m]
            for key in b.order:
                for k in KERNELS:
                    if not b.has(key, k):
                        continue
                    med_, lo, hi, n = b.stat(key, k)
                    rr = " ".join(f"{x:.3f}" for x in b.round_ratios(key))
                    f.write(f"{m},{','.join(key)},{b.units[key]},{k},{n},{med_:.6g},"
                            f"{lo:.6g},{hi:.6g},{b.ratio(key):.4g},{rr}\n")

    md = []
    w = md.append
    w("# vfio-pci BAR mmap() benchmark: patched vs base 7.3\n")
    w("Generated by `make bench` (`lab/bench`): base 7.3 and the patched kernel "
      "booted in turn in the same QEMU with the same devices, "
      "`tests/bench/vfio_bar_bench` pinned to guest CPU 1.\n")
    w("**Read ratios, not absolute times.** The guest runs under QEMU TCG "
      "(no KVM) on a 2-core host shared with other jobs. Two modes:\n")
    w("- **icount**: QEMU runs with `-icount shift=0,sleep=off`, so guest "
      "time advances by 1 ns per guest instruction executed (sleeps still "
      "count at their length). Timings are instruction counts: "
      "deterministic (repeats agree within a few %), independent of the host's "
      "load, but blind to what instructions cost (cache misses, atomics, TLB "
      "flushes all count as 1). These ratios decide the targets.")
    w("- **wall**: normal multi-threaded TCG in real time, rounds interleaved "
      "(base, patched, patched, base). Shows the cost as an emulated CPU "
      "feels it, but moves by 2x between iterations when the host is "
      "busy: trust only patched/base ratios of the same run, and check the "
      "per-round ratios and p10–p90 spreads before believing a difference.\n")
    if info:
        w("## Run\n")
        for l in info:
            w(f"- {l}")
        w("")

    w("## Targets\n")
    w("Status from icount (deterministic); wall clock for comparison.\n")
    tg = {m: targets(benches[m]) for m in modes}
    head = "| target | " + " | ".join(MODE_TITLE[m].split(" (")[0] for m in modes) + " | status |"
    w(head)
    w("|---" * (len(modes) + 2) + "|")
    for i in range(len(tg[modes[0]])):
        name = tg[modes[0]][i][0]
        cells = [f"{tg[m][i][1]} ({tg[m][i][2]})" for m in modes]
        st = tg[modes[0]][i][2]
        w(f"| {name} | " + " | ".join(cells) + f" | **{st}** |")
    w("")

    for m in modes:
        b = benches[m]
        w(f"## All measurements: {MODE_TITLE[m]}\n")
        w("Median [p10–p90] over all samples"
          + (" of all rounds" if len(b.round_ids) > 1 else "")
          + "; patched/base = ratio of the medians (for rates higher is better, "
          "for everything else lower is better)"
          + ("; per-round = that ratio within each round." if len(b.round_ids) > 1 else ".")
          + "\n")
        items = []
        for key in b.order:
            if key[0] not in items:
                items.append(key[0])
        for item in items:
            w(f"### {TITLES.get(item, item)}\n")
            multi = len(b.round_ids) > 1
            w("| case | metric | unit | base | patched | " +
              ("patched − base" if item == "memory" else "patched/base") + " |" +
              (" per-round |" if multi else ""))
            w("|---|---|---|---|---|---|" + ("---|" if multi else ""))
            for key in b.order:
                if key[0] != item:
                    continue
                rr = ", ".join(f"{x:.2f}" for x in b.round_ratios(key))
                ratio = fmt(b.ratio(key))
                if item == "memory":
                    # base is often ~0 here: give the difference instead
                    bm = b.med(key, "base") if b.has(key, "base") else 0.0
                    pm = b.med(key, "patched") if b.has(key, "patched") else 0.0
                    ratio = f"{pm - bm:+.0f} B"
                    rr = ""
                w(f"| {key[1]} | {key[2]} | {b.units.get(key, '')} | "
                  f"{b.cell(key, 'base')} | {b.cell(key, 'patched')} | "
                  f"{ratio} |" + (f" {rr} |" if multi else ""))
            w("")
        w(f"### Derived ({m})\n")
        derived(b, w)
        w("")

    analysis = os.path.join(os.path.dirname(os.path.abspath(__file__)), "analysis.md")
    if os.path.exists(analysis):
        w(open(analysis).read())

    w("## Files\n")
    w("- `raw.csv`: every sample (mode,kernel,round,item,case,metric,unit,iter,value)")
    w("- `summary.csv`: median, p10, p90 and ratios behind the tables")
    w("- `bench.png`: cost ratios and per-page fault times")
    w("- `tap/`, `logs/`: TAP output and serial log of every boot")
    with open(os.path.join(outdir, "report.md"), "w") as f:
        f.write("\n".join(md) + "\n")

    # Plot data.  ratios.dat: label, then per mode cost ratio, low, high
    # (per-round range; the ratio itself when there is one round).
    with open(os.path.join(outdir, "ratios.dat"), "w") as f:
        f.write("# label " + " ".join(f"{m} {m}_lo {m}_hi" for m in MODES) + "\n")
        for key, label in LABELS:
            cols = []
            for m in MODES:
                b = benches.get(m)
                r = b.cost_ratio(key) if b else NAN
                rr = b.round_ratios(key) if b else []
                if key[2] in HIGHER_IS_BETTER:
                    rr = [1 / x for x in rr if x]
                lo, hi = (min(rr), max(rr)) if rr else (r, r)
                cols += [r, lo, hi]
            if all(isnan(c) for c in cols):
                continue
            f.write(f'"{label}" ' + " ".join("NaN" if isnan(c) else f"{c:.4f}"
                                            for c in cols) + "\n")
    env = {}
    for m in MODES:
        # 1 if the mode ran: the plot leaves out the bars of a mode that did not
        env[f"has_{m}"] = 1 if m in benches else 0
        b = benches.get(m)
        ref = ("dmabuf_fault", "bar_1x16M", "per_page")
        base_ref = b.med(ref, "base") if b and b.has(ref, "base") else NAN
        n = 0
        with open(os.path.join(outdir, f"dmabuf-{m}.dat"), "w") as f:
            f.write("# ranges median p10 p90, relative to base's 4 KiB BAR fault\n")
            for nr in (1, 16, 256, 4096):
                key = ("dmabuf_fault", f"dmabuf_{nr}_ranges", "per_page")
                if b and b.has(key, "patched") and not isnan(base_ref):
                    med_, lo, hi, _ = b.stat(key, "patched")
                    f.write(f"{nr} {med_ / base_ref:.4f} {lo / base_ref:.4f} {hi / base_ref:.4f}\n")
                    n += 1
        env[f"n_{m}"] = n
        pr = b.med(ref, "patched") / base_ref if b and b.has(ref, "patched") and not isnan(base_ref) else 0
        env[f"ref_{m}"] = pr
    # memory.dat: bytes per live mapping, all modes pooled (it is the same
    # measurement in both): the meminfo totals, then the slab caches
    mem = defaultdict(list)
    for b in benches.values():
        for key in b.order:
            if key[0] != "memory" or key[2] == "pagetables":
                continue
            for k in KERNELS:
                mem[(key, k)] += b.samples.get(key + (k,), [])
    keys = []
    for b in benches.values():
        for key in b.order:
            if key[0] == "memory" and key[2] != "pagetables" and key not in keys:
                keys.append(key)
    keys.sort(key=lambda k: (k[2] == "slabinfo", -med(mem[(k, "patched")] or [0])))
    with open(os.path.join(outdir, "memory.dat"), "w") as f:
        f.write("# what base patched (bytes per live BAR mapping)\n")
        for key in keys:
            label = key[2] if key[2] != "slabinfo" else key[1]
            label = {"slab": "Slab (meminfo)", "sunreclaim": "SUnreclaim (meminfo)"}.get(label, label)
            vals = [med(mem[(key, k)]) if mem[(key, k)] else 0 for k in KERNELS]
            f.write(f'"{label}" {vals[0]:.1f} {vals[1]:.1f}\n')
    with open(os.path.join(outdir, "plot.env"), "w") as f:
        for k, v in env.items():
            f.write(f"{k} = {v:.4f}\n" if isinstance(v, float) else f"{k} = {v}\n")


if __name__ == "__main__":
    main()
