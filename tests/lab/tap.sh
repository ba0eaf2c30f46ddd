# shellcheck shell=bash
# Sourced by tests/lab/*.t: the repository, a private temp dir that the lab
# scripts use as LAB_BUILD and LAB_CACHE (never the real build/ or cache),
# and ok STATUS TEXT, which prints one TAP result and remembers a failure in
# $bad (a .t exits with $bad).
set -uo pipefail
repo=$(cd "$(dirname "$0")/../.." && pwd)
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
export LAB_BUILD=$tmp/build LAB_CACHE=$tmp/cache
n=0 bad=0
ok() { n=$((n + 1)); if [ "$1" = 0 ]; then echo "ok $n - $2"; else echo "not ok $n - $2"; bad=1; fi; }
