#!/usr/bin/env bash
# Build the sandbox images if they are not there yet. Idempotent; prints the image to spawn.
#
#   workbench-base:<h1>         minimal Debian (images/base/build.sh), h1 = hash of images/base/
#   workbench-singleuser:<h2>   the single-user image, h2 = hash of h1, images/singleuser/,
#                               extensions/ (with the JupyterLab extension's source, extensions/lab)
#                               and README.md (the package's readme)
#   workbench-singleuser:latest the same image, for configs that want a fixed name
#
# An image whose tag exists is not rebuilt, so a second run, or a CI clone on the same machine,
# takes about a second. The wheelhouse is cached in $WORKBENCH_HOME/wheelhouse/<hash of
# requirements.txt and the image's Python>, the built JupyterLab extension in
# $WORKBENCH_HOME/labextension/<hash of extensions/lab> (scripts/build_labextension.sh); an edit
# of extensions/ alone rebuilds only the last layers of the image.
#
# Env: WORKBENCH_BASE_IMAGE  use this image as the base instead of mmdebstrap (e.g. a Jupyter
#                            Docker Stacks image, where a registry is reachable); see images/README.md
#      PIP                   pip used to download wheels (default: the dev venv's pip)
#      WORKBENCH_PRUNE_IMAGES=1  untag every other workbench-singleuser:<hash> and prune dangling
#                            images (off by default: another clone may still use its tag)
source "$(dirname "$0")/lib.sh"
need_root "ensure_images"
export DOCKER_BUILDKIT=0  # only the classic builder exists here (no buildx)

images="$REPO_ROOT/images"
requirements="$images/singleuser/requirements.txt"
if [ -n "${PIP:-}" ]; then read -r -a pip <<<"$PIP"
elif [ -x "$WORKBENCH_VENV/bin/pip" ]; then pip=("$WORKBENCH_VENV/bin/pip")
else pip=(python3 -m pip); fi

# Files that make up a path: those git would commit (tracked or new, not ignored) in a git tree,
# else every file; never build output, so building our wheel does not change the hash.
list_files() {
  {
    if git -C "$REPO_ROOT" rev-parse --is-inside-work-tree >/dev/null 2>&1; then
      git -C "$REPO_ROOT" ls-files --cached --others --exclude-standard -- "$@"
    else
      (cd "$REPO_ROOT" && find "$@" -type f 2>/dev/null) || true  # a missing path is no error
    fi
  } | { grep -vE '(^|/)(build|dist|node_modules|__pycache__|[^/]*\.egg-info)/|\.pyc$' || true; } \
    | LC_ALL=C sort -u | while read -r f; do
        # git lists a tracked file that was deleted in the working tree; skip it.
        if [ -f "$REPO_ROOT/$f" ]; then printf '%s\n' "$f"; fi
      done
}

# content_hash SALT PATH...: 12 hex digits over file names and contents.
content_hash() {
  local salt="$1"; shift
  { echo "$salt"; list_files "$@" | while read -r f; do
      printf '%s %s\n' "$f" "$(sha256sum <"$REPO_ROOT/$f" | cut -c1-64)"; done
  } | sha256sum | cut -c1-12
}

have_image() { docker image inspect "$1" >/dev/null 2>&1; }

# The sandbox's jupyterhub must equal the hub's, or the single-user server refuses the hub.
check_jupyterhub_version() {
  local pinned hub
  pinned="$(sed -n 's/^jupyterhub==//p' "$requirements")"
  [ -n "$pinned" ] || die "$requirements pins no jupyterhub: add jupyterhub==<hub's version> to requirements.in and run scripts/refreeze.sh"
  if [ ! -x "$WORKBENCH_VENV/bin/python" ]; then
    log "warning: no hub venv at $WORKBENCH_VENV; cannot check that the image's jupyterhub $pinned matches the hub's"
    return
  fi
  hub="$("$WORKBENCH_VENV/bin/python" -c 'import importlib.metadata as m; print(m.version("jupyterhub"))' 2>/dev/null)" \
    || die "jupyterhub is not installed in the hub venv $WORKBENCH_VENV"
  [ "$pinned" = "$hub" ] || die "jupyterhub in the image ($pinned, $requirements) differs from the hub's ($hub, $WORKBENCH_VENV): set jupyterhub==$hub in images/singleuser/requirements.in and run scripts/refreeze.sh"
}

