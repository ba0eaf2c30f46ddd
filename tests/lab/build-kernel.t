#!/bin/bash
# lab/build-kernel must notice a failed make (defect 1 of issue 12) and must
# never leave an older bzImage that a later boot would take for this build.
# A fake kernel tree and a fake `make` on PATH: config targets succeed, the
# bzImage step fails, does nothing, or writes an image (FAKE_MAKE=fail|noop|ok).
set -uo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
export LAB_BUILD=$tmp/build LAB_CACHE=$tmp/cache
mkdir -p "$tmp/bin" "$tmp/build/linux/scripts/kconfig"
touch "$tmp/build/linux/Makefile"
printf '#!/bin/sh\nexit 0\n' >"$tmp/build/linux/scripts/kconfig/merge_config.sh"
printf '#!/bin/sh\nexit 0\n' >"$tmp/bin/ccache"
cat >"$tmp/bin/make" <<'MAKE'
#!/bin/bash
o=
for a; do case $a in O=*) o=${a#O=} ;; esac; done
for a; do
	case $a in
	allnoconfig) touch "$o/.config" ;;
	olddefconfig) if [ -n "${FAKE_CONFIG:-}" ]; then printf '%s\n' "$FAKE_CONFIG" >"$o/.config"; else touch "$o/.config"; fi ;;
	bzImage)
		case ${FAKE_MAKE:-ok} in
		fail) echo "drivers/vfio/pci/vfio_pci_dmabuf.c:1:1: error: boom (fake make)" >&2; exit 2 ;;
		noop) ;;
		ok) mkdir -p "$o/arch/x86/boot" && echo new >"$o/arch/x86/boot/bzImage" ;;
		esac ;;
	esac
done
exit 0
MAKE
chmod +x "$tmp/bin"/* "$tmp/build/linux/scripts/kconfig/merge_config.sh"
export PATH=$tmp/bin:$PATH
img=$tmp/build/out-guest/arch/x86/boot/bzImage
blog=$tmp/build/logs/build-guest-linux.log
stale() { mkdir -p "$(dirname "$img")" && echo stale >"$img" && touch -d '-1 hour' "$img"; }
n=0 failed=0
t() { n=$((n + 1)); if "${@:2}"; then echo "ok $n - $1"; else echo "not ok $n - $1"; failed=1; fi; }
bk() { FAKE_MAKE=$1 timeout 60 "$root/lab/build-kernel" guest "$tmp/build/linux" >"$tmp/out" 2>"$tmp/err"; }

echo 1..7
stale; rc=0; bk fail || rc=$?
t "a failing make makes build-kernel fail (rc $rc)" [ $rc != 0 ]
t "a failing make leaves no bzImage (the stale one is gone)" [ ! -e "$img" ]
t "the failure names the build log, which holds make's error" \
	eval 'grep -qF "$blog" "$tmp/err" && grep -q "error: boom" "$blog"'
sed 's/^/# /' "$tmp/err" | tail -5
stale; rc=0; bk noop || rc=$?
t "make exits 0 but writes no new bzImage: fails (rc $rc), the stale image is gone" \
	eval '[ $rc != 0 ] && [ ! -e "$img" ]'
rc=0; bk ok || rc=$?
t "a good build exits 0 (rc $rc) with a fresh bzImage and its log" \
	eval '[ $rc = 0 ] && [ "$(cat "$img" 2>/dev/null)" = new ] && [ -f "$blog" ]'

# A later fragment overrides an earlier one (compat.config turns guest.config's
# VFIO_CONTAINER off): the check wants the last setting of each option.
mkdir -p "$tmp/build/linux/drivers/vfio"
printf 'config VFIO_CONTAINER\n\tbool "x"\n' >"$tmp/build/linux/drivers/vfio/Kconfig"
rc=0; FAKE_CONFIG="# CONFIG_VFIO_CONTAINER is not set" FAKE_MAKE=ok timeout 60 "$root/lab/build-kernel" compat "$tmp/build/linux" >"$tmp/out" 2>"$tmp/err" || rc=$?
t "compat: VFIO_CONTAINER=n from compat.config over guest.config's =y is accepted (rc $rc)" [ $rc = 0 ]
sed 's/^/# /' "$tmp/err" | grep -i stick
rc=0; FAKE_CONFIG="# CONFIG_VFIO_CONTAINER is not set" bk ok || rc=$?
t "control: the guest variant with VFIO_CONTAINER off is refused (rc $rc)" \
	eval '[ $rc != 0 ] && grep -q "CONFIG_VFIO_CONTAINER=y did not stick" "$tmp/err"'
exit $failed
