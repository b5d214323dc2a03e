#!/usr/bin/env bash
# Build the minimal Debian base of the single-user image and `docker import` it.
#
# Usage: images/base/build.sh TAG
#
# mmdebstrap builds Debian $BASE_SUITE (variant minbase) from the mirror apt on this host
# already uses (read from /etc/apt/sources.list.d/*.sources and /etc/apt/sources.list; no host
# name is written here), inside /dev/shm for speed, then imports the tarball as TAG.
# No registry is needed. Where a registry is reachable, skip this script and point the
# single-user build at a Jupyter Docker Stacks image instead (see images/README.md,
# WORKBENCH_BASE_IMAGE).
#
# Env: BASE_SUITE (default bookworm), BASE_WORKDIR (default /dev/shm).
source "$(dirname "$0")/../../scripts/lib.sh"
need_root "images/base/build.sh"

tag="${1:?usage: images/base/build.sh TAG}"
suite="${BASE_SUITE:-bookworm}"
workdir="${BASE_WORKDIR:-/dev/shm}"
command -v mmdebstrap >/dev/null 2>&1 || die "mmdebstrap is missing: run scripts/ensure_host.sh"

# Runtime packages of the image. Nothing to compile with: every Python package comes as a wheel.
packages=(
  python3          # the interpreter the image's venv is made from (3.11 on bookworm)
  python3-venv     # python3 -m venv, with ensurepip
  tini             # PID 1: reaps zombies, forwards signals to the single-user server
  ca-certificates  # TLS for the hub API when it is served over https
  libgomp1         # OpenMP runtime for torch and SimpleITK
)

# Mirrors: apt's own source files on this host, passed to mmdebstrap as they are.
mirrors=()
for f in /etc/apt/sources.list.d/*.sources /etc/apt/sources.list; do
  [ -f "$f" ] && grep -qE '^[[:space:]]*(deb|URIs:)' "$f" && mirrors+=("$f")
done
[ ${#mirrors[@]} -gt 0 ] || die "no apt sources found in /etc/apt/sources.list{,.d/*.sources}: configure apt first"

scratch="$(mktemp -d "$workdir/workbench-base.XXXXXX")"
trap 'rm -rf "$scratch"' EXIT

log "mmdebstrap $suite (minbase) from ${mirrors[*]}"
TMPDIR="$scratch" mmdebstrap --quiet --variant=minbase --format=tar \
  --include="$(IFS=,; echo "${packages[*]}")" \
  --dpkgopt='path-exclude=/usr/share/man/*' \
  --dpkgopt='path-exclude=/usr/share/doc/*' \
  --dpkgopt='path-include=/usr/share/doc/*/copyright' \
  --dpkgopt='path-exclude=/usr/share/locale/*' \
  --dpkgopt='path-include=/usr/share/locale/locale.alias' \
  --dpkgopt='path-exclude=/usr/share/info/*' \
  "$suite" "$scratch/rootfs.tar" "${mirrors[@]}"

# C.UTF-8 is built into glibc >= 2.35, so no locales package is needed.
docker import \
  --change 'ENV LANG=C.UTF-8 LC_ALL=C.UTF-8' \
  --change 'CMD ["/bin/bash"]' \
  --message "workbench base: Debian $suite minbase + ${packages[*]}" \
  "$scratch/rootfs.tar" "$tag" >/dev/null
log "imported $tag ($(docker image inspect -f '{{.Size}}' "$tag" | awk '{printf "%.0f MB", $1/1e6}'))"
