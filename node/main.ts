// Entry point of the store-and-mesh service (the system under test):
//   node node/main.ts --id n1 --listen 0.0.0.0:7000 --peers n2=n2:7000,n3=n3:7000 --data-dir /data \
//     [--anti-entropy-ms 500] [--max-skew-ms 1000] [--bug NAME]
// Every flag can also come from its FAULTLINE_* variable (the flag wins); see node/config.ts or --help.
// Bad configuration prints what is wrong and exits 254. SIGTERM/SIGINT shut down gracefully: stop
// serving, flush the log, close. It is also bundled into one ESM file (dist/node.mjs) for containers,
// so nothing here may load files relative to the source at runtime.
import { ConfigError, parseConfig, usage, type NodeConfig } from './config.ts';
import { createLogger } from './log.ts';
import { StoreNode } from './node.ts';
import { Mesh } from './mesh.ts';
import { listen } from './service.ts';
import { BUGS } from './bugs.ts';
import { DataDirError, LogDamagedError } from './wal.ts';

/** Exit codes (node/README.md): 0 stopped cleanly, 254 bad configuration or data dir, 65 damaged log, 70 fatal I/O error while running, 1 anything else at start. */
const EXIT_BAD_CONFIG = 254;
const EXIT_DAMAGED_LOG = 65;
const EXIT_FATAL = 70;

async function main(): Promise<void> {
  const argv = process.argv.slice(2);
  if (argv.includes('--help') || argv.includes('-h')) {
    console.log(usage());
    return;
  }
  let config: NodeConfig;
  try {
    config = parseConfig(argv, process.env);
  } catch (error) {
    if (error instanceof ConfigError) {
      console.error(`faultline node: ${error.message}`);
      process.exit(EXIT_BAD_CONFIG);
    }
    throw error;
  }
  const log = createLogger(config.id);
  const fatal = (error: Error) => {
    log.error(`fatal: ${error.message}; exiting so no further write is acknowledged`);
    process.exit(EXIT_FATAL);
  };
  log.info(
    `starting pid ${process.pid}: listen ${config.listenHost}:${config.listenPort}, peers [${config.peers.map((p) => `${p.id}=${p.host}:${p.port}`).join(', ')}], ` +
      `data-dir ${config.dataDir}, anti-entropy ${config.antiEntropyMs} ms, max skew ${config.maxSkewMs} ms` +
      (config.bug ? `, PLANTED BUG ${config.bug}: ${BUGS[config.bug]}` : ''),
  );
  let node: StoreNode;
  try {
    node = await StoreNode.open(config, log, fatal);
  } catch (error) {
    if (error instanceof DataDirError) {
      console.error(`faultline node: ${error.message}`);
      process.exit(EXIT_BAD_CONFIG);
    }
    if (error instanceof LogDamagedError) {
      log.error(`refusing to start: ${error.message}`);
      process.exit(EXIT_DAMAGED_LOG);
    }
    throw error;
  }
  const mesh = new Mesh(node);
  const { server, port } = await listen(node, mesh, config.listenHost, config.listenPort);
  mesh.start();
  log.info(`listening on ${config.listenHost}:${port} (Store and Mesh)`);

  let stopping = false;
  const stop = (signal: string) => {
    if (stopping) return;
    stopping = true;
    log.info(`${signal}: shutting down`);
    mesh.close();
    // Give in-flight calls a moment, then force; the log is flushed either way.
    const force = setTimeout(() => server.forceShutdown(), 2000);
    server.tryShutdown(() => {
      clearTimeout(force);
      node
        .close()
        .then(() => {
          log.info('stopped cleanly');
          process.exit(0);
        })
        .catch((error: Error) => {
          log.error(`shutdown failed: ${error.message}`);
          process.exit(EXIT_FATAL);
        });
    });
  };
  process.on('SIGTERM', () => stop('SIGTERM'));
  process.on('SIGINT', () => stop('SIGINT'));
}

main().catch((error: Error) => {
  console.error(`faultline node: failed to start: ${error.stack ?? error.message}`);
  process.exit(1);
});
