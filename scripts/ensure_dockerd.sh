#!/usr/bin/env bash
# Make sure a docker daemon answers `docker info`; start one if not. Idempotent.
#
# These machines have no systemd, and apt does not start dockerd, so we start it ourselves in
# the background with its log in $WORKBENCH_HOME/dockerd.log. A daemon that is already up
# (ours from an earlier run, or one a system manager started) is left alone.
# Env: DOCKERD_WAIT_S (default 60) seconds to wait for the daemon to answer.
source "$(dirname "$0")/lib.sh"

wait_s="${DOCKERD_WAIT_S:-60}"

if docker info >/dev/null 2>&1; then
  log "dockerd already running"
  exit 0
fi

need_root "ensure_dockerd"
command -v dockerd >/dev/null 2>&1 || [ -x /usr/sbin/dockerd ] \
  || die "dockerd is not installed: run scripts/ensure_host.sh (Debian package docker.io)"
dockerd_bin="$(command -v dockerd || echo /usr/sbin/dockerd)"

mkdir -p "$WORKBENCH_HOME"
dockerd_log="$WORKBENCH_HOME/dockerd.log"

# A daemon that died uncleanly leaves its pid file behind and refuses to start again.
pidfile=/var/run/docker.pid
if [ -f "$pidfile" ] && ! kill -0 "$(cat "$pidfile")" 2>/dev/null; then
  log "removing stale $pidfile"
  rm -f "$pidfile"
fi

if [ -f "$pidfile" ]; then
  log "dockerd (pid $(cat "$pidfile")) is starting; waiting for it"
else
  log "starting $dockerd_bin (log: $dockerd_log)"
  # setsid: the daemon must outlive this script and ignore the caller's Ctrl-C.
  setsid "$dockerd_bin" >>"$dockerd_log" 2>&1 </dev/null &
fi

deadline=$((SECONDS + wait_s))
until docker info >/dev/null 2>&1; do
  if [ $SECONDS -ge $deadline ]; then
    tail -n 20 "$dockerd_log" >&2 || true
    die "dockerd did not answer 'docker info' within ${wait_s} s; see $dockerd_log (last lines above)"
  fi
  sleep 0.5
done
log "dockerd is up ($(docker info --format '{{.ServerVersion}} {{.Driver}}' 2>/dev/null))"
