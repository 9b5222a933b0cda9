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

/** Longest message a log line carries; callers quote input cut short already, this is the last guard. */
export const MAX_LOG_MESSAGE_CHARS = 4000;
// eslint-disable-next-line no-control-regex -- matching control characters is the point
const LINE_BREAKING = /[\u0000-\u001f\u007f-\u009f\u2028\u2029]/g;

/** One line, whatever the message holds: control characters escaped (no forged lines), length capped. */
export function safeLine(message: string): string {
  const escaped = message.replace(LINE_BREAKING, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);
  return escaped.length > MAX_LOG_MESSAGE_CHARS ? `${escaped.slice(0, MAX_LOG_MESSAGE_CHARS)}… (${escaped.length} characters, cut)` : escaped;
}

export function createLogger(node: string, write: (line: string) => void = (line) => process.stdout.write(line)): Logger {
  const last = new Map<string, { atMs: number; suppressed: number }>();
  const emit = (level: Level, message: string) => write(`${new Date().toISOString()} ${node} ${level} ${safeLine(message)}\n`);
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
