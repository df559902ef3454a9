// /metrics: a private prom-client registry, prefix canon_, base units. Each scrape makes one
// health snapshot (the same statement as `canon health`), reads the runs finished since the
// previous scrape (keyset watermark, so counters and the duration histogram never count a run
// twice and never scan job_runs), and times the two reads the seed's TaskDB guide sets targets
// for: status_derived of the newest entity (a primary-key read, target p95 < 5 ms) and the
// check of a provenance report over the ten newest entities (target p95 < 150 ms for N = 10),
// with the proof module's own functions. Job ids and entity ids never become labels.
import type pg from 'pg';
import { Counter, Gauge, Histogram, Registry } from 'prom-client';
import { computeHealth } from '../observe/health.js';
import type { Thresholds } from '../observe/thresholds.js';
import type { Health } from '../observe/types.js';
import type { PipelineProofs } from '../pipeline/define.js';
import { checkProvenance, takeProvenance } from '../proof/provenance.js';
import { readStatus } from '../proof/status.js';
import { METRICS_SQL } from '../sql/metrics.js';

const RUNS_PAGE = 20_000;

export class CanonMetrics {
  readonly registry = new Registry();
  private watermark?: { at: string; id: number };
  private readonly up = this.gauge('canon_up', 'Whether the last scrape could read the database (1) or not (0)');
  private readonly queued = this.gauge('canon_jobs_queued', 'Jobs queued, by job type', ['type']);
  private readonly ready = this.gauge('canon_jobs_ready', 'Queued jobs whose run_at has come, by lane', ['lane']);
  private readonly oldest = this.gauge(
    'canon_jobs_oldest_ready_age_seconds',
    'Age of the oldest ready queued job, by job type',
    ['type'],
  );
  private readonly running = this.gauge('canon_jobs_running', 'Jobs running now');
  private readonly runningAge = this.gauge(
    'canon_jobs_running_average_age_seconds',
    'Average time since running jobs were claimed',
  );
  private readonly stuck = this.gauge('canon_jobs_stuck', "Running jobs past their type's TTL without heartbeat");
  private readonly dead = this.gauge(
    'canon_jobs_dead_last_24h',
    'Jobs that died in the last 24 hours and were not retried',
  );
  private readonly lag = this.gauge('canon_estimated_lag_seconds', 'How long the oldest ready queued job has waited');
  private readonly gap = this.gauge(
    'canon_event_to_job_gap',
    'Events older than the grace period without their job, by lane of the missing job',
    ['lane'],
  );
  private readonly trigger = this.gauge(
    'canon_core_trigger_enabled',
    'Whether the core trigger on canon.events fires (1) or is disabled (0)',
  );
  private readonly workers = this.gauge('canon_workers_alive', 'Workers whose heartbeat is recent');
  private readonly bypass = this.gauge(
    'canon_gateway_bypass_jobs_last_24h',
    'Jobs inserted without the gateway in the last 24 hours',
  );
  private readonly strict = this.gauge('canon_gateway_strict', 'Gateway mode: 1 strict, 0 compat');
  private readonly dups = this.gauge(
    'canon_duplicate_event_groups',
    'Entity and kind pairs with a run-written event more than once in the duplicate window',
  );
  private readonly untraced = this.gauge(
    'canon_jobs_succeeded_without_trace',
    'Succeeded jobs without trace_id created after the trace-policy cutoff',
  );
  private readonly authority = this.gauge(
    'canon_decision_runs_recent',
    'Decision runs started in the activity window (default 1 hour)',
  );
  private readonly finished1h = this.gauge(
    'canon_job_runs_finished_last_hour',
    'Runs finished in the last hour, by status',
    ['status'],
  );
  private readonly info = this.gauge('canon_runtime_info', 'The runtime_version setting', ['version']);
  // steering and the ledger's edit register; job types and flags are few, so they may be labels
  private readonly paused = this.gauge('canon_job_types_paused', 'Job types paused now (claims skip them)');
  private readonly pausedQueued = this.gauge(
    'canon_job_type_paused_queued_jobs',
    'Queued jobs of each paused job type',
    ['type'],
  );
  private readonly breakers = this.gauge(
    'canon_breaker_not_closed',
    'Circuit breakers open or half-open (1), by job type and state',
    ['job_type', 'state'],
  );
  private readonly held = this.gauge('canon_jobs_held', "Queued jobs held by a flag's kill switch, by flag", ['flag']);
  private readonly rollbacks = this.gauge(
    'canon_flag_auto_rollbacks_last_24h',
    'Automatic rollbacks of guarded rollouts in the last 24 hours, by flag',
    ['flag'],
  );
  private readonly editsRefused = this.gauge(
    'canon_ledger_edits_refused_new',
    'Refused UPDATE/DELETE/TRUNCATE attempts on the ledger since the last canon audit attempts --ack',
  );
  private readonly editsBypassed = this.gauge(
    'canon_ledger_edits_bypassed_new',
    'Ledger edits made with the triggers bypassed since the last canon audit attempts --ack',
  );
  // the MVCC horizon (issue 18): how long the oldest snapshot has been held, and what it piles up
  private readonly horizonSeconds = this.gauge(
    'canon_horizon_pinned_seconds',
    'How long the oldest open snapshot or transaction of this database (or prepared transaction) has held the MVCC horizon',
  );
  private readonly horizonAge = this.gauge(
    'canon_horizon_xmin_age',
    'Transactions since the oldest xmin that holds vacuum back (sessions, replication slots, prepared transactions)',
  );
  private readonly deadTuples = this.gauge('canon_table_dead_tuples', 'Dead tuples of the hot tables', ['table']);
  private readonly deadRatio = this.gauge(
    'canon_table_dead_tuple_ratio',
    'Dead tuples / (live + dead) of the hot tables',
    ['table'],
  );
  // a replica (--read-url): every number above is as old as its lag
  private readonly standby = this.gauge(
    'canon_read_from_standby',
    'Whether the server this canon serve reads is a standby in recovery (1) or a primary (0)',
  );
  private readonly replicaLag = this.gauge(
    'canon_replica_lag_seconds',
    'How far the standby canon serve reads lags behind its primary (0 on a primary); see canon health',
  );
  private readonly replicaBehind = this.gauge(
    'canon_replica_replay_behind_bytes',
    'WAL the standby canon serve reads has received but not replayed yet (0 on a primary)',
  );
  private readonly runs = new Counter({
    name: 'canon_job_runs_total',
    help: 'Runs finished since this server first scraped the database, by job type and status',
    labelNames: ['type', 'status'],
    registers: [this.registry],
  });
  private readonly duration = new Histogram({
    name: 'canon_job_duration_seconds',
    help: 'Run duration from claim to finish, by job type',
    labelNames: ['type'],
    buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300],
    registers: [this.registry],
  });
  private readonly statusRead = new Histogram({
    name: 'canon_status_derived_read_latency_seconds',
    help: 'Latency of reading one entity status_derived (a primary-key read), probed once per scrape',
    buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1],
    registers: [this.registry],
  });
  private readonly provenance = new Histogram({
    name: 'canon_provenance_verification_latency_seconds',
    help: 'Latency of checking a provenance report of up to 10 entities against the database, probed once per scrape',
    buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.15, 0.25, 0.5, 1],
    registers: [this.registry],
  });

  constructor(
    private readonly pool: pg.Pool,
    private readonly thresholds: Thresholds,
    private readonly proofs?: PipelineProofs,
  ) {}

  private gauge(name: string, help: string, labelNames: string[] = []) {
    return new Gauge({ name, help, labelNames, registers: [this.registry] });
  }

  /** Refreshes every metric; returns the health snapshot, or undefined when the database is down. */
  async refresh(): Promise<Health | undefined> {
    let h: Health;
    try {
      h = await computeHealth(this.pool, this.thresholds);
      await this.countRuns();
    } catch {
      this.up.set(0);
      return undefined;
    }
    // a probe that cannot run (a pipeline whose proof events have another shape) costs its
    // sample, not the scrape
    await this.probe().catch(() => {});
    this.up.set(1);
    this.setByLabel(this.queued, 'type', h.jobs_queued.by_type);
    this.setByLabel(this.ready, 'lane', { decision: 0, execution: 0, ...h.jobs_ready.by_lane });
    this.setByLabel(this.oldest, 'type', h.oldest_queued_age_seconds);
    this.running.set(h.jobs_processing.count);
    this.runningAge.set(h.jobs_processing.avg_age_seconds);
    this.stuck.set(h.stuck_count);
    this.dead.set(h.dead_last_24h);
    this.lag.set(h.estimated_lag_seconds);
    this.setByLabel(this.gap, 'lane', h.event_to_job_gap_by_lane);
    this.trigger.set(h.core_trigger_enabled ? 1 : 0);
    this.workers.set(h.workers.alive);
    this.bypass.set(h.gateway.bypass_last_24h);
    this.strict.set(h.gateway.mode === 'strict' ? 1 : 0);
    this.dups.set(h.duplicate_event_groups);
    this.untraced.set(h.succeeded_without_trace);
    this.authority.set(h.decision_runs_in_activity_window);
    this.setByLabel(this.finished1h, 'status', {
      succeeded: h.throughput.last_1h.succeeded,
      failed: h.throughput.last_1h.failed,
    });
    this.setByLabel(this.info, 'version', { [h.runtime_version]: 1 });
    this.setSteering(h);
    this.horizonSeconds.set(h.horizon.pinned_seconds);
    this.horizonAge.set(h.horizon.xmin_age);
    const tables = h.horizon.hot_tables;
    this.setByLabel(this.deadTuples, 'table', Object.fromEntries(tables.map((t) => [t.table, t.dead_tuples])));
    this.setByLabel(this.deadRatio, 'table', Object.fromEntries(tables.map((t) => [t.table, t.dead_ratio])));
    this.standby.set(h.replica ? 1 : 0);
    this.replicaLag.set(h.replica ? (h.replica.lag_seconds ?? Number.NaN) : 0);
    this.replicaBehind.set(h.replica?.replay_behind_bytes ?? 0);
    return h;
  }

  private setSteering(h: Health) {
    const s = h.steering;
    this.paused.set(s.paused_types.length);
    this.setByLabel(this.pausedQueued, 'type', Object.fromEntries(s.paused_types.map((p) => [p.job_type, p.queued])));
    this.breakers.reset();
    for (const b of s.breakers_not_closed) this.breakers.set({ job_type: b.job_type, state: b.state }, 1);
    this.setByLabel(this.held, 'flag', s.held_jobs.by_flag);
    const perFlag: Record<string, number> = {};
    for (const r of s.auto_rollbacks_24h) perFlag[r.flag] = (perFlag[r.flag] ?? 0) + 1;
    this.setByLabel(this.rollbacks, 'flag', perFlag);
    this.editsRefused.set(h.ledger_edits.refused_new);
    this.editsBypassed.set(h.ledger_edits.bypass_new);
  }

  private setByLabel(g: Gauge, label: string, values: Record<string, number>) {
    g.reset(); // a type that is no longer queued disappears instead of keeping its last value
    for (const [k, v] of Object.entries(values)) g.set({ [label]: k }, v);
  }

  private async countRuns() {
    if (!this.watermark) {
      const at: string = (await this.pool.query(METRICS_SQL.start)).rows[0].at;
      this.watermark = { at, id: 0 };
    }
    for (;;) {
      const rows: { id: number; type: string; status: string; seconds: number; finished_at: string }[] = (
        await this.pool.query(METRICS_SQL.runsSince, [this.watermark.at, this.watermark.id, RUNS_PAGE])
      ).rows;
      for (const r of rows) {
        this.runs.inc({ type: r.type, status: r.status });
        if (r.status !== 'cancelled') this.duration.observe({ type: r.type }, Math.max(0, r.seconds));
      }
      if (rows.length) {
        const last = rows[rows.length - 1];
        this.watermark = { at: last.finished_at, id: Number(last.id) };
      }
      if (rows.length < RUNS_PAGE) return;
    }
  }

  private async probe() {
    const recent = [
      ...new Set((await this.pool.query(METRICS_SQL.recentEntities)).rows.map((r) => r.entity_id as string)),
    ].slice(0, 10);
    if (!recent.length) return; // an empty ledger has nothing to read
    let t0 = process.hrtime.bigint();
    await readStatus(this.pool, recent[0]);
    this.statusRead.observe(Number(process.hrtime.bigint() - t0) / 1e9);
    const prov = await takeProvenance(this.pool, recent, this.proofs);
    t0 = process.hrtime.bigint();
    await checkProvenance(this.pool, prov, this.proofs);
    this.provenance.observe(Number(process.hrtime.bigint() - t0) / 1e9);
  }
}