check_frozen() {
  local want have
  want="$(sha256sum <"$images/singleuser/requirements.in" | cut -c1-64)"
  have="$(sed -n 's/^# requirements.in sha256: //p' "$requirements")"
  [ "$want" = "$have" ] || die "images/singleuser/requirements.in changed since requirements.txt was frozen: run scripts/refreeze.sh"
}

build_base() { bash "$images/base/build.sh" "$base_tag"; }

# ensure_wheelhouse PYVER: every wheel of requirements.txt for the image's Python, cached.
ensure_wheelhouse() {
  local py="$1" key dir
  key="$( { cat "$requirements"; echo "$py"; } | sha256sum | cut -c1-12)"
  dir="$WORKBENCH_HOME/wheelhouse/$key"
  if [ -f "$dir/.complete" ]; then
    log "wheelhouse $dir is cached"
  else
    rm -rf "$dir.partial"
    # pyradiomics and docopt: wheels PyPI lacks, built on this host (scripts/build_pyradiomics_wheel.sh).
    built_wheels="$(bash "$REPO_ROOT/scripts/build_pyradiomics_wheel.sh")" || die "building the pyradiomics wheel failed"
    # Frozen list, so --no-deps: no second resolution. The image's pip install (no index)
    # fails loudly if the freeze missed a dependency.
    "${pip[@]}" download --quiet --no-deps --only-binary=:all: --python-version "$py" \
      --implementation cp --find-links "$built_wheels" -r "$requirements" -d "$dir.partial" \
      2> >(grep -v "is ignored: it is neither" >&2) \
      || die "pip download of $requirements for Python $py failed (see above); is the package index reachable?"
    cp "$requirements" "$dir.partial/requirements.txt"
    touch "$dir.partial/.complete"
    rm -rf "$dir" && mv "$dir.partial" "$dir"
    log "wheelhouse $dir: $(du -sh "$dir" | cut -f1)"
  fi
  wheelhouse="$dir"
}

# Our package as a wheel, built from a copy so no build/ or egg-info lands in the source tree.
build_package_wheel() {
  local src="$ctx/src"
  rm -rf "$src" "$ctx/pkg" && mkdir -p "$src" "$ctx/pkg"
  list_files extensions README.md | tar -C "$REPO_ROOT" -cf - -T - | tar -C "$src" -xf -
  "${pip[@]}" wheel --quiet --no-deps --no-build-isolation --wheel-dir "$ctx/pkg" "$src/extensions" \
    2> >(grep -v "is ignored: it is neither" >&2) \
    || die "building the imaging-workbench wheel from extensions/ failed (see above)"
  rm -rf "$src"
}

# Our JupyterLab extension, built on the host with node (the image has none); sets $labext.
build_lab_extension() {
  labext="$(bash "$REPO_ROOT/scripts/build_labextension.sh")" || die "building the JupyterLab extension failed (see above)"
}

