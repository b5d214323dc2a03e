#!/usr/bin/env bash
# `make up`: set up everything that is missing, then run the hub in the foreground at
# http://127.0.0.1:8000 with the demo cohorts, demo logins and the local federation.
source "$(dirname "$0")/lib.sh"
need_root "make up"
cd "$REPO_ROOT"
# The deployment settings file; WORKBENCH_SITE is its old name, still honoured.
export WORKBENCH_SETTINGS="${WORKBENCH_SETTINGS:-${WORKBENCH_SITE:-$REPO_ROOT/hub_config/workbench.yaml}}"

stage host bash scripts/ensure_host.sh
stage venv bash scripts/ensure_venv.sh
# ACRO's own venv (about a minute when new) installs while dockerd starts and the images build.
stage acro bash scripts/ensure_acro.sh & acro_pid=$!
stage dockerd bash scripts/ensure_dockerd.sh
stage images bash scripts/ensure_images.sh
stage acro-wait wait "$acro_pid"

export PATH="$WORKBENCH_VENV/bin:$PATH"
size="$(python -c 'from imaging_workbench.deployment import load_settings; print(load_settings()["demo"]["size"])')"
stage demo-data workbench demo-data --size "$size" --register
stage sandbox-network workbench sandbox-network
stage demo-users workbench demo-users
# The tools the workbench ships (its own federated training made them): added by the platform, approved
# by the demo's tool reviewer, so every sandbox's /tools holds them.
stage shipped-tools workbench --as platform tools add-shipped --approve-as admin
stage federation workbench federation up
# Last before the hub: every earlier stage has made its files; an older install's loose modes go.
stage private-state workbench private-state

exec bash scripts/run_hub.sh
