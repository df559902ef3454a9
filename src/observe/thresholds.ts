// The numbers that turn observations into OK / WARNING / CRITICAL. One set, shared by
// `canon health`, `canon alerts`, `/health` and the Prometheus rules in deploy/prometheus
// (which repeat the defaults), so every surface agrees on what "broken" means.
import { CanonError } from '../errors.js';

export interface Thresholds {
  /** estimated lag above this is a WARNING (seed: "check estimated_lag_seconds < 60") */
  lag_warning_seconds: number;
  /** estimated lag above this is CRITICAL (seed: "Critical: estimated_lag_seconds > 300") */
  lag_critical_seconds: number;
  /** more queued jobs than this is a backlog (seed alert 2: "más de 100 jobs pendientes") */
  queued_max: number;
  /** success rate of finished runs in the last hour below this fires (seed alert 3: 90 %) */
  success_rate_min: number;
  /** ...but only with at least this many finished runs, so one failure on a quiet hour is not 0 % */
  success_min_runs: number;
  /** dead jobs in the last 24 h above this fire */
  dead_max: number;
  /** stuck jobs above this fire (seed: "Critical: stuck_count > 0") */
  stuck_max: number;
  /** gateway bypasses in the last 24 h above this fire */
  bypass_max: number;
  /** the RFC's Delta: an event older than this without its job is a gap */
  gap_grace_seconds: number;
  /** how far back event_to_job_gap looks (keeps it an index range, not a ledger scan) */
  gap_window_seconds: number;
  /** a worker whose heartbeat is older than this is not alive */
  worker_alive_seconds: number;
  /** duplicate run-written events are looked for in this window (seed alert 4: 1 day) */
  duplicate_window_seconds: number;
  /** no decision run started in this window while decisions wait fires (seed alert 1: 1 hour) */
  activity_window_seconds: number;
  /** a snapshot or transaction open longer than this pins the horizon: WARNING */
  horizon_warning_seconds: number;
  /** ...and CRITICAL past this */
  horizon_critical_seconds: number;
  /** a replication slot whose xmin is older than this many transactions pins the horizon */
  horizon_slot_xmin_age_max: number;
  /** a hot table with a larger share of dead tuples than this fires... */
  dead_tuple_ratio_max: number;
  /** ...when it also has at least this many dead tuples (a small table's ratio means nothing) */
  dead_tuples_min: number;
}

export const DEFAULT_THRESHOLDS: Readonly<Thresholds> = Object.freeze({
  lag_warning_seconds: 60,
  lag_critical_seconds: 300,
  queued_max: 100,
  success_rate_min: 0.9,
  success_min_runs: 10,
  dead_max: 0,
  stuck_max: 0,
  bypass_max: 0,
  gap_grace_seconds: 60,
  gap_window_seconds: 3600,
  worker_alive_seconds: 60,
  duplicate_window_seconds: 86400,
  activity_window_seconds: 3600,
  horizon_warning_seconds: 300,
  horizon_critical_seconds: 1800,
  horizon_slot_xmin_age_max: 10_000_000,
  dead_tuple_ratio_max: 0.2,
  dead_tuples_min: 10_000,
});

const LIMITS: Record<keyof Thresholds, [number, number]> = {
  lag_warning_seconds: [0, 31_536_000],
  lag_critical_seconds: [0, 31_536_000],
  queued_max: [0, 1e12],
  success_rate_min: [0, 1],
  success_min_runs: [1, 1e12],
  dead_max: [0, 1e12],
  stuck_max: [0, 1e12],
  bypass_max: [0, 1e12],
  gap_grace_seconds: [0, 31_536_000],
  gap_window_seconds: [1, 31_536_000],
  worker_alive_seconds: [1, 31_536_000],
  duplicate_window_seconds: [1, 31_536_000],
  activity_window_seconds: [1, 31_536_000],
  horizon_warning_seconds: [0, 31_536_000],
  horizon_critical_seconds: [0, 31_536_000],
  horizon_slot_xmin_age_max: [0, 2_000_000_000],
  dead_tuple_ratio_max: [0, 1],
  dead_tuples_min: [0, 1e12],
};

export const THRESHOLD_NAMES = Object.keys(DEFAULT_THRESHOLDS) as (keyof Thresholds)[];

/** Applies `name=value` overrides; a bad one throws with the given exit code (UNKNOWN for plugins). */
export function parseThresholds(pairs: string[] | undefined, exitCode: number): Thresholds {
  const t: Thresholds = { ...DEFAULT_THRESHOLDS };
  for (const pair of pairs ?? []) {
    const m = /^([a-z_]+)=(.+)$/.exec(pair.trim());
    if (!m)
      throw new CanonError(
        `--threshold must look like name=value (for example queued_max=500), got "${pair}"`,
        exitCode,
      );
    const name = m[1] as keyof Thresholds;
    if (!(name in LIMITS)) {
      throw new CanonError(`unknown threshold "${m[1]}": use one of ${THRESHOLD_NAMES.join(', ')}`, exitCode);
    }
    const v = Number(m[2]);
    const [lo, hi] = LIMITS[name];
    if (m[2].trim() === '' || !Number.isFinite(v) || v < lo || v > hi) {
      throw new CanonError(`threshold ${name} must be a number between ${lo} and ${hi}, got "${m[2]}"`, exitCode);
    }
    t[name] = v;
  }
  // a critical level below its warning level would make the warning unreachable
  const levels = [
    ['lag_critical_seconds', 'lag_warning_seconds'],
    ['horizon_critical_seconds', 'horizon_warning_seconds'],
  ] as const;
  for (const [critical, warning] of levels) {
    if (t[critical] < t[warning]) {
      throw new CanonError(
        `threshold ${critical} (${t[critical]}) must not be below ${warning} (${t[warning]})`,
        exitCode,
      );
    }
  }
  return t;
}
