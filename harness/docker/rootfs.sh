# Helpers for build-base.sh (sourced, not run): finding and undoing mounts under a debootstrap root.
# debootstrap mounts proc, sys and dev/pts inside the root it builds and unmounts them at the end, but
# when that unmount fails (a busy mount, an interrupted run) they stay: tar would then read the host's
# /proc into the image and rm -rf would try to delete inside /proc and /sys. So build-base.sh unmounts
# whatever is mounted under the root, refuses to go on while anything still is, and tars and removes
# with --one-file-system.
#
# FAULTLINE_MOUNTINFO: read mounts from this file instead of /proc/self/mountinfo (tests).

# Prints every mount point at or under ROOT, deepest first (so unmounting in this order works).
mounts_under() {
  local root mountinfo line mp
  root="$(realpath -m -- "$1")"
  mountinfo="${FAULTLINE_MOUNTINFO:-/proc/self/mountinfo}"
  while IFS= read -r line; do
    # Field 5 is the mount point, with space, tab, newline and backslash escaped as octal.
    mp="$(printf '%b' "$(cut -d' ' -f5 <<<"$line")")"
    if [[ "$mp" == "$root" || "$mp" == "$root"/* ]]; then printf '%s\n' "$mp"; fi
  done <"$mountinfo" | awk '{ print length($0) "\t" $0 }' | sort -rn | cut -f2-
}

# Unmounts everything mounted under ROOT (lazily when busy); returns 1, naming what is left, if
# anything is still mounted there afterwards.
unmount_under() {
  local root="$1" mp left
  while IFS= read -r mp; do
    [[ -n "$mp" ]] || continue
    umount -- "$mp" 2>/dev/null || umount -l -- "$mp" 2>/dev/null || true
  done < <(mounts_under "$root")
  left="$(mounts_under "$root")"
  if [[ -n "$left" ]]; then
    echo "still mounted under $root: $(tr '\n' ' ' <<<"$left")" >&2
    return 1
  fi
}
