// `npm run bench:delay`: what the delay fault costs. On a real 2-node Docker cluster, n1 sends small
// UDP datagrams to n2 at a paced rate while the delay fault holds n1→n2 for DELAY_MS, and n2 counts what
// arrived; faultline-delay's own CPU time (from its stats) over the packets it handled gives the cost per
// packet, and the offered rates are stepped up until the delayed link delivers less than 99% of what
// was sent, or less than 95% of what the same rate delivers undelayed (then the sender, not the delay,
// is the limit). Prints one JSON object; it never fails a build.
import os from 'node:os';
import { Cluster } from './cluster.ts';
import { ensureImage } from './image.ts';
import { storeMesh } from './systems/store-mesh/index.ts';
import { delayPackage, readDelay } from '../nemesis/delay.ts';
import { ipOf, run } from '../nemesis/net.ts';

const DELAY_MS = 10;
const SECONDS = Number(process.env.BENCH_DELAY_SECONDS ?? 3);
const RATES = (process.env.BENCH_DELAY_RATES ?? '2000,5000,10000,20000,40000,80000').split(',').map(Number);

// n2: counts datagrams until `ms` have passed, then prints the count.
const RECEIVER = `
const s = require('node:dgram').createSocket({ type: 'udp4', recvBufferSize: 16 * 1024 * 1024 }); let got = 0;
s.on('message', () => { got++; });
s.bind(7996, () => console.log('ready'));
setTimeout(() => { console.log(JSON.stringify({ got })); process.exit(0); }, Number(process.argv[1]));
`;
// n1: sends rate/1000 datagrams of 64 bytes every millisecond (caught up if a tick came late) for `seconds`.
// A held packet stays charged to its sending socket's buffer until its verdict, so the socket gets a
// large send buffer (what a busy service's sockets hold) and counts the sends the kernel refused.
const SENDER = `
const s = require('node:dgram').createSocket({ type: 'udp4', sendBufferSize: 16 * 1024 * 1024 }); const [host, rate, seconds] = process.argv.slice(1).map((x, i) => i ? Number(x) : x);
const buf = Buffer.alloc(64); let sent = 0, refused = 0; const start = performance.now(); const total = rate * seconds;
const done = (error) => { if (error) refused++; };
const tick = () => {
  const due = Math.min(total, Math.floor(((performance.now() - start) / 1000) * rate));
  while (sent < due) { s.send(buf, 7996, host, done); sent++; }
  if (sent < total) setTimeout(tick, 1); else setTimeout(() => { console.log(JSON.stringify({ sent, refused, ms: performance.now() - start, sendBuffer: s.getSendBufferSize() })); process.exit(0); }, 300);
};
s.bind(() => tick());
`;

async function blast(cluster: Cluster, rate: number): Promise<{ sent: number; got: number; sendMs: number; refused: number; sendBuffer: number }> {
  const windowMs = SECONDS * 1000 + 2500;
  const receiver = run(cluster, 'n2', ['node', '-e', RECEIVER, String(windowMs)], windowMs + 20_000);
  await new Promise((r) => setTimeout(r, 800));
  const sender = await run(cluster, 'n1', ['node', '-e', SENDER, ipOf(cluster, 'n2'), String(rate), String(SECONDS)], windowMs + 20_000);
  const { sent, ms, refused, sendBuffer } = JSON.parse(sender.stdout.trim().split('\n').pop()!) as { sent: number; ms: number; refused: number; sendBuffer: number };
  const { got } = JSON.parse((await receiver).stdout.trim().split('\n').pop()!) as { got: number };
  return { sent, got, sendMs: ms, refused, sendBuffer };
}

async function queueCounters(cluster: Cluster): Promise<{ dropped: number; userDropped: number }> {
  // /proc/net/netfilter/nfnetlink_queue: queue, portid, waiting, copy mode, copy range, queue_dropped, user_dropped, id, 1.
  const out = await run(cluster, 'n1', ['sh', '-c', 'cat /proc/net/netfilter/nfnetlink_queue 2>/dev/null || true']);
  let dropped = 0;
  let userDropped = 0;
  for (const line of out.stdout.trim().split('\n').filter(Boolean)) {
    const f = line.trim().split(/\s+/).map(Number);
    dropped += f[5] ?? 0;
    userDropped += f[6] ?? 0;
  }
  return { dropped, userDropped };
}

