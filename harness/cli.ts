// `npm run jepsen -- [options]`: parses the option table, runs the test (--test-count times, with
// seeds seed, seed+1, ...), shows live progress, prints the verdict per checker and the path of the
// report, and exits 0 valid, 1 invalid, 2 unknown or run error, 254 bad arguments. SIGINT/SIGTERM
// stop the workload early; the run still heals, tears the cluster down and writes its results. A
// second signal removes this run's containers at once and exits.
import { mergeValid, type Validity } from '../checkers/types.ts';
import { forceRemoveOwn } from './cluster.ts';
import { helpText, parseOptions, UsageError, type Options } from './options.ts';
import { runTest, type TestReport } from './lifecycle.ts';
import { faultsLine } from './report/faults.ts';
import type { Progress } from './interpreter.ts';
import { systemNamed } from './systems/index.ts';

const EXIT: Record<string, number> = { true: 0, false: 1, unknown: 2 };

function stamp(): string {
  return new Date().toISOString().slice(11, 23);
}

function progressLine(p: Progress, startedAt: number, limitS: number): string {
  const elapsed = ((Date.now() - (p.workloadStartedMs ?? startedAt)) / 1000).toFixed(1);
  const faults = p.faultsActive.length ? p.faultsActive.join(',') : 'none';
  return `${p.phase.padEnd(11)} ${elapsed}s/${limitS}s  ok ${p.ok}  fail ${p.fail}  info ${p.info}  faults: ${faults}`;
}

async function main(argv: string[]): Promise<number> {
  let options: Options | 'help';
  try {
    options = parseOptions(argv);
  } catch (error) {
    if (error instanceof UsageError) {
      console.error(`faultline: ${error.message}`);
      return 254;
    }
    throw error;
  }
  if (options === 'help') {
    console.log(helpText());
    return 0;
  }

  const controller = new AbortController();
  let signals = 0;
  const onSignal = (signal: NodeJS.Signals) => {
    signals++;
    if (signals === 1) {
      console.error(`\nfaultline: ${signal}: stopping the workload; healing, tearing down and writing results (send again to force)`);
      controller.abort();
    } else {
      console.error(`faultline: ${signal} again: removing this run's containers now`);
      void forceRemoveOwn().finally(() => process.exit(2));
    }
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);

  const tty = process.stderr.isTTY;
  const verdicts: Validity[] = [];
  for (let i = 0; i < options.testCount && !controller.signal.aborted; i++) {
    const run: Options = { ...options, seed: options.seed + i };
    console.log(`faultline: seed=${run.seed}${options.testCount > 1 ? ` (run ${i + 1} of ${options.testCount})` : ''}`);
    let timer: NodeJS.Timeout | undefined;
    let report: TestReport;
    try {
      report = await runTest(systemNamed(run.system), run, controller.signal, {
        log: (line) => {
          if (tty) process.stderr.write('\r\x1b[2K');
          console.error(`${stamp()} ${line}`);
        },
        onProgress: (p, startedAt) => {
          timer = setInterval(
            () => {
              const line = progressLine(p, startedAt, run.timeLimitS);
              if (tty) process.stderr.write(`\r\x1b[2K${line}`);
              else console.error(`${stamp()} ${line}`);
            },
            tty ? 250 : 5000,
          );
        },
      });
    } catch (error) {
      console.error(`faultline: the run failed before it could record results: ${(error as Error).stack ?? error}`);
      verdicts.push('unknown');
      continue;
    } finally {
      if (timer) clearInterval(timer);
      if (tty) process.stderr.write('\r\x1b[2K');
    }
    printVerdict(report);
    verdicts.push(report.valid);
    if (report.valid !== true) console.log(`reproduce with: ${report.test.command}`);
  }
  return EXIT[String(mergeValid(verdicts))];
}

function printVerdict(report: TestReport): void {
  const { results, folder } = report;
  const width = Math.max(...Object.keys(results.checkers).map((k) => k.length), 8);
  console.log('');
  for (const [name, r] of Object.entries(results.checkers)) {
    const anomalies = r.anomalies?.length ? `  ${r.anomalies.length} anomal${r.anomalies.length === 1 ? 'y' : 'ies'}: ${[...new Set(r.anomalies.map((a) => a.type))].join(', ')}` : '';
    const advisory = r.advisory === true ? '  (advisory: reported, not part of the verdict)' : '';
    console.log(`  ${name.padEnd(width)}  ${String(r.valid).padEnd(7)}${anomalies}${r.error ? `  ${r.error}` : ''}${advisory}`);
  }
  const c = results.opCounts;
  // The verdict line names the fault packages that did not run: their guarantees went untested.
  const notRan = results.test.nemesis.filter((p) => !(results.test.nemesisRan ?? []).includes(p));
  const faults = results.test.nemesis.length === 0 ? '' : notRan.length === 0 ? `, faults ran: ${results.test.nemesis.join(',')}` : `, faults NOT RUN: ${notRan.join(',')}`;
  console.log(`\n${results.valid === true ? 'VALID' : results.valid === false ? 'INVALID' : 'UNKNOWN'}: ${results.test.name}, ${c.ok} ok / ${c.fail} fail / ${c.info} info ops, ${(results.durationMs / 1000).toFixed(1)}s${faults}`);
  const line = faultsLine(results.checkers.faults, results.test.nemesis);
  if (line && notRan.length > 0) console.log(line);
  // Which calls of the API the run exercised (the api checker), so a run says what it tested.
  const api = results.checkers.api?.summary;
  if (typeof api === 'string') console.log(`api: ${api}`);
  console.log(`report: ${folder.report}`);
}

process.on('uncaughtException', (error) => {
  // The run's finally blocks may never run after this, so remove our containers before exiting.
  console.error(`faultline: uncaught error: ${error.stack ?? error}`);
  void forceRemoveOwn().finally(() => process.exit(2));
});

main(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (error) => {
    console.error(`faultline: ${(error as Error).stack ?? error}`);
    void forceRemoveOwn().finally(() => process.exit(2));
  },
);
