// Dead jobs with their reasons, shared by `canon dead-jobs`, `jobs retry/cancel` (bulk) and
// `GET /dead-jobs`. Filters arrive as text from either a command line or a query string and
// are checked here, once, so both surfaces refuse the same things with the same words.
import type pg from 'pg';
import { printable } from '../args.js';
import { usageError } from '../errors.js';
import { DEAD_SQL } from '../sql/deadjobs.js';

export const DEAD_REASONS = [
  'ttl_exceeded',
  'max_attempts_exceeded',
  'handler_error',
  'precondition_failed',
  'timeout',
  'breaker_open',
] as const;

export interface DeadFilters {
  limit: number;
  since_hours: number;
  type?: string;
  correlation_id?: string;
  reason?: string;
}

export interface DeadJob {
  id: number;
  lane: string;
  type: string;
  entity_id: string;
  correlation_id: string;
  attempts: number;
  max_attempts: number;
  reason: string | null;
  last_error: string | null;
  trace_id: string | null;
  source_event_position: number | null;
  created_at: string;
  failed_at: string;
}

export interface DeadReport {
  filters: DeadFilters;
  summary: { total_dead: number; by_type: Record<string, number>; by_reason: Record<string, number> };
  jobs: DeadJob[];
}

export interface RawDeadFilters {
  limit?: string;
  since_hours?: string;
  type?: string;
  correlation_id?: string;
  reason?: string;
}

function num(name: string, v: string | undefined, dflt: number, min: number, max: number, int: boolean): number {
  if (v === undefined) return dflt;
  const n = Number(v);
  if (v.trim() === '' || !Number.isFinite(n) || (int && !Number.isInteger(n))) {
    throw usageError(`${name} must be ${int ? 'a whole number' : 'a number'}, got "${printable(v)}"`);
  }
  if (n < min || n > max) throw usageError(`${name} must be between ${min} and ${max}, got ${n}`);
  return n;
}

/** Checks filters given as text; `names` says how to call each one in messages (--type or type). */
export function parseDeadFilters(
  raw: RawDeadFilters,
  names: Record<keyof RawDeadFilters, string>,
  defaults = { limit: 50, max: 1000 },
): DeadFilters {
  const f: DeadFilters = {
    limit: num(names.limit, raw.limit, defaults.limit, 1, defaults.max, true),
    since_hours: num(names.since_hours, raw.since_hours, 24, 0.0001, 876_000, false),
  };
  if (raw.type !== undefined) {
    if (!/^[a-z][a-z0-9_]{0,62}$/.test(raw.type))
      throw usageError(`${names.type} "${printable(raw.type)}" is not a job type name (lowercase letters, digits, _)`);
    f.type = raw.type;
  }
  if (raw.correlation_id !== undefined) {
    if (!/^[^\s\u0000-\u001f\u007f]{1,200}$/.test(raw.correlation_id))
      throw usageError(
        `${names.correlation_id} "${printable(raw.correlation_id)}" is invalid: 1 to 200 characters without spaces`,
      );
    f.correlation_id = raw.correlation_id;
  }
  if (raw.reason !== undefined) {
    if (!(DEAD_REASONS as readonly string[]).includes(raw.reason))
      throw usageError(`${names.reason} must be one of ${DEAD_REASONS.join(', ')}, got "${printable(raw.reason)}"`);
    f.reason = raw.reason;
  }
  return f;
}

export const CLI_NAMES: Record<keyof RawDeadFilters, string> = {
  limit: '--limit',
  since_hours: '--since-hours',
  type: '--type',
  correlation_id: '--correlation-id',
  reason: '--reason',
};

/**
 * `unknownType` is asked about a --type the whitelist lacks: the commands check it against the
 * configured pipeline (a type no worker declared yet has no dead jobs, which is no error) and
 * let it throw otherwise; without it such a type is refused.
 */
export async function listDeadJobs(
  db: pg.Pool | pg.ClientBase,
  f: DeadFilters,
  opts: { unknownType?: (type: string) => Promise<unknown> } = {},
): Promise<DeadReport> {
  const r = (
    await db.query(DEAD_SQL.list, [
      f.since_hours * 3600,
      f.type ?? null,
      f.correlation_id ?? null,
      f.reason ?? null,
      f.limit,
    ])
  ).rows[0];
  if (!r.type_known) {
    if (!opts.unknownType) throw usageError(`unknown job type "${f.type}": it is not in the job_types whitelist`);
    await opts.unknownType(f.type as string);
  }
  return {
    filters: f,
    summary: { total_dead: r.total_dead, by_type: r.by_type, by_reason: r.by_reason },
    jobs: r.jobs,
  };
}