async function main(): Promise<void> {
  const image = await ensureImage();
  const cluster = await Cluster.start({ system: storeMesh, runId: `bench-delay-${process.pid}`, nodes: 2, image });
  const pkg = delayPackage({ nodes: ['n1', 'n2'] });
  const rows: Record<string, unknown>[] = [];
  let cpuUsPerPacket: number | undefined;
  let heldPps = 0;
  try {
    await pkg.nemesis.setup(cluster);
    for (const rate of RATES) {
      const plain = await blast(cluster, rate);
      const started = await pkg.nemesis.invoke({ f: 'start-delay', value: { nodes: ['n1', 'n2'], links: { n1: { n2: { delayMs: DELAY_MS, jitterMs: 0, duplicatePercent: 0 } } } } });
      if (started.error) throw new Error(`start-delay failed: ${started.error}`);
      const before = (await readDelay(cluster, 'n1')).stats!;
      const drops0 = await queueCounters(cluster);
      const delayed = await blast(cluster, rate);
      const after = (await readDelay(cluster, 'n1')).stats!;
      const drops1 = await queueCounters(cluster);
      await pkg.nemesis.invoke({ f: 'stop-delay', value: { nodes: ['n1', 'n2'] } });
      const packets = after.packets - before.packets;
      const cpuUs = after.cpuUserUs + after.cpuSysUs - (before.cpuUserUs + before.cpuSysUs);
      const perPacket = packets > 0 ? cpuUs / packets : NaN;
      const offeredPps = Math.round(delayed.sent / (delayed.sendMs / 1000));
      const deliveredShare = delayed.got / delayed.sent;
      const versusPlain = plain.got > 0 ? delayed.got / plain.got : NaN;
      const holds = deliveredShare >= 0.99 && versusPlain >= 0.95;
      rows.push({
        offeredPps: rate,
        sentPps: offeredPps,
        deliveredUndelayed: plain.got,
        deliveredDelayed: delayed.got,
        sent: delayed.sent,
        deliveredPercent: Number((100 * deliveredShare).toFixed(2)),
        programPackets: packets,
        programCpuUs: cpuUs,
        cpuUsPerPacket: Number(perPacket.toFixed(2)),
        maxHeld: after.maxHeld,
        longestHeldMs: Math.max(0, ...after.links.map((l) => l.maxDelayUs / 1000)),
        sendsRefused: delayed.refused,
        senderBufferBytes: delayed.sendBuffer,
        queueDropped: drops1.dropped - drops0.dropped,
        queueUserDropped: drops1.userDropped - drops0.userDropped,
        holds,
      });
      console.error(`bench:delay: ${rate}/s offered, sent ${offeredPps}/s: ${delayed.got}/${delayed.sent} delivered delayed (${plain.got} undelayed), ${perPacket.toFixed(2)} µs CPU per packet${holds ? '' : ' — no longer holds'}`);
      if (holds) {
        heldPps = Math.max(heldPps, offeredPps);
        // The cost per packet is read at the highest rate that still holds (fixed costs spread the most).
        cpuUsPerPacket = Number(perPacket.toFixed(2));
      } else break;
    }
  } finally {
    await pkg.nemesis.heal().catch(() => undefined);
    await pkg.nemesis.teardown().catch(() => undefined);
    await cluster.teardown();
  }
  console.log(
    JSON.stringify(
      {
        benchmark: 'delay',
        delayMs: DELAY_MS,
        secondsPerRate: SECONDS,
        datagramBytes: 64,
        cpuUsPerPacket,
        highestHeldPps: heldPps,
        rows,
        loadAverage: os.loadavg().map((x) => Number(x.toFixed(2))),
        cpus: os.cpus().length,
      },
      null,
      2,
    ),
  );
}

main().catch((error: unknown) => {
  console.error(`bench:delay: ${error instanceof Error ? error.message : String(error)}`);
  process.exit(1);
});
