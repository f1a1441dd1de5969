/** Logs and progress go to stderr; results go to stdout. */
export interface Logger {
  debug(message: string): void;
  info(message: string): void;
  warn(message: string): void;
}

export type LogLevel = 'debug' | 'info' | 'warn' | 'silent';

const ORDER: Record<LogLevel, number> = { debug: 0, info: 1, warn: 2, silent: 3 };

/**
 * Milliseconds on a monotonic clock. Not `performance.now()`: the first use of the global
 * `performance` loads Node's perf_hooks and eight modules with it, ~1 ms of every command.
 */
export function monotonicMs(): number {
  return Number(process.hrtime.bigint()) / 1e6;
}

export function createLogger(level: LogLevel, write: (line: string) => void = (line) => process.stderr.write(line)): Logger {
  const start = monotonicMs();
  const at = (wanted: LogLevel, prefix: () => string) => (message: string) => {
    if (ORDER[wanted] >= ORDER[level]) write(`${prefix()}${message}\n`);
  };
  return {
    // Debug lines carry the time since start, to show where a slow command spends it.
    debug: at('debug', () => `debug +${Math.round(monotonicMs() - start)}ms: `),
    info: at('info', () => ''),
    warn: at('warn', () => 'warning: '),
  };
}

export const silentLogger: Logger = createLogger('silent');
