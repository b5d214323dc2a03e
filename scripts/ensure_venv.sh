#!/usr/bin/env bash
# The hub-side virtual environment: our package with every extra, pinned by the single-user image's
# frozen requirements so the hub and the sandboxes run the same jupyterhub. Reused while the
# dependency lists are unchanged; our package itself is (re)installed editable from this checkout.
source "$(dirname "$0")/lib.sh"

PYTHON="${PYTHON:-python3}"
pins="$REPO_ROOT/images/singleuser/requirements.txt"
stamp_file="$WORKBENCH_VENV/.workbench-deps"
stamp="$( (cat "$REPO_ROOT/extensions/pyproject.toml"; cat "$pins" 2>/dev/null) | sha256sum | cut -c1-16)"

if [ ! -x "$WORKBENCH_VENV/bin/python" ]; then
  log "creating the venv at $WORKBENCH_VENV"
  mkdir -p "$(dirname "$WORKBENCH_VENV")"
  "$PYTHON" -m venv "$WORKBENCH_VENV"
fi
pip=("$WORKBENCH_VENV/bin/python" -m pip --disable-pip-version-check -q)

if [ "$(cat "$stamp_file" 2>/dev/null)" != "$stamp" ]; then
  log "installing the workbench's dependencies (a few minutes on a fresh machine)"
  constraints=()
  [ -f "$pins" ] && constraints=(-c "$pins")
  # torch==2.13.0 is the CPU build; an unpinned torch would pull a multi-GB CUDA build.
  install_log="$WORKBENCH_HOME/venv-install.log"
  # pyradiomics and docopt have no wheels on PyPI: built on this host once.
  built_wheels="$(PYTHON="$PYTHON" bash "$REPO_ROOT/scripts/build_pyradiomics_wheel.sh")" \
    || die "building the pyradiomics wheel failed"
  if ! "${pip[@]}" install "${constraints[@]}" --find-links "$built_wheels" "torch==2.13.0" \
      "$REPO_ROOT/extensions[hub,imaging,widgets,federation,kubernetes,test]" >"$install_log" 2>&1; then
    grep -v "is ignored: it is neither" "$install_log" | tail -30 >&2
    die "pip could not install the dependencies (full log: $install_log)"
  fi
  "${pip[@]}" check >/dev/null || die "the venv's dependencies conflict: $("${pip[@]}" check | head -5)"
  echo "$stamp" > "$stamp_file"
fi
# jsonschema's optional IRI check (rfc3987-syntax, from jupyter-events) compiles 38 grammars at each
# import of jsonschema: 3 CPU-s per hub start and per CLI call. Nothing here checks IRIs.
if "$WORKBENCH_VENV/bin/python" -c "import importlib.util as u, sys; sys.exit(u.find_spec('rfc3987_syntax') is None)"; then
  "${pip[@]}" uninstall -y rfc3987-syntax || die "removing rfc3987-syntax from the venv failed"
fi
"${pip[@]}" install --no-deps -e "$REPO_ROOT/extensions" >"$WORKBENCH_HOME/venv-editable.log" 2>&1 \
  || die "installing our package failed (log: $WORKBENCH_HOME/venv-editable.log)"
"$WORKBENCH_VENV/bin/python" -c "import imaging_workbench, jupyterhub, dockerspawner" \
  || die "the venv at $WORKBENCH_VENV is broken: remove it and run again"
log "venv ready: $WORKBENCH_VENV ($("$WORKBENCH_VENV/bin/python" -c 'import jupyterhub; print("jupyterhub", jupyterhub.__version__)'))"
