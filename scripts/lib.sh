# Shared helpers for the ensure_* scripts: logging, stage timing, repository paths.
# Sourced, never run.
set -euo pipefail

REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
# Kept outside the checkout so a second clone (CI, a colleague's tree) reuses it.
WORKBENCH_HOME="${WORKBENCH_HOME:-/var/lib/workbench}"
WORKBENCH_VENV="${WORKBENCH_VENV:-$WORKBENCH_HOME/venv}"
export REPO_ROOT WORKBENCH_HOME WORKBENCH_VENV

log() { printf '[%s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
die() { log "error: $*"; exit 1; }

# stage NAME COMMAND...: run a step and print how long it took, so a slow step shows in CI logs.
stage() {
  local name="$1"; shift
  local start=$SECONDS rc=0
  log "stage $name: start"
  "$@" || rc=$?
  if [ $rc = 0 ]; then log "stage $name: done in $((SECONDS - start)) s"
  else log "stage $name: FAILED (exit $rc) after $((SECONDS - start)) s"; fi
  return $rc
}

need_root() { [ "$(id -u)" = 0 ] || die "$1 needs root (apt-get, dockerd, iptables); run it as root"; }