assemble_context() {
  local labext_name
  rm -rf "$ctx/wheelhouse" "$ctx/jupyter" "$ctx/jupyter-dashboard" "$ctx/lab-settings" "$ctx/examples" "$ctx/labextensions"
  mkdir -p "$ctx/examples"
  # labextensions/<package name>/, the layout of <prefix>/share/jupyter/labextensions.
  labext_name="$(node -p 'require(process.argv[1]).name' "$labext/package.json")"
  [ -n "$labext_name" ] || die "$labext/package.json names no package"
  mkdir -p "$ctx/labextensions/$labext_name"
  cp -a "$labext/." "$ctx/labextensions/$labext_name/"
  cp -al "$wheelhouse" "$ctx/wheelhouse" 2>/dev/null || cp -a "$wheelhouse" "$ctx/wheelhouse"
  rm -f "$ctx/wheelhouse/.complete"
  cp -a "$images/singleuser/jupyter" "$ctx/jupyter"
  cp -a "$images/singleuser/jupyter-dashboard" "$ctx/jupyter-dashboard"
  cp -a "$images/singleuser/lab-settings" "$ctx/lab-settings"
  list_files notebooks/researcher notebooks/clinician | tar -C "$REPO_ROOT" -cf - -T - \
    | tar -C "$ctx/examples" --strip-components=1 -xf -  # notebooks/researcher/x -> examples/researcher/x
  cp "$images/singleuser/Dockerfile" "$ctx/Dockerfile"
}

build_singleuser() {
  local log_file="$WORKBENCH_HOME/singleuser-build.log" target args
  : >"$log_file"
  # First the venv stage alone, tagged, so that `docker image prune` cannot drop it as dangling:
  # it is the build cache that makes a rebuild after an edit of extensions/ take seconds.
  for target in venv runtime; do
    args=(--force-rm --target "$target" --build-arg "BASE_IMAGE=$base_tag")
    # --force-rm: a failed classic build otherwise leaves its containers behind.
    if [ "$target" = venv ]; then args+=(-t workbench-singleuser-venv:latest); else args+=(-t "$singleuser_tag"); fi
    docker build "${args[@]}" "$ctx" >>"$log_file" 2>&1 \
      || { tail -n 30 "$log_file" >&2
           die "docker build of $singleuser_tag (stage $target) failed; full log: $log_file"; }
  done
}

prune_images() {
  docker image ls --format '{{.Repository}}:{{.Tag}}' workbench-singleuser \
    | grep -vxF -e "$singleuser_tag" -e workbench-singleuser:latest \
    | xargs -r docker rmi >/dev/null || true  # an image a container still runs stays
  # Dangling images only; the venv stage is tagged (workbench-singleuser-venv) and survives.
  docker image prune --force >/dev/null
}

main() {
  mkdir -p "$WORKBENCH_HOME"
  exec 9>"$WORKBENCH_HOME/images.lock"
  flock 9  # one build at a time per machine (a CI clone and a developer share images)

  check_frozen
  check_jupyterhub_version
  stage dockerd bash "$REPO_ROOT/scripts/ensure_dockerd.sh"

  if [ -n "${WORKBENCH_BASE_IMAGE:-}" ]; then
    base_tag="$WORKBENCH_BASE_IMAGE"
    have_image "$base_tag" || stage base-pull docker pull "$base_tag"
  else
    base_tag="workbench-base:$(content_hash base images/base)"
    if have_image "$base_tag"; then log "base $base_tag exists"; else stage base build_base; fi
  fi

  singleuser_tag="workbench-singleuser:$(content_hash "$base_tag" images/singleuser extensions README.md notebooks)"
  if have_image "$singleuser_tag"; then
    log "single-user $singleuser_tag exists"
  else
    local py
    py="$(docker run --rm --entrypoint python3 "$base_tag" -c 'import platform; print(platform.python_version())')" \
      || die "$base_tag has no python3"
    ctx="$WORKBENCH_HOME/build/singleuser"
    stage wheelhouse ensure_wheelhouse "$py"
    stage package-wheel build_package_wheel
    stage labextension build_lab_extension
    stage context assemble_context
    stage singleuser build_singleuser
    log "single-user image: $(docker image inspect -f '{{.Size}}' "$singleuser_tag" | awk '{printf "%.2f GB", $1/1e9}')"
  fi
  docker tag "$singleuser_tag" workbench-singleuser:latest
  if [ "${WORKBENCH_PRUNE_IMAGES:-0}" = 1 ]; then stage prune prune_images; fi
  echo "$singleuser_tag"
}

main "$@"
