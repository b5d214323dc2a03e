#!/usr/bin/env bash
# Install the host packages the workbench needs, only those missing. Idempotent.
source "$(dirname "$0")/lib.sh"
need_root "ensure_host"

# binary -> Debian package that provides it
declare -A PACKAGES=(
  [dockerd]=docker.io
  [mmdebstrap]=mmdebstrap
  [iptables]=iptables
  [chromium]=chromium
  [dciodvfy]=dicom3tools
  [runuser]=util-linux
  [ip]=iproute2
)
missing=()
for bin in "${!PACKAGES[@]}"; do
  command -v "$bin" >/dev/null 2>&1 || [ -x "/usr/sbin/$bin" ] || missing+=("${PACKAGES[$bin]}")
done
# PostgreSQL server binaries for the database tier (initdb, pg_ctl, postgres).
ls /usr/lib/postgresql/*/bin/postgres >/dev/null 2>&1 || missing+=(postgresql)

if [ ${#missing[@]} -gt 0 ]; then
  log "installing Debian packages: ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -q >/dev/null
  apt-get install -y -q --no-install-recommends "${missing[@]}" >/dev/null
fi

if ! command -v configurable-http-proxy >/dev/null 2>&1; then
  command -v npm >/dev/null 2>&1 || die "npm is missing: install Node.js (Debian: apt-get install nodejs npm)"
  log "installing configurable-http-proxy from the npm registry"
  npm install -g --silent configurable-http-proxy >/dev/null
fi
log "host packages present"
