// The health of a canon deployment as one typed object, computed in one round trip. The
// first six fields are the seed's health endpoint, with its names; the rest are what the
// RFC and the issue add. `health`, `alerts`, `serve` and the dashboard all read this.
import type pg from 'pg';
import { ledgerEditRegisterOf, type RegisterRow, tamperAlertOf } from '../audit.js';
import { canonTypes } from '../db/pg-types.js';
import { HEALTH_SQL } from '../sql/health.js';
import { type SteeringReads, steeringOf } from '../steering/status.js';
import { evaluateAlerts, worstSeverity } from './alerts.js';
import { type HorizonReads, horizonOf } from './horizon.js';
import { DEFAULT_THRESHOLDS, type Thresholds } from './thresholds.js';
import type { Health, LedgerEdits, RunWindow } from './types.js';

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

/** The snapshot's `embedded_reads`: the rows of each steering and register read, by name (src/sql/health.ts). */
interface EmbeddedReads extends SteeringReads, HorizonReads {
  register: RegisterRow[];
  acknowledged: { key: string; value: string }[];
}

function ledgerEdits(reads: EmbeddedReads): LedgerEdits {
  const t = tamperAlertOf(ledgerEditRegisterOf(reads.register[0]), reads.acknowledged);
  return {
    severity: t.severity,
    refused_new: t.refused_new,
    bypass_new: t.bypass_new,
    refused_total: t.register.refused_total,
    bypass_total: t.register.bypass_total,
    last: t.register.last,
    message: t.message,
  };
}

/**
 * Reads every number with one statement (steering and the ledger's edit register included);
 * alerts are evaluated on the result.
 */
export async function computeHealth(db: pg.Pool | pg.ClientBase, t: Thresholds = DEFAULT_THRESHOLDS): Promise<Health> {
  const r = (
    await db.query({
      text: HEALTH_SQL.snapshot,
      values: [
        t.gap_window_seconds,
        t.gap_grace_seconds,
        t.worker_alive_seconds,
        t.duplicate_window_seconds,
        t.activity_window_seconds,
      ],
      // an application's pool reads int8 as text; the snapshot's counts are numbers either way
      types: canonTypes,
    })
  ).rows[0];
  return healthOf(r, t);
}

/**
 * The health from a row of HEALTH_SQL.snapshot, as pg returns it or as jsonb inside another
 * statement (the dashboard's), with the alerts evaluated on it.
 */
// biome-ignore lint/suspicious/noExplicitAny: the snapshot row is wide and mapped field by field below
export function healthOf(r: Record<string, any>, t: Thresholds = DEFAULT_THRESHOLDS): Health {
  const reads = r.embedded_reads as EmbeddedReads;
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
    oldest_queued_age_seconds: Object.fromEntries(
      Object.entries(r.oldest_ready_by_type as Record<string, string | number>).map(([k, v]) => [k, Number(v)]),
    ),
    jobs_ready: { total: r.queued_ready, by_lane: r.ready_by_lane },
    throughput: { last_5m: runWindow(r.ok_5m, r.failed_5m, 5), last_1h: runWindow(r.ok_1h, r.failed_1h, 60) },
    workers: { alive: r.workers_alive, stale: r.workers_stale, by_role: r.workers_by_role },
    gateway: { mode: r.gateway_mode, bypass_count: r.bypass_total, bypass_last_24h: r.bypass_24h },
    core_trigger_enabled: r.core_trigger_enabled,
    decision_runs_in_activity_window: r.decision_runs_window,
    duplicate_event_groups: r.duplicate_groups,
    succeeded_without_trace: r.untraced_succeeded,
    steering: steeringOf(reads),
    ledger_edits: ledgerEdits(reads),
    horizon: horizonOf(reads),
    replica: r.replica ?? null,
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
    `horizon=${Math.round(h.horizon.pinned_seconds)}s`,
    ...(h.replica ? [`replica_lag=${h.replica.lag_seconds ?? 'U'}s`] : []),
  ];
  return `${head} | ${perf.join(' ')}`;
}
