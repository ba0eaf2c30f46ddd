#!/bin/bash
# lab/fetch-kernel must not use a .deb it could not verify (issue 12, defect
# 7): an index without a SHA256 for the package, or with another one, is a
# failure naming the file. apt-get and apt-cache are stubs on PATH; the .deb
# is a small file already "downloaded" into the private archive.
set -uo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
export LAB_BUILD=$tmp/build LAB_CACHE=$tmp/cache
apt=$tmp/cache/apt
mkdir -p "$tmp/bin" "$apt/lists" "$apt/archives"
touch "$apt/lists/deb.debian.org_debian_dists_trixie_main_binary-amd64_Packages"	# fresh index: no update
echo "not really a deb" >"$apt/archives/linux-source-7.3_7.3.4-1~bpo13+1_all.deb"
good=$(sha256sum "$apt/archives/linux-source-7.3_7.3.4-1~bpo13+1_all.deb" | cut -d' ' -f1)
cat >"$tmp/bin/apt-cache" <<'STUB'
#!/bin/bash
for a; do
	case $a in
	madison) echo " linux-source-7.3 | 7.3.4-1~bpo13+1 | http://deb.debian.org/debian trixie-backports/main amd64 Packages"; exit 0 ;;
	show) echo "Package: linux-source-7.3"; [ -n "${FAKE_SHA:-}" ] && echo "SHA256: $FAKE_SHA"; exit 0 ;;
	esac
done
exit 1
STUB
printf '#!/bin/sh\necho "fake apt-get: $*" >&2; exit 1\n' >"$tmp/bin/apt-get"
chmod +x "$tmp/bin"/*
export PATH=$tmp/bin:$PATH
n=0 failed=0
t() { n=$((n + 1)); if "${@:2}"; then echo "ok $n - $1"; else echo "not ok $n - $1"; failed=1; fi; }
fk() { rc=0; FAKE_SHA=$1 timeout 60 "$root/lab/fetch-kernel" >"$tmp/out" 2>"$tmp/err" || rc=$?; sed 's/^/# /' "$tmp/err" | tail -3; }

echo 1..3
fk ""
t "no SHA256 in the index: fails (rc $rc) saying so, before unpacking anything" \
	eval '[ $rc != 0 ] && grep -q "no SHA256" "$tmp/err" && [ ! -d "$tmp/cache/src/7.3.4-1~bpo13+1" ]'
fk 0000000000000000000000000000000000000000000000000000000000000000
t "a SHA256 that does not match: fails (rc $rc) naming both sums" \
	eval '[ $rc != 0 ] && grep -q "sha256 $good != index 0000" "$tmp/err"'
# lib.sh's verify_sha256 on its own, as fetch-kernel uses it
t "verify_sha256 accepts the right sum and refuses an empty one" \
	eval '(. "$root/lab/lib.sh"; verify_sha256 "$apt/archives/linux-source-7.3_7.3.4-1~bpo13+1_all.deb" "$good") &&
	      ! (. "$root/lab/lib.sh"; verify_sha256 "$apt/archives/linux-source-7.3_7.3.4-1~bpo13+1_all.deb" "") 2>/dev/null'
exit $failed
