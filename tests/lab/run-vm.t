#!/bin/bash
# lab/run-vm bounds every wait and fails loudly (defects 2, 5, 6 and 7 of
# issue 12). A fake vng (LAB_VNG) stands in for virtme-ng and QEMU:
#   hang    ignores TERM, forks a `sleep 1000` that holds the console pipe
#   silent  prints one line, then nothing
#   rcu     prints an RCU stall report, exits 0
#   warn    prints a WARNING splat, exits 0
#   clean   checks its console is a pipe, prints, exits 0
#   late    exits 0 at once, leaving a process outside its group that holds
#           the console and prints a WARNING splat 7 s later: the log reader
#           must drain to EOF before the splat scan
#   stuck   announces "Powering off." and then keeps writing a heartbeat
#           line every second (a task stuck in the guest kernel)
#   slowoff announces "Powering off." and exits 2 s later
#   qemu    execs the host's QEMU, paused (-S, silent), with run-vm's QEMU
#           options: the stall dump must come through the QMP socket
set -uo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
tmp=$(mktemp -d)
export LAB_BUILD=$tmp/build LAB_CACHE=$tmp/cache
cleanup() {	# whatever the code under test left behind
	[ -f "$tmp/all-pids" ] && while read -r p; do kill -KILL "$p" 2>/dev/null; done <"$tmp/all-pids"
	rm -rf "$tmp"
}
trap '[ -n "${KEEP:-}" ] || cleanup' EXIT
cat >"$tmp/vng" <<'VNG'
#!/bin/bash
echo $$ >>"$FAKE_PIDS"
case $FAKE_VNG in
hang)	trap '' TERM
	echo "fake QEMU: booting"
	sleep 1000 & echo $! >>"$FAKE_PIDS"
	while :; do wait; done ;;
silent)	echo "[    0.000000] Linux version fake"
	sleep 1000 & echo $! >>"$FAKE_PIDS"
	wait ;;
rcu)	echo "[  126.100000] rcu: INFO: rcu_sched detected stalls on CPUs/tasks:" ;;
warn)	echo "[   12.000000] WARNING: CPU: 0 PID: 1 at drivers/vfio/pci/vfio_pci_core.c:100 f+0x1/0x2" ;;
late)	setsid bash -c 'sleep 7; echo "[  300.000000] WARNING: CPU: 1 PID: 1 at kernel/reboot.c:1 shutdown+0x1/0x2"' </dev/null &
	echo $! >>"$FAKE_PIDS"
	echo "fake guest: powering off" ;;
stuck)	echo "virtme-init: script returned {0}"; echo "Powering off."
	while :; do sleep 1; echo "[  400.000000] lab heartbeat"; done ;;
slowoff) echo "virtme-init: script returned {0}"; echo "Powering off."
	sleep 2; echo "[  400.000000] reboot: Power down" ;;
clean)	[ -p /proc/self/fd/1 ] || { echo "console is not a pipe"; exit 1; }
	echo "fake guest: all done" ;;
