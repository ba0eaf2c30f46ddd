#!/bin/bash
# lab/check-series (audit D5): a build/linux with uncommitted changes to
# tracked files, unstaged or staged, is refused, so uncommitted code is never
# tested and reported as patches/.  Controls: the clean tree matching
# patches/ passes; an untracked file the tree's .gitignore covers (a build
# product) does not count, but untracked source (built, not in patches/) is
# refused.
# Uses a copy of lab/ with its own patches/ and a two-commit toy tree.
. "$(dirname "$0")/tap.sh"
echo "1..6"
root=$tmp/root
mkdir -p "$root/patches" && cp -a "$repo/lab" "$root/"
t=$LAB_BUILD/linux
mkdir -p "$t"
g() { git -C "$t" -c user.name=lab -c user.email=lab@example.org "$@"; }
{ g init -q && echo base >"$t/file.c" && printf '*.o\n' >"$t/.gitignore" && g add file.c .gitignore && g commit -qm base && g tag v7.3-debian-base &&
  g checkout -qb series && echo change >>"$t/file.c" && g commit -qam "a change"; } >/dev/null 2>&1
"$root/lab/export-series" >/dev/null 2>&1
cs() { "$root/lab/check-series" >"$tmp/log" 2>&1; }
show() { sed 's/^/#   /' "$tmp/log"; }

cs; r=$?; [ $r = 0 ] || show; ok $r "control: a clean tree that matches patches/ passes"
echo untracked >"$t/built.o"
cs; r=$?; [ $r = 0 ] || show; ok $r "control: an ignored untracked file (a build product) does not count"
mkdir -p "$t/drivers" && echo 'int x;' >"$t/drivers/new.c"
cs; r=$?; [ $r != 0 ] && grep -q "drivers/new.c" "$tmp/log"; r=$?; [ $r = 0 ] || show
ok $r "an untracked source file (built, not in patches/) is refused and named"
rm -r "$t/drivers"
echo edit >>"$t/file.c"
cs; r=$?; [ $r != 0 ] && grep -q "uncommitted changes" "$tmp/log"; r=$?; [ $r = 0 ] || show
ok $r "an unstaged change to a tracked file is refused"
g add file.c
cs; r=$?; [ $r != 0 ] && grep -q "uncommitted changes" "$tmp/log"; r=$?; [ $r = 0 ] || show
ok $r "a staged change is refused"
"$root/lab/check-series" --quiet >/dev/null 2>&1; [ $? != 0 ]; ok $? "--quiet refuses it too (lab/make-tree relies on that)"
exit $bad
