// The planted bugs (`--bug NAME`): each deliberately breaks exactly one guarantee so the harness can
// prove its checkers catch that class of bug. The code paths that implement them are marked with
// `bug(...)` checks in node.ts, wal.ts (deferred mode, skipLogDirSync), merge.ts (maxAsLww, tombstoneLoses) and mesh.ts.
// BUG_NAMES is the one list of their names: the harness's `--bug` option reads it too.

export const BUGS = {
  'no-anti-entropy': 'anti-entropy never runs, so replicas stay diverged after relays were lost in a partition',
  'wall-clock-lww': 'timestamps come from the raw local wall clock (no HLC, no causality with remote writes)',
  'ack-before-fsync': 'writes are acknowledged at once and the log is synced only every 2 s, so SIGKILL loses acknowledged writes',
  'no-dedupe': 'request ids are ignored, so a retried Put/Incr is applied again',
  'threat-lww': 'max-wins components are merged as plain LWW, so a newer lower value replaces a higher one',
  'echo-relay': 'no echo suppression: every received write is re-forwarded to every peer, origin included (3 hops)',
  'remote-before-durable': 'replicated writes are visible at once but logged only by a timed flush every 2 s, so a SIGKILL takes back values clients already read',
  'stale-reads': 'Get answers from a per-entity cache kept for 500 ms, so a session may not read its own acknowledged write',
  'tombstone-loses': 'the merge ranks any live value above a tombstone, whatever their timestamps, so deleted components come back',
  'incr-reply-before': "Incr replies with the counter's value from before the increment",
  'watch-skip-repair': 'changes applied by anti-entropy repairs are not published to watchers',
  'quorum-writes': 'writes are refused (UNAVAILABLE) while the node is connected to fewer than a majority of the cluster, which breaks the AP promise',
  'no-relay': 'writes are never relayed; peers learn them only from anti-entropy rounds',
  'log-dirent-unsynced':
    "a new log generation's directory entry is never synced before writes are acknowledged in it (its data is fdatasync'ed, its name is not), so a power loss takes the whole file; a process kill does not",
  'tombstone-gc': 'tombstones stop counting in merges 150 ms after they are applied (a gc grace that assumes every older write arrives within it, as on a LAN; reads still show them), so an older write delayed past it replaces the tombstone and the deleted value comes back',
} as const;

export type BugName = keyof typeof BUGS;

export const BUG_NAMES = Object.keys(BUGS) as readonly BugName[];
