#!/usr/bin/env bash
# ACRO's own virtual environment, where the airlock runs ACRO (airlock/acro_results.py) on the
# tables researchers made with it: ACRO pins an older pandas than the workbench, so it cannot live
# in the hub's venv. Pinned by scripts/acro-requirements.txt; reused while that file is unchanged,
# rebuilt from scratch when it changes (so nothing of an older set stays behind).
source "$(dirname "$0")/lib.sh"

PYTHON="${PYTHON:-python3}"
ACRO_VENV="${ACRO_VENV:-$WORKBENCH_HOME/acro-venv}"
pins="$REPO_ROOT/scripts/acro-requirements.txt"
stamp_file="$ACRO_VENV/.workbench-deps"
stamp="$(sha256sum <"$pins" | cut -c1-16)"
mkdir -p "$(dirname "$ACRO_VENV")"
exec 9>"$ACRO_VENV.lock"
flock 9  # one install at a time per machine: `make test` in a CI clone and a developer's may overlap
acro_version() { "$ACRO_VENV/bin/python" -c 'import importlib.metadata as m; print(m.version("acro"))' 2>/dev/null; }

if [ "$(cat "$stamp_file" 2>/dev/null)" = "$stamp" ] && acro_version >/dev/null; then
  log "ACRO's venv ready: $ACRO_VENV (acro $(acro_version))"
  exit 0
fi

log "creating ACRO's venv at $ACRO_VENV (about a minute)"
rm -rf "$ACRO_VENV"
"$PYTHON" -m venv "$ACRO_VENV"
pip=("$ACRO_VENV/bin/python" -m pip --disable-pip-version-check -q)
install_log="$ACRO_VENV/install.log"
# --no-deps: every package is pinned in the file; `pip check` below says if one is missing.
if ! "${pip[@]}" install --no-deps -r "$pins" >"$install_log" 2>&1; then
  tail -30 "$install_log" >&2
  die "pip could not install ACRO's environment (full log: $install_log)"
fi
"${pip[@]}" check >/dev/null || die "ACRO's venv's dependencies conflict: $("${pip[@]}" check | head -5)"
# The stamp last: an interrupted install is redone by the next run.
echo "$stamp" >"$stamp_file"
log "ACRO's venv ready: $ACRO_VENV (acro $(acro_version))"
