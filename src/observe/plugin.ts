// The monitoring-plugin contract shared by `canon health` and `canon alerts`: one status line
// first (`CANON OK - ...`), exit 0 OK, 1 WARNING, 2 CRITICAL, 3 UNKNOWN. A database that cannot
// be reached is CRITICAL (nothing can progress); a check that cannot run (bad thresholds, a
// schema that is not migrated) is UNKNOWN, so cron and Nagios never confuse the two.
import type { Command } from 'commander';
import type { Ctx } from '../context.js';
import { redact } from '../db/url.js';
import { CanonError, coerceError, EXIT, isConnectionError, usageError } from '../errors.js';
import { PLUGIN_EXIT, type PluginStatus } from './types.js';

export interface PluginOutcome<T> {
  status: PluginStatus;
  line: string;
  data: T;
  details: (d: T) => string;
}

/** Options are checked inside the action so that bad usage exits 3 (UNKNOWN), not 2 (CRITICAL). */
export function rejectStrayArgs(cmd: Command): void {
  if (cmd.args.length) {
    throw usageError(`unknown option or argument "${cmd.args[0]}" (run with --help for usage)`);
  }
}

export function classifyFailure(e: unknown): { status: PluginStatus; message: string } {
  const err = coerceError(e);
  const msg = redact(err.message, process.env.DATABASE_URL).split('\n')[0];
  if (err instanceof CanonError && err.exitCode === EXIT.DATABASE && !/migration/.test(msg)) {
    return { status: 'CRITICAL', message: `database unreachable: ${msg}` };
  }
  if (isConnectionError(e)) return { status: 'CRITICAL', message: `database unreachable: ${msg}` };
  return { status: 'UNKNOWN', message: msg };
}

export async function runPlugin<T>(ctx: Ctx, check: () => Promise<PluginOutcome<T>>): Promise<number> {
  let out: PluginOutcome<T>;
  try {
    out = await check();
  } catch (e) {
    const { status, message } = classifyFailure(e);
    const line = `CANON ${status} - ${message}`;
    if (ctx.json) ctx.stdout.write(`${JSON.stringify({ status, status_line: line, error: message }, null, 2)}\n`);
    else ctx.stdout.write(`${line}\n`);
    return PLUGIN_EXIT[status];
  }
  if (ctx.json)
    ctx.stdout.write(`${JSON.stringify({ ...out.data, status: out.status, status_line: out.line }, null, 2)}\n`);
  else {
    const rest = out.details(out.data);
    ctx.stdout.write(`${out.line}\n${rest ? (rest.endsWith('\n') ? rest : `${rest}\n`) : ''}`);
  }
  return PLUGIN_EXIT[out.status];
}

export const PLUGIN_HELP = `
Exit codes (monitoring-plugin convention): 0 OK, 1 WARNING, 2 CRITICAL (also when the database
cannot be reached), 3 UNKNOWN (bad options, or a database that is not migrated). The first
line of output is the status line, e.g. "CANON WARNING - 2 dead jobs in the last 24 h | ...".`;
