// The seeds' alerts plus the RFC's, as data: each has a name (the same alertname as in
// deploy/prometheus/alerts.yml), a severity, a rule over the health snapshot and the runbook
// that says what to do. `canon alerts` prints them; `canon health` reports the firing ones.
// The last four read what steering holds back and the ledger's edit register (health's
// `steering` and `ledger_edits`).
import { describeHolder, oldestHolder } from './horizon.js';
import type { Thresholds } from './thresholds.js';
import type { AlertResult, Health, PluginStatus } from './types.js';

interface Rule {
  name: string;
  runbook: string;
  eval(
    h: Health,
    t: Thresholds,
  ): { firing: boolean; severity?: 'warning' | 'critical'; value: number; threshold: string; summary: string };
}

const plural = (n: number, one: string, many = `${one}s`) => `${n} ${n === 1 ? one : many}`;

/** A warning that fires while a list in the snapshot is not empty; its summary names each item. */
function listRule<T>(o: {
  name: string;
  runbook: string;
  threshold: string;
  items: (h: Health) => T[];
  summary: (items: T[]) => string;
  none: (h: Health) => string;
  value?: (items: T[]) => number;
}): Rule {
  return {
    name: o.name,
    runbook: o.runbook,
    eval: (h) => {
      const items = o.items(h);
      const firing = items.length > 0;
      return {
        firing,
        severity: 'warning',
        value: o.value ? o.value(items) : items.length,
        threshold: o.threshold,
        summary: firing ? o.summary(items) : o.none(h),
      };
    },
  };
}