qemu)	for a; do case $a in --qemu-opts=*) opts=${a#--qemu-opts=} ;; esac; done
	# shellcheck disable=SC2086 # run-vm passes them space-separated
	exec qemu-system-x86_64 -machine q35 -m 256 -display none -nodefaults -S $opts ;;
esac
exit 0
VNG
chmod +x "$tmp/vng"
touch "$tmp/bzImage"
export LAB_VNG=$tmp/vng FAKE_PIDS=$tmp/pids
n=0 failed=0
t() { n=$((n + 1)); if "${@:2}"; then echo "ok $n - $1"; else echo "not ok $n - $1"; failed=1; fi; }
# vm MODE TIMEOUT: run-vm with the fake, bounded from outside; sets rc, secs
vm() {
	local s0=$(date +%s)
	rc=0
	FAKE_VNG=$1 timeout -k 5 60 "$root/lab/run-vm" -k "$tmp/bzImage" -n t -t "$2" -- true \
		>"$tmp/out" 2>"$tmp/err" </dev/null || rc=$?
	secs=$(( $(date +%s) - s0 ))
	cat "$tmp/pids" >>"$tmp/all-pids" 2>/dev/null
	log=$tmp/build/logs/t.log
	sed 's/^/# /' "$tmp/err" | tail -4
}
none_alive() {	# no process the fake started is still running
	local p s
	while read -r p; do
		s=$(cat "/proc/$p/stat" 2>/dev/null) || continue
		s=${s##*) }; [ "${s%% *}" = Z ] || { echo "# pid $p still alive"; return 1; }
	done <"$tmp/pids"
}

echo 1..12
: >"$tmp/pids"	# this case's processes (all-pids: every case's, for cleanup)
vm hang 3
t "hung VM, TERM ignored, grandchild holds the console: run-vm -t 3 returns in ${secs}s (< 20), rc $rc != 0" \
	eval '[ $secs -lt 20 ] && [ $rc != 0 ] && grep -q "^TIMEOUT: t did not finish in 3s" "$log"'
sleep 1
t "nothing the hung VM started survives" none_alive
: >"$tmp/pids"
LAB_STALL_SECS=3 vm silent 50
t "silent VM with LAB_STALL_SECS=3: fails in ${secs}s (< 20) naming the stall (rc $rc)" \
	eval '[ $secs -lt 20 ] && [ $rc != 0 ] && grep -q "^STALL: no serial output for 3s" "$log" && grep -q STALL "$tmp/err"'
sleep 1
vm rcu 30
t "an RCU stall report in the log fails the run (rc $rc)" [ $rc != 0 ]
vm warn 30
t "a WARNING splat in the log fails the run (rc $rc)" [ $rc != 0 ]
vm late 30
t "a splat written after the VM's group is gone (7 s later) is still read and fails the run (rc $rc)" \
	eval '[ $rc = 3 ] && grep -q "at kernel/reboot.c" "$log"'
: >"$tmp/pids"
LAB_POWEROFF_SECS=3 vm stuck 50
t "a VM still running (heartbeat going) 3 s after 'Powering off.' with LAB_POWEROFF_SECS=3: killed in ${secs}s (< 20), rc $rc = 6, named in the log" \
	eval '[ $secs -ge 3 ] && [ $secs -lt 20 ] && [ $rc = 6 ] && grep -q "^POWEROFF: t announced" "$log" && none_alive'
LAB_POWEROFF_SECS=5 vm slowoff 50
t "a VM that powers off 2 s after 'Powering off.' (LAB_POWEROFF_SECS=5) passes (rc $rc)" \
	eval '[ $rc = 0 ] && ! grep -q "^POWEROFF:" "$log"'
vm clean 30
t "a clean VM run passes (rc $rc), its console a pipe, its output in the log" \
	eval '[ $rc = 0 ] && grep -q "all done" "$log"'
mkdir -p "$tmp/build/vm/t/out" && echo "ok 1 stale" >"$tmp/build/vm/t/out/stale.tap"
rc=0; timeout 30 "$root/lab/run-vm" -k "$tmp/missing/bzImage" -n t -- true 2>/dev/null || rc=$?
t "run-vm dying early (no image, rc $rc) still clears the old out/" \
	eval '[ $rc != 0 ] && [ ! -e "$tmp/build/vm/t/out/stale.tap" ]'
if command -v qemu-system-x86_64 >/dev/null; then
	LAB_STALL_SECS=5 vm qemu 60
	t "real QEMU, paused: STALL in ${secs}s (< 30, rc $rc) with the QMP dump (vCPUs, registers) in the log" \
		eval '[ $rc = 5 ] && [ $secs -lt 30 ] && grep -q "^query-cpus-fast:" "$log" && grep -q "^CPU#0" "$log"'
	sleep 1
	t "nothing of the QEMU run survives" none_alive
else
	n=$((n + 2)); echo "ok $((n - 1)) # SKIP no qemu-system-x86_64"; echo "ok $n # SKIP no qemu-system-x86_64"
fi
exit $failed
