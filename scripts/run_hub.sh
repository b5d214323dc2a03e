#!/usr/bin/env bash
# The last stage of `make up`: run the hub in the foreground at the deployment settings' address.
# Ctrl-C or SIGTERM stops the hub, its proxy and its services within seconds; sandboxes stop with
# it when the hub's cleanup_servers is on (the default); the FLARE sites keep running until
# `make down`, as real sites would.
source "$(dirname "$0")/lib.sh"
export PATH="$WORKBENCH_VENV/bin:$PATH"
# The deployment settings file; WORKBENCH_SITE is its old name, still honoured.
export WORKBENCH_SETTINGS="${WORKBENCH_SETTINGS:-${WORKBENCH_SITE:-$REPO_ROOT/hub_config/workbench.yaml}}"
read -r state_dir port stack < <(python -c 'from imaging_workbench.deployment import load_settings
from imaging_workbench.stack import stack_id
s = load_settings(); print(s["state_dir"], s["hub"]["port"], stack_id(s))')
# The stack's mark, inherited by the hub and its proxy (see imaging_workbench/stack.py).
export WORKBENCH_STACK="$stack"
log "JupyterHub starting at http://127.0.0.1:$port (Ctrl-C stops it; 'make down' stops everything)"
cd "$state_dir"
# Job control: the hub gets a process group of its own, so Ctrl-C reaches this script, which
# passes SIGINT on to the hub (and its children, below); the hub then stops its services and
# proxy itself. It stops each service with SIGINT first and waits 10 s before SIGTERM, so SIGINT
# must not reach it ignored (as it does when this script runs in the background):
# `env --default-signal` restores it.
set -m
umask 077  # the hub's database, cookie secret, pid files and job results: owner only
env --default-signal=INT,QUIT jupyterhub -f "$REPO_ROOT/hub_config/jupyterhub_config.py" &
hub=$!
# The hub stops its services one after another, polling each with a growing back-off (seconds in
# all); SIGINT to its children (proxy and services) at the same time lets it find them stopped.
stop_hub() { kill -INT $hub $(cat /proc/$hub/task/*/children 2>/dev/null) 2>/dev/null || true; }
trap stop_hub INT TERM
while kill -0 $hub 2>/dev/null; do wait $hub || true; done
wait $hub && exit 0
# A hub that failed, or was stopped before it handled signals itself (while starting), leaves its
# proxy and services running: stop what is left. A clean stop skips this (it takes seconds).
env -u WORKBENCH_STACK workbench down --hub-only >/dev/null || true