export const RULES: Rule[] = [
  {
    name: 'CanonCoreTriggerDisabled',
    runbook: 'runbooks/core-trigger-disabled.md',
    eval: (h) => ({
      firing: !h.core_trigger_enabled,
      severity: 'critical',
      value: h.core_trigger_enabled ? 1 : 0,
      threshold: 'enabled',
      summary: 'the core trigger canon_core_trigger is disabled: events enqueue no decisions',
    }),
  },
  {
    name: 'CanonEventToJobGap',
    runbook: 'runbooks/event-to-job-gap.md',
    eval: (h, t) => ({
      firing: h.event_to_job_gap > 0,
      severity: 'critical',
      value: h.event_to_job_gap,
      threshold: '> 0',
      summary: `event_to_job_gap ${h.event_to_job_gap}: ${plural(h.event_to_job_gap, 'event')} older than ${t.gap_grace_seconds}s without their job (decision ${h.event_to_job_gap_by_lane.decision}, execution ${h.event_to_job_gap_by_lane.execution})`,
    }),
  },
  {
    name: 'CanonStuckJobs',
    runbook: 'runbooks/stuck-jobs.md',
    eval: (h, t) => ({
      firing: h.stuck_count > t.stuck_max,
      severity: 'critical',
      value: h.stuck_count,
      threshold: `> ${t.stuck_max}`,
      summary: `${plural(h.stuck_count, 'job')} running past their type's TTL without heartbeat`,
    }),
  },
  {
    name: 'CanonHighLag',
    runbook: 'runbooks/high-lag.md',
    eval: (h, t) => ({
      firing: h.estimated_lag_seconds > t.lag_warning_seconds,
      severity: h.estimated_lag_seconds > t.lag_critical_seconds ? 'critical' : 'warning',
      value: h.estimated_lag_seconds,
      threshold: `> ${t.lag_warning_seconds}s warning, > ${t.lag_critical_seconds}s critical`,
      summary: `estimated lag ${Math.round(h.estimated_lag_seconds)}s: the oldest ready job has waited that long${h.workers.alive === 0 ? ' (no live workers)' : ''}`,
    }),
  },
  {
    name: 'CanonNoAuthorityActivity',
    runbook: 'runbooks/no-authority-activity.md',
    eval: (h, t) => {
      const waiting = h.jobs_ready.by_lane.decision ?? 0;
      return {
        firing: h.decision_runs_in_activity_window === 0 && waiting > 0,
        severity: 'critical',
        value: h.decision_runs_in_activity_window,
        threshold: `0 decision runs in ${t.activity_window_seconds}s while decisions wait`,
        summary: `no decision run started in the last ${Math.round(t.activity_window_seconds / 60)} min while ${plural(waiting, 'decision job')} wait: DecisionAuthority is not running`,
      };
    },
  },
  {
    name: 'CanonQueueBacklog',
    runbook: 'runbooks/queue-backlog.md',
    eval: (h, t) => ({
      firing: h.jobs_queued.total > t.queued_max,
      severity: 'warning',
      value: h.jobs_queued.total,
      threshold: `> ${t.queued_max}`,
      summary: `${plural(h.jobs_queued.total, 'job')} queued (more than ${t.queued_max})`,
    }),
  },
  {
    name: 'CanonLowSuccessRate',
    runbook: 'runbooks/low-success-rate.md',
    eval: (h, t) => {
      const w = h.throughput.last_1h;
      const rate = w.success_rate ?? 1;
      return {
        firing: w.runs_finished >= t.success_min_runs && rate < t.success_rate_min,
        severity: 'warning',
        value: rate,
        threshold: `< ${t.success_rate_min} over >= ${t.success_min_runs} runs`,
        summary: `success rate ${(rate * 100).toFixed(1)}% over ${plural(w.runs_finished, 'run')} in the last hour (under ${t.success_rate_min * 100}%)`,
      };
    },
  },
  {
    name: 'CanonDuplicateEvents',
    runbook: 'runbooks/duplicate-events.md',
    eval: (h, t) => ({
      firing: h.duplicate_event_groups > 0,
      severity: 'critical',
      value: h.duplicate_event_groups,
      threshold: '> 0',
      summary: `${plural(h.duplicate_event_groups, 'entity and kind', 'entity/kind pairs')} with a run-written event more than once in ${Math.round(t.duplicate_window_seconds / 3600)}h: double authority?`,
    }),
  },
  {
    name: 'CanonDeadJobs',
    runbook: 'runbooks/dead-jobs.md',
    eval: (h, t) => ({
      firing: h.dead_last_24h > t.dead_max,
      severity: 'warning',
      value: h.dead_last_24h,
      threshold: `> ${t.dead_max}`,
      summary: `${plural(h.dead_last_24h, 'dead job')} in the last 24 h`,
    }),
  },
  {
    name: 'CanonTraceMissing',
    runbook: 'runbooks/trace-missing.md',
    eval: (h) => ({
      firing: h.succeeded_without_trace > 0,
      severity: 'critical',
      value: h.succeeded_without_trace,
      threshold: '> 0',
      summary: `${plural(h.succeeded_without_trace, 'succeeded job')} without trace_id after the trace-policy cutoff`,
    }),
  },
  {
    name: 'CanonGatewayBypass',
    runbook: 'runbooks/gateway-bypass.md',
    eval: (h, t) => ({
      firing: h.gateway.bypass_last_24h > t.bypass_max,
      severity: 'warning',
      value: h.gateway.bypass_last_24h,
      threshold: `> ${t.bypass_max} in 24 h`,
      summary: `${plural(h.gateway.bypass_last_24h, 'job')} inserted without the gateway in the last 24 h (mode ${h.gateway.mode})`,
    }),
  },
  // ── steering and proof (issues 6 and 8) ──
  listRule({
    name: 'CanonFlagAutoRollback',
    runbook: 'runbooks/flag-auto-rollback.md',
    threshold: '> 0 in 24 h',
    items: (h) => h.steering.auto_rollbacks_24h,
    summary: (rb) =>
      `${plural(rb.length, 'automatic rollback')} in the last 24 h: ${rb.map((r) => `${r.flag} ${r.from_percent}% → ${r.to_percent}% (${r.reason})`).join('; ')}`,
    none: () => 'no automatic rollback in the last 24 h',
  }),
  {
    name: 'CanonLedgerEditAttempts',
    runbook: 'runbooks/ledger-edit-attempts.md',
    eval: (h) => {
      const e = h.ledger_edits;
      return {
        firing: e.severity !== 'ok',
        severity: e.severity === 'critical' ? 'critical' : 'warning',
        value: e.refused_new + e.bypass_new,
        threshold: '> 0 since the last `canon audit attempts --ack` (critical when triggers were bypassed)',
        summary: e.severity === 'ok' ? e.message : `${e.message}; acknowledge with canon audit attempts --ack`,
      };
    },
  },
  listRule({
    name: 'CanonJobTypePaused',
    runbook: 'runbooks/job-type-paused.md',
    threshold: 'a paused type with queued jobs',
    items: (h) => h.steering.paused_types.filter((p) => p.queued > 0),
    value: (waiting) => waiting.reduce((sum, p) => sum + p.queued, 0),
    summary: (waiting) =>
      waiting
        .map(
          (p) =>
            `job type ${p.job_type} is paused with ${plural(p.queued, 'queued job')}${p.paused_by ? ` (by ${p.paused_by}${p.reason ? `: ${p.reason}` : ''})` : ''}`,
        )
        .join('; '),
    none: (h) => `${plural(h.steering.paused_types.length, 'paused type')}, none with queued jobs`,
  }),
  listRule({
    name: 'CanonBreakerOpen',
    runbook: 'runbooks/breaker-open.md',
    threshold: 'a breaker open or half-open',
    items: (h) => h.steering.breakers_not_closed,
    summary: (b) =>
      b
        .map(
          (x) =>
            `breaker of ${x.job_type} ${x.state === 'half_open' ? `half-open (probe job ${x.probe_job_id ?? '-'})` : `open${x.next_attempt_at ? ` until ${x.next_attempt_at}` : ''}`} after ${plural(x.failure_count, 'failure')}${x.reason ? `: ${x.reason}` : ''}`,
        )
        .join('; '),
    none: () => 'every breaker closed',
  }),
  // ── a pinned MVCC horizon and what it piles up (issue 18) ──
  {
    name: 'CanonHorizonPinned',
    runbook: 'runbooks/horizon-pinned.md',
    eval: (h, t) => {
      const x = oldestHolder(h.horizon);
      const slots = h.horizon.holders.filter(
        (s) => s.kind === 'replication_slot' && s.xmin_age > t.horizon_slot_xmin_age_max,
      );
      const seconds = h.horizon.pinned_seconds;
      return {
        firing: seconds > t.horizon_warning_seconds || slots.length > 0,
        severity: seconds > t.horizon_critical_seconds ? 'critical' : 'warning',
        value: seconds,
        threshold: `> ${t.horizon_warning_seconds}s warning, > ${t.horizon_critical_seconds}s critical; a slot's xmin older than ${t.horizon_slot_xmin_age_max} transactions`,
        summary: x
          ? `the MVCC horizon is held by ${describeHolder(slots[0] ?? x)}${x.seconds === null ? '' : ` for ${Math.round(x.seconds)}s`}, ${plural((slots[0] ?? x).xmin_age, 'transaction')} old: vacuum cannot remove dead jobs and runs`
          : 'nothing holds a snapshot',
      };
    },
  },
  {
    name: 'CanonHotTableDeadTuples',
    runbook: 'runbooks/horizon-pinned.md',
    eval: (h, t) => {
      const bloated = h.horizon.hot_tables.filter(
        (x) => x.dead_ratio > t.dead_tuple_ratio_max && x.dead_tuples >= t.dead_tuples_min,
      );
      const worst = Math.max(0, ...h.horizon.hot_tables.map((x) => x.dead_ratio));
      return {
        firing: bloated.length > 0,
        severity: 'warning',
        value: worst,
        threshold: `dead ratio > ${t.dead_tuple_ratio_max} with >= ${t.dead_tuples_min} dead tuples`,
        summary: bloated.length
          ? bloated
              .map((x) => `canon.${x.table} is ${(x.dead_ratio * 100).toFixed(1)}% dead (${x.dead_tuples} dead tuples)`)
              .join('; ')
          : `hot tables at most ${(worst * 100).toFixed(1)}% dead`,
      };
    },
  },
];

export function evaluateAlerts(h: Health, t: Thresholds): AlertResult[] {
  return RULES.map((r) => {
    const o = r.eval(h, t);
    return {
      name: r.name,
      severity: o.severity ?? 'warning',
      firing: o.firing,
      value: o.value,
      threshold: o.threshold,
      summary: o.summary,
      runbook: r.runbook,
    };
  });
}

export function worstSeverity(firing: { severity: 'warning' | 'critical' }[]): PluginStatus {
  if (firing.some((a) => a.severity === 'critical')) return 'CRITICAL';
  return firing.length ? 'WARNING' : 'OK';
}
