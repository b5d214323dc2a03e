#!/usr/bin/env bash
# `make down`: stop everything `make up` started (hub, proxy, services, sandboxes, FLARE server and
# sites), keeping all data. Idempotent: a second run stops nothing.
source "$(dirname "$0")/lib.sh"
need_root "make down"
# The deployment settings file; WORKBENCH_SITE is its old name, still honoured.
export WORKBENCH_SETTINGS="${WORKBENCH_SETTINGS:-${WORKBENCH_SITE:-$REPO_ROOT/hub_config/workbench.yaml}}"
[ -x "$WORKBENCH_VENV/bin/workbench" ] || { log "nothing to stop: the workbench was never set up"; exit 0; }
exec "$WORKBENCH_VENV/bin/workbench" down
