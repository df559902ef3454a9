// The health of a canon deployment as one typed object, computed in one round trip. The
// first six fields are the seed's health endpoint, with its names; the rest are what the
// RFC and the issue add. `health`, `alerts`, `serve` and the dashboard all read this.
import type pg from 'pg';
import { tamperAlerts, type TamperAlert } from '../audit.js';
import { HEALTH_EMBEDDED_READS, HEALTH_SQL } from '../sql/health.js';
import { steeringStatus } from '../steering/status.js';
import { evaluateAlerts, worstSeverity, type AlertResult, type PluginStatus } from './alerts.js';
import { DEFAULT_THRESHOLDS, type Thresholds } from './thresholds.js';

export interface RunWindow {
  runs_finished: number;
  succeeded: number;
  failed: number;
  per_minute: number;
  /** succeeded / (succeeded + failed); null when no run finished in the window */
  success_rate: number | null;
}

export interface Health {
  jobs_queued: { by_type: Record<string, number>; total: number };
  jobs_processing: { count: number; avg_age_seconds: number };
  stuck_count: number;
  dead_last_24h: number;
  estimated_lag_seconds: number;
  runtime_version: string;
  // ── beyond the seed ──
  status: PluginStatus;
  problems: { alert: string; severity: 'warning' | 'critical'; summary: string; runbook: string }[];
  checked_at: string;
  event_to_job_gap: number;
  event_to_job_gap_by_lane: { decision: number; execution: number };
  oldest_queued_age_seconds: Record<string, number>;
  jobs_ready: { total: number; by_lane: Record<string, number> };
  throughput: { last_5m: RunWindow; last_1h: RunWindow };
  workers: { alive: number; stale: number; by_role: Record<string, number> };
  gateway: { mode: string; bypass_count: number; bypass_last_24h: number };
  core_trigger_enabled: boolean;
  decision_runs_in_activity_window: number;
  duplicate_event_groups: number;
  succeeded_without_trace: number;
  /** what steering holds back now (issue 6: "health and alerts show it") */
  steering: SteeringHealth;
  /** new (unacknowledged) edit attempts on the ledger: `canon audit attempts`, acknowledged with --ack */
  ledger_edits: LedgerEdits;
}

export interface SteeringHealth {
  paused_types: { job_type: string; lane: string; queued: number; paused_at: string | null; paused_by: string | null; reason: string | null }[];
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
  rollouts_running: { flag: string; current_percent: number; until_percent: number; step_percent: number; every_seconds: number; guard: string | null; next_step_at: string | null }[];
  /** rollouts the guard rolled back in the last 24 h, newest first */
  auto_rollbacks_24h: { flag: string; at: string | null; from_percent: number; to_percent: number; reason: string }[];
}

export interface LedgerEdits {
  severity: TamperAlert['severity'];
  refused_new: number;
  bypass_new: number;
  refused_total: number;
  bypass_total: number;
  last: TamperAlert['register']['last'];
  message: string;
}

function runWindow(ok: number, failed: number, minutes: number): RunWindow {
  const finished = ok + failed;
  return {
    runs_finished: finished,
    succeeded: ok,
    failed,
    per_minute: Math.round((finished / minutes) * 1000) / 1000,
    success_rate: finished === 0 ? null : Math.round((ok / finished) * 10000) / 10000,
  };
}

const round3 = (n: number) => Math.round(n * 1000) / 1000;
/** Timestamps come back as Dates from pg and as strings from inside jsonb: one form out. */
const iso = (v: unknown): string | null => (v === null || v === undefined ? null : new Date(v as string).toISOString());

/**
 * A handle that answers the embedded reads from the snapshot row, so steeringStatus() and
 * tamperAlerts() keep their own mapping without another round trip. A read they add later
 * that the snapshot does not embed fails loudly instead of answering wrong.
 */
function embeddedReplay(rows: unknown[][]): pg.ClientBase {
  const byText = new Map<string, unknown[]>(HEALTH_EMBEDDED_READS.map((sql, i) => [sql, rows[i]]));
  const query = async (text: unknown) => {
    const found = typeof text === 'string' ? byText.get(text) : undefined;
    if (!found) throw new Error(`health: a steering or audit read is not embedded in HEALTH_SQL.snapshot (add it to HEALTH_EMBEDDED_READS): ${String(text).slice(0, 80)}`);
    return { rows: found };
  };
  return { query } as unknown as pg.ClientBase;
}

