#!/usr/bin/env bash
# `make test`: install and start what the tests need, then run every tier. Each stage prints its
# duration; a failing tier does not stop the later ones, and the exit status says if any failed.
source "$(dirname "$0")/lib.sh"
need_root "make test"
cd "$REPO_ROOT"
run_start=$SECONDS

stage host bash scripts/ensure_host.sh
stage venv bash scripts/ensure_venv.sh
stage dockerd bash scripts/ensure_dockerd.sh
stage images bash scripts/ensure_images.sh

export PATH="$WORKBENCH_VENV/bin:$PATH"
export PYTHONDONTWRITEBYTECODE=1
failed=()
tier() {  # tier NAME PYTEST-ARGS...
  local name="$1"; shift
  if ! stage "tests-$name" python -m pytest "$@"; then
    failed+=("$name")
  fi
}
tier unit tests/unit
tier hub tests/hub
tier docker tests/docker
tier browser tests/browser
tier federation tests/federation
tier notebooks tests/notebooks

log "all stages done in $((SECONDS - run_start)) s"
if [ ${#failed[@]} -gt 0 ]; then
  log "FAILED tiers: ${failed[*]}"
  exit 1
fi
log "every tier passed"
