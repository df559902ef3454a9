// The shapes health and alerts share: the health snapshot that alerts are evaluated on, the
// alerts' results, and the monitoring-plugin statuses both report. Types only (and the
// plugin exit codes), so health can run the alert rules without the rules importing health.
import type { TamperAlert } from '../audit.js';
import type { SteeringHealth } from '../steering/status.js';

export type { SteeringHealth };

export type PluginStatus = 'OK' | 'WARNING' | 'CRITICAL' | 'UNKNOWN';
export const PLUGIN_EXIT: Record<PluginStatus, number> = { OK: 0, WARNING: 1, CRITICAL: 2, UNKNOWN: 3 };

export interface AlertResult {
  name: string;
  severity: 'warning' | 'critical';
  firing: boolean;
  value: number;
  threshold: string;
  summary: string;
  runbook: string;
}

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
  /**
   * The server these numbers were read from, when it is a standby in recovery (a read URL
   * pointing at a replica); null on a primary. Every number above is as old as its lag.
   */
  replica: ReplicaState | null;
  /** what holds vacuum back (oldest first) and the dead tuples of the tables every job rewrites */
  horizon: Horizon;
}

/** One holder of the MVCC horizon: a session, a replication slot or a prepared transaction. */
export interface HorizonHolder {
  kind: 'session' | 'replication_slot' | 'prepared_transaction';
  /** the backend to end (pg_terminate_backend); a slot's active walsender; null for a prepared transaction */
  pid: number | null;
  /** transactions since its snapshot or transaction id (age(xmin)) */
  xmin_age: number;
  /** how long its transaction has been open; null for a replication slot */
  seconds: number | null;
  user: string | null;
  /** application_name, the slot's name or the prepared transaction's gid */
  application: string | null;
  state: string | null;
  query: string | null;
}

export interface HotTable {
  table: string;
  live_tuples: number;
  dead_tuples: number;
  /** dead / (live + dead), from the statistics collector */
  dead_ratio: number;
  updates: number;
  hot_updates: number;
  last_vacuum_at: string | null;
}

export interface Horizon {
  /** the oldest holder's transaction age in seconds (0 when nothing holds a snapshot) */
  pinned_seconds: number;
  /** the oldest holder's age(xmin), in transactions */
  xmin_age: number;
  holders: HorizonHolder[];
  hot_tables: HotTable[];
}

/** A standby's replication state, as src/sql/replica.ts reads it. */
export interface ReplicaState {
  lag_seconds: number | null;
  replay_behind_bytes: number;
  last_replayed_at: string | null;
  receiver: string;
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
