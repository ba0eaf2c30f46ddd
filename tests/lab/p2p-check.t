#!/bin/bash
# tests/p2p/check_frames.py (the p2p suite's host half) fails the run on a
# wrong expected payload (LAB_P2P_WRONG=1, --corrupt), a secret on the wire,
# an expected frame missing or sent twice, an unexplained frame and a zeros
# line without its all-zero frame; a clean capture passes, and lab/summarize
# turns a wrong payload into a failed run.
. "$(dirname "$0")/tap.sh"
check=$repo/tests/p2p/check_frames.py
echo "1..9"

# fixture DIR [extra...]: an ivshmem image, frames.txt and p2p.pcap in DIR;
# extra: secret (a frame holds a secret's piece), twice (an expected frame
# sent twice), stray (an unexplained frame), nozero (a zeros line without
# its frame)
fixture() {
	mkdir -p "$1/p2p"
	python3 - "$@" <<'PY'
import os, random, struct, sys
d, extra = sys.argv[1], set(sys.argv[2:])
rnd = random.Random(7)
img = bytearray(rnd.randbytes(64 * 1024))
open(os.path.join(d, "img"), "wb").write(img)
lines, frames = [], []
for i, off in enumerate((0x800, 0x1800, 0x2800)):
    lines.append(f"frame case{i} {off:#x} 1024")
    frames.append(bytes(img[off:off + 1024]))
lines.append("none case3 0x3800 1024")
lines.append("zeros case3 1024")
frames.append(bytes(1024))
if "secret" in extra:
    frames.append(b"\x02" * 100 + bytes(img[0x3800 + 78:0x3800 + 78 + 64]) + b"\x02" * 100)
if "twice" in extra:
    frames.append(frames[0])
if "stray" in extra:
    frames.append(rnd.randbytes(200))
if "nozero" in extra:
    lines.append("zeros case3 1024")
open(os.path.join(d, "p2p", "frames.txt"), "w").write("\n".join(lines) + "\n")
with open(os.path.join(d, "p2p.pcap"), "wb") as f:
    f.write(struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, 1))
    for fr in frames:
        f.write(struct.pack("<IIII", 0, 0, len(fr), len(fr)) + fr)
with open(os.path.join(d, "p2p.tap"), "w") as f:
    f.write("TAP version 13\n1..4\n" + "".join(f"ok {i + 1} p2p.case{i}\n" for i in range(4)))
open(os.path.join(d, "p2p.rc"), "w").write("0\n")
PY
}
# run DIR [ARGS...]: check_frames.py on DIR, TAP to DIR/p2p-host.tap, rc to
# DIR/p2p-host.rc; echoes the rc
run() {
	local d=$1 rc=0; shift
	python3 "$check" "$d" "$d/img" "$@" >"$d/p2p-host.tap" 2>&1 || rc=$?
	echo $rc >"$d/p2p-host.rc"
	echo $rc
}
# expect RC PATTERN DIR WHAT: the last run of DIR exited RC and its TAP matches PATTERN
expect() {
	local r=1
	[ "$(cat "$3/p2p-host.rc")" = "$1" ] && grep -qE -- "$2" "$3/p2p-host.tap" && r=0
	[ $r = 0 ] || sed 's/^/#   /' "$3/p2p-host.tap"
	ok $r "$4"
}

fixture "$tmp/clean"
run "$tmp/clean" >/dev/null
expect 0 "^ok 5 no_unexplained_frames" "$tmp/clean" "a clean capture passes (3 frames matched, a secret absent, a zero frame explained)"

fixture "$tmp/wrong"
LAB_P2P_WRONG=1 run "$tmp/wrong" >/dev/null
expect 1 "^not ok 1 case0" "$tmp/wrong" "LAB_P2P_WRONG=1: the perturbed expected payload fails its case"

fixture "$tmp/corrupt"
run "$tmp/corrupt" --corrupt >/dev/null
expect 1 "^not ok 1 case0" "$tmp/corrupt" "--corrupt: the same"

fixture "$tmp/secret" secret
run "$tmp/secret" >/dev/null
expect 1 "^not ok 4 case3" "$tmp/secret" "64 secret bytes inside a frame fail the secret's case"

fixture "$tmp/twice" twice
run "$tmp/twice" >/dev/null
expect 1 "^not ok 1 case0" "$tmp/twice" "an expected frame sent twice fails (exactly one must match)"

fixture "$tmp/stray" stray
run "$tmp/stray" >/dev/null
expect 1 "^not ok 5 no_unexplained_frames" "$tmp/stray" "an unexplained frame fails"

fixture "$tmp/nozero" nozero
run "$tmp/nozero" >/dev/null
expect 1 "^not ok 5 no_unexplained_frames" "$tmp/nozero" "a zeros line without its all-zero frame fails"

# The run: lab/summarize over the host check's TAP, as lab/run-tests does.
printf 'patched p2p p2p 4\npatched p2p p2p-host 5\n' >"$tmp/manifest"
"$repo/lab/summarize" --manifest "$tmp/manifest" --suites p2p patched "$tmp/clean" >"$tmp/sum.clean" 2>&1
r=$?
[ $r = 0 ] || sed 's/^/#   /' "$tmp/sum.clean"
ok $r "lab/summarize: the clean capture's host check passes the run"
rc=0
"$repo/lab/summarize" --manifest "$tmp/manifest" --suites p2p patched "$tmp/wrong" >"$tmp/sum.wrong" 2>&1 || rc=$?
[ $rc = 1 ] && grep -q "p2p-host" "$tmp/sum.wrong"; r=$?
[ $r = 0 ] || sed 's/^/#   /' "$tmp/sum.wrong"
ok $r "lab/summarize: a wrong expected payload fails the run"
exit $bad
