#!/bin/sh
# Entrypoint of the node image: runs the service under libfaketime so the clock nemesis can skew this
# container's wall clock by writing an offset into one file, without restarting the process.
#
# The clock file (/var/lib/faultline/faketime) holds one offset in seconds relative to the real clock:
# "+0", "+30", "-30", "+0.5", "-1.25". It is created with "+0" only when absent, so a skew survives a
# kill and restart of the node, as a wrong clock would on a real machine. FAKETIME_NO_CACHE makes
# libfaketime read the file on every clock call, so a write takes effect at once.
# FAKETIME_DONT_FAKE_MONOTONIC keeps CLOCK_MONOTONIC real: Node's timers and the event loop use it.
#
# The service is exec'd, so it replaces this shell; the harness runs the container with Docker's
# init (tini) as PID 1, which forwards SIGTERM to the service and, when it is itself SIGKILLed, takes
# the service down with it. Arguments are passed on to node/main.ts (e.g. --bug NAME).
set -eu

clock_file="${FAULTLINE_CLOCK_FILE:-/var/lib/faultline/faketime}"
mkdir -p "$(dirname "$clock_file")"
if [ ! -e "$clock_file" ]; then
  echo "+0" > "$clock_file"
fi

# The disk layer (the `disk` fault package): with FAULTLINE_DISK_LAYER=1 the data dir is a
# faultline-diskfs mount whose durable bytes live in /var/lib/faultline/disk (harness/docker/diskfs.c).
# It keeps everything not yet fsynced in its own memory, so when this container is killed (the layer
# dies with the service) exactly what was never synced is gone, as after a power loss. Needs
# /dev/fuse and CAP_SYS_ADMIN, which the harness grants only to runs that name the package.
if [ "${FAULTLINE_DISK_LAYER:-0}" = "1" ]; then
  data_dir="${FAULTLINE_DATA_DIR:-/data}"
  socket=/run/faultline-diskfs.sock
  mkdir -p "$data_dir" /var/lib/faultline/disk
  rm -f "$socket"
  faultline-diskfs mount /var/lib/faultline/disk "$data_dir" "$socket" &
  i=0
  until [ -S "$socket" ] && grep -q " $data_dir fuse.faultline " /proc/mounts; do
    i=$((i + 1))
    if [ "$i" -gt 200 ]; then
      echo "faultline: the disk layer did not mount on $data_dir within 10 s (does the container have --device /dev/fuse and --cap-add SYS_ADMIN?)" >&2
      exit 70
    fi
    sleep 0.05
  done
  # The service's working directory must be inside the mount, not the directory under it.
  cd "$data_dir"
fi

# Only the service runs under libfaketime, exported here, after the disk layer has started: the layer
# under it would otherwise re-read the clock file on every clock call (FAKETIME_NO_CACHE), which
# measured doubled its fdatasync time and gave it 25-47 ms stalls.
export LD_PRELOAD=/usr/local/lib/faultline/libfaketime.so.1
export FAKETIME_TIMESTAMP_FILE="$clock_file"
export FAKETIME_NO_CACHE=1
export FAKETIME_DONT_FAKE_MONOTONIC=1

# V8 flags: SERVICE_NODE_FLAGS in node/config.ts says why (node/test/config.test.ts keeps them equal).
exec node --max-semi-space-size=16 /opt/faultline/node.mjs "$@"
