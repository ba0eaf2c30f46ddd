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
