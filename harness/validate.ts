// `npm run validate`: proves that faultline catches the bugs it exists to catch and never cries
// wolf. Each planted bug of the node service runs with the fault that exposes it and must be judged
// invalid by the checker that owns its class; the correct service runs under every fault package
// and must be valid every time. Prints a table (bug, fault, expected, verdict, checker, run folder)
// and exits 1 on any miss or false alarm. `--ci` runs a short subset; `--seeds N` repeats every
// row with N seeds, which is how the README's detection rates are measured.
import { parseArgs } from 'node:util';
import { writeFileSync } from 'node:fs';
import { parseOptions, type Options } from './options.ts';
import { runTest } from './lifecycle.ts';
import { systemNamed } from './systems/index.ts';

export interface MatrixRow {
  readonly bug?: string;
  readonly args: readonly string[];
  /** For a planted bug, the checker that must report it invalid; undefined for the correct service. */
  readonly owner?: string;
  readonly ci: boolean;
  /** A bug that needs several fault windows to show runs at least this long. */
  readonly minTimeLimitS?: number;
}

/**
 * The matrix. Arguments are chosen to expose each bug within one short run: faults come often
 * (short --nemesis-interval), and few keys make conflicting writes likely.
 */
export const MATRIX: readonly MatrixRow[] = [
  { bug: 'no-anti-entropy', args: ['--nemesis', 'partition', '--nemesis-interval', '4'], owner: 'convergence', ci: true },
  // Timestamps from the raw wall clock: under skew, a session's write sorts before what it had just read,
  // which the session checker sees at the write itself (lost-writes saw it only if the write was still
  // its key's last one at the end, so detection depended on where the time limit fell).
  { bug: 'wall-clock-lww', args: ['--nemesis', 'clock', '--nemesis-interval', '3'], owner: 'session', ci: true },
  // A write acknowledged before fsync is lost only when every replica of it dies before flushing, so
  // this row kills all nodes at once; killing one node is repaired from its peers, correctly.
  { bug: 'ack-before-fsync', args: ['--nemesis', 'kill', '--nemesis-interval', '3', '--nemesis-targets', 'all'], owner: 'lost-writes', ci: true },
  { bug: 'no-dedupe', args: ['--workload', 'counter', '--nemesis', 'partition', '--nemesis-interval', '4'], owner: 'idempotency', ci: true },
  // Max-wins merged as LWW shows only when two sides of a real split write the same key and the lower
  // value carries the later timestamp; a shape in which one node still sees both sides lets anti-entropy
  // carry every value across, and then the causally later (higher) write always wins. So this row draws
  // only shapes that cut the cluster apart, and the clock fault makes timestamps disagree with values.
  // Each window exposes it only when the side with the lower values holds the later timestamps, so the
  // row gives it many windows: faults every 2 s for at least 40 s.
  {
    bug: 'threat-lww',
    args: ['--nemesis', 'partition,clock', '--nemesis-interval', '2', '--partition-shapes', 'halves,isolate,majority-minority,complete'],
    owner: 'max-wins',
    ci: false,
    minTimeLimitS: 40,
  },
  { bug: 'echo-relay', args: ['--nemesis', 'none'], owner: 'mesh', ci: true },
  // Replicated writes visible before they are durable: a kill takes back what the node had shown (to
  // readers and watchers), until anti-entropy brings it back from the origin, as a change the restarted
  // node's watch stream is sent again. Every node is killed at once, so all lose some.
  { bug: 'remote-before-durable', args: ['--nemesis', 'kill', '--nemesis-interval', '3', '--nemesis-targets', 'all'], owner: 'durable-reads', ci: true },
  { bug: 'stale-reads', args: ['--nemesis', 'none'], owner: 'session', ci: true },
  { bug: 'tombstone-loses', args: ['--nemesis', 'none'], owner: 'deletes', ci: true },
  { bug: 'incr-reply-before', args: ['--workload', 'counter', '--nemesis', 'none'], owner: 'counters', ci: true },
  // Repairs happen after partitions heal: whatever they carry never reaches the watchers.
  { bug: 'watch-skip-repair', args: ['--nemesis', 'partition', '--nemesis-interval', '4'], owner: 'watch', ci: true },
  // Writes refused without a connected majority: the minority side of a split stops answering.
  { bug: 'quorum-writes', args: ['--nemesis', 'partition', '--nemesis-interval', '4', '--partition-shapes', 'halves,isolate,majority-minority,complete'], owner: 'availability', ci: true },
  { bug: 'no-relay', args: ['--nemesis', 'none'], owner: 'lag', ci: true },
  // The same bug in a counter-only run: an increment of a counter that only grows reaches the other
  // nodes by anti-entropy alone, which the lag checker sees from its result (checkers/watch.ts).
  { bug: 'no-relay', args: ['--workload', 'counter', '--nemesis', 'none'], owner: 'lag', ci: false },
  // A log file whose name was never synced is gone after a power loss, with every acknowledged write in
  // it (a process kill keeps it: the kernel still has the entry). As with ack-before-fsync, one node's
  // loss is repaired from its peers, so every node loses power at once.
  { bug: 'log-dirent-unsynced', args: ['--nemesis', 'disk', '--disk-faults', 'lose-unsynced', '--nemesis-interval', '3', '--nemesis-targets', 'all'], owner: 'lost-writes', ci: true },
  // Tombstones collected after a 150 ms grace: on a healthy network every older write has arrived by
  // then (relays take milliseconds), but one held 250-350 ms on a slow link arrives after it, replaces
  // the tombstone and brings the deleted value back, which its node's reads and watch stream show after
  // its delete. Delays both ways stay under the mesh's 1 s keepalive, so the links stay up; every node
  // is a target, so most deletes have a slow link towards them.
  { bug: 'tombstone-gc', args: ['--nemesis', 'delay', '--delay-ms', '250,350', '--nemesis-interval', '3', '--nemesis-targets', 'all'], owner: 'deletes', ci: true },
  { args: ['--nemesis', 'partition', '--nemesis-interval', '4'], ci: true },
  { args: ['--nemesis', 'clock', '--nemesis-interval', '3'], ci: false },
  { args: ['--nemesis', 'kill', '--nemesis-interval', '4'], ci: true },
  { args: ['--nemesis', 'pause', '--nemesis-interval', '4'], ci: false },
  { args: ['--nemesis', 'packet', '--nemesis-interval', '4'], ci: false },
  // Every disk fault on its own: the correct service acknowledges only synced writes, answers with errors
  // while its disk is full or failing, and takes writes again once the fault is stopped.
  // The power loss is in the CI subset: it is the fault that tests "acknowledged means synced".
  { args: ['--nemesis', 'disk', '--disk-faults', 'lose-unsynced', '--nemesis-interval', '4'], ci: true },
  { args: ['--nemesis', 'disk', '--disk-faults', 'full', '--nemesis-interval', '3'], ci: false },
  { args: ['--nemesis', 'disk', '--disk-faults', 'eio-write', '--nemesis-interval', '3'], ci: false },
  { args: ['--nemesis', 'disk', '--disk-faults', 'eio-fsync', '--nemesis-interval', '3'], ci: false },
  { args: ['--nemesis', 'disk', '--disk-faults', 'slow', '--nemesis-interval', '3'], ci: false },
  // Every delay start measures its round trips (a second or more at a high load average), so at 4 s a
  // late start pushes the next ops back and the faults cover the whole run but its first seconds, the
  // only calm window the lag checker then has (and the slowest: connections and JIT still warming up).
  { args: ['--nemesis', 'delay', '--nemesis-interval', '6'], ci: false },
  // `all` takes the auto interval: a fixed 3 s fits no whole round of five packages in a 20 s run, and a
  // package that never ran makes the verdict unknown (the faults checker).
  { args: ['--workload', 'counter', '--nemesis', 'all'], ci: false },
  { args: ['--workload', 'set', '--nemesis', 'all'], ci: false },
  // The nightly command: every call of the API and every fault package; a full round of five packages
  // needs the time (restarts and probes take a second or two each).
  { args: ['--workload', 'all', '--nemesis', 'all'], ci: true, minTimeLimitS: 30 },
];

