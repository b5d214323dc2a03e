#!/usr/bin/env bash
# Build the workbench's JupyterLab extension (extensions/lab) as a prebuilt extension, cached.
# Prints the folder to copy into <prefix>/share/jupyter/labextensions/<package name>/.
#
#   $WORKBENCH_HOME/labextension/<hash>/  the built extension (package.json, static/); hash = the
#                                         files of extensions/lab (not node_modules/ or build/)
#                                         and node's major version
#   $WORKBENCH_HOME/build/lab/            the copy npm and tsc work in, so nothing lands in the
#                                         tree; its node_modules is kept while package-lock.json
#                                         is unchanged
#
# A run whose hash is cached takes about a second. Cold: `npm ci` (registry from npm's own
# configuration; the lock holds no registry URL), tsc, then @jupyter/builder (rspack) against
# @jupyterlab/core-meta, JupyterLab's core package list, which must equal the image's pinned
# jupyterlab. Needs node 20.19+ or 22.12+ and npm (Debian: apt-get install nodejs npm).
source "$(dirname "$0")/lib.sh"

lab_rel=extensions/lab
lab="$REPO_ROOT/$lab_rel"
work="$WORKBENCH_HOME/build/lab"
cache="$WORKBENCH_HOME/labextension"

check_node() {
  command -v node >/dev/null && command -v npm >/dev/null \
    || die "building $lab_rel needs node and npm: install them (Debian: apt-get install nodejs npm)"
  # @rspack/core's engines: ^20.19.0 || >=22.12.0
  node -e 'const [a, b] = process.versions.node.split(".").map(Number);
           process.exit((a === 20 && b >= 19) || (a === 22 && b >= 12) || a > 22 ? 0 : 1)' \
    || die "node $(node --version) is too old to build $lab_rel: it needs 20.19+ or 22.12+"
}

# The extension must be built against the JupyterLab the image runs.
check_core_version() {
  local core pinned
  core="$(node -p 'require(process.argv[1]).devDependencies["@jupyterlab/core-meta"]' "$lab/package.json")"
  pinned="$(sed -n 's/^jupyterlab==//p' "$REPO_ROOT/images/singleuser/requirements.txt")"
  [ "$core" = "$pinned" ] || die "$lab_rel/package.json builds against @jupyterlab/core-meta $core but the image pins jupyterlab==$pinned: set both to the same version (and the @jupyterlab/* dependencies to its line), then run npm install in $lab_rel to update package-lock.json"
}

# The extension's source files: those git would commit (its .gitignore keeps node_modules/ and
# build/ out), or outside a git tree every file but those.
lab_files() {
  if git -C "$REPO_ROOT" rev-parse --is-inside-work-tree >/dev/null 2>&1; then
    git -C "$REPO_ROOT" ls-files --cached --others --exclude-standard -- "$lab_rel"
  else
    (cd "$REPO_ROOT" && find "$lab_rel" \( -name node_modules -o -name build \) -prune -o -type f -print)
  fi | LC_ALL=C sort -u | while read -r f; do
    if [ -f "$REPO_ROOT/$f" ]; then printf '%s\n' "${f#"$lab_rel"/}"; fi  # skip deleted tracked files
  done
}

source_hash() {
  { node -p 'process.versions.node.split(".")[0]'
    lab_files | while read -r f; do printf '%s %s\n' "$f" "$(sha256sum <"$lab/$f" | cut -c1-64)"; done
  } | sha256sum | cut -c1-12
}

# A fresh copy of the sources in $work; node_modules stays unless package-lock.json changed.
copy_sources() {
  mkdir -p "$work"
  find "$work" -mindepth 1 -maxdepth 1 ! -name node_modules -exec rm -rf {} +
  lab_files | tar -C "$lab" -cf - -T - | tar -C "$work" -xf -
}

install_dependencies() {
  local want have=""
  want="$(sha256sum <"$work/package-lock.json" | cut -c1-64)"
  [ -f "$work/node_modules/.lock-sha256" ] && have="$(cat "$work/node_modules/.lock-sha256")"
  if [ "$want" = "$have" ]; then log "node_modules matches package-lock.json"; return; fi
  # --ignore-scripts: nothing in the tree needs an install script (rspack's binary is a plain package).
  (cd "$work" && npm ci --ignore-scripts --no-audit --no-fund --loglevel=error) >&2 \
    || die "npm ci in $work failed (see above); is the npm registry reachable (npm config get registry)?"
  echo "$want" >"$work/node_modules/.lock-sha256"
}

build() {
  (cd "$work" && npm run --silent build) >&2 || die "building $lab_rel failed (see above)"
  [ -f "$work/build/labextension/package.json" ] || die "the build left no $work/build/labextension/package.json"
}

main() {
  check_node
  check_core_version
  mkdir -p "$cache"
  exec 8>"$cache/.lock"
  flock 8  # one build at a time per machine

  local key start=$SECONDS
  key="$(source_hash)"
  if [ -f "$cache/$key/package.json" ]; then
    log "lab extension $cache/$key is cached"
  else
    stage lab-sources copy_sources
    stage lab-npm-ci install_dependencies
    stage lab-build build
    rm -rf "$cache/$key.partial" "$cache/$key"
    cp -a "$work/build/labextension" "$cache/$key.partial" && mv "$cache/$key.partial" "$cache/$key"
    log "lab extension built into $cache/$key in $((SECONDS - start)) s"
  fi
  echo "$cache/$key"
}

main "$@"
