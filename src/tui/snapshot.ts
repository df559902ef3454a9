// What one refresh of `canon watch` knows, read with one statement (src/sql/watch.ts). The
// health part is turned into a Health by `canon health`'s own mapping (healthOf) from the row
// the snapshot already fetched, so the tiles and `canon health --json` are the same numbers from
// the same SQL, the same mapping and the same alert rules.
import type pg from 'pg';
import { prepared } from '../db/connect.js';
import { healthOf } from '../observe/health.js';
import type { Thresholds } from '../observe/thresholds.js';
import { buildTree, type Chain, type Trace } from '../observe/trace.js';
import type { Health, SteeringHealth } from '../observe/types.js';
import { WATCH_SQL } from '../sql/watch.js';

export interface Focus {
  type?: string;
  entity?: string;
}

export interface TypeRow {
  name: string;
  lane: 'decision' | 'execution';
  paused: boolean;
  paused_by: string | null;
  pause_reason: string | null;
  paused_at: string | null;
  max_attempts: number;
  breaker: 'closed' | 'open' | 'half_open';
  queued: number;
  running: number;
  dead_24h: number;
  /** age of the oldest ready job of the type, null when none is ready */
  oldest_ready: number | null;
}

export interface MinuteRow {
  minute: string;
  ok: number;
  failed: number;
  /** the longest wait for a worker seen in that minute (see lagSeries) */
  lag: number;
}

export interface WorkerRow {
  id: string;
  role: string;
  lanes: string[];
  in_flight: number;
  concurrency: number;
  pid: number | null;
  host: string | null;
  pipeline: string | null;
  version: string | null;
  started_at: string;
  heartbeat_at: string;
  heartbeat_age: number;
  alive: boolean;
}

export interface FailureRow {
  run_id: number;
  job_id: number;
  type: string;
  lane: string;
  entity_id: string;
  attempt: number;
  max_attempts: number;
  reason: string | null;
  error: string | null;
  trace_id: string;
  finished_at: string;
  job_status: string;
  dead: boolean;
}

export interface FlagRow {
  name: string;
  enabled: boolean;
  rollout_percent: number;
  strategy: 'all' | 'gradual';
  killed_at: string | null;
  killed_by: string | null;
  updated_at: string;
  updated_by: string;
  held_jobs: number;
  rollout: {
    current_percent: number;
    until_percent: number;
    step_percent: number;
    every_seconds: number;
    next_step_at: string;
    guard: string | null;
  } | null;
}

/** A breaker that is not closed: the same shape health reports. */
export type BreakerRow = SteeringHealth['breakers_not_closed'][number];

export interface FocusJob {
  state: 'dead' | 'running' | 'queued';
  id: number;
  entity_id: string;
  status: string;
  attempts: number;
  max_attempts: number;
  run_at: string;
  locked_by: string | null;
  locked_at: string | null;
  heartbeat_at: string | null;
  hold_reason: string | null;
  last_reason: string | null;
  last_error: string | null;
  finished_at: string | null;
  trace_id: string | null;
  created_at: string;
}

export interface FocusType {
  type: string;
  known: boolean;
  queued: { n: number; ready: number; held: number };
  dead: { n: number; last_24h: number };
  jobs: FocusJob[];
}

export interface FocusEntity {
  entity: string;
  exists: boolean;
  chain: Chain | null;
  trace: Trace | null;
}

export interface WatchSnapshot {
  database: string;
  fetched_at: string;
  /** wall time of the one round trip, in ms */
  query_ms: number;
  thresholds: Thresholds;
  health: Health;
  types: TypeRow[];
  minutes: MinuteRow[];
  workers: WorkerRow[];
  workers_total: number;
  failures: FailureRow[];
  flags: FlagRow[];
  breakers: BreakerRow[];
  focus_type: FocusType | null;
  focus_entity: FocusEntity | null;
}

/**
 * The lag sparkline: for each minute, the longest wait seen then, either by a run that
 * started in that minute (from the query) or by a job that is still waiting now (it was
 * already waiting at the end of every minute since it became ready). The last bucket ends
 * at now, so the line ends on the tile's estimated lag.
 */
export function lagSeries(
  rows: { minute: string; max_wait: number | null }[],
  estimatedLag: number,
  nowMs: number,
): number[] {
  const oldestReadyMs = estimatedLag > 0 ? nowMs - estimatedLag * 1000 : null;
  return rows.map((r) => {
    const end = Math.min(Date.parse(r.minute) + 60_000, nowMs);
    const waiting = oldestReadyMs !== null && oldestReadyMs < end ? (end - oldestReadyMs) / 1000 : 0;
    return Math.round(Math.max(r.max_wait ?? 0, waiting) * 1000) / 1000;
  });
}

export async function readSnapshot(
  db: pg.Pool | pg.ClientBase,
  t: Thresholds,
  focus: Focus,
  database: string,
): Promise<WatchSnapshot> {
  const started = performance.now();
  const params = [
    t.gap_window_seconds,
    t.gap_grace_seconds,
    t.worker_alive_seconds,
    t.duplicate_window_seconds,
    t.activity_window_seconds,
    focus.type ?? null,
    focus.entity ?? null,
  ];
  // Named (on a direct connection), so each connection prepares it once: planning a statement this size costs more than
  // running it, and after five runs Postgres keeps a generic plan (docs/PERFORMANCE.md).
  const s = (await db.query(prepared(db, { name: 'canon_watch_snapshot', text: WATCH_SQL.snapshot, values: params })))
    .rows[0].snapshot;
  const query_ms = Math.round((performance.now() - started) * 10) / 10;
  const health = healthOf(s.health, t);
  const now = Date.parse(health.checked_at);
  const lags = lagSeries(s.minutes, health.estimated_lag_seconds, now);
  const fe = s.focus_entity;
  return {
    database,
    fetched_at: new Date().toISOString(),
    query_ms,
    thresholds: t,
    health,
    types: s.types.map((r: Omit<TypeRow, 'queued' | 'oldest_ready'>) => ({
      ...r,
      queued: health.jobs_queued.by_type[r.name] ?? 0,
      oldest_ready: health.oldest_queued_age_seconds[r.name] ?? null,
    })),
    minutes: s.minutes.map((m: { minute: string; ok: number; failed: number }, i: number) => ({
      minute: m.minute,
      ok: m.ok,
      failed: m.failed,
      lag: lags[i],
    })),
    workers: s.workers,
    workers_total: s.workers_total,
    failures: s.failures,
    flags: s.flags,
    breakers: s.breakers,
    focus_type: s.focus_type,
    focus_entity: fe
      ? {
          entity: fe.entity,
          exists: fe.exists,
          chain: fe.exists ? chainOf(fe.entity, fe.chain) : null,
          trace: fe.exists ? buildTree(chainOf(fe.entity, fe.chain)) : null,
        }
      : null,
  };
}

function chainOf(entity: string, c: Omit<Chain, 'query' | 'matched_by'>): Chain {
  return {
    query: entity,
    matched_by: 'entity',
    events: c.events,
    jobs: c.jobs,
    runs: c.runs,
    actions: c.actions,
    pruned: c.pruned ?? [],
  };
}
