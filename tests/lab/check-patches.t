#!/bin/bash
# lab/check-patches (audit D4): a checkpatch that cannot run is a failure,
# never "ok": no scripts/checkpatch.pl, one that dies with "open failed"
# (exit 2), one whose helper crashes (a Python traceback, exit 0), one that
# exits 1 with no report.  Controls: a clean checkpatch gives ok, a real
# WARNING gives not ok.  The tree is a stub: $LAB_BUILD/linux/scripts/.
. "$(dirname "$0")/tap.sh"
echo "1..8"
tree=$LAB_BUILD/linux
mkdir -p "$tree/scripts"
tap=$LAB_BUILD/vm/series/out/checkpatch.tap
stub() { printf '#!/bin/sh\n%s\n' "$1" >"$tree/scripts/checkpatch.pl"; chmod +x "$tree/scripts/checkpatch.pl"; }
# check WHAT EXPECT: run check-patches; EXPECT fail|pass for both the script
# and lab/summarize series
check() {
	local what=$1 expect=$2 rc=0 src=0
	"$repo/lab/check-patches" >"$tmp/log" 2>&1 || rc=$?
	"$repo/lab/summarize" series "$LAB_BUILD/vm/series/out" >>"$tmp/log" 2>&1 || src=$?
	if [ "$expect" = fail ]; then
		[ $rc != 0 ] && [ $src != 0 ] && grep -q '^not ok' "$tap" 2>/dev/null && ! grep -q '^ok' "$tap"
	else
		[ $rc = 0 ] && [ $src = 0 ] && ! grep -q '^not ok' "$tap" && grep -q '^ok' "$tap"
	fi
	local r=$?
	[ $r = 0 ] || { echo "# check-patches rc $rc, summarize rc $src:"; head -20 "$tmp/log" "$tap" 2>&1 | sed 's/^/#   /'; }
	ok $r "$what"
}
[ -n "$(ls "$repo"/patches/0001-*.patch 2>/dev/null)" ] || { echo "# no patches/ in $repo"; }

check "no scripts/checkpatch.pl in the tree: every patch not ok" fail
stub 'echo "scripts/checkpatch.pl: $4: open failed - No such file or directory"; exit 2'
check "checkpatch exits 2 with 'open failed': not ok" fail
stub 'echo "Traceback (most recent call last):"; echo "ModuleNotFoundError: No module named ply"; exit 0'
check "a crashing helper (Python traceback, exit 0): not ok" fail
stub 'exit 1'
check "checkpatch exits 1 without a report line: not ok" fail
stub 'echo "$4:3: WARNING:LONG_LINE: line too long"; echo "total: 0 errors, 1 warnings, 0 checks, 9 lines checked"; exit 1'
check "control: a real WARNING is not ok" fail
stub 'exit 0'
check "control: a clean checkpatch (--terse prints nothing) is ok" pass

# UNKNOWN_COMMIT_ID is let through only for a patch with a "Fixes:" line,
# and only in a tree whose base has no history (one commit).
stub 'echo "$4:40: WARNING:UNKNOWN_COMMIT_ID: Unknown commit id '"'"'5d74781ebc86'"'"', maybe rebased or not pulled?"; echo "total: 0 errors, 1 warnings, 0 checks, 9 lines checked"; exit 1'
fixes=$(grep -l '^Fixes: [0-9a-f]\{12\} ("' "$repo"/patches/0*.patch | grep -v 0000-cover | head -1)
nofixes=$(grep -L '^Fixes: ' "$repo"/patches/0*.patch | grep -v 0000-cover | head -1)
unknown_id() { # EXPECT-for-the-Fixes-patch: ok|not ok; the other patch is always not ok
	"$repo/lab/check-patches" >"$tmp/log" 2>&1
	grep -qx "$1 [0-9]* $(basename "$fixes")" "$tap" && grep -qx "not ok [0-9]* $(basename "$nofixes")" "$tap"
}
unknown_id "not ok"
ok $? "UNKNOWN_COMMIT_ID in a tree that is not a one-commit base: not ok, Fixes: or not"
git -C "$tree" init -q && git -C "$tree" -c user.name=t -c user.email=t@t commit -q --allow-empty -m base &&
	git -C "$tree" tag v7.3-debian-base
unknown_id "ok"
ok $? "UNKNOWN_COMMIT_ID in a history-less base: ok only for the patch with a Fixes: line"
exit $bad
