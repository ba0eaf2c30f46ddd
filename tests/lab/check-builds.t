#!/bin/bash
# lab/check-builds on a fake kernel tree with a fake make on PATH: a commit
# that adds a W=1 warning or breaks the build is "not ok", a base warning
# that only moved is not new, a warning outside what the series touches is
# ignored, and the exit status says whether every build passed. The fake
# make prints every *.warn file of the tree it builds, fails if the tree has
# a file ERROR, and leaves objects in each variant driver's directory.
set -uo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
tmp=$(mktemp -d)
trap '[ -n "${KEEP:-}" ] || rm -rf "$tmp"' EXIT
export LAB_BUILD=$tmp/build LAB_CACHE=$tmp/cache
mkdir -p "$tmp/bin"
printf '#!/bin/sh\nexit 0\n' >"$tmp/bin/ccache"
cat >"$tmp/bin/make" <<'MAKE'
#!/bin/bash
src= o= build=0
while [ $# -gt 0 ]; do
	case $1 in
	-C) src=$2; shift ;;
	O=*) o=${1#O=} ;;
	allnoconfig|olddefconfig) touch "$o/.config" ;;
	-*|*=*) ;;
	*) build=1 ;;
	esac
	shift
done
[ $build = 1 ] || exit 0
cat "$src"/*.warn >&2 2>/dev/null
[ ! -e "$src/ERROR" ] || { echo "drivers/vfio/pci/vfio_pci_core.c:1:1: error: broken (fake make)" >&2; exit 2; }
for d in mlx5 pds qat virtio xe nvgrace-gpu hisilicon; do mkdir -p "$o/drivers/vfio/pci/$d" && touch "$o/drivers/vfio/pci/$d/main.o"; done
exit 0
MAKE
chmod +x "$tmp/bin"/*
export PATH=$tmp/bin:$PATH

t=$tmp/build/linux
mkdir -p "$t/scripts/kconfig"
git init -q -b base "$t" && cd "$t" || exit 1
git config user.name t && git config user.email t@t
touch Makefile && printf '#!/bin/sh\nexit 0\n' >scripts/kconfig/merge_config.sh && chmod +x scripts/kconfig/merge_config.sh
echo "../linux/drivers/vfio/pci/vfio_pci_core.c:100:3: warning: old one [-Wold]" >base.warn
git add -A && git commit -qm base && git tag v7.3-debian-base && git checkout -q -b series
commit() { git add -A && git commit -qm "$1"; }
echo "../linux/drivers/vfio/pci/vfio_pci_core.c:120:3: warning: old one [-Wold]" >base.warn
commit "vfio/pci: moves the old warning"
echo "drivers/vfio/pci/vfio_pci_dmabuf.c:5:1: warning: new one [-Wnew]" >new.warn
commit "vfio/pci: adds a warning"
git rm -q new.warn && touch ERROR && commit "vfio/pci: breaks the build"
git rm -q ERROR && echo "mm/memory.c:1:1: warning: not ours [-Wx]" >mm.warn && commit "vfio/pci: fixes it"
cd / || exit 1

echo 1..7
rc=0
timeout 120 "$root/lab/check-builds" >"$tmp/tap" 2>"$tmp/err" || rc=$?
line() { grep -E "^(not )?ok $1 - " "$tmp/tap"; }
n=0 failed=0
tc() { n=$((n + 1)); if "${@:2}"; then echo "ok $n - $1"; else echo "not ok $n - $1"; failed=1; fi; }
tc "plan 1..20 and 20 result lines (5 baselines, 4 patches, nop2p, i386, variants, 7 drivers, arm64)" \
	eval '[ "$(head -1 "$tmp/tap")" = 1..20 ] && [ "$(grep -cE "^(not )?ok [0-9]+ - " "$tmp/tap")" = 20 ]'
tc "patch 1 moves a base warning: ok" eval 'line 6 | grep -q "^ok 6 - x86_64 W=1 0001 vfio/pci: moves the old warning"'
tc "patch 2 adds a W=1 warning: not ok, and the warning is shown" \
	eval 'line 7 | grep -q "^not ok 7 - x86_64 W=1 0002" && grep -q "^# .*vfio_pci_dmabuf.c: warning: new one" "$tmp/tap"'
tc "patch 3 breaks the build: not ok" eval 'line 8 | grep -q "^not ok 8 - x86_64 W=1 0003"'
tc "patch 4: a warning outside what the series touches is not counted: ok" eval 'line 9 | grep -q "^ok 9 - "'
tc "nop2p, i386, variants, the 7 variant drivers and arm64 at the tip: ok" \
	eval '[ "$(sed -n "/^ok \(1[0-9]\|20\) - /p" "$tmp/tap" | wc -l)" = 11 ] && line 20 | grep -q "^ok 20 - arm64 W=1 series"'
tc "exit status non-zero (rc $rc), and the tree was not touched" \
	eval '[ $rc = 1 ] && [ "$(git -C "$t" rev-parse --abbrev-ref HEAD)" = series ] && [ -z "$(git -C "$t" status --porcelain)" ]'
sed 's/^/# | /' "$tmp/tap"
exit $failed
