# Common settings for the lab scripts. Sourced, not run.
# shellcheck shell=bash
set -euo pipefail

LAB_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
# Caches live outside the clone so a fresh clone starts warm.
LAB_CACHE=${LAB_CACHE:-/var/cache/vfio-lab}
BUILD=${LAB_BUILD:-$LAB_ROOT/build}
TREE=$BUILD/linux
LOGS=$BUILD/logs

# Debian package we develop against; fetch-kernel falls back to the newest 7.3.y.
KERNEL_PKG=linux-source-7.3
KERNEL_PIN=${KERNEL_PIN:-7.3.4-1~bpo13+1}
VIRTME_PKG=virtme-ng
VIRTME_PIN=1.35-1

export CCACHE_DIR=${CCACHE_DIR:-$LAB_CACHE/ccache}
export CCACHE_BASEDIR=$LAB_ROOT
export CCACHE_NOHASHDIR=1
export CCACHE_MAXSIZE=${CCACHE_MAXSIZE:-10G}

log() { printf '[%s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
die() { printf 'error: %s\n' "$*" >&2; exit 1; }
mkdir -p "$BUILD" "$LOGS"

# ivshmem_prepare DIR: a fresh 1 GiB ivshmem backing file DIR/ivshmem.img
# filled with the host pattern of a new random seed; prints the seed.
ivshmem_prepare() {
	local seed
	seed=0x$(od -An -N8 -tx8 /dev/urandom | tr -d ' ')
	mkdir -p "$1" && rm -f "$1/ivshmem.img" && truncate -s 1G "$1/ivshmem.img"
	python3 "$LAB_ROOT/tests/smoke/ivshmem_pattern.py" write "$1/ivshmem.img" "$seed" >/dev/null
	echo "$seed"
}

# kmake SRC OUT ARCH MAKE-ARGS...: make in kernel tree SRC, objects in OUT;
# killed (whole process group) after KMAKE_TIMEOUT seconds when that is set.
kmake() {
	local src=$1 out=$2 arch=$3; shift 3
	local -a limit=()
	local cross=
	[ -z "${KMAKE_TIMEOUT:-}" ] || limit=(timeout -k 60 "$KMAKE_TIMEOUT")
	# arm64: Debian's cross compiler (lab/setup-host installs it)
	[ "$arch" != arm64 ] || cross=aarch64-linux-gnu-
	"${limit[@]}" make -s -C "$src" O="$out" ARCH="$arch" CROSS_COMPILE="$cross" \
		CC="ccache ${cross}gcc" HOSTCC="ccache gcc" "$@"
}

# variant_arch VARIANT / variant_frags VARIANT: the architecture and the
# config fragments (one per line) of a lab kernel variant.
variant_arch() { case $1 in i386) echo i386 ;; arm64) echo arm64 ;; *) echo x86_64 ;; esac; }
variant_frags() {
	local cfg=$LAB_ROOT/lab/configs
	case $1 in
	guest) echo "$cfg/guest.config" ;;
	debug|nop2p|i386|arm64|variants|compat) printf '%s\n' "$cfg/guest.config" "$cfg/$1.config" ;;
	*) die "unknown variant $1" ;;
	esac
}

# configure VARIANT SRC OUT: allnoconfig + the variant's fragments +
# olddefconfig in OUT; dies if an option the fragments ask for did not stick
# (guest, debug, variants; the build-test variants nop2p, i386 and arm64
# only need what their architecture allows).
configure() {
	local variant=$1 src=$2 out=$3 arch f line want sym missing=0
	local -a frags
	arch=$(variant_arch "$variant")
	mapfile -t frags < <(variant_frags "$variant")
	[ -f "$src/Makefile" ] || die "no kernel tree at $src (run lab/make-tree)"
	mkdir -p "$out"
	kmake "$src" "$out" "$arch" allnoconfig >/dev/null || die "allnoconfig failed in $out"
	KCONFIG_CONFIG=$out/.config "$src/scripts/kconfig/merge_config.sh" -m -O "$out" "$out/.config" "${frags[@]}" >/dev/null ||
		die "merge_config failed in $out"
	kmake "$src" "$out" "$arch" olddefconfig >/dev/null || die "olddefconfig failed in $out"
	# Every requested option must have survived olddefconfig: its last
	# setting, as a later fragment overrides an earlier one (compat.config
	# turns guest.config's VFIO_CONTAINER off).
	while IFS= read -r line; do
		case $line in CONFIG_*=n) want="# ${line%=n} is not set" ;; CONFIG_*) want=$line ;; *) continue ;; esac
		grep -qxF -- "$want" "$out/.config" && continue
		[ "${line#*=}" = n ] && ! grep -q "^${line%=n}=" "$out/.config" && continue
		sym=${line%%=*}
		# Options the series adds do not exist in the base tree.
		grep -rqsE --include='Kconfig*' "^(menu)?config ${sym#CONFIG_}\$" "$src" || continue
		echo "config: $line did not stick" >&2; missing=1
	done < <(cat "${frags[@]}" | awk -F= '/^CONFIG_/ { last[$1] = $0; if (!($1 in seen)) { seen[$1] = 1; order[++n] = $1 } }
		END { for (i = 1; i <= n; i++) print last[order[i]] }')
	case $variant in nop2p|i386|arm64) return 0 ;; esac
	[ $missing = 0 ] || die "config fragments do not apply cleanly ($variant, $out/.config)"
}

# verify_sha256 FILE WANT: FILE's sha256 must be WANT; an empty WANT (the
# index gave none) is a failure too, never a silent skip.
verify_sha256() {
	local sha
	[ -n "$2" ] || die "$1: the package index has no SHA256 for it, cannot verify (refresh $LAB_CACHE/apt or remove the .deb)"
	sha=$(sha256sum "$1" | cut -d' ' -f1) || die "$1: cannot read it"
	[ "$sha" = "$2" ] || die "$1: sha256 $sha != index $2"
}
