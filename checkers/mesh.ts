// mesh: judges the replication traffic from the nodes' final Stats (ops with f "stats", recorded by
// the runner after the final reads). In a full mesh without forwarding, a local write is relayed at
// most once to each of the other N-1 nodes, so a node whose mesh messages per local write exceed
// that bound (with slack for anti-entropy pushes) is amplifying traffic: echoes sent back to the
// origin, or relays forwarded again and again. Valid when every node stays within the bound.
import type { History } from '../harness/history.ts';
import type { Anomaly, CheckContext, CheckResult } from './types.ts';

/** Slack over N-1 messages per write, for anti-entropy repair pushes counted as mesh messages. */
export const MESH_SLACK = 1.5;

export interface MeshResult extends CheckResult {
  readonly bound: number;
  /** Node → messages per write it reported. */
  readonly messagesPerWrite: Readonly<Record<string, number>>;
  readonly echoesSuppressed: Readonly<Record<string, number>>;
}

export function mesh(history: History, ctx: CheckContext): MeshResult {
  const bound = Math.max(1, ctx.nodes.length - 1) * MESH_SLACK;
  const perWrite: Record<string, number> = {};
  const echoes: Record<string, number> = {};
  const anomalies: Anomaly[] = [];
  for (const op of history) {
    if (op.f !== 'stats' || op.type !== 'ok' || !op.node) continue;
    const s = op.value as { writes?: number; meshMessages?: number; messagesPerWrite?: number; echoesSuppressed?: number };
    if (!s.writes) continue;
    const ratio = typeof s.messagesPerWrite === 'number' ? s.messagesPerWrite : (s.meshMessages ?? 0) / s.writes;
    perWrite[op.node] = ratio;
    echoes[op.node] = s.echoesSuppressed ?? 0;
    if (ratio > bound) {
      anomalies.push({
        type: 'mesh-amplification',
        ops: [op.index],
        node: op.node,
        messagesPerWrite: ratio,
        bound,
        message: `${op.node} sent ${ratio.toFixed(2)} mesh messages per local write; a full mesh of ${ctx.nodes.length} nodes needs at most ${ctx.nodes.length - 1} (bound ${bound})`,
      });
    }
  }
  if (Object.keys(perWrite).length === 0) {
    return { valid: 'unknown', error: 'no node reported stats with writes (no ok "stats" ops in the history)', bound, messagesPerWrite: perWrite, echoesSuppressed: echoes };
  }
  return { valid: anomalies.length === 0, anomalies, bound, messagesPerWrite: perWrite, echoesSuppressed: echoes };
}
