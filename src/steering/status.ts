// Everything steering holds back, as `canon health`, `canon alerts` and the dashboard show it:
// paused types, open or half-open breakers, jobs held by a kill, running rollouts, and
// automatic rollbacks of the last 24 hours. The health snapshot embeds the five reads
// (PAUSE_SQL.paused, BREAKERS_SQL.notClosed, FLAGS_SQL.heldByFlag, ROLLOUT_SQL.running and
// .autoRollbacks) in its one statement; steeringOf maps their rows.
import { type AutoRollbackRow, rolloutAlertsOf } from './rollout.js';

export interface SteeringHealth {
  paused_types: {
    job_type: string;
    lane: string;
    queued: number;
    paused_at: string | null;
    paused_by: string | null;
    reason: string | null;
  }[];
  /** breakers open or half-open (closed ones are not listed) */
  breakers_not_closed: {
    job_type: string;
    state: 'open' | 'half_open';
    failure_count: number;
    opened_at: string | null;
    next_attempt_at: string | null;
    probe_job_id: number | null;
    reason: string | null;
  }[];
  /** queued jobs held by a flag's kill switch */
  held_jobs: { total: number; by_flag: Record<string, number> };
  rollouts_running: {
    flag: string;
    current_percent: number;
    until_percent: number;
    step_percent: number;
    every_seconds: number;
    guard: string | null;
    next_step_at: string | null;
  }[];
  /** rollouts the guard rolled back in the last 24 h, newest first */
  auto_rollbacks_24h: { flag: string; at: string | null; from_percent: number; to_percent: number; reason: string }[];
}

type Time = Date | string | null;

/** The rows of the five reads, from inside jsonb (times as strings) or from pg (times as Dates). */
export interface SteeringReads {
  paused: {
    job_type: string;
    lane: string;
    paused_at: Time;
    paused_by: string | null;
    pause_reason: string | null;
    queued: number;
  }[];
  breakers: {
    job_type: string;
    state: string;
    failure_count: number;
    opened_at: Time;
    next_attempt_at: Time;
    probe_job_id: number | string | null;
    reason: string | null;
  }[];
  held: { flag: string; jobs: number }[];
  rollouts: {
    flag: string;
    current_percent: number;
    until_percent: number;
    step_percent: number;
    every_seconds: number | string;
    guard: string | null;
    next_step_at: Time;
  }[];
  auto_rollbacks: AutoRollbackRow[];
}

/** Timestamps come back as Dates from pg and as strings from inside jsonb: one form out. */
const iso = (v: unknown): string | null => (v === null || v === undefined ? null : new Date(v as string).toISOString());

export function steeringOf(r: SteeringReads): SteeringHealth {
  return {
    paused_types: r.paused.map((p) => ({
      job_type: p.job_type,
      lane: p.lane,
      queued: p.queued,
      paused_at: iso(p.paused_at),
      paused_by: p.paused_by,
      reason: p.pause_reason,
    })),
    breakers_not_closed: r.breakers.map((b) => ({
      job_type: b.job_type,
      state: b.state as 'open' | 'half_open',
      failure_count: b.failure_count,
      opened_at: iso(b.opened_at),
      next_attempt_at: iso(b.next_attempt_at),
      probe_job_id: b.probe_job_id === null ? null : Number(b.probe_job_id),
      reason: b.reason,
    })),
    held_jobs: {
      total: r.held.reduce((n, x) => n + x.jobs, 0),
      by_flag: Object.fromEntries(r.held.map((x) => [x.flag, x.jobs])),
    },
    rollouts_running: r.rollouts.map((x) => ({
      flag: x.flag,
      current_percent: x.current_percent,
      until_percent: x.until_percent,
      step_percent: x.step_percent,
      every_seconds: Number(x.every_seconds),
      guard: x.guard,
      next_step_at: iso(x.next_step_at),
    })),
    auto_rollbacks_24h: rolloutAlertsOf(r.auto_rollbacks).map((a) => ({
      flag: a.flag,
      at: iso(a.at),
      from_percent: a.from_percent,
      to_percent: a.to_percent,
      reason: a.reason,
    })),
  };
}
