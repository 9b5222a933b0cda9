// mesh: judges replication traffic from the nodes' final Stats (ops with f "stats", recorded by the
// runner after the final reads). In a full mesh without forwarding, each local write is relayed at
// most once to each of the other N-1 nodes, so relays sent per local write above N-1 (with a little
// slack) mean the mesh amplifies traffic: echoes sent back to the origin, or relays forwarded again
// and again. Anti-entropy repairs are not relays: they grow with faults by design, so they are
// reported (messages per write) but not judged.
import type { History } from '../harness/history.ts';
import type { Anomaly, CheckContext, CheckResult } from './types.ts';
import { opIndex } from './history-index.ts';

/** Slack over N-1 relays per write. */
export const MESH_SLACK = 1.25;

export interface MeshResult extends CheckResult {
  readonly bound: number;
  /** Node → relays it sent per local write (judged). */
  readonly relaysPerWrite: Readonly<Record<string, number>>;
  /** Node → all mesh messages (relays and anti-entropy pushes) per local write (reported only). */
  readonly messagesPerWrite: Readonly<Record<string, number>>;
}

interface StatsValue {
  writes?: number;
  relaysSent?: number;
  messagesPerWrite?: number;
}

export function mesh(history: History, ctx: CheckContext): MeshResult {
  const peers = Math.max(1, ctx.nodes.length - 1);
  const bound = peers * MESH_SLACK;
  const relays: Record<string, number> = {};
  const messages: Record<string, number> = {};
  const anomalies: Anomaly[] = [];
  for (const i of opIndex(history).select(['stats'], ['ok'])) {
    const op = history[i];
    if (op.f !== 'stats' || op.type !== 'ok' || !op.node) continue;
    const s = op.value as StatsValue;
    if (typeof s.relaysSent !== 'number' || typeof s.writes !== 'number') continue;
    // Stats live in memory, so a node restarted by the kill nemesis may report no writes; it must then
    // have sent no relays either, so it is still judged.
    const ratio = s.writes === 0 ? (s.relaysSent === 0 ? 0 : Infinity) : s.relaysSent / s.writes;
    relays[op.node] = ratio;
    messages[op.node] = s.messagesPerWrite ?? 0;
    if (ratio > bound) {
      anomalies.push({
        type: 'mesh-amplification',
        ops: [op.index],
        node: op.node,
        relaysPerWrite: ratio,
        bound,
        message:
          s.writes === 0
            ? `${op.node} sent ${s.relaysSent} relays without a local write since it started; a full mesh never forwards others' writes`
            : `${op.node} sent ${ratio.toFixed(2)} relays per local write; a full mesh of ${ctx.nodes.length} nodes needs at most ${peers} (bound ${bound})`,
      });
    }
  }
  if (Object.keys(relays).length === 0) {
    return { valid: 'unknown', error: 'no node reported stats (no ok "stats" ops in the history)', bound, relaysPerWrite: relays, messagesPerWrite: messages };
  }
  return { valid: anomalies.length === 0, judged: Object.keys(relays).length, anomalies, bound, relaysPerWrite: relays, messagesPerWrite: messages };
}
