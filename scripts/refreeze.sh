#!/usr/bin/env bash
# Freeze images/singleuser/requirements.in into requirements.txt (name==version, one a line).
#
# Resolves for the image's Python, not the host's: binary wheels only, for CPython
# $IMAGE_PYTHON_VERSION (Debian bookworm's python3 by default), with `pip install --dry-run
# --report`, so nothing is installed and no venv is needed. The dependencies of our own package
# (extensions/pyproject.toml: its base dependencies and the sandbox extras; the package is
# installed in the image with --no-deps) are resolved with it, so the image has them.
#
# Usage: scripts/refreeze.sh            (then review `git diff images/singleuser/requirements.txt`)
# Env:   IMAGE_PYTHON_VERSION (default 3.11.2), PIP (default: the dev venv's pip, else python3 -m pip)
source "$(dirname "$0")/lib.sh"

py_version="${IMAGE_PYTHON_VERSION:-3.11.2}"
in_file="$REPO_ROOT/images/singleuser/requirements.in"
out_file="$REPO_ROOT/images/singleuser/requirements.txt"
# The sandbox-side extras of our package; `hub` (dockerspawner, ...) runs on the host only.
pkg_extras="imaging widgets federation"

if [ -n "${PIP:-}" ]; then read -r -a pip <<<"$PIP"
elif [ -x "$WORKBENCH_VENV/bin/pip" ]; then pip=("$WORKBENCH_VENV/bin/pip")
else pip=(python3 -m pip); fi

tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT

# Read from pyproject.toml rather than building the package: quicker, and independent of
# whether the package builds at this moment.
python3 - "$REPO_ROOT/extensions/pyproject.toml" $pkg_extras >"$tmp/package-deps.txt" <<'PY' \
  || die "cannot read the dependencies from extensions/pyproject.toml"
import sys, tomllib
project = tomllib.load(open(sys.argv[1], "rb"))["project"]
deps = list(project.get("dependencies", []))
for extra in sys.argv[2:]:
    deps += project.get("optional-dependencies", {}).get(extra, [])
print("\n".join(dict.fromkeys(deps)))
PY

# pyradiomics and docopt have no wheels on PyPI: built on this host once, found here.
built_wheels="$(bash "$REPO_ROOT/scripts/build_pyradiomics_wheel.sh")" || die "building the pyradiomics wheel failed"

log "resolving $in_file for CPython $py_version (binary wheels only)"
# --target: pip only accepts --python-version with a target; --dry-run writes nothing there.
"${pip[@]}" install --quiet --dry-run --ignore-installed --report "$tmp/report.json" \
  --only-binary=:all: --python-version "$py_version" --implementation cp --find-links "$built_wheels" \
  --target "$tmp/target" -r "$in_file" -r "$tmp/package-deps.txt" 2> >(grep -v "is ignored: it is neither" >&2) \
  || die "requirements.in does not resolve for Python $py_version (see pip's message above); relax or change a pin"

{
  echo "# Frozen from requirements.in by scripts/refreeze.sh for CPython $py_version; do not edit."
  echo "# To change a version: edit requirements.in, run scripts/refreeze.sh, rebuild with scripts/ensure_images.sh."
  # ensure_images.sh compares this with requirements.in to catch a forgotten refreeze.
  echo "# requirements.in sha256: $(sha256sum "$in_file" | cut -d' ' -f1)"
  python3 - "$tmp/report.json" <<'PY'
import json, re, sys
report = json.load(open(sys.argv[1]))
pins = {}
for item in report["install"]:
    name = re.sub(r"[-_.]+", "-", item["metadata"]["name"]).lower()
    pins[name] = item["metadata"]["version"]
for name in sorted(pins):
    # Without a local label (2.13.0, not 2.13.0+cpu): the pin must resolve from a public index too,
    # and pip still takes a local wheel folder's +cpu build for it.
    print(f"{name}=={pins[name].split('+')[0]}")
PY
} >"$out_file.new"
mv "$out_file.new" "$out_file"
log "wrote $out_file ($(grep -c '==' "$out_file") pins; jupyterhub $(grep '^jupyterhub==' "$out_file" | cut -d= -f3), torch $(grep '^torch==' "$out_file" | cut -d= -f3))"
