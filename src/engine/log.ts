// A scoped logger: each line carries the worker id and, inside a job, its job id,
// correlation_id and trace_id. `--log json` writes JSON lines for log shippers; the default
// is one readable line per message. Logs go to stderr; stdout is for data.
import type { Writable } from 'node:stream';
import type { Logger } from '../pipeline/define.js';

export type LogFormat = 'text' | 'json';
export type LogLevel = 'debug' | 'info' | 'warn' | 'error' | 'silent';
const RANK: Record<LogLevel, number> = { debug: 10, info: 20, warn: 30, error: 40, silent: 100 };

export function createLogger(
  opts: { format?: LogFormat; level?: LogLevel; out?: Writable; fields?: Record<string, unknown> } = {},
): Logger {
  const format = opts.format ?? 'text';
  const min = RANK[opts.level ?? 'info'];
  const out = opts.out ?? process.stderr;
  const base = opts.fields ?? {};
  const write = (level: Exclude<LogLevel, 'silent'>, msg: string, fields?: Record<string, unknown>) => {
    if (RANK[level] < min) return;
    const all = { ...base, ...fields };
    if (format === 'json') {
      out.write(`${JSON.stringify({ time: new Date().toISOString(), level, msg, ...all })}\n`);
    } else {
      const kv = Object.entries(all)
        .filter(([, v]) => v !== undefined)
        .map(([k, v]) => `${k}=${typeof v === 'string' ? v : JSON.stringify(v)}`)
        .join(' ');
      out.write(`${new Date().toISOString()} ${level.padEnd(5)} ${msg}${kv ? `  ${kv}` : ''}\n`);
    }
  };
  return {
    debug: (m, f) => write('debug', m, f),
    info: (m, f) => write('info', m, f),
    warn: (m, f) => write('warn', m, f),
    error: (m, f) => write('error', m, f),
    child: (fields) => createLogger({ ...opts, fields: { ...base, ...fields } }),
  };
}
