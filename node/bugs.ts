// The planted bugs (`--bug NAME`): each deliberately breaks exactly one guarantee so the harness can
// prove its checkers catch that class of bug. The code paths that implement them are marked with
// `bug(...)` checks in node.ts, wal.ts (deferred mode), merge.ts (maxAsLww) and mesh.ts.

export const BUGS = {
  'no-anti-entropy': 'anti-entropy never runs, so replicas stay diverged after relays were lost in a partition',
  'wall-clock-lww': 'timestamps come from the raw local wall clock (no HLC, no causality with remote writes)',
  'ack-before-fsync': 'writes are acknowledged at once and the log is synced only every 2 s, so SIGKILL loses acknowledged writes',
  'no-dedupe': 'request ids are ignored, so a retried Put/Incr is applied again',
  'threat-lww': 'max-wins components are merged as plain LWW, so a newer lower value replaces a higher one',
  'echo-relay': 'no echo suppression: every received write is re-forwarded to every peer, origin included (3 hops)',
} as const;

export type BugName = keyof typeof BUGS;

export const BUG_NAMES = Object.keys(BUGS) as readonly BugName[];
