# Plot of lab/bench's results: gnuplot -e "dir='build/bench'" tests/bench/plot.gp
# Left: cost ratio patched/base per measurement (>1 = patched slower or
# bigger) in both modes, clipped at 3x (the value is written above);
# whiskers = lowest/highest per-round ratio.
# Middle: first-touch time per 4 KiB page through DMABUF fd mmap()s vs the
# number of ranges (patched), relative to base 7.3's 4 KiB BAR fault.
# Right: kernel memory per live BAR mapping, base vs patched.
load dir.'/plot.env'
set terminal pngcairo size 2000,900 font ",11"
set output dir.'/bench.png'
set multiplot title "vfio-pci BAR mmap(): patched vs base 7.3 under QEMU TCG (icount = guest instructions, deterministic; wall = real time, noisy)" font ",13"
ymax = 3
clip(x) = (x > ymax ? ymax : x)

# --- cost ratios
set origin 0, 0
set size 0.5, 0.95
set title "Cost ratio patched/base (>1: patched slower)"
set style data histogram
set style histogram errorbars gap 1 lw 1
set style fill solid 0.7 border -1
set boxwidth 0.9
set yrange [0:ymax]
set xtics rotate by -40 left noenhanced nomirror
set grid ytics
set key outside top center horizontal maxrows 2 font ",10"
set ylabel "patched / base"
set bmargin 11
# A mode that did not run (LAB_BENCH_MODES) has NaN columns, which gnuplot
# refuses in a histogram: its bars are drawn at 0 and its key says so.
v(c) = valid(c) ? clip(column(c)) : 0
plot dir.'/ratios.dat' using (v(2)):(v(3)):(v(4)):xtic(1) lc rgb "#4878a8" title (has_icount ? "icount" : "icount (not run)"), \
     '' using (v(5)):(v(6)):(v(7)) lc rgb "#e0a040" title (has_wall ? "wall clock (whiskers: per-round range)" : "wall clock (not run)"), \
     '' using ($0 - 1./6):(ymax):($2 > ymax ? sprintf("%.0fx", $2) : "") with labels offset 0,-0.7 font ",9" notitle, \
     '' using ($0 + 1./6):(ymax):($5 > ymax ? sprintf("%.0fx", $5) : "") with labels offset 0,-0.7 font ",9" notitle, \
     1 with lines dt 2 lc rgb "black" notitle, \
     1.25 with lines dt 4 lw 2 lc rgb "#40a040" title "mmap+munmap target (rate 0.8x = cost 1.25x)", \
     1.5 with lines dt 3 lw 2 lc rgb "#c04040" title "revoke target (1.5x)"

# --- per-page fault time vs ranges
unset arrow
unset label
set origin 0.5, 0
set size 0.3, 0.95
set title "First touch per 4 KiB page vs DMABUF ranges"
set style data linespoints
set xtics norotate
set logscale x 2
set xrange [0.5:8192]
set yrange [0:*]
set xlabel "ranges in the mmap()ed DMABUF (4 KiB each)"
set ylabel "time per page / base BAR 4 KiB fault"
set bmargin 11
set key inside top right vertical maxrows 5 font ",9"
if (n_icount + n_wall == 0) {
	set label 4 "DMABUF fds cannot be mmap()ed on this\npatched kernel (needs series part 2)" at graph 0.05, graph 0.5 noenhanced
}
plot 1 with lines dt 2 lc rgb "black" title "base BAR mmap()", \
     (ref_icount > 0 ? ref_icount : 1/0) with lines dt 3 lw 2 lc rgb "#4878a8" title "patched BAR mmap(), icount", \
     (ref_wall > 0 ? ref_wall : 1/0) with lines dt 3 lw 2 lc rgb "#e0a040" title "patched BAR mmap(), wall", \
     (n_icount > 0 ? dir.'/dmabuf-icount.dat' : '/dev/null') using 1:2:3:4 with yerrorlines lw 2 pt 7 lc rgb "#4878a8" title "patched DMABUF mmap(), icount", \
     (n_wall > 0 ? dir.'/dmabuf-wall.dat' : '/dev/null') using 1:2:3:4 with yerrorlines lw 2 pt 7 lc rgb "#e0a040" title "patched DMABUF mmap(), wall"

# --- memory
unset label
unset logscale x
set origin 0.8, 0
set size 0.2, 0.95
set title "Kernel memory per live BAR mapping"
set style data histogram
set style histogram clustered gap 1
set xtics rotate by -40 left noenhanced nomirror
unset xlabel
set xrange [*:*]
set yrange [0:*]
set ylabel "bytes per mapping"
set key inside top right vertical font ",9"
plot dir.'/memory.dat' using 2:xtic(1) lc rgb "#c08020" title "base", \
     '' using 3 lc rgb "#4878a8" title "patched"
unset multiplot
