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
  [losetup]=mount        # size-capped home folders: a loop-mounted ext4 image per user
  [mkfs.ext4]=e2fsprogs
  [debugfs]=e2fsprogs
  [git]=git              # the images' content hash lists the checkout's files
  [python3]=python3
  [node]=nodejs          # configurable-http-proxy, JupyterHub's proxy, is a Node.js program
  [npm]=npm
  [gcc]=gcc              # scripts/build_pyradiomics_wheel.sh compiles pyradiomics' C extension
)
missing=()
for bin in "${!PACKAGES[@]}"; do
  command -v "$bin" >/dev/null 2>&1 || [ -x "/usr/sbin/$bin" ] || missing+=("${PACKAGES[$bin]}")
done
# PostgreSQL server binaries for the database tier (initdb, pg_ctl, postgres).
ls /usr/lib/postgresql/*/bin/postgres >/dev/null 2>&1 || missing+=(postgresql)
# The venv module and pip's certificates: Debian ships python3 without them.
python3 -c "import ensurepip, venv" >/dev/null 2>&1 || missing+=(python3-venv)
[ -f /etc/ssl/certs/ca-certificates.crt ] || missing+=(ca-certificates)
# Python's C headers, for the same build.
python3 -c 'import sysconfig, os, sys; sys.exit(not os.path.exists(sysconfig.get_paths()["include"] + "/Python.h"))' \
  2>/dev/null || missing+=(python3-dev)

if [ ${#missing[@]} -gt 0 ]; then
  log "installing Debian packages: ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -q >/dev/null
  apt-get install -y -q --no-install-recommends $(printf '%s\n' "${missing[@]}" | sort -u) >/dev/null
fi

if ! command -v configurable-http-proxy >/dev/null 2>&1; then
  log "installing configurable-http-proxy from the npm registry"
  npm install -g --loglevel=error configurable-http-proxy >/dev/null
fi
log "host packages present"
