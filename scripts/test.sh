#!/usr/bin/env bash
# `make test`: install and start what the tests need, then run every tier. Each stage prints its
# duration; a failing tier does not stop the later ones, and the exit status says if any failed.
source "$(dirname "$0")/lib.sh"
need_root "make test"
cd "$REPO_ROOT"
run_start=$SECONDS

stage host bash scripts/ensure_host.sh
stage venv bash scripts/ensure_venv.sh
# ACRO's own venv (about a minute when new) installs while dockerd starts and the images build.
stage acro bash scripts/ensure_acro.sh & acro_pid=$!
stage dockerd bash scripts/ensure_dockerd.sh
stage images bash scripts/ensure_images.sh
stage acro-wait wait "$acro_pid"

export PATH="$WORKBENCH_VENV/bin:$PATH"
export PYTHONDONTWRITEBYTECODE=1
# The run's marks: everything the tests start inherits WORKBENCH_TEST_RUN, and every temporary
# folder (and so every test hub's stack mark) is under run_tmp; the leak check looks for exactly these.
export WORKBENCH_TEST_RUN="run-$(date +%s)-$$"
run_since="$(date +%s)"
run_tmp="$(mktemp -d /tmp/workbench-test-XXXXXX)"
chmod 755 "$run_tmp"  # sandboxes (uid 1000) and PostgreSQL read fixtures below it
failed=()
tier() {  # tier NAME PYTEST-ARGS...
  local name="$1"; shift
  # --durations: the tier's slowest steps, so a test that grows shows before the run's limit.
  if ! stage "tests-$name" python -m pytest --basetemp="$run_tmp/$name" --durations=8 "$@"; then
    failed+=("$name")
  fi
}
tier unit tests/unit
# The federation tier's demo cohorts (about 36 s of CPU) are written while the hub, docker and
# browser tiers run, which mostly wait on processes and containers.
export WORKBENCH_TEST_DEMO_DATA="$run_tmp/demo-data"
python -m tests.demo_data "$WORKBENCH_TEST_DEMO_DATA" > "$run_tmp/demo-data.log" 2>&1 &
demo_data_pid=$!
tier hub tests/hub
tier docker tests/docker
tier browser tests/browser
# A failed generation only costs time: the federation tier writes what is missing itself.
stage demo-data-wait wait "$demo_data_pid" || log "demo data written ahead failed: $(tail -3 "$run_tmp/demo-data.log")"
tier federation tests/federation
tier notebooks tests/notebooks

# Nothing a test started may outlive the run (dockerd and PostgreSQL of the set-up stages carry no mark).
if ! stage leak-check python -m tests.leaks --run-id "$WORKBENCH_TEST_RUN" --tmp "$run_tmp" --since "$run_since"; then
  failed+=("leak-check")
fi
# The run's folders (logs of hubs, services, FLARE sites) stay when something failed, to read.
if [ ${#failed[@]} -gt 0 ] || [ -n "${WORKBENCH_KEEP_TEST_TMP:-}" ]; then log "test folders kept in $run_tmp"
else rm -rf "$run_tmp"; fi

log "all stages done in $((SECONDS - run_start)) s"
if [ ${#failed[@]} -gt 0 ]; then
  log "FAILED tiers: ${failed[*]}"
  exit 1
fi
log "every tier passed"