interface Row {
  bug: string;
  fault: string;
  expected: string;
  verdict: string;
  checker: string;
  folder: string;
  pass: boolean;
}

async function main(): Promise<number> {
  const { values } = parseArgs({
    options: {
      ci: { type: 'boolean' },
      seeds: { type: 'string' },
      seed: { type: 'string' },
      'time-limit': { type: 'string' },
      summary: { type: 'string' },
      only: { type: 'string' },
    },
  });
  // Five seeds by default, as a single run proves little (every planted bug must be caught in all five);
  // CI's short subset runs one.
  const seeds = Number(values.seeds ?? (values.ci ? 1 : 5));
  const firstSeed = Number(values.seed ?? 1000);
  const timeLimit = values['time-limit'] ?? (values.ci ? '12' : '25');
  if (!Number.isSafeInteger(seeds) || seeds < 1) throw new Error(`Expected \`--seeds\` to be a positive integer, got "${values.seeds}"`);
  // --only picks rows by bug name ("correct" for the correct service) or by a piece of their arguments.
  const rows = MATRIX.filter((r) => (!values.ci || r.ci) && (!values.only || (r.bug ?? 'correct') === values.only || r.args.join(' ').includes(values.only)));
  const table: Row[] = [];
  const controller = new AbortController();
  process.on('SIGINT', () => controller.abort());

  for (const row of rows) {
    for (let s = 0; s < seeds && !controller.signal.aborted; s++) {
      const limit = String(Math.max(Number(timeLimit), row.minTimeLimitS ?? 0));
      const args = [...row.args, '--nodes', '3', '--time-limit', limit, '--recovery-ms', '8000', '--keys', '3', '--seed', String(firstSeed + s), '--name', `validate-${row.bug ?? 'correct'}`];
      if (row.bug) args.push('--bug', row.bug);
      const options = parseOptions(args) as Options;
      const fault = options.nemesis.join(',') || 'none';
      console.error(`validate: ${row.bug ?? 'correct service'} with ${fault} (${options.workload}), seed ${options.seed}`);
      let verdict = 'error';
      let checker: string;
      let folder = '';
      try {
        const report = await runTest(systemNamed(options.system), options, controller.signal, { log: (line) => console.error(`  ${line}`) });
        folder = report.folder.dir;
        verdict = String(report.valid);
        const invalid = Object.entries(report.results.checkers).filter(([, r]) => r.valid === false && r.advisory !== true).map(([n]) => n);
        checker = row.owner ? (invalid.includes(row.owner) ? row.owner : invalid.join('+') || '-') : invalid.join('+') || '-';
      } catch (error) {
        checker = (error as Error).message;
      }
      const pass = row.owner ? verdict === 'false' && checker === row.owner : verdict === 'true';
      table.push({ bug: row.bug ?? 'none', fault: `${fault} (${options.workload})`, expected: row.owner ? `invalid by ${row.owner}` : 'valid', verdict, checker, folder, pass });
    }
  }

  const cols: Array<keyof Row> = ['bug', 'fault', 'expected', 'verdict', 'checker', 'folder'];
  const width = (c: keyof Row) => Math.max(c.length, ...table.map((r) => String(r[c]).length));
  const line = (r: Record<string, unknown>) => cols.map((c) => String(r[c]).padEnd(width(c))).join('  ');
  console.log(`${line(Object.fromEntries(cols.map((c) => [c, c])))}  result`);
  for (const r of table) console.log(`${line(r as unknown as Record<string, unknown>)}  ${r.pass ? 'PASS' : r.expected === 'valid' ? 'FALSE ALARM' : 'MISS'}`);
  const passed = table.filter((r) => r.pass).length;
  const failed = table.length - passed;
  console.log(`\nvalidate: ${passed} passed, ${failed} failed`);
  if (values.summary) writeFileSync(values.summary, JSON.stringify({ passed, failed, rows: table }, null, 2));
  return failed === 0 && table.length > 0 ? 0 : 1;
}

main().then(
  (code) => process.exit(code),
  (error) => {
    console.error(`validate: ${(error as Error).message}`);
    process.exit(254);
  },
);
