// The node's logger: plain lines on stdout, `<ISO time> <node> <level> <message>`, which the harness
// copies into run reports. Repeating warnings (an unreachable peer every few ms) are rate limited by
// key on the monotonic clock so a partition does not flood the log.

export type Level = 'debug' | 'info' | 'warn' | 'error';

export interface Logger {
  info(message: string): void;
  warn(message: string): void;
  error(message: string): void;
  /** Logs at most once per intervalMs for the same key; reports how many were suppressed. */
  throttled(key: string, intervalMs: number, level: Level, message: string): void;
}

export function createLogger(node: string, write: (line: string) => void = (line) => process.stdout.write(line)): Logger {
  const last = new Map<string, { atMs: number; suppressed: number }>();
  const emit = (level: Level, message: string) => write(`${new Date().toISOString()} ${node} ${level} ${message}\n`);
  return {
    info: (m) => emit('info', m),
    warn: (m) => emit('warn', m),
    error: (m) => emit('error', m),
    throttled(key, intervalMs, level, message) {
      const now = performance.now();
      const entry = last.get(key);
      if (entry && now - entry.atMs < intervalMs) {
        entry.suppressed += 1;
        return;
      }
      const suffix = entry && entry.suppressed > 0 ? ` (${entry.suppressed} similar suppressed)` : '';
      last.set(key, { atMs: now, suppressed: 0 });
      emit(level, message + suffix);
    },
  };
}