async function steeringAndLedger(rows: unknown[][]): Promise<{ steering: SteeringHealth; ledger_edits: LedgerEdits }> {
  const db = embeddedReplay(rows);
  const [s, t] = await Promise.all([steeringStatus(db), tamperAlerts(db)]);
  const byFlag = Object.fromEntries(s.held.map((x) => [x.flag, x.jobs]));
  return {
    steering: {
      paused_types: s.paused.map((p) => ({ job_type: p.job_type, lane: p.lane, queued: p.queued, paused_at: iso(p.paused_at), paused_by: p.paused_by, reason: p.pause_reason })),
      breakers_not_closed: s.breakers.map((b) => ({
        job_type: b.job_type,
        state: b.state as 'open' | 'half_open',
        failure_count: b.failure_count,
        opened_at: iso(b.opened_at),
        next_attempt_at: iso(b.next_attempt_at),
        probe_job_id: b.probe_job_id === null ? null : Number(b.probe_job_id),
        reason: b.reason,
      })),
      held_jobs: { total: s.held.reduce((n, x) => n + x.jobs, 0), by_flag: byFlag },
      rollouts_running: s.rollouts.map((r) => ({
        flag: r.flag,
        current_percent: r.current_percent,
        until_percent: r.until_percent,
        step_percent: r.step_percent,
        every_seconds: Number(r.every_seconds),
        guard: r.guard,
        next_step_at: iso(r.next_step_at),
      })),
      auto_rollbacks_24h: s.auto_rollbacks.map((a) => ({ flag: a.flag, at: iso(a.at), from_percent: a.from_percent, to_percent: a.to_percent, reason: a.reason })),
    },
    ledger_edits: { severity: t.severity, refused_new: t.refused_new, bypass_new: t.bypass_new, refused_total: t.register.refused_total, bypass_total: t.register.bypass_total, last: t.register.last, message: t.message },
  };
}

/**
 * Reads every number with one statement (steering and the ledger's edit register included);
 * alerts are evaluated on the result.
 */
export async function computeHealth(db: pg.Pool | pg.ClientBase, t: Thresholds = DEFAULT_THRESHOLDS): Promise<Health> {
  const r = (
    await db.query(HEALTH_SQL.snapshot, [t.gap_window_seconds, t.gap_grace_seconds, t.worker_alive_seconds, t.duplicate_window_seconds, t.activity_window_seconds])
  ).rows[0];
  const extra = await steeringAndLedger(r.embedded_reads);
  const h: Health = {
    jobs_queued: { by_type: r.queued_by_type, total: r.queued_total },
    jobs_processing: { count: r.running_count, avg_age_seconds: round3(r.running_avg_age) },
    stuck_count: r.stuck_count,
    dead_last_24h: r.dead_24h,
    estimated_lag_seconds: round3(r.lag_seconds),
    runtime_version: r.runtime_version,
    status: 'OK',
    problems: [],
    checked_at: new Date(r.checked_at).toISOString(),
    event_to_job_gap: r.gap_execution + r.gap_decision,
    event_to_job_gap_by_lane: { decision: r.gap_decision, execution: r.gap_execution },
    oldest_queued_age_seconds: Object.fromEntries(Object.entries(r.oldest_ready_by_type as Record<string, string | number>).map(([k, v]) => [k, Number(v)])),
    jobs_ready: { total: r.queued_ready, by_lane: r.ready_by_lane },
    throughput: { last_5m: runWindow(r.ok_5m, r.failed_5m, 5), last_1h: runWindow(r.ok_1h, r.failed_1h, 60) },
    workers: { alive: r.workers_alive, stale: r.workers_stale, by_role: r.workers_by_role },
    gateway: { mode: r.gateway_mode, bypass_count: r.bypass_total, bypass_last_24h: r.bypass_24h },
    core_trigger_enabled: r.core_trigger_enabled,
    decision_runs_in_activity_window: r.decision_runs_window,
    duplicate_event_groups: r.duplicate_groups,
    succeeded_without_trace: r.untraced_succeeded,
    ...extra,
  };
  const firing = evaluateAlerts(h, t).filter((a) => a.firing);
  h.problems = firing.map((a) => ({ alert: a.name, severity: a.severity, summary: a.summary, runbook: a.runbook }));
  h.status = worstSeverity(firing);
  return h;
}

export function healthStatusLine(h: Health): string {
  const head = `CANON ${h.status} - ${h.problems.length ? h.problems.map((p) => p.summary).join('; ') : 'all checks pass'}`;
  const perf = [
    `queued=${h.jobs_queued.total}`,
    `running=${h.jobs_processing.count}`,
    `stuck=${h.stuck_count}`,
    `dead_24h=${h.dead_last_24h}`,
    `lag=${h.estimated_lag_seconds}s`,
    `gap=${h.event_to_job_gap}`,
    `workers=${h.workers.alive}`,
  ];
  return `${head} | ${perf.join(' ')}`;
}

export type { AlertResult };
