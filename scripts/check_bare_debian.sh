#!/usr/bin/env bash
# Does a bare Debian 12 get through set-up? Bootstraps a fresh Debian 12 root with mmdebstrap
# (minbase plus make, from this machine's apt sources), copies this checkout into it, passes in
# this machine's apt, pip and npm configuration and its wheel folders explicitly, and runs the
# host and venv stages there (scripts/ensure_host.sh, scripts/ensure_venv.sh), each timed.
#
# Not part of `make test`: it downloads several hundred megabytes. Run it as root:
#   bash scripts/check_bare_debian.sh            (KEEP=1 keeps the root for a look inside)
source "$(dirname "$0")/lib.sh"
need_root "check_bare_debian"
command -v mmdebstrap >/dev/null || die "mmdebstrap is missing: run scripts/ensure_host.sh first"
start=$SECONDS

root="$(mktemp -d /var/tmp/bare-debian-XXXXXX)"
mounts=()
cleanup() {
  for ((i = ${#mounts[@]} - 1; i >= 0; i--)); do umount -l "${mounts[$i]}" 2>/dev/null || true; done
  if [ -z "${KEEP:-}" ]; then rm -rf --one-file-system "$root"; else log "kept the root at $root"; fi
}
trap cleanup EXIT
bind() {  # bind SOURCE [ro]: SOURCE at the same path inside the root
  mkdir -p "$root$1"
  mount --bind "$1" "$root$1"
  mounts+=("$root$1")
  if [ "${2:-}" = ro ]; then mount -o remount,bind,ro "$root$1"; fi
}

# The mirror apt already uses here (deb822 or one-line sources).
mirror="$(grep -hoE '^URIs: *http[^ ]+/debian/?$' /etc/apt/sources.list.d/*.sources 2>/dev/null | head -1 | awk '{print $2}')"
[ -n "$mirror" ] || mirror="$(grep -hoE '^deb +http[^ ]+/debian/? ' /etc/apt/sources.list 2>/dev/null | head -1 | awk '{print $2}')"
[ -n "$mirror" ] || die "cannot find this machine's Debian mirror in /etc/apt/sources.list(.d)"

stage bootstrap mmdebstrap --quiet --variant=minbase --include=make bookworm "$root" "$mirror"

# This machine's configuration, passed in explicitly: apt (sources, proxies), DNS, pip (index,
# constraints, certificates) and npm, and the folders they point at.
cp /etc/resolv.conf "$root/etc/resolv.conf"
# Local certificate authorities (a proxy's): ca-certificates adds them to the bundle it writes.
mkdir -p "$root/usr/local/share/ca-certificates"
cp -a /usr/local/share/ca-certificates/. "$root/usr/local/share/ca-certificates/"
rm -f "$root/etc/apt/sources.list"  # this machine's sources only
cp -a /etc/apt/sources.list.d/. "$root/etc/apt/sources.list.d/"
[ -f /etc/apt/sources.list ] && cp /etc/apt/sources.list "$root/etc/apt/sources.list"
cp -a /etc/apt/apt.conf.d/. "$root/etc/apt/apt.conf.d/"
for f in /etc/pip.conf /etc/xdg/pip /etc/npmrc /root/.npmrc /root/.config/pip; do
  [ -e "$f" ] && { mkdir -p "$root$(dirname "$f")"; cp -a "$f" "$root$f"; }
done
# An index's simple/ pages link to files beside it: bind the index's whole folder.
for folder in $(pip config list 2>/dev/null | grep -oE "(file://)?/[^' ]+" | sed 's|^file://||; s|/simple/*$||' | sort -u); do
  [ -d "$folder" ] && bind "$folder" ro
  [ -f "$folder" ] && { mkdir -p "$root$(dirname "$folder")"; cp -a "$folder" "$root$folder"; }
done
# No service starts inside the root (docker.io's and postgresql's postinst would try).
printf '#!/bin/sh\nexit 101\n' >"$root/usr/sbin/policy-rc.d"
chmod 755 "$root/usr/sbin/policy-rc.d"
for fs in proc sys dev; do bind "/$fs"; done

# The checkout as a user would have it (no build outputs, no venv).
mkdir -p "$root/work"
git -C "$REPO_ROOT" ls-files -z --cached --others --exclude-standard \
  | (cd "$REPO_ROOT" && xargs -0 cp --parents -t "$root/work")

pip_env=$(env | grep -E '^PIP_' | sed 's/^/export /' | sed "s/=\(.*\)/='\1'/")
inside() {  # inside COMMAND: run in the root as a fresh root login would, with pip's env settings
  chroot "$root" /usr/bin/env -i HOME=/root PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
    LANG=C.UTF-8 bash -c "$pip_env
cd /work && $1"
}
stage bare-host inside "bash scripts/ensure_host.sh"
stage bare-venv inside "bash scripts/ensure_venv.sh"
inside "/var/lib/workbench/venv/bin/python -c 'import imaging_workbench, jupyterhub, nvflare, torch, monai; print(\"imports ok\")'
command -v configurable-http-proxy dockerd iptables chromium"
log "a bare Debian 12 got through the host and venv stages in $((SECONDS - start)) s"
