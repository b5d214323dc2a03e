#!/usr/bin/env bash
# Build the wheels PyPI lacks for the image's Python, once, into $WORKBENCH_HOME/built-wheels/:
# pyradiomics (a C extension, source only for CPython 3.11) and docopt (pykwalify's dependency,
# source only). refreeze.sh, ensure_images.sh and ensure_venv.sh pass the folder as --find-links.
#
# pyradiomics is pinned to 3.0.1: the 3.1.0 source archive on PyPI does not build (its pyproject says
# version 3.0.1a1, so pip refuses it, and it lacks the C headers cmatrices.h and cshape.h).
# Built with --no-build-isolation in a throwaway venv holding numpy (the image's pin), setuptools,
# wheel and versioneer, so the build needs no index beyond PyPI and links against our numpy.
#
# Usage: scripts/build_pyradiomics_wheel.sh   (prints the folder)
# Env:   PYTHON (default python3: Debian's, the image's Python minor version; needs gcc and python3-dev)
source "$(dirname "$0")/lib.sh"

PYRADIOMICS_VERSION=3.0.1
DOCOPT_VERSION=0.6.2
PYTHON="${PYTHON:-python3}"
out="$WORKBENCH_HOME/built-wheels"
pins="$REPO_ROOT/images/singleuser/requirements.txt"

if ls "$out"/pyradiomics-$PYRADIOMICS_VERSION-*.whl "$out"/docopt-$DOCOPT_VERSION-*.whl >/dev/null 2>&1; then
  log "built wheels cached in $out: $(cd "$out" && echo *.whl)"
else
  tmp="$(mktemp -d)"
  trap 'rm -rf "$tmp"' EXIT
  log "building pyradiomics $PYRADIOMICS_VERSION and docopt $DOCOPT_VERSION wheels with $("$PYTHON" --version)"
  "$PYTHON" -m venv "$tmp/venv"
  pip=("$tmp/venv/bin/python" -m pip --disable-pip-version-check -q)
  "${pip[@]}" install -c "$pins" numpy setuptools wheel versioneer==0.29 2> >(grep -v "is ignored: it is neither" >&2) \
    || die "installing the build tools (numpy, setuptools, wheel, versioneer) failed (see above)"
  "${pip[@]}" wheel --no-deps --no-build-isolation --no-cache-dir --wheel-dir "$tmp/wheels" \
      "pyradiomics==$PYRADIOMICS_VERSION" "docopt==$DOCOPT_VERSION" 2> >(grep -v "is ignored: it is neither" >&2) \
    || die "building the pyradiomics/docopt wheels failed (see above); are gcc and python3-dev installed (scripts/ensure_host.sh)?"
  mkdir -p "$out"
  mv "$tmp"/wheels/*.whl "$out"/
  log "built into $out: $(cd "$out" && echo *.whl)"
fi
echo "$out"
