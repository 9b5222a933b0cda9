#!/usr/bin/env bash
# `npm run setup`: makes this machine ready to run faultline, and is safe to run again at any time.
#   1. Node >= 22.18 on PATH (harness/env.sh fetches Node 24 from npm when the system's is older).
#   2. npm packages (npm ci when node_modules is missing).
#   3. A running Docker engine: on a root Debian/Ubuntu machine without one, installs docker.io with
#      apt-get and starts dockerd (with systemd when it runs, else in the background, logging to
#      /var/log/faultline-dockerd.log). Elsewhere it says exactly what is missing.
#   4. The base image: node:24-bookworm-slim if present or pullable, else the offline equivalent built
#      by harness/docker/build-base.sh (debootstrap + Node 24 from npm).
#   5. The node image faultline-node:<content hash> (harness/image.ts).
#   6. Only with `npm run setup -- --engines LIST [--join-swarm]`: the preflight of those engines
#      (harness/preflight.ts): reachable, swarm, image, NET_ADMIN/iptables/tc, overlay, clock offset.
# The harness itself never installs anything; when something is missing it points here.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

say() { echo "[setup] $*"; }
die() { echo "[setup] error: $*" >&2; exit 1; }
is_root() { [ "$(id -u)" -eq 0 ]; }

# 1. Node.
# shellcheck source=env.sh
source harness/env.sh || die "Node >= 22.18 is needed; install Node 24 LTS and run npm run setup again."
say "node $(node --version) at $(command -v node)"

# 2. npm packages.
if [ ! -d node_modules/dockerode ] || [ ! -d node_modules/esbuild ]; then
  say "installing npm packages (npm ci)"
  npm ci --no-audit --no-fund
fi

# 3. Docker engine.
engine_up() { docker info >/dev/null 2>&1; }
# Install when there is no engine to start: a machine may well have the docker client without dockerd.
if ! engine_up && [ -z "${DOCKER_HOST:-}" ] && ! command -v dockerd >/dev/null 2>&1; then
  if is_root && command -v apt-get >/dev/null 2>&1; then
    say "installing the Docker engine (apt-get install docker.io)"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq docker.io >/dev/null
  else
    die "The Docker engine is not installed. Install it (Debian/Ubuntu: sudo apt-get install docker.io; elsewhere see docs.docker.com/engine/install), start it, and run npm run setup again."
  fi
fi
command -v docker >/dev/null 2>&1 || die "the docker client is missing although an engine is installed; install docker.io (or docker-ce-cli)."
if ! engine_up; then
  if [ -n "${DOCKER_HOST:-}" ]; then
    die "DOCKER_HOST=$DOCKER_HOST is set but 'docker info' fails there; start that engine or unset DOCKER_HOST."
  fi
  is_root || die "The Docker engine is not running (or this user may not use it). Start it (sudo systemctl start docker) and make sure this user can reach it (sudo usermod -aG docker $USER, then log in again)."
  if [ -d /run/systemd/system ] && command -v systemctl >/dev/null 2>&1; then
    say "starting the Docker engine (systemctl start docker)"
    systemctl start docker || true
  fi
  if ! engine_up && ! pgrep -x dockerd >/dev/null 2>&1; then
    command -v dockerd >/dev/null 2>&1 || die "dockerd is missing although the docker client is installed; install docker.io (or docker-ce)."
    say "starting dockerd in the background (log: /var/log/faultline-dockerd.log)"
    setsid nohup dockerd >/var/log/faultline-dockerd.log 2>&1 < /dev/null &
  fi
  for _ in $(seq 1 60); do engine_up && break; sleep 0.5; done
  engine_up || { tail -n 20 /var/log/faultline-dockerd.log 2>/dev/null || true; die "the Docker engine did not come up within 30 s (see /var/log/faultline-dockerd.log)."; }
fi
say "Docker engine $(docker version --format '{{.Server.Version}}') is up"

# 4. Base image.
if docker image inspect node:24-bookworm-slim >/dev/null 2>&1; then
  say "base image node:24-bookworm-slim is present"
elif docker image inspect faultline-base:bookworm-node24 >/dev/null 2>&1; then
  say "base image faultline-base:bookworm-node24 is present"
elif timeout 120 docker pull node:24-bookworm-slim >/dev/null 2>&1; then
  say "pulled base image node:24-bookworm-slim"
else
  say "node:24-bookworm-slim cannot be pulled; building faultline-base:bookworm-node24 offline"
  is_root || die "building the offline base image needs root (debootstrap); run sudo npm run setup."
  bash harness/docker/build-base.sh
fi

# 5. Node image.
node harness/image.ts

# 6. With --engines LIST [--join-swarm] [--advertise ...]: check every engine a multi-engine run would use
#    (harness/preflight.ts says what each one lacks).
if [ $# -gt 0 ]; then
  node harness/preflight.ts "$@" || die "some engines are not ready (see MISSING above)"
fi
say "ready: run npm test or npm run jepsen"
